"""``reports/index.html`` and the README's "Results" section: one sentence per table, the paper beside us.

Every figure is read from the run's files (``results/<dataset>/comparisons.csv`` for every difference
and its unit-level CI, the runs' ``per_image.csv`` / ``inference.json``, the synthesize and quality
summaries, the committed splits) and from the paper's published figures (:mod:`benchmark.reporting.paper`).
Nothing is typed here but wording.

    python -m benchmark.reporting.index [--params params.yaml] [--readme README.md]

writes ``reports/index.html`` and ``reports/index.md`` (the report stage calls it); ``--readme`` also
replaces the README's section between :data:`README_START` and :data:`README_END` with ``index.md``.
For a profile (``--params params_kvasir.yaml``, run from the repository root) it reads the profile's
workspace ``profiles/<name>/`` and rewrites the README section between ``<!-- results-<name>:start``
and ``<!-- results-<name>:end -->``, links pointing into ``profiles/<name>/reports/``.
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

README_START = "<!-- results:start (written by python -m benchmark.reporting.index --readme) -->"
README_END = "<!-- results:end -->"

#: the reports the index links, in the paper's order, with their titles
REPORTS = {
    "table1_datasets": "Table 1 — datasets",
    "table2_segmentation": "Table 2 — segmentation",
    "table3_lesions": "Table 3 — lesion-level detection",
    "table4_efficiency": "Table 4 — computational cost",
    "table5_quality": "Table 5 — quality of generated lesions",
    "table6_ablation": "Table 6 — ablation",
    "table7_volume": "Table 7 — synthetic data volume",
    "generator": "Generator check",
    "generator_scale": "Generator scale (opt-in study)",
    "cross_dataset": "Cross-dataset generalisation (beyond the paper)",
}


@dataclasses.dataclass
class Headline:
    """One table's result in one sentence, the paper's figure beside it and whether they agree.

    ``agreement``: "agrees", "disagrees", "not comparable" (a plain word the index prints).
    """

    report: str
    ours: str
    paper: str
    agreement: str
    why: str = ""


def _pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def _points(row: pd.Series) -> str:
    """``−6.0 points [−7.1, −4.9], n = 100 sequences`` from a comparisons.csv row (fractions)."""
    return (
        f"{100 * row['delta']:+.1f} Dice points [{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}], "
        f"n = {int(row['n_units'])} {row['unit']}s"
    )


def _comparison(
    comparisons: pd.DataFrame, table: str, run_a: str, run_b: str | None = None, metric: str | None = None
) -> pd.Series | None:
    """The comparisons.csv row of ``table`` for ``run_a`` (against ``run_b``, on ``metric``), or None."""
    rows = comparisons[(comparisons["table"] == table) & (comparisons["run_a"] == run_a)]
    if metric is not None:
        rows = rows[rows["metric"] == metric]
    if run_b is not None:
        rows = rows[rows["run_b"] == run_b]
    return rows.iloc[0] if len(rows) else None


def _significant(row: pd.Series | None) -> bool:
    return row is not None and bool(np.isfinite(row["p_holm"])) and row["p_holm"] < 0.05 and row["n_units"] >= 6


def _run_dice(results_dir: Path, dataset: str, run: str) -> tuple[float, float, int] | None:
    """Mean and std over seeds of a run's test Dice (fractions) and its seed count; None if not run."""
    path = results_dir / dataset / "runs" / run / "per_image.csv"
    if not path.is_file():
        return None
    seeds = pd.read_csv(path, usecols=["seed_index", "dice"]).groupby("seed_index")["dice"].mean()
    return float(seeds.mean()), float(seeds.std(ddof=1)) if len(seeds) > 1 else 0.0, int(len(seeds))


def _speed(results_dir: Path, dataset: str, run: str) -> float | None:
    """Test-split inference images/s of a run, mean over seeds (``inference.json``), wall-clock."""
    from benchmark.utils.io import read_json

    path = results_dir / dataset / "runs" / run / "inference.json"
    if not path.is_file():
        return None
    values = list(read_json(path).get("test_images_per_second", {}).values())
    return float(np.mean(values)) if values else None


def _paper(table: str, metric: str, **where) -> float | None:
    from benchmark.reporting import paper

    return paper.lookup(table, metric, **where)


