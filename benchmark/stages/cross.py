"""Stage ``cross@<dataset>``: the models trained on one dataset, scored on the test split of every other
dataset of the same modality (cross-dataset generalisation, beyond the paper).

    python -m benchmark.stages.cross --dataset kvasir_seg [--params params.yaml]

For the training dataset A and each target B (:func:`benchmark.reporting.cross.targets_of`: same
``modality`` in ``data/prepared/<name>/manifest.json``, both in ``cross.datasets`` or, when that is empty,
``prepare.datasets``), every run of ``cross.runs`` that ``train@A`` trains, every seed: the checkpoint
``models/A/runs/<run>/seed_<k>/model`` is loaded as the evaluate step loads it, predicts B's test images
(both prepared at ``prepare.image_size``) with the inference variant chosen on A's validation split (the
seed's recorded ``evaluation/inference.json``; never chosen on B), and is scored per image at B's native
resolution with the evaluate step's functions and ``evaluate`` params. No model sees B in training.

Writes ``results/A/cross/``:

- ``<B>/<run>/per_image.csv``: one row per seed and test image of B (``trained_on``, then the columns of
  ``results/<dataset>/runs/<run>/per_image.csv``, ``dataset`` = B);
- ``summary.csv``: one row per (train, test, run), the in-domain rows (A -> A, from ``results/A/runs``)
  first; Dice mean ± sd over seeds, B's unit and n units, and for each run with synthetic data the paired
  difference from the same method's real-only run at B's unit (:mod:`benchmark.reporting.cross`);
- ``status.json``: targets, runs scored and skipped, and why nothing was scored where no dataset of A's
  modality is listed beside it (then ``summary.csv`` holds its header only; the stage still succeeds).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.stages import common

PREPARED, SPLITS, MODELS, RESULTS = Path("data/prepared"), Path("data/splits"), Path("models"), Path("results")


def chosen_variant(seed_dir: Path, dataset: str) -> str:
    """The inference variant the seed's evaluation chose on the training dataset's validation split."""
    from benchmark.stages.evaluate import load_evaluation

    evaluation = load_evaluation(seed_dir)
    if evaluation is None:
        raise FileNotFoundError(
            f"{seed_dir}/evaluation/inference.json is missing; run `dvc repro train@{dataset}` first"
        )
    return evaluation["inference"]["selected"]


def score_seed(method, variant: str, test, native: dict, params):
    """Per-image scores of a loaded method on one test split: the evaluate step's variants and scoring.

    Args:
        method: a loaded :class:`~benchmark.methods.base.SegmentationMethod`.
        variant: label of :func:`~benchmark.metrics.selection.inference_variants` (chosen on A's validation split).
        test: ``SegmentationData`` of the target's test split (model resolution).
        native: its ground-truth masks at native resolution.
        params: the ``evaluate`` section (threshold, lesion rules, inference steps).
    """
    from benchmark.metrics.evaluate import score_images_and_lesions
    from benchmark.metrics.selection import inference_variants

    variants = inference_variants(method, params.inference_steps)
    if variant not in variants:
        raise KeyError(f"inference variant {variant!r} is not among {sorted(variants)}; rerun `dvc repro train`")
    table, _ = score_images_and_lesions(
        variants[variant](test.images),
        list(test.ids),
        native,
        params.threshold,
        min_lesion_fraction=params.min_lesion_fraction,
        detection_iou=params.detection_iou,
    )
    return table


def write_results(out: Path, summary, per_image: dict, status: dict) -> None:
    """Replace ``out`` as a whole: ``summary.csv``, ``status.json`` and ``<test>/<run>/per_image.csv``."""
    from benchmark.reporting.cross import STATUS, SUMMARY
    from benchmark.utils.io import atomic_dir, write_json

    with atomic_dir(out) as tmp:
        summary.to_csv(tmp / SUMMARY, index=False, float_format="%.6g")
        for (test, run), frame in per_image.items():
            (tmp / test / run).mkdir(parents=True, exist_ok=True)
            frame.to_csv(tmp / test / run / "per_image.csv", index=False, float_format="%.6f")
        write_json(tmp / STATUS, status)


def main() -> None:
    args = common.dataset_parser(__doc__).parse_args()
    import pandas as pd

    from benchmark.config import ParamsError
    from benchmark.data.prepared import PreparedDataset
    from benchmark.methods import get_method
    from benchmark.methods.runs import parse_run
    from benchmark.params import check_params
    from benchmark.reporting import cross
    from benchmark.stats.units import dataset_units

    sections = check_params(args.params)
    train = args.dataset
    if train not in sections["prepare"].datasets:
        raise ParamsError(f"{args.params}: --dataset {train!r} is not in prepare.datasets")
    out = RESULTS / train / cross.FOLDER
    datasets = cross.participants(sections)
    key = "cross.datasets" if sections["cross"].datasets else "prepare.datasets"
    modalities = cross.read_modalities(dict.fromkeys([train, *datasets]), PREPARED)
    targets = cross.targets_of(train, {name: modalities[name] for name in datasets})
    status = {"train": train, "modality": modalities[train], "targets": targets, "not_run": None}
    empty = pd.DataFrame(columns=list(cross.SUMMARY_COLUMNS))
    if not targets:
        status["not_run"] = (
            f"{train} is not in cross.datasets"
            if train not in datasets
            else f"no other {modalities[train]} dataset in {key}, so nothing to score its models on"
        )
        write_results(out, empty, {}, status)
        print(f"cross@{train}: nothing to score ({status['not_run']}); wrote {out}/")
        return

    common.set_threads(sections["train"].threads)
    evaluate, n_seeds = sections["evaluate"], sections["train"].n_seeds
    trained = cross.trained_runs(train, sections)
    runs = [run for run in sections["cross"].runs if run in trained]
    status.update(
        runs=runs, skipped={run: f"not trained on {train}" for run in sections["cross"].runs if run not in trained}
    )
    if not runs:
        status["not_run"] = f"none of cross.runs is trained on {train} (train.methods, ablation.runs)"
        write_results(out, empty, {}, status)
        print(f"cross@{train}: nothing to score ({status['not_run']}); wrote {out}/")
        return
    prepared = {name: PreparedDataset(PREPARED / name, SPLITS / f"{name}.json") for name in [train, *targets]}
    size = prepared[train].manifest["image_size"]
    for name in targets:
        if prepared[name].manifest["image_size"] != size:
            raise ParamsError(
                f"{PREPARED / name} is prepared at {prepared[name].manifest['image_size']} px but {PREPARED / train} at "
                f"{size} px; rerun `dvc repro prepare` (both use prepare.image_size)"
            )
    tests = {name: prepared[name].subset("test") for name in targets}
    natives = {name: prepared[name].native_masks(list(tests[name].ids)) for name in targets}

    from benchmark.utils.io import read_json

    scores: dict[tuple[str, str], list] = {}
    for run in runs:
        method_cls = get_method(parse_run(run)[0])
        for index in range(n_seeds):
            seed_dir = MODELS / train / "runs" / run / f"seed_{index}"
            if not (seed_dir / "model").is_dir():
                raise FileNotFoundError(f"{seed_dir}/model is missing; run `dvc repro train@{train}` first")
            variant = chosen_variant(seed_dir, train)
            method = method_cls.load(seed_dir / "model")
            seed = read_json(seed_dir / "run.json")["seed"]
            for name in targets:
                table = score_seed(method, variant, tests[name], natives[name], evaluate)
                table.insert(0, "seed", seed)
                table.insert(0, "seed_index", index)
                table.insert(0, "method", run)
                table.insert(0, "dataset", name)
                table.insert(0, "trained_on", train)
                scores.setdefault((name, run), []).append(table)
                print(f"cross@{train}: {run} seed {index} on {name}: Dice {table['dice'].mean():.4f}")
    per_image = {pair: pd.concat(tables, ignore_index=True) for pair, tables in scores.items()}

    frames = {train: _in_domain(train, runs)}
    for name in targets:
        frames[name] = pd.concat([per_image[(name, run)] for run in runs], ignore_index=True)
    comparisons_path = RESULTS / train / "comparisons.csv"
    in_domain = pd.read_csv(comparisons_path) if comparisons_path.is_file() else None
    units = {name: dataset_units(prepared[name]) for name in prepared}
    summary = cross.summarise(train, frames, units, runs, in_domain=in_domain, n_resamples=cross.N_RESAMPLES)
    write_results(out, summary, per_image, status)
    print(f"cross@{train}: {len(runs)} runs x {n_seeds} seeds on {', '.join(targets)}; wrote {out}/")


def _in_domain(train: str, runs: list[str]):
    """The in-domain per-image rows of ``runs`` (``results/<train>/runs/<run>/per_image.csv``)."""
    import pandas as pd

    frames = []
    for run in runs:
        path = RESULTS / train / "runs" / run / "per_image.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; run `dvc repro train@{train}` first")
        frames.append(pd.read_csv(path, dtype={"image_id": str}))
    return pd.concat(frames, ignore_index=True)


if __name__ == "__main__":
    common.run(main)
