"""Cross-dataset generalisation (``cross@<dataset>``, ``benchmark.reporting.cross``): which pairs, the stage on
tiny prepared datasets with really trained U-Nets, its numbers against hand computations and benchmark.stats,
and the "not run" page where no two datasets share a modality."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import blobs

from benchmark.config import ParamsError
from benchmark.reporting import cross

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "cvc_clinicdb"  # the models of the stage test are trained here
TARGETS = ("kvasir_seg", "synth_polyp")  # polyp too: scored out of domain (image units, sequence units)
FUNDUS = "synth_fundus"
RUNS = ("unet", "unet+diffaug")
N_SEEDS = 2


# --- pairs --------------------------------------------------------------------------------------------------------
def test_pairs_are_ordered_same_modality_and_never_a_dataset_with_itself():
    modalities = {"a": "polyp", "b": "polyp", "f": "fundus", "d": "polyp"}
    pairs = cross.cross_pairs(modalities)
    assert pairs == [("a", "b"), ("a", "d"), ("b", "a"), ("b", "d"), ("d", "a"), ("d", "b")]
    assert cross.targets_of("a", modalities) == ["b", "d"]
    assert cross.targets_of("f", modalities) == []  # the only fundus dataset has no partner
    assert cross.no_pairs_reason(modalities) is None
    assert cross.cross_pairs({"a": "polyp", "f": "fundus"}) == []


def test_synthetic_runs_are_compared_with_the_same_methods_real_only_run():
    runs = ["unet", "unet+diffaug", "diffaug", "diffaug+real", "resnet50_unet+diffaug", "unet+noaug"]
    assert cross.comparison_pairs(runs) == [("unet+diffaug", "unet"), ("diffaug", "diffaug+real")]
    assert cross.comparison_pairs(["unet+diffaug"]) == []  # no real-only partner listed: nothing compared


# --- fixtures: tiny prepared datasets in the layout of benchmark.data.prepare ---------------------------------------
def write_dataset(root: Path, name: str, modality: str, *, seed: int, n_test: int, sequence: int | None) -> None:
    """``data/prepared/<name>`` (arrays, native masks, attributes with ``group``, manifest) and ``data/splits/<name>.json``:
    8 train, 4 validation and ``n_test`` test images of 32 px; ``sequence`` consecutive images form one group
    (None: every image its own unit)."""
    n_train, n_val = 8, 4
    data = blobs(n_train + n_val + n_test, 32, seed)
    ids = [f"{name}_{i:03d}" for i in range(len(data))]
    parts = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    folder = root / "data" / "prepared" / name
    folder.mkdir(parents=True)
    np.savez(folder / "arrays.npz", ids=np.array(ids), images=data.images, masks=data.masks, labels=data.masks)
    np.savez(folder / "native_masks.npz", **{key: mask.astype(bool) for key, mask in zip(ids, data.masks)})
    groups = ids if sequence is None else [f"{name}_seq{i // sequence}" for i in range(len(ids))]
    pd.DataFrame({"id": ids, "split": parts, "group": groups}).to_csv(folder / "attributes.csv", index=False)
    manifest = {"dataset": name, "modality": modality, "target": "polyp" if modality == "polyp" else "cup"}
    (folder / "manifest.json").write_text(json.dumps({**manifest, "image_size": 32, "has_normal_twins": False}))
    (root / "data" / "splits").mkdir(parents=True, exist_ok=True)
    split = {part: [key for key, p in zip(ids, parts) if p == part] for part in ("train", "val", "test")}
    (root / "data" / "splits" / f"{name}.json").write_text(json.dumps(split))


def write_params(root: Path, names: list[str], **cross_section) -> Path:
    """The committed params.yaml with these datasets, the U-Net and U-Net + DiffAug runs, two seeds, no studies."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"]["datasets"] = {name: f"data/raw/{name}" for name in names}
    params["train"].update(methods=list(RUNS), n_seeds=N_SEEDS, threads=1, workers=1)
    params["ablation"].update(datasets=[], synthetic_sets=[], runs=[])
    params["cross"].update(cross_section)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@contextlib.contextmanager