def headlines(
    params_path: str | Path = "params.yaml", results_dir: str | Path = "results", splits_dir: str | Path = "data/splits"
) -> list[Headline]:
    """The headline of every table of the run described by ``params_path`` (the first polyp-like
    dataset carries the polyp claims, the first fundus dataset the glaucoma claims)."""
    from benchmark.config import load_section
    from benchmark.methods.runs import run_display_name
    from benchmark.reporting.verdicts import PAPER_STRATA
    from benchmark.utils.io import read_json

    results_dir, splits_dir = Path(results_dir), Path(splits_dir)
    datasets = list(load_section("prepare", params_path).datasets)
    ablation = load_section("ablation", params_path)
    study = (list(ablation.datasets) or datasets)[0]
    comparisons = {
        d: pd.read_csv(results_dir / d / "comparisons.csv")
        for d in datasets
        if (results_dir / d / "comparisons.csv").is_file()
    }
    out = []

    # Table 1
    parts = []
    for d in datasets:
        split = read_json(splits_dir / f"{d}.json") if (splits_dir / f"{d}.json").is_file() else None
        if split:
            units = comparisons.get(d)
            n_units = (
                f" ({int(units['n_units'].iloc[0])} {units['unit'].iloc[0]}s)"
                if units is not None and len(units)
                else ""
            )
            parts.append(
                f"{d}: {len(split['train'])} train / {len(split['val'])} validation / {len(split['test'])} test images{n_units}"
            )
    from benchmark.data import DATASETS
    from benchmark.reporting.verdicts import PAPER_DATASETS

    # the paper's datasets these runs stand for (real ones: themselves; procedural ones: what they imitate)
    paper_sets = list(dict.fromkeys(PAPER_DATASETS[d] for d in datasets if d in PAPER_DATASETS))
    procedural = [d for d in datasets if d in DATASETS and DATASETS[d].procedural]
    paper_sets = paper_sets or [("cvc_clinicdb", "CVC-ClinicDB"), ("refuge2", "REFUGE2")]
    out.append(
        Headline(
            "table1_datasets",
            "; ".join(parts) + ".",
            ", ".join(
                f"{label} {_fmt(_paper('table1', 'n_train', dataset=key))} / {_fmt(_paper('table1', 'n_test', dataset=key))}"
                for key, label in paper_sets
            )
            + " train / test",
            "not comparable",
            "procedural stand-ins at 64 px; the real datasets run with params_paper.yaml"
            if procedural
            else f"the paper's split sizes; here validation is carved from train, and images are at "
            f"{load_section('prepare', params_path).image_size} px",
        )
    )

    # Table 2: per dataset, the best mean and DiffAug's segmenter against its validation-chosen opponent
    train = load_section("train", params_path)
    for d, table in comparisons.items():
        means = {run: _run_dice(results_dir, d, run) for run in train.methods}
        means = {run: value for run, value in means.items() if value is not None}
        if not means:
            continue
        best = max(means, key=lambda run: means[run][0])
        row = _comparison(table, "table2", "diffaug")
        ours = (
            f"{d}: best mean Dice {run_display_name(best)} {_pct(means[best][0])} ± {100 * means[best][1]:.1f} "
            f"({means[best][2]} seeds); DiffAug's segmenter {_pct(means['diffaug'][0])}"
            if "diffaug" in means
            else f"{d}: best {run_display_name(best)}"
        )
        if row is not None:
            ours += (
                f", {_points(row)} against {run_display_name(row['run_b'])} (chosen on validation), Holm p {_p(row)}"
            )
        paper_dataset = PAPER_DATASETS.get(d, ("refuge2" if "fundus" in d or "refuge" in d else "cvc_clinicdb",))[0]
        paper_value = _paper("table2", "dice", row="DiffAug (Ours)", dataset=paper_dataset)
        diffaug_best = best == "diffaug" and row is not None and _significant(row) and row["delta"] > 0
        out.append(
            Headline(
                "table2_segmentation",
                ours + ".",
                f"DiffAug best on every dataset ({_fmt(paper_value)} % Dice on {paper_dataset})",
                "agrees" if diffaug_best else "disagrees",
                "" if diffaug_best else "DiffAug's segmenter is not significantly the best here",
            )
        )

    # Table 3: DiffAug vs SDSeg, lesion sensitivity
    for d, table in comparisons.items():
        # the paper's strata with the same definition: small polyps in mm where a scale exists (procedural), else
        # the flat lesions (Kvasir-Sessile on Kvasir-SEG); early glaucoma on fundus
        keys = ["early glaucoma (vCDR 0.5-0.6)"] if "fundus" in d or "refuge" in d else ["small (<5 mm)", "flat"]
        found = [
            (k, _comparison(table, "table3", "diffaug", "sdseg", metric=f"lesion_sensitivity [{k}]")) for k in keys
        ]
        key, row = next(((k, r) for k, r in found if r is not None), (keys[0], None))
        stratum = PAPER_STRATA[key]
        if row is None:
            continue
        ours_fnr, sdseg_fnr = (_paper("table3", "fnr", row=m, group=stratum) for m in ("DiffAug", "SDSeg"))
        better = _significant(row) and row["delta"] > 0
        out.append(
            Headline(
                "table3_lesions",
                f"{d}: DiffAug − SDSeg lesion sensitivity {_points(row).replace('Dice points', 'points')}, Holm p {_p(row)}.",
                f"lesion FNR {_fmt(ours_fnr)} % vs SDSeg {_fmt(sdseg_fnr)} % ({stratum})",
                "agrees" if better else "disagrees",
                "" if better else "no significant lesion-level gain over SDSeg",
            )
        )

    # Table 4: inference speed ratios (wall-clock test images/s, this machine)
    speeds = {run: _speed(results_dir, study, run) for run in ("diffaug", "sdseg", "medsegdiff_v1")}
    paper_speed = {
        row: _paper("table4", "inference_speed", row=row)
        for row in ("DiffAug (Segmentation)", "SDSeg", "MedSegDiff-V1")
    }
    if all(speeds.values()) and all(paper_speed.values()):
        r_sdseg, r_msd = speeds["diffaug"] / speeds["sdseg"], speeds["diffaug"] / speeds["medsegdiff_v1"]
        p_sdseg = paper_speed["DiffAug (Segmentation)"] / paper_speed["SDSeg"]
        p_msd = paper_speed["DiffAug (Segmentation)"] / paper_speed["MedSegDiff-V1"]
        agree = (r_sdseg > 1) == (p_sdseg > 1) and (r_msd > 1) == (p_msd > 1)
        out.append(
            Headline(
                "table4_efficiency",
                f"{study}: DiffAug's segmenter runs {r_sdseg:.2f}× SDSeg's and {r_msd:.1f}× MedSegDiff-V1's test images/s (wall-clock, CPU).",
                f"{p_sdseg:.1f}× SDSeg, {p_msd:.0f}× MedSegDiff-V1 (GPU)",
                "agrees" if agree else "disagrees",
                "" if agree else "the ordering of speeds differs",
            )
        )

    # Table 5: acceptance, with a Wilson 95 % interval over generations
    parts, inside = [], []
    paper_rate = _paper("table5", "acceptance_rate", column="Accepted")
    for d in datasets:
        path = results_dir / d / "synthesize" / "summary.json"
        if path.is_file():
            summary = read_json(path)
            low, high = wilson(summary["n_accepted"], summary["n_generated"])
            parts.append(
                f"{d} {_pct(summary['acceptance_rate'])} [{100 * low:.1f}, {100 * high:.1f}] ({summary['n_accepted']:,} of {summary['n_generated']:,})"
            )
            inside.append(paper_rate is not None and low <= paper_rate / 100 <= high)
    if parts:
        agree = all(inside)
        out.append(
            Headline(
                "table5_quality",
                "Acceptance by the new-lesion gate at θ = 0.7: " + ", ".join(parts) + ".",
                f"acceptance {_fmt(paper_rate)} %",
                "agrees" if agree else "disagrees",
                ""
                if agree
                else "the paper's rate lies outside our interval; the gate's ceiling is the validator's own pass rate on real lesions (Table 5 report)",
            )
        )

    # Table 6 and 7 on the study dataset
    table = comparisons.get(study)
    if table is not None:
        rows = [
            (_comparison(table, "table6", run), label)
            for run, label in (
                ("diffaug+diffaug_unvalidated", "w/o validation loop"),
                ("diffaug+real", "w/o synthetic data"),
            )
        ]
        rows = [(row, label) for row, label in rows if row is not None]
        if rows:
            ours = (
                f"{study}, against DiffAug (full): " + "; ".join(f"{label} {_points(row)}" for row, label in rows) + "."
            )
            full = _paper("table6", "dice", row="DiffAug (Full)")
            paper_rows = {"w/o validation loop": "w/o Validation Loop", "w/o synthetic data": "w/o Synthetic Data"}
            papers = ", ".join(
                f"{label} {_fmt(_difference(_paper('table6', 'dice', row=paper_rows[label]), full), signed=True)} points"
                for _, label in rows
            )
            agree = all(row["delta"] < 0 and _significant(row) for row, _ in rows)
            out.append(
                Headline(
                    "table6_ablation",
                    ours,
                    papers,
                    "agrees" if agree else "disagrees",
                    "" if agree else "not every removed component lowers Dice significantly",
                )
            )
        row = _comparison(table, "table7", "unet+diffaug", "unet")
        if row is not None:
            standard = _paper("table7", "dice", row="Standard augmentation only*")
            one = _paper("table7", "dice", row="DiffAug + 1× synthetic")
            gain = _significant(row) and row["delta"] > 0
            oracle = _comparison(table, "table7", "unet+oracle", "unet")
            extra = f"; oracle data {_points(oracle)}" if oracle is not None else ""
            summary_path = results_dir / study / "synthesize" / "summary.json"
            summary = read_json(summary_path) if summary_path.is_file() else {}
            if summary and not summary.get("target_reached", True):
                extra += (
                    f"; the gate accepted only {summary['n_accepted']:,} of {summary['n_generated']:,} generations "
                    f"(1× = {summary['n_train_real']:,}), so every volume trains on those"
                )
            out.append(
                Headline(
                    "table7_volume",
                    f"{study}: U-Net + DiffAug 1× − U-Net with standard augmentation {_points(row)}{extra} (equal optimizer steps).",
                    f"DiffAug + 1× {_fmt(_difference(one, standard), signed=True)} points over standard augmentation",
                    "agrees" if gain else "disagrees",
                    ""
                    if gain
                    else "synthetic data does not raise Dice at this scale; the oracle control shows whether any could"
                    if oracle is not None
                    else "synthetic data does not raise Dice significantly at this scale (no oracle control on real data)",
                )
            )
    return out


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval (95 % by default) of a proportion k / n; (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
    )
    return float(centre - half), float(centre + half)


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:+.1f}" if signed else f"{value:g}"


