"""The results index (reports/index.html, the README's Results section): numbers from the results, verdicts that follow them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from benchmark.reporting import index

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def copied(tmp_path):
    """The committed results, splits and params in a folder of their own (edited by the tests)."""
    shutil.copytree(
        ROOT / "results", tmp_path / "results", ignore=shutil.ignore_patterns("*.npz", "benchmarks", "studies")
    )
    shutil.copytree(ROOT / "data" / "splits", tmp_path / "splits")
    return tmp_path


def _headlines(folder: Path) -> list[index.Headline]:
    return index.headlines(ROOT / "params.yaml", folder / "results", folder / "splits")


def test_wilson_interval_matches_statsmodels():
    for k, n in ((1261, 8384), (0, 20), (20, 20), (3, 7)):
        assert index.wilson(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-9)


def test_every_table_has_a_headline_with_the_numbers_of_the_comparisons(copied):
    items = _headlines(copied)
    assert {item.report for item in items} == set(list(index.REPORTS)[:7])
    comparisons = pd.read_csv(copied / "results" / "synth_polyp" / "comparisons.csv")
    row = comparisons[(comparisons["table"] == "table7") & (comparisons["run_a"] == "unet+diffaug")].iloc[0]
    table7 = next(item for item in items if item.report == "table7_volume")
    assert (
        f"{100 * row['delta']:+.1f} Dice points [{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}], n = {row['n_units']} sequences"
        in table7.ours
    )
    assert "+4.5 points" in table7.paper  # the paper's 94.6 − 90.1, computed from its data file
    for item in items:
        assert item.agreement in ("agrees", "disagrees", "not comparable") and "nan" not in item.ours.lower()


def test_the_verdict_follows_the_comparison(copied):
    path = copied / "results" / "synth_polyp" / "comparisons.csv"
    comparisons = pd.read_csv(path)
    table7 = lambda: next(item for item in _headlines(copied) if item.report == "table7_volume")  # noqa: E731
    before = table7().agreement
    chosen = (comparisons["table"] == "table7") & (comparisons["run_a"] == "unet+diffaug")
    comparisons.loc[chosen, ["delta", "ci_low", "ci_high", "p_holm"]] = [0.05, 0.03, 0.07, 1e-4]
    comparisons.to_csv(path, index=False)
    assert (before, table7().agreement) == ("disagrees", "agrees")
    comparisons.loc[chosen, "p_holm"] = 0.2  # a gain that is not significant does not agree with the paper's claim
    comparisons.to_csv(path, index=False)
    assert table7().agreement == "disagrees"


def test_acceptance_agrees_only_when_the_paper_lies_in_the_interval(copied):
    from benchmark.utils.io import read_json, write_json

    table5 = lambda: next(item for item in _headlines(copied) if item.report == "table5_quality")  # noqa: E731
    assert table5().agreement == "disagrees"
    for dataset in ("synth_polyp", "synth_fundus"):
        path = copied / "results" / dataset / "synthesize" / "summary.json"
        summary = read_json(path)
        summary.update(n_accepted=783, n_generated=1000, acceptance_rate=0.783)
        write_json(path, summary)
    assert table5().agreement == "agrees"


def test_index_page_is_offline_and_links_only_existing_reports(tmp_path):
    items = [index.Headline("table2_segmentation", "ours <b>", "paper", "disagrees", "why")]
    html = index.page(items, "scale", ["table2_segmentation"])
    assert "<title>" in html and "&lt;b&gt;" in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert re.findall(r'href="([^"]+)"', html) == ["table2_segmentation.html", "table2_segmentation.html"]


def test_readme_results_section_is_what_the_committed_results_give():
    readme = (ROOT / "README.md").read_text()
    expected = index.markdown(
        index.headlines(ROOT / "params.yaml", ROOT / "results", ROOT / "data" / "splits"),
        index.scale(ROOT / "params.yaml", ROOT / "results"),
    )
    assert index.replace_readme_section(readme, expected) == readme, (
        "run `python -m benchmark.reporting.index --readme README.md`"
    )
    assert (ROOT / "reports" / "index.md").read_text() == expected


def test_readme_kvasir_section_is_what_the_committed_profile_results_give():
    """The real-data profile's README section (profiles/kvasir/results), links into its reports folder."""
    if not (ROOT / "profiles" / "kvasir" / "results" / "kvasir_seg" / "comparisons.csv").is_file():
        pytest.skip("the Kvasir-SEG profile's results are not committed in this checkout")
    readme = (ROOT / "README.md").read_text()
    expected = index.profile_markdown("params_kvasir.yaml", ROOT)
    assert "](profiles/kvasir/reports/table2_segmentation.html)" in expected
    assert index.replace_readme_section(readme, expected, "kvasir") == readme, (
        "run `python -m benchmark.reporting.index --params params_kvasir.yaml --readme README.md`"
    )


def test_replace_readme_section_needs_its_markers():
    text = f"intro\n{index.README_START}\nold\n{index.README_END}\nrest\n"
    assert (
        index.replace_readme_section(text, "new\n") == f"intro\n{index.README_START}\nnew\n{index.README_END}\nrest\n"
    )
    with pytest.raises(ValueError, match="results section"):
        index.replace_readme_section("no markers", "new\n")


def test_real_data_headlines_name_the_papers_dataset_and_the_shortfall(copied, tmp_path):
    """A real-data run (the Kvasir-SEG profile's shape): Table 1 / 2 cite the paper's Kvasir-SEG figures, Table 3 falls
    back to the flat stratum (no mm scale on real frames), Table 7 says when the gate fell short of 1x."""
    import yaml

    from benchmark.utils.io import read_json, write_json

    results = copied / "results"
    shutil.move(results / "synth_polyp", results / "kvasir_seg")
    shutil.rmtree(results / "synth_fundus")
    shutil.copy(copied / "splits" / "synth_polyp.json", copied / "splits" / "kvasir_seg.json")
    path = results / "kvasir_seg" / "comparisons.csv"
    comparisons = pd.read_csv(path)
    comparisons["metric"] = comparisons["metric"].str.replace("small (<5 mm)", "flat", regex=False)
    comparisons.to_csv(path, index=False)
    summary_path = results / "kvasir_seg" / "synthesize" / "summary.json"
    summary = read_json(summary_path)
    summary.update(target_reached=False, n_accepted=500, n_generated=10166, n_train_real=680)
    write_json(summary_path, summary)
    params = yaml.safe_load((ROOT / "params_kvasir.yaml").read_text())
    (tmp_path / "params_kvasir.yaml").write_text(yaml.safe_dump(params))
    items = {item.report: item for item in index.headlines(tmp_path / "params_kvasir.yaml", results, copied / "splits")}
    assert "Kvasir-SEG 800 / 200" in items["table1_datasets"].paper
    assert "procedural" not in items["table1_datasets"].why
    assert "on kvasir_seg" in items["table2_segmentation"].paper
    assert "Flat Lesions" in items["table3_lesions"].paper
    assert "accepted only 500 of 10,166 generations (1× = 680)" in items["table7_volume"].ours
    assert "no oracle control" not in items["table7_volume"].why or "oracle" not in items["table7_volume"].ours
