"""Evaluation of trained seeds, run by ``train@<dataset>`` right after each seed trains.

:func:`evaluate_seed` scores one seed on the test split: the inference variant (sampling steps of
iterative methods) is chosen on the validation split by the same rule for every method
(``benchmark/metrics/selection.py``), then per-image metrics at native resolution, lesion-level
detection (Table 3), test images/s and, for latent segmenters, the test scores of N-step DDIM with
the same weights (Table 6's "w/o latent estimation": a fixed, pre-specified variant, not a selection).
It keeps its result in ``<seed>/evaluation/`` under a fingerprint of the trained model and the
``evaluate`` params, so an unchanged seed is not scored twice.

:func:`write_run_results` gathers a run's seeds into ``results/<dataset>/runs/<run>/``:

- ``per_image.csv``: one row per seed and test image;
- ``lesions.csv``: one row per seed and ground-truth lesion;
- ``metrics.json``: per-seed means, mean ± std over seeds;
- ``inference.json``: each seed's training sizes and budget (from its run.json), the inference
  variant chosen on validation and its validation Dice (``selection.<seed>.validation_dice``, by
  which Table 2 picks each method's opponent), test images/s and, for latent segmenters, the N-step DDIM scores.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.stages import common

EVALUATION = "evaluation"


def evaluation_key(train_fingerprint: str, params, *, iterative: bool = False) -> str:
    """Fingerprint of a seed's evaluation: its trained model, the ``evaluate`` params, whether the
    N-step DDIM score is included (``iterative``) and the scoring code."""
    from benchmark.config import to_mapping

    return common.fingerprint(
        {"model": train_fingerprint, "evaluate": to_mapping(params), "iterative": iterative},
        (),
        common.code_closure("benchmark.stages.evaluate", "benchmark.metrics.evaluate", "benchmark.metrics.selection"),
    )


def evaluate_seed(
    method, run_record: dict, test, val, native: list, native_val: list, params, *, iterative: bool = True
) -> dict:
    """Score one trained seed.

    Args:
        method: a trained :class:`~benchmark.methods.base.SegmentationMethod`.
        run_record: the seed's ``run.json`` (seed, training sizes and budget).
        test, val: ``SegmentationData`` of the test and validation splits (model resolution).
        native, native_val: their ground-truth masks at native resolution.
        params: the ``evaluate`` section.
        iterative: for a latent segmenter, also score the same weights with N-step DDIM
            (``inference["iterative"]``: Table 6's "w/o latent estimation" row, read from the
            method's own run only; the train stage passes False for runs with another data set).

    Returns:
        ``{"per_image": DataFrame, "lesions": DataFrame, "inference": dict}``; the frames carry
        ``seed`` (the training seed) as first column.
    """
    from benchmark.metrics.evaluate import score_images, score_images_and_lesions
    from benchmark.metrics.selection import inference_variants, select_on_validation
    from benchmark.utils.provenance import hardware_name

    variants = inference_variants(method, params.inference_steps)
    if len(variants) == 1:  # nothing to choose: no validation pass
        chosen, val_scores = next(iter(variants)), {}
    else:
        chosen, val_scores = select_on_validation(
            variants,
            lambda predict: score_images(predict(val.images), list(val.ids), native_val, params.threshold)[
                "dice"
            ].mean(),
        )
    # the chosen variant's validation Dice: what Table 2 picks each method's opponent by (never test)
    validation_dice = (
        float(val_scores[chosen])
        if chosen in val_scores
        else float(
            score_images(variants[chosen](val.images), list(val.ids), native_val, params.threshold)["dice"].mean()
        )
    )
    started = time.perf_counter()
    probabilities = variants[chosen](test.images)
    speed = len(test) / (time.perf_counter() - started)
    table, lesions = score_images_and_lesions(
        probabilities,
        list(test.ids),
        native,
        params.threshold,
        min_lesion_fraction=params.min_lesion_fraction,
        detection_iou=params.detection_iou,
    )
    for frame in (table, lesions):
        frame.insert(0, "seed", run_record["seed"])
    inference = {
        "selected": chosen,
        "val_dice": val_scores,
        "validation_dice": validation_dice,
        "test_images_per_second": speed,
        "hardware": hardware_name(),
        "training": {
            key: run_record.get(key)
            for key in ("n_train_real", "n_train_synthetic", "epochs", "optimizer_steps", "train_seconds")
        },
    }
    if iterative and getattr(type(method), "needs_autoencoder", False):  # Table 6: w/o latent estimation, same weights
        from benchmark.methods.latent_seg.method import predict_latent_masks

        steps = method.config.iterative_steps
        started = time.perf_counter()
        probabilities = predict_latent_masks(method, test.images, inference="iterative", steps=steps)
        speed = len(test) / (time.perf_counter() - started)
        fixed, fixed_lesions = score_images_and_lesions(
            probabilities,
            list(test.ids),
            native,
            params.threshold,
            min_lesion_fraction=params.min_lesion_fraction,
            detection_iou=params.detection_iou,
        )
        inference["iterative"] = {
            "variant": f"DDIM {steps} steps",
            "dice": float(fixed["dice"].mean()),
            "iou": float(fixed["iou"].mean()),
            "lesion_fnr": float(1 - fixed_lesions["detected"].mean()) if len(fixed_lesions) else None,
            "test_images_per_second": speed,
        }
    return {"per_image": table, "lesions": lesions, "inference": inference}


def save_evaluation(result: dict, seed_dir: Path, key: str) -> None:
    """Keep :func:`evaluate_seed`'s result in ``seed_dir/evaluation/`` (atomically) under ``key``."""
    from benchmark.utils.io import atomic_dir, write_json

    with atomic_dir(Path(seed_dir) / EVALUATION) as tmp:
        result["per_image"].to_csv(tmp / "per_image.csv", index=False, float_format="%.6f")
        result["lesions"].to_csv(tmp / "lesions.csv", index=False, float_format="%.6f")
        write_json(tmp / "inference.json", {**result["inference"], "fingerprint": key})


def load_evaluation(seed_dir: Path, key: str | None = None) -> dict | None:
    """A kept evaluation of ``seed_dir`` (None if absent, or written under another ``key``)."""
    import pandas as pd

    from benchmark.utils.io import read_json

    folder = Path(seed_dir) / EVALUATION
    if not (folder / "inference.json").is_file():
        return None
    inference = read_json(folder / "inference.json")
    if key is not None and inference.get("fingerprint") != key:
        return None
    return {
        "per_image": pd.read_csv(folder / "per_image.csv", dtype={"image_id": str}),
        "lesions": pd.read_csv(folder / "lesions.csv", dtype={"image_id": str}),
        "inference": inference,
    }


def write_run_results(dataset: str, run: str, seed_dirs: list[Path], out: Path, threshold: float) -> dict:
    """Gather the evaluations of a run's seeds (in seed-index order) into ``out``; returns metrics.json's payload."""
    import pandas as pd

    from benchmark.stats.summary import metrics_summary
    from benchmark.utils.io import atomic_path, write_json

    tables, lesion_tables, record = (
        [],
        [],
        {"test_images_per_second": {}, "hardware": None, "threshold": threshold, "selection": {}, "training": {}},
    )
    iterative = {}
    for index, seed_dir in enumerate(seed_dirs):
        result = load_evaluation(seed_dir)
        if result is None:
            raise FileNotFoundError(
                f"{seed_dir}/{EVALUATION}/inference.json is missing; run `dvc repro train@{dataset}`"
            )
        name = f"seed_{index}"
        for frame, into in ((result["per_image"], tables), (result["lesions"], lesion_tables)):
            frame.insert(0, "seed_index", index)
            into.append(frame)
        inference = result["inference"]
        record["test_images_per_second"][name] = inference["test_images_per_second"]
        record["hardware"] = inference["hardware"]
        record["selection"][name] = {
            "selected": inference["selected"],
            "val_dice": inference["val_dice"],
            "validation_dice": inference.get("validation_dice"),
        }
        record["training"][name] = inference["training"]
        if "iterative" in inference:
            iterative[name] = inference["iterative"]
    if iterative:
        record["iterative"] = iterative
    per_image, lesions = pd.concat(tables, ignore_index=True), pd.concat(lesion_tables, ignore_index=True)
    for frame in (per_image, lesions):
        frame.insert(0, "method", run)
        frame.insert(0, "dataset", dataset)
    out.mkdir(parents=True, exist_ok=True)
    for frame, filename in ((per_image, "per_image.csv"), (lesions, "lesions.csv")):
        with atomic_path(out / filename, suffix=".csv") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6f")
    summary = metrics_summary(per_image)
    write_json(out / "metrics.json", summary)
    write_json(out / "inference.json", record)
    return summary