def _p(row: pd.Series) -> str:
    from benchmark.stats.comparisons import p_text

    return p_text(row)


def scale(params_path: str | Path = "params.yaml", results_dir: str | Path = "results") -> str:
    """The scale the results were obtained at: data, resolution, seeds, hardware (one sentence)."""
    from benchmark.config import load_section
    from benchmark.utils.io import read_json

    prepare, train = load_section("prepare", params_path), load_section("train", params_path)
    hardware = set()
    for dataset in prepare.datasets:
        for path in sorted((Path(results_dir) / dataset / "runs").glob("*/inference.json"))[:3]:
            hardware.add(read_json(path).get("hardware", "not recorded"))
    return (
        f"Run at: datasets {', '.join(prepare.datasets)} ({prepare.image_size}×{prepare.image_size} px), "
        f"{train.n_seeds} seeds per method, hardware {', '.join(sorted(hardware)) or 'not recorded'}; "
        f"every model trained from scratch (no pretrained weights can be fetched offline)."
    )


def markdown(items: list[Headline], scale_sentence: str) -> str:
    """The README "Results" section body: the scale, then one bullet per table with the paper beside us."""
    lines = [scale_sentence, ""]
    for item in items:
        why = f" ({item.why})" if item.why else ""
        lines.append(
            f"- **[{REPORTS[item.report]}](reports/{item.report}.html)**: {item.ours} Paper: {item.paper}. **{item.agreement.capitalize()}**{why}."
        )
    return "\n".join(lines) + "\n"


