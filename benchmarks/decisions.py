"""Validation-split evidence for the defaults that docstrings justify (issue 18: decisions on validation only).

    python benchmarks/decisions.py [--dataset synth_polyp] [--decisions vision_input dice_timesteps ...]
                                   [--seeds 3] [--threads 2] [--work-dir DIR]
                                   [--output results/benchmarks/decisions_val.json]

Each decision compares a method's ``train.<method>`` config from params.yaml (the default) with
one alternative value of one setting, everything else unchanged (epochs included):

- ``vision_input``: DiffAug's V_ψ on the pixels (default) vs on z_a ("latent", eq. 9 literally);
- ``dice_timesteps``: the decoded-Dice term of eq. 12 on the highest-t samples vs random ones (DiffAug);
- ``prediction_type``: MedSegDiff-V1 predicting the clean mask ("sample") vs the noise ("epsilon");
- ``auxiliary_weight``: Diff-Trans with the BCE + Dice loss on the image U-Net's anchor (1) vs without (0).

Every (method, config, seed) is trained once with the package's own ``fit`` on the real training
split of ``data/prepared/<dataset>``, with the seeds of the train stage
(``derive_seed(train.base_seed, "train", dataset, method, k)``); a run shared by two decisions
(DiffAug's default) is trained once. Per run two **validation** figures are written:

- ``best_val_dice``: the best per-epoch validation Dice the trainer recorded (its checkpoint-selection
  criterion: single-step inference for the latent segmenters, ``validation_steps`` DDIM steps ×
  ``validation_ensemble`` for the mask-diffusion methods);
- ``val_dice``: mean per-image Dice (threshold 0.5, training resolution) of the selected weights
  with the method's own ``predict`` (its configured inference) on the validation split.

Only the train and validation splits are read; the test split is never loaded. The latent
segmenters need the dataset's autoencoder: ``models/<dataset>/autoencoder/model`` when the pipeline
has trained it, otherwise one is trained here with the ``autoencoder`` params and seed of the
``autoencoder@<dataset>`` stage (under ``--work-dir``). Runs resume from ``--work-dir``; results are
written after every run, so an interrupted invocation keeps what it measured. This is a
measurement script, not a test; figures from different machines or thread counts may differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

#: decision -> (method, setting, [alternative values]); the default is the method's params.yaml value.
DECISIONS: dict[str, tuple[str, str, list]] = {
    "vision_input": ("diffaug", "vision_input", ["latent"]),
    "dice_timesteps": ("diffaug", "dice_timesteps", ["random"]),
    "prediction_type": ("medsegdiff_v1", "prediction_type", ["epsilon"]),
    "auxiliary_weight": ("difftrans", "auxiliary_weight", [0.0]),
}


def _val_dice(probabilities, masks) -> float:
    from benchmark.methods.supervised import mean_dice

    return mean_dice(probabilities, masks)


def _autoencoder(dataset: str, train, params_path: str, work_dir: Path):
    """The pipeline's autoencoder when trained, else one trained here exactly as its stage would."""
    from benchmark.config import load_section
    from benchmark.generators.autoencoder import LatentAutoencoder, train_autoencoder
    from benchmark.utils.seeding import derive_seed

    model = Path("models") / dataset / "autoencoder" / "model"
    if model.is_dir():
        return LatentAutoencoder.load(model), str(model)
    params = load_section("autoencoder", params_path)
    folder = work_dir / dataset / "autoencoder"
    if (folder / "model").is_dir():
        return LatentAutoencoder.load(folder / "model"), str(folder / "model")
    print(
        f"{model} is missing: training the autoencoder with the autoencoder@{dataset} settings in {folder}", flush=True
    )
    autoencoder, _ = train_autoencoder(
        train.images,
        train.masks,
        params.config,
        seed=derive_seed(params.seed, "autoencoder", dataset),
        checkpoint_dir=folder,
        progress=False,
    )
    autoencoder.save(folder / "model")
    return autoencoder, str(folder / "model")


