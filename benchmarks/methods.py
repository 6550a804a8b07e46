"""Training and inference speed of every segmentation method (Table 4's per-method rows).

    python benchmarks/methods.py [--dataset synth_polyp] [--methods unet diffaug ...] [--train-epochs 2]
                                 [--images 64] [--steps 1 5 10 20] [--threads 2]
                                 [--output results/benchmarks/methods_<dataset>.json]

Per method, with its ``train.<method>`` config from params.yaml, on the prepared dataset:

- training seconds per epoch: ``fit`` for ``--train-epochs`` epochs on the real training split
  (in a temporary folder; the per-epoch validation pass the trainers run is included), divided by
  the number of epochs;
- inference samples/s at batch size 1 (one ``predict`` call per image) and at the evaluation
  batch (one ``predict`` call over ``--images`` test images, the method's own internal batching:
  what the evaluate stage does), each after a warm-up call, best of ``--repeats``;
- for the iterative methods, samples/s per sampling-step count: DDIM steps for MedSegDiff-V1/V2
  and Diff-Trans (ensemble size from the config), single-step vs N-step DDIM for the latent
  segmenters (DiffAug, SDSeg); next to each, the mean Dice on the *validation* split at that step
  count (threshold 0.5 at the training resolution), so speed and accuracy can be traded without
  ever looking at the test split.

Inference uses the trained model of seed 0 when ``models/<dataset>/runs/<method>/seed_0/model`` exists
(speed does not depend on the weights), else the model fitted for the timing. The hardware,
thread count and versions are recorded next to the figures; numbers from different machines are
not comparable. This is a measurement script, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path


def _best_rate(call, n: int, repeats: int) -> float:
    """Samples/s of ``call()`` processing ``n`` samples, the fastest of ``repeats`` timed runs."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return n / best


def measure(name: str, dataset: str, args, params_path: str) -> dict:
    """The figures of one method (see the module docstring)."""
    import numpy as np

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.methods import get_method
    from benchmark.stages.validator import load_autoencoder

    train_params = load_section("train", params_path)
    cls = get_method(name)
    config = train_params.config_of(name)
    data = PreparedDataset(Path("data/prepared") / dataset, Path("data/splits") / f"{dataset}.json")
    train, val, test = data.subset("train"), data.subset("val"), data.subset("test")
    needs_autoencoder = getattr(cls, "needs_autoencoder", False)

    timed = cls(dataclasses.replace(config, epochs=args.train_epochs))
    if needs_autoencoder:
        timed.attach_autoencoder(load_autoencoder(dataset))
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        timed.fit(train, val, seed=0, out_dir=Path(folder), progress=False)
        train_seconds = time.perf_counter() - started

    trained = Path("models") / dataset / "runs" / name / "seed_0" / "model"
    method = cls.load(trained) if trained.is_dir() else timed
    images = np.concatenate([test.images] * -(-args.images // len(test.images)))[: args.images]
    method.predict(images[:2])  # warm-up
    single = images[: args.batch1_images]
    result = {
        "display_name": cls.display_name,
        "config_epochs": config.epochs,
        "train_images": len(train),
        "train_seconds_per_epoch": train_seconds / args.train_epochs,
        "estimated_train_seconds_per_seed": train_seconds / args.train_epochs * config.epochs,
        "weights": "trained seed 0" if trained.is_dir() else f"fitted {args.train_epochs} epochs for timing",
        "batch1_samples_per_second": _best_rate(
            lambda: [method.predict(single[i : i + 1]) for i in range(len(single))], len(single), args.repeats
        ),
        "eval_batch_samples_per_second": _best_rate(lambda: method.predict(images), len(images), args.repeats),
        "eval_images": len(images),
    }
    steps, val_dice = {}, {}

    def dice_on_val(predict) -> float:
        prediction = predict(val.images) >= 0.5
        target = val.masks.astype(bool)
        inter = (prediction & target).sum(axis=(1, 2))
        total = prediction.sum(axis=(1, 2)) + target.sum(axis=(1, 2))
        return float(np.mean(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)))

    if hasattr(config, "inference_steps"):  # pixel mask diffusion: DDIM steps, config ensemble
        result["ensemble_size"] = config.ensemble_size
        result["default_steps"] = config.inference_steps
        for n in args.steps:
            steps[str(n)] = _best_rate(lambda: method.predict(images, steps=n), len(images), args.repeats)
            val_dice[str(n)] = dice_on_val(lambda x: method.predict(x, steps=n))
    elif needs_autoencoder:  # latent segmenters: single-step estimate vs N-step DDIM
        from benchmark.methods.latent_seg.method import predict_latent_masks

        result["default_steps"] = "single" if config.inference == "single" else config.iterative_steps
        steps["single"] = _best_rate(
            lambda: predict_latent_masks(method, images, inference="single"), len(images), args.repeats
        )
        val_dice["single"] = dice_on_val(lambda x: predict_latent_masks(method, x, inference="single"))
        for n in args.steps:
            steps[str(n)] = _best_rate(
                lambda: predict_latent_masks(method, images, inference="iterative", steps=n), len(images), args.repeats
            )
            val_dice[str(n)] = dice_on_val(lambda x: predict_latent_masks(method, x, inference="iterative", steps=n))
    if steps:
        result["samples_per_second_by_steps"] = steps
        result["val_dice_by_steps"] = val_dice
    return result


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--dataset", default="synth_polyp")
    cli.add_argument(
        "--methods", nargs="*", default=None, help="default: every method of train.methods (data suffixes dropped)"
    )
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--train-epochs", type=int, default=2)
    cli.add_argument("--images", type=int, default=64, help="test images per timed evaluation-batch call")
    cli.add_argument("--batch1-images", type=int, default=8, help="images timed one at a time")
    cli.add_argument("--steps", type=int, nargs="+", default=[1, 5, 10, 20])
    cli.add_argument("--repeats", type=int, default=2)
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--output", default=None, help="default: results/benchmarks/methods_<dataset>.json")
    args = cli.parse_args()

    import torch

    from benchmark.config import load_section
    from benchmark.methods.runs import parse_run
    from benchmark.stages.common import set_offline, set_threads
    from benchmark.utils.io import write_json
    from benchmark.utils.provenance import environment_record

    set_offline()
    set_threads(args.threads)
    names = args.methods or list(dict.fromkeys(parse_run(run)[0] for run in load_section("train", args.params).methods))
    if not Path("data/prepared", args.dataset).is_dir():
        raise SystemExit(f"data/prepared/{args.dataset} is missing; run `dvc repro prepare@{args.dataset}` first")
    results = {}
    for name in names:
        print(f"{args.dataset}/{name} ...", flush=True)
        results[name] = measure(name, args.dataset, args, args.params)
        print(json.dumps(results[name], indent=1), flush=True)
    payload = {
        "dataset": args.dataset,
        "threads": args.threads,
        "cuda": torch.cuda.is_available(),
        "train_epochs_timed": args.train_epochs,
        "methods": results,
        "environment": environment_record(),
    }
    write_json(args.output or f"results/benchmarks/methods_{args.dataset}.json", payload)


if __name__ == "__main__":
    main()