def page(items: list[Headline], scale_sentence: str, available: list[str]) -> str:
    """``reports/index.html``: self-contained (no script, no network reference), links relative."""
    rows = "\n".join(
        f'<tr><td><a href="{item.report}.html">{html.escape(REPORTS[item.report])}</a></td><td>{html.escape(item.ours)}</td>'
        f'<td>{html.escape(item.paper)}</td><td class="{item.agreement.replace(" ", "-")}">{html.escape(item.agreement)}'
        f"{'<br><small>' + html.escape(item.why) + '</small>' if item.why else ''}</td></tr>"
        for item in items
    )
    links = "\n".join(
        f'<li><a href="{name}.html">{html.escape(REPORTS[name])}</a></li>' for name in REPORTS if name in available
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DiffAug benchmark — results</title>
<style>body{{font-family:sans-serif;max-width:75em;margin:2em auto;line-height:1.4}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.4em;vertical-align:top}}.agrees{{color:#064}}.disagrees{{color:#a00}}</style></head>
<body><h1>DiffAug benchmark — results</h1>
<p>{html.escape(scale_sentence)}</p>
<p>One sentence per table: our figure with its confidence interval at the independent unit (video sequence where the
data has them, else image) and n, the paper's figure, and whether they agree.</p>
<table><thead><tr><th>report</th><th>here</th><th>paper</th><th>verdict</th></tr></thead><tbody>
{rows}
</tbody></table>
<h2>Reports</h2><ul>
{links}
</ul></body></html>
"""


def write(
    params_path: str | Path = "params.yaml", results_dir: str | Path = "results", reports_dir: str | Path = "reports"
) -> list[Path]:
    """Write ``reports/index.html`` and ``reports/index.md`` atomically; returns the paths."""
    from benchmark.utils.io import atomic_path

    reports_dir = Path(reports_dir)
    items, sentence = headlines(params_path, results_dir), scale(params_path, results_dir)
    available = [name for name in REPORTS if (reports_dir / f"{name}.html").is_file()]
    written = []
    for name, text in (("index.html", page(items, sentence, available)), ("index.md", markdown(items, sentence))):
        with atomic_path(reports_dir / name, suffix=Path(name).suffix) as tmp:
            tmp.write_text(text, encoding="utf-8")
        written.append(reports_dir / name)
    return written


def readme_markers(profile: str | None = None) -> tuple[str, str]:
    """The README lines around the results section of the default (None) or of a profile."""
    if profile is None:
        return README_START, README_END
    return (
        f"<!-- results-{profile}:start (written by python -m benchmark.reporting.index --params params_{profile}.yaml "
        "--readme README.md) -->",
        f"<!-- results-{profile}:end -->",
    )


def profile_markdown(params_path: str | Path, root: str | Path = ".") -> str:
    """The README section of a profile: its index (from ``profiles/<name>/``) with links into that folder."""
    from benchmark.profiles import profile_name

    name = profile_name(params_path)
    workspace = Path(root) / "profiles" / name
    params = Path(root) / Path(params_path).name
    body = markdown(
        headlines(params, workspace / "results", workspace / "data" / "splits"), scale(params, workspace / "results")
    )
    return body.replace("](reports/", f"](profiles/{name}/reports/")


def replace_readme_section(readme: str, body: str, profile: str | None = None) -> str:
    """``readme`` with the text between the markers (:func:`readme_markers`) replaced by ``body``.

    Raises:
        ValueError: the markers are missing (add them around the README's "Results" section).
    """
    start, end = readme_markers(profile)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        raise ValueError(f"README has no results section: add the lines {start!r} and {end!r}")
    return pattern.sub(lambda _: f"{start}\n{body}{end}", readme)


def main(argv: list[str] | None = None) -> None:
    import argparse

    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--readme", help="also rewrite this README's results section")
    args = cli.parse_args(argv)
    if Path(args.params).name != "params.yaml":  # a profile: its workspace holds the index (report stage)
        from benchmark.profiles import profile_name

        if not args.readme:
            raise SystemExit("a profile's index is written by its report stage; use --readme to update the README")
        path = Path(args.readme)
        profile = profile_name(args.params)
        path.write_text(replace_readme_section(path.read_text(), profile_markdown(args.params), profile))
        print(f"{path}: results section of profile {profile!r} updated")
        return
    written = write(args.params)
    print("index: " + ", ".join(map(str, written)))
    if args.readme:
        path = Path(args.readme)
        path.write_text(replace_readme_section(path.read_text(), written[1].read_text()))
        print(f"{path}: results section updated")


if __name__ == "__main__":
    main()
