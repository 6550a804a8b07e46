"""Stage ``evaluate@<dataset>-<method>``: per-image test metrics for every trained seed.

    python -m benchmark.stages.evaluate --dataset synth_polyp --method unet [--params params.yaml]

Writes ``results/<dataset>/<method>/per_image.csv`` (long format: one row per seed and test
image), ``lesions.csv`` (one row per seed and ground-truth lesion: lesion-level detection for
Table 3) and ``metrics.json`` (per-seed means, mean ± std over seeds; a DVC metrics file).
``inference.json`` records the training data sizes and budget of each seed (from its run.json), the
inference variant chosen per seed on validation, test images/s and,
for latent segmenters, the test scores of N-step DDIM (``iterative_steps`` of the config) with the
same weights: Table 6's "w/o latent estimation" (a fixed, pre-specified variant, not a selection).
Stage ``ablation_evaluate@<dataset>-<run>`` is this same command for the runs of ``ablation.runs``.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.stages import common


def main() -> None:
    args = common.dataset_method_parser(__doc__).parse_args()
    import pandas as pd

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.methods import get_method
    from benchmark.metrics.evaluate import score_images, score_images_and_lesions
    from benchmark.metrics.selection import inference_variants, select_on_validation
    from benchmark.stats.summary import metrics_summary
    from benchmark.utils.io import atomic_path, read_json, write_json

    params = load_section("evaluate", args.params)
    train_params = load_section("train", args.params)
    common.set_threads(train_params.threads)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    test, val = dataset.subset("test"), dataset.subset("val")
    native = dataset.native_masks(list(test.ids))
    native_val = dataset.native_masks(list(val.ids))
    from benchmark.methods.runs import parse_run

    method_cls = get_method(parse_run(args.method)[0])
    models = Path("models") / args.dataset / args.method
    tables, lesion_tables, timings, selection, iterative, training = [], [], {}, {}, {}, {}
    for index in range(train_params.n_seeds):
        seed_dir = models / f"seed_{index}"
        if not (seed_dir / "run.json").is_file():
            raise FileNotFoundError(f"{seed_dir}/run.json is missing; run `dvc repro train@{args.dataset}-{args.method}` first")
        method = method_cls.load(seed_dir / "model")
        run_record = read_json(seed_dir / "run.json")  # the training data and budget, for the reports
        training[f"seed_{index}"] = {key: run_record.get(key) for key in ("n_train_real", "n_train_synthetic", "epochs", "optimizer_steps", "train_seconds")}
        # the inference setting (sampling steps of iterative methods) is chosen on the validation
        # split, per seed, by the same rule for every method (benchmark/metrics/selection.py)
        variants = inference_variants(method, params.inference_steps)
        chosen, val_scores = select_on_validation(
            variants, lambda predict: score_images(predict(val.images), list(val.ids), native_val, params.threshold)["dice"].mean())
        selection[f"seed_{index}"] = {"selected": chosen, "val_dice": val_scores}
        started = time.perf_counter()
        probabilities = variants[chosen](test.images)
        timings[f"seed_{index}"] = len(test) / (time.perf_counter() - started)
        table, lesions = score_images_and_lesions(probabilities, list(test.ids), native, params.threshold,
                                                  min_lesion_fraction=params.min_lesion_fraction, detection_iou=params.detection_iou)  # fmt: skip
        for frame in (table, lesions):
            frame.insert(0, "seed", read_json(seed_dir / "run.json")["seed"])
            frame.insert(0, "seed_index", index)
        tables.append(table)
        lesion_tables.append(lesions)
        if getattr(method_cls, "needs_autoencoder", False):  # Table 6: w/o latent estimation, same weights
            from benchmark.methods.latent_seg.method import predict_latent_masks

            steps = method.config.iterative_steps
            started = time.perf_counter()
            probabilities = predict_latent_masks(method, test.images, inference="iterative", steps=steps)
            speed = len(test) / (time.perf_counter() - started)
            fixed, fixed_lesions = score_images_and_lesions(probabilities, list(test.ids), native, params.threshold,
                                                            min_lesion_fraction=params.min_lesion_fraction, detection_iou=params.detection_iou)  # fmt: skip
            iterative[f"seed_{index}"] = {"variant": f"DDIM {steps} steps", "dice": float(fixed["dice"].mean()), "iou": float(fixed["iou"].mean()),
                                          "lesion_fnr": float(1 - fixed_lesions["detected"].mean()) if len(fixed_lesions) else None,
                                          "test_images_per_second": speed}  # fmt: skip
    per_image = pd.concat(tables, ignore_index=True)
    per_image.insert(0, "method", args.method)
    per_image.insert(0, "dataset", args.dataset)
    out = Path("results") / args.dataset / args.method
    with atomic_path(out / "per_image.csv", suffix=".csv") as tmp:
        per_image.to_csv(tmp, index=False, float_format="%.6f")
    lesions = pd.concat(lesion_tables, ignore_index=True)
    lesions.insert(0, "method", args.method)
    lesions.insert(0, "dataset", args.dataset)
    with atomic_path(out / "lesions.csv", suffix=".csv") as tmp:
        lesions.to_csv(tmp, index=False, float_format="%.6f")
    summary = metrics_summary(per_image)
    write_json(out / "metrics.json", summary)
    from benchmark.utils.provenance import hardware_name

    record = {"test_images_per_second": timings, "hardware": hardware_name(), "threshold": params.threshold, "selection": selection,
              "training": training}  # fmt: skip
    if iterative:
        record["iterative"] = iterative
    write_json(out / "inference.json", record)
    print(f"{args.dataset}/{args.method}: Dice {summary['mean']['dice']:.4f} ± {summary['std']['dice']:.4f} over {summary['n_seeds']} seeds")


if __name__ == "__main__":
    common.run(main)