def inside(folder: Path):
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def train_and_evaluate(root: Path, dataset: str, params_path: Path) -> None:
    """Every run x seed of ``dataset`` trained (tiny U-Net) and evaluated in domain by the train stage's own code:
    ``models/<dataset>/runs/<run>/seed_<k>`` and ``results/<dataset>/runs/<run>/per_image.csv``."""
    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.methods.unet import UNet
    from benchmark.stages import evaluate
    from benchmark.stages.train import train_seed
    from benchmark.utils.seeding import derive_seed

    data = PreparedDataset(root / "data/prepared" / dataset, root / "data/splits" / f"{dataset}.json")
    train, val, test = data.subset("train"), data.subset("val"), data.subset("test")
    params = load_section("evaluate", params_path)
    for run in RUNS:
        seed_dirs = []
        for index in range(N_SEEDS):
            seed_dir = root / "models" / dataset / "runs" / run / f"seed_{index}"
            seed = derive_seed(2024, "train", dataset, run, index)  # the runs differ: different seeds here
            record, method = train_seed(train, val, UNet, UNet.smoke_config(), seed, seed_dir, progress=False)
            result = evaluate.evaluate_seed(
                method,
                record,
                test,
                val,
                data.native_masks(list(test.ids)),
                data.native_masks(list(val.ids)),
                params,
                iterative=False,
            )
            evaluate.save_evaluation(result, seed_dir, evaluate.evaluation_key(record["fingerprint"], params))
            seed_dirs.append(seed_dir)
        evaluate.write_run_results(dataset, run, seed_dirs, root / "results" / dataset / "runs" / run, params.threshold)


def run_stage(root: Path, dataset: str) -> None:
    from benchmark.stages import cross as stage

    argv = sys.argv
    sys.argv = ["cross", "--dataset", dataset, "--params", "params.yaml"]
    try:
        with inside(root):
            stage.main()
    finally:
        sys.argv = argv


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Three polyp datasets and one fundus dataset; U-Nets trained on cvc_clinicdb; cross@cvc_clinicdb and
    cross@synth_fundus run."""
    root = tmp_path_factory.mktemp("cross")
    write_dataset(root, TRAIN, "polyp", seed=0, n_test=8, sequence=2)
    write_dataset(root, "kvasir_seg", "polyp", seed=5, n_test=7, sequence=None)
    write_dataset(root, "synth_polyp", "polyp", seed=7, n_test=9, sequence=3)
    write_dataset(root, FUNDUS, "fundus", seed=9, n_test=4, sequence=None)
    params_path = write_params(root, [TRAIN, *TARGETS, FUNDUS])
    train_and_evaluate(root, TRAIN, params_path)
    run_stage(root, TRAIN)
    run_stage(root, FUNDUS)
    return root


def units_of(root: Path, dataset: str):
    from benchmark.data.prepared import PreparedDataset
    from benchmark.stats.units import dataset_units

    return dataset_units(PreparedDataset(root / "data/prepared" / dataset, root / "data/splits" / f"{dataset}.json"))


def read_per_image(root: Path, test: str, run: str) -> pd.DataFrame:
    return pd.read_csv(root / "results" / TRAIN / "cross" / test / run / "per_image.csv", dtype={"image_id": str})


# --- the stage ---------------------------------------------------------------------------------------------------
def test_models_are_scored_on_the_other_datasets_test_split(workspace):
    """Each seed's checkpoint, loaded and run on the target's test images, gives the per-image Dice the stage wrote."""
    from benchmark.data.prepared import PreparedDataset
    from benchmark.methods.unet import UNet
    from benchmark.metrics.evaluate import score_images

    for test in TARGETS:
        data = PreparedDataset(workspace / "data/prepared" / test, workspace / "data/splits" / f"{test}.json")
        images = data.subset("test")
        for run in RUNS:
            table = read_per_image(workspace, test, run)
            assert set(table["trained_on"]) == {TRAIN} and set(table["dataset"]) == {test}
            assert set(table["method"]) == {run}
            assert table.groupby("seed_index")["image_id"].apply(list).tolist() == [list(images.ids)] * N_SEEDS
            for index in range(N_SEEDS):
                method = UNet.load(workspace / "models" / TRAIN / "runs" / run / f"seed_{index}" / "model")
                expected = score_images(
                    method.predict(images.images), list(images.ids), data.native_masks(list(images.ids)), 0.5
                )
                written = table[table["seed_index"] == index]
                np.testing.assert_allclose(written["dice"].to_numpy(), expected["dice"].to_numpy(), atol=1e-6)


def test_summary_equals_a_hand_computation_from_the_per_image_files(workspace):
    summary = pd.read_csv(workspace / "results" / TRAIN / "cross" / cross.SUMMARY)
    assert list(summary.columns) == list(cross.SUMMARY_COLUMNS)
    assert summary[["test", "run"]].apply(tuple, axis=1).tolist() == [
        (test, run) for test in (TRAIN, *TARGETS) for run in RUNS
    ]  # in domain first, then each target in listing order
    assert summary["domain"].tolist() == ["in"] * len(RUNS) + ["out"] * len(RUNS) * len(TARGETS)
    assert set(summary["train"]) == {TRAIN}
    for _, row in summary.iterrows():
        if row["domain"] == "in":
            path = workspace / "results" / TRAIN / "runs" / row["run"] / "per_image.csv"
            table = pd.read_csv(path, dtype={"image_id": str})
        else:
            table = read_per_image(workspace, row["test"], row["run"])
        per_seed = [frame["dice"].mean() for _, frame in table.groupby("seed_index")]
        assert row["n_seeds"] == N_SEEDS == len(per_seed)
        assert row["dice_mean"] == pytest.approx(np.mean(per_seed), abs=1e-6)
        assert row["dice_sd"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-6)
        groups = pd.read_csv(workspace / "data/prepared" / row["test"] / "attributes.csv", dtype=str)
        test_groups = groups.set_index("id").loc[table["image_id"].unique(), "group"]
        assert row["n_units"] == test_groups.nunique()
        assert row["unit"] == ("image" if row["test"] == "kvasir_seg" else "sequence")
        assert (row["versus"] == "unet") if row["run"] == "unet+diffaug" else pd.isna(row["versus"])
        assert np.isfinite(row["delta"]) == (row["run"] == "unet+diffaug")


def test_paired_difference_is_benchmark_stats_on_the_unit_means(workspace):
    """Seed-average per image, then average the images of each unit; the difference's bootstrap CI, p and MDE
    are benchmark.stats' on those unit differences, and Holm runs over the out-of-domain comparisons."""
    from benchmark.stats.comparisons import mde_80, min_attainable_p, signed_rank_p
    from benchmark.stats.significance import bootstrap_ci, holm

    summary = pd.read_csv(workspace / "results" / TRAIN / "cross" / cross.SUMMARY)
    compared = summary[summary["run"] == "unet+diffaug"].set_index("test")
    raw_p = {}
    for index, test in enumerate(TARGETS):
        units = units_of(workspace, test)
        means = {}
        for run in RUNS:
            table = read_per_image(workspace, test, run)
            per_image = table.groupby("image_id")["dice"].mean()
            means[run] = per_image.groupby([units.of_image[key] for key in per_image.index]).mean()
        differences = (means["unet+diffaug"] - means["unet"]).sort_index().to_numpy()
        delta, low, high = bootstrap_ci(differences, n_resamples=cross.N_RESAMPLES, seed=index)
        row = compared.loc[test]
        assert row["n_units"] == len(differences)
        assert (row["delta"], row["ci_low"], row["ci_high"]) == pytest.approx((delta, low, high), abs=1e-6)
        assert row["p"] == pytest.approx(signed_rank_p(differences), abs=1e-6)
        assert row["mde_80"] == pytest.approx(mde_80(differences), abs=1e-6, nan_ok=True)
        assert row["min_attainable_p"] == pytest.approx(min_attainable_p(len(differences)))
        raw_p[test] = signed_rank_p(differences)
    adjusted = holm(np.array([raw_p[test] for test in TARGETS]))
    assert compared.loc[list(TARGETS), "p_holm"].to_numpy() == pytest.approx(adjusted, abs=1e-6)