def data_digest(dataset: str) -> str:
    """MD5 of the prepared arrays and the split file: a cached run is reused only on the same data."""
    import hashlib

    digest = hashlib.md5()
    for path in (Path("data/prepared") / dataset / "arrays.npz", Path("data/splits") / f"{dataset}.json"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_one(method_name: str, config, seed: int, train, val, run_dir: Path, autoencoder, data: str) -> dict:
    """Fit one (method, config, seed) on data ``data`` (a digest) in ``run_dir`` (resumable); its validation figures."""
    import pandas as pd

    from benchmark.config import to_mapping
    from benchmark.methods import get_method

    done = run_dir / "result.json"
    settings = json.loads(json.dumps(to_mapping(config), default=str))
    if done.is_file():
        previous = json.loads(done.read_text())
        if previous.get("config") == settings and previous.get("seed") == seed and previous.get("data") == data:
            return previous
        import shutil

        shutil.rmtree(run_dir)  # another config or data: its checkpoint must not be resumed
    cls = get_method(method_name)
    method = cls(config)
    if getattr(cls, "needs_autoencoder", False):
        method.attach_autoencoder(autoencoder)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    method.fit(train, val, seed=seed, out_dir=run_dir, progress=False)
    train_seconds = time.perf_counter() - started
    log = pd.read_csv(run_dir / "train_log.csv")
    best = int(log["val_dice"].idxmax())
    started = time.perf_counter()
    val_dice = _val_dice(method.predict(val.images), val.masks)
    result = {
        "config": settings,
        "seed": seed,
        "data": data,
        "epochs": int(len(log)),
        "best_val_dice": float(log["val_dice"].iloc[best]),
        "best_epoch": int(log["epoch"].iloc[best]),
        "val_dice": val_dice,
        "val_dice_per_epoch": [float(v) for v in log["val_dice"]],
        "train_seconds": train_seconds,
        "predict_val_seconds": time.perf_counter() - started,
    }
    done.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return result


def summarise(rows: list[dict]) -> dict:
    """decision -> option -> mean / per-seed validation Dice (best per-epoch and with full inference)."""
    import numpy as np

    summary: dict = {}
    for row in rows:
        entry = summary.setdefault(row["decision"], {}).setdefault(
            row["option"], {"default": row["default"], "best_val_dice": [], "val_dice": []}
        )
        entry["best_val_dice"].append(row["best_val_dice"])
        entry["val_dice"].append(row["val_dice"])
    for options in summary.values():
        for entry in options.values():
            entry["n_seeds"] = len(entry["val_dice"])
            for key in ("best_val_dice", "val_dice"):
                entry[f"{key}_mean"] = float(np.mean(entry[key]))
                entry[f"{key}_std"] = float(np.std(entry[key], ddof=1)) if len(entry[key]) > 1 else None
    return summary


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--dataset", default="synth_polyp")
    cli.add_argument("--decisions", nargs="+", default=list(DECISIONS), choices=list(DECISIONS))
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--seeds", type=int, default=None, help="seeds per option (default: train.n_seeds)")
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument(
        "--work-dir",
        default=str(Path(tempfile.gettempdir()) / "benchmark_decisions"),
        help="trained runs (resumable, reused when config and seed match)",
    )
    cli.add_argument("--output", default="results/benchmarks/decisions_val.json")
    args = cli.parse_args()

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.stages.common import set_offline, set_threads
    from benchmark.utils.io import write_json
    from benchmark.utils.provenance import environment_record
    from benchmark.utils.seeding import derive_seed

    set_offline()
    set_threads(args.threads)
    if not Path("data/prepared", args.dataset).is_dir():
        raise SystemExit(f"data/prepared/{args.dataset} is missing; run `dvc repro prepare@{args.dataset}` first")
    params = load_section("train", args.params)
    n_seeds = args.seeds or params.n_seeds
    data = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    train, val = data.subset("train"), data.subset("val")  # never the test split
    work_dir = Path(args.work_dir)
    digest = data_digest(args.dataset)

    plan = []  # (decision, method, setting, option, is_default, config); seed k of every option before seed k + 1
    for decision in args.decisions:
        method_name, setting, alternatives = DECISIONS[decision]
        default_config = params.config_of(method_name)
        default_value = getattr(default_config, setting)
        for value in [default_value, *alternatives]:
            plan.append(
                (
                    decision,
                    method_name,
                    setting,
                    value,
                    value == default_value,
                    dataclasses.replace(default_config, **{setting: value}),
                )
            )
    plan.sort(
        key=lambda item: (
            ["diffaug", "medsegdiff_v1", "difftrans"].index(item[1])
            if item[1] in ("diffaug", "medsegdiff_v1", "difftrans")
            else 9
        )
    )

    autoencoder, autoencoder_source = None, None
    rows, cache = [], {}
    for index in range(n_seeds):
        for decision, method_name, setting, value, is_default, config in plan:
            seed = derive_seed(params.base_seed, "train", args.dataset, method_name, index)
            key = (method_name, repr(config), seed)
            if key not in cache:
                if method_name in ("diffaug", "sdseg") and autoencoder is None:
                    autoencoder, autoencoder_source = _autoencoder(args.dataset, train, args.params, work_dir)
                run_dir = work_dir / args.dataset / method_name / f"{setting}={value}" / f"seed_{index}"
                print(f"{decision}: {method_name} {setting}={value} seed {index} ...", flush=True)
                cache[key] = run_one(method_name, config, seed, train, val, run_dir, autoencoder, digest)
            result = cache[key]
            rows.append(
                {
                    "decision": decision,
                    "method": method_name,
                    "setting": setting,
                    "option": str(value),
                    "default": is_default,
                    "seed_index": index,
                    "seed": seed,
                    "epochs": result["epochs"],
                    "best_val_dice": result["best_val_dice"],
                    "best_epoch": result["best_epoch"],
                    "val_dice": result["val_dice"],
                    "val_dice_per_epoch": result["val_dice_per_epoch"],
                    "train_seconds": result["train_seconds"],
                }
            )
            print(
                f"  best per-epoch val Dice {result['best_val_dice']:.4f} (epoch {result['best_epoch']}), "
                f"val Dice with full inference {result['val_dice']:.4f}, {result['train_seconds']:.0f} s",
                flush=True,
            )
            payload = {
                "dataset": args.dataset,
                "split": "val",
                "n_val": len(val),
                "n_train": len(train),
                "data_md5": digest,
                "threads": args.threads,
                "autoencoder": autoencoder_source,
                "runs": rows,
                "summary": summarise(rows),
                "environment": environment_record(),
            }
            write_json(args.output, payload)
    for decision, options in summarise(rows).items():
        for option, entry in options.items():
            print(
                f"{decision:>17} {option:>8}{' (default)' if entry['default'] else '':10} val Dice {entry['val_dice_mean']:.4f} "
                f"(best per-epoch {entry['best_val_dice_mean']:.4f}), {entry['n_seeds']} seeds"
            )


if __name__ == "__main__":
    main()