def test_in_domain_reference_is_the_unit_level_comparison_on_the_training_dataset(workspace):
    """Without compare@<dataset>'s comparisons.csv (as here) the in-domain row is benchmark.stats' compare on
    results/<dataset>/runs, a family of its own (p_holm = p)."""
    from benchmark.reporting.tables import load_per_image
    from benchmark.stats.comparisons import compare

    summary = pd.read_csv(workspace / "results" / TRAIN / "cross" / cross.SUMMARY)
    row = summary[(summary["domain"] == "in") & (summary["run"] == "unet+diffaug")].iloc[0]
    per_image = load_per_image(workspace / "results", [TRAIN], list(RUNS))
    expected = compare(per_image, "unet+diffaug", "unet", units_of(workspace, TRAIN), n_resamples=cross.N_RESAMPLES)
    for column in ("delta", "ci_low", "ci_high", "p", "n_units"):
        assert row[column] == pytest.approx(expected[column], abs=1e-6), column
    assert row["p_holm"] == pytest.approx(row["p"])


def test_in_domain_difference_is_taken_from_comparisons_csv_when_compare_states_it():
    """One p per comparison: the in-domain row repeats compare@<dataset>'s row for the pair."""
    from benchmark.stats.units import Units

    units = Units("image", {f"i{k}": f"i{k}" for k in range(4)})
    rows = [
        {"method": run, "seed_index": 0, "image_id": f"i{k}", "dice": 0.5 + 0.1 * k * (run == "unet+diffaug")}
        for run in RUNS
        for k in range(4)
    ]
    stated = {
        "table": "table2",
        "run_a": "unet+diffaug",
        "run_b": "unet",
        "metric": "dice",
        "delta": 0.123,
        "ci_low": 0.1,
        "ci_high": 0.2,
        "seed_sd": 0.01,
        "p": 0.2,
        "p_holm": 0.4,
        "min_attainable_p": 0.125,
        "mde_80": 0.05,
    }
    summary = cross.summarise("a", {"a": pd.DataFrame(rows)}, {"a": units}, RUNS, in_domain=pd.DataFrame([stated]))
    row = summary[summary["run"] == "unet+diffaug"].iloc[0]
    assert (row["delta"], row["p_holm"], row["versus"]) == (0.123, 0.4, "unet")


def test_a_dataset_without_a_partner_of_its_modality_writes_an_empty_result(workspace):
    folder = workspace / "results" / FUNDUS / "cross"
    summary = pd.read_csv(folder / cross.SUMMARY)
    assert summary.empty and list(summary.columns) == list(cross.SUMMARY_COLUMNS)
    status = json.loads((folder / cross.STATUS).read_text())
    assert status["targets"] == [] and status["modality"] == "fundus"
    assert "no other fundus dataset" in status["not_run"]
    assert sorted(path.name for path in folder.iterdir()) == [cross.STATUS, cross.SUMMARY]


def test_report_table_and_verdict_state_the_out_of_domain_and_in_domain_differences(workspace):
    summary = cross.load_summaries(workspace / "results", [TRAIN, FUNDUS])
    table = cross.cross_table(summary)
    assert len(table) == len(summary) == len(RUNS) * (1 + len(TARGETS))
    assert table["tested on"].tolist()[:2] == [f"{TRAIN} (in domain)"] * 2
    assert table.loc[table["run"] == "U-Net", "p (Holm)"].eq("–").all()
    lines = cross.verdict(summary)
    for test in TARGETS:
        line = next(line for line in lines if f"out-of-domain Dice on {test} by" in line)
        assert line.startswith(f"U-Net trained on {TRAIN}: +DiffAug changes")
        assert f"; in domain ({TRAIN}) by" in line
    assert "out of domain" in lines[-1]
    assert "not run" not in " ".join(lines).lower()
    assert "needs two prepared datasets of one modality" in cross.verdict(summary.iloc[0:0])[0]


# --- params and the not-run page ---------------------------------------------------------------------------------
def test_params_section_is_checked(tmp_path):
    from benchmark.params import check_params

    path = write_params(tmp_path, [TRAIN, "kvasir_seg"])
    assert check_params(str(path))["cross"].runs == RUNS
    write_params(tmp_path, [TRAIN, "kvasir_seg"], datasets=["refuge2"])
    with pytest.raises(ParamsError, match=r"cross\.datasets lists \['refuge2'\], not in prepare\.datasets"):
        check_params(str(path))
    write_params(tmp_path, [TRAIN, "kvasir_seg"], runs=["unet", "transunet+diffaug"])
    with pytest.raises(ParamsError, match=r"cross\.runs lists \['transunet\+diffaug'\], which no dataset trains"):
        check_params(str(path))
    write_params(tmp_path, [TRAIN, "kvasir_seg"], dataset=[TRAIN])
    with pytest.raises(ParamsError, match="unknown key 'cross.dataset'"):
        check_params(str(path))


def test_the_report_is_not_run_with_one_dataset_per_modality(tmp_path):
    from benchmark.reporting.render import not_run_reason, render_not_run

    for name, modality in (("synth_polyp", "polyp"), ("synth_fundus", "fundus"), ("kvasir_seg", "polyp")):
        write_dataset(tmp_path, name, modality, seed=0, n_test=2, sequence=None)
    default = write_params(tmp_path, ["synth_polyp", "synth_fundus"])
    with inside(tmp_path):
        reason = not_run_reason("cross_dataset", default)
        assert reason.startswith(
            "needs two prepared datasets of one modality in prepare.datasets "
            "(e.g. kvasir_seg and cvc_clinicdb, or a folder dataset)"
        )
        assert "synth_polyp (polyp), synth_fundus (fundus)" in reason
        written = render_not_run(
            "cross_dataset", reason, notebooks_dir=ROOT / "notebooks", reports_dir=tmp_path / "reports", html=False
        )
        page = written[0].read_text()
        assert "Cross-dataset generalisation (beyond the paper)" in page and "**Not run**: needs two" in page
        two_polyp = write_params(tmp_path, ["synth_polyp", "synth_fundus", "kvasir_seg"])
        assert not_run_reason("cross_dataset", two_polyp) is None
        only_one = write_params(tmp_path, ["synth_polyp", "synth_fundus", "kvasir_seg"], datasets=["synth_polyp"])
        assert "in cross.datasets" in not_run_reason("cross_dataset", only_one)
