"""Opt-in study: is DiffAug's result here a property of the method or of an undertrained generator?

    python benchmarks/generator_scale.py [--dataset synth_polyp] [--steps 400 1600 6400] [--wide]
                                         [--root studies/generator_scale] [--params params.yaml]

Needs the default pipeline's autoencoder, validator and real-data U-Net of ``--dataset`` (``dvc repro
train@<dataset>``). For each generator
length in ``--steps`` (and, with ``--wide``, a denoiser of twice the width at the largest length) the
study runs the real stage modules in a folder of its own, ``<root>/<variant>/``, whose ``data/prepared``,
``data/splits``, autoencoder, validator and real-data U-Net are links to this checkout's, and whose
params are ``--params`` with only the generator's length (and width) changed and the synthetic
volume set to 1×:

    generator -> generator_check -> synthesize (1×) -> quality -> train (unet+diffaug, same seeds and budget)

It then writes ``results/studies/generator_scale_<dataset>.json``: per variant the generator's training
time and final loss, the text checks, the acceptance rate, the domain FID / KID of accepted samples
against real lesion images, and U-Net + DiffAug's validation Dice (what a default may be chosen on)
and test Dice; beside them the U-Net alone (the default run's) and the oracle control at the same
budget (``unet+oracle``, trained in ``<root>/oracle/`` with the same seeds). ``notebooks/generator_scale.ipynb`` renders it into ``reports/generator_scale.html``.
A variant whose folder already holds a finished stage is not rerun (delete the folder to redo it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("generator", "generator_check", "synthesize", "quality", "train")


def variant_params(params: dict, dataset: str, steps: int, width: float = 1.0) -> dict:
    """``params`` with the generator trained ``steps`` steps (channels × ``width``) and one synthetic volume, 1×.

    Only ``dataset`` is prepared, no ablation study runs, and ``train.methods`` is ``[unet+diffaug]``.
    """
    import copy

    out = copy.deepcopy(params)
    denoiser = out["generator"]["latent"]["denoiser"]
    denoiser["steps"] = int(steps)
    if width != 1.0:
        denoiser["block_out_channels"] = [int(round(c * width)) for c in denoiser["block_out_channels"]]
    out["prepare"]["datasets"] = {dataset: out["prepare"]["datasets"][dataset]}
    out["synthesize"].update(volume=1.0, volumes=[1.0])
    out["ablation"].update(datasets=[], runs=[], synthetic_sets=[])
    out["train"]["methods"] = ["unet+diffaug"]
    return out


def link(target: Path, name: Path) -> None:
    """``name`` -> ``target`` (absolute), replacing a stale link."""
    name.parent.mkdir(parents=True, exist_ok=True)
    if name.is_symlink():
        name.unlink()
    if not name.exists():
        name.symlink_to(target.resolve(), target_is_directory=target.is_dir())


def run_variant(folder: Path, params: dict, dataset: str, stages=STAGES, run: str = "unet+diffaug") -> None:
    """The study's ``stages`` for one variant, in ``folder`` (links to this checkout's shared inputs);
    ``train`` trains ``run`` only."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shared = [f"data/prepared/{dataset}", f"data/splits/{dataset}.json", f"models/{dataset}/autoencoder"]
    if set(stages) - {"generator"}:  # the generator alone needs only the data and the autoencoder
        shared += [f"models/{dataset}/validator", f"models/{dataset}/runs/unet", f"results/{dataset}/validator"]
    for relative in shared:
        if not (ROOT / relative).exists():
            raise FileNotFoundError(
                f"{ROOT / relative} is missing; run `dvc repro train@{dataset}` (the default pipeline) first"
            )
        link(ROOT / relative, folder / relative)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = {
        "generator": f"models/{dataset}/generator/model",
        "generator_check": f"results/{dataset}/generator/text_check.json",
        "synthesize": f"results/{dataset}/synthesize/summary.json",
        "quality": f"results/{dataset}/quality/summary.json",
        "controls": f"results/{dataset}/controls/summary.json",
        "train": f"results/{dataset}/runs/{run}/metrics.json",
    }
    for stage in stages:
        if (folder / done[stage]).exists():
            print(f"{folder.name}: {stage} done, skipped")
            continue
        command = [
            sys.executable,
            "-m",
            f"benchmark.stages.{stage}",
            "--dataset",
            dataset,
            "--params",
            "params.yaml",
            "--no-progress",
        ]
        if stage == "train":
            command += ["--runs", run]
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, env=env, check=True)
        print(f"{folder.name}: {stage} {time.perf_counter() - started:.0f} s")


def collect(folder: Path, dataset: str) -> dict:
    """One variant's figures from its folder."""
    from benchmark.utils.io import read_json

    results = folder / "results" / dataset
    train = read_json(results / "generator" / "train.json")
    check = read_json(results / "generator" / "text_check.json")
    synth = read_json(results / "synthesize" / "summary.json")
    quality = read_json(results / "quality" / "summary.json")
    run = results / "runs" / "unet+diffaug"
    metrics, inference = read_json(run / "metrics.json"), read_json(run / "inference.json")
    accepted = quality.get("sets", {}).get("accepted", {})
    return {
        "generator_steps": train["n_steps"],
        "generator_train_seconds": train["train_seconds"],
        "final_loss": train["final_loss"],
        "text_checks": {
            name: {
                "share_follow": entry["share_follow"],
                "ci_low": entry["ci_low"],
                "ci_high": entry["ci_high"],
                "p_value": entry["p_value"],
                "real_proxy_auc": entry["real_proxy"]["auc"],
            }
            for name, entry in check.get("contrasts", {}).items()
        },
        "acceptance_rate": synth["acceptance_rate"],
        "n_generated": synth["n_generated"],
        "n_accepted": synth["n_accepted"],
        "fid_accepted": accepted.get("fid"),
        "fid_ci": [accepted.get("fid_ci_low"), accepted.get("fid_ci_high")],
        "kid_accepted": accepted.get("kid_mean"),
        "kid_std": accepted.get("kid_std"),
        "fid_features": quality.get("fid_kid_features"),
        "unet_diffaug_validation_dice": _mean_validation_dice(inference),
        "unet_diffaug_validation_dice_std": _std_validation_dice(inference),
        "unet_diffaug_test_dice": metrics["mean"]["dice"],
        "unet_diffaug_test_dice_std": metrics["std"]["dice"],
        "folder": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder),
    }


def _mean_validation_dice(inference: dict) -> float | None:
    values = [entry.get("validation_dice") for entry in inference.get("selection", {}).values()]
    return float(sum(values) / len(values)) if values and None not in values else None


def _std_validation_dice(inference: dict) -> float | None:
    """Sample std over seeds of the selected checkpoints' validation Dice (the spread the study's verdict uses)."""
    import numpy as np

    values = [entry.get("validation_dice") for entry in inference.get("selection", {}).values()]
    return float(np.std(values, ddof=1)) if len(values) >= 2 and None not in values else None


def reference(results: Path, dataset: str, run: str) -> dict | None:
    """``run``'s validation and test Dice from ``results``, or None when it was not trained."""
    from benchmark.utils.io import read_json

    folder = results / dataset / "runs" / run
    if not (folder / "metrics.json").is_file():
        return None
    metrics, inference = read_json(folder / "metrics.json"), read_json(folder / "inference.json")
    return {
        "run": run,
        "validation_dice": _mean_validation_dice(inference),
        "test_dice": metrics["mean"]["dice"],
        "test_dice_std": metrics["std"]["dice"],
    }


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--dataset", default="synth_polyp")
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--steps", type=int, nargs="+", default=[400, 1600, 6400])
    cli.add_argument("--wide", action="store_true", help="also a denoiser twice as wide at the largest --steps")
    cli.add_argument("--root", default="studies/generator_scale")
    cli.add_argument(
        "--generators-only",
        action="store_true",
        help="train the variants' generators only (needs just the autoencoder), e.g. before the validator exists",
    )
    args = cli.parse_args()
    sys.path.insert(0, str(ROOT))
    import yaml

    from benchmark.params import check_params
    from benchmark.utils.io import write_json

    check_params(args.params)
    params = yaml.safe_load(Path(args.params).read_text())
    variants = [(f"steps_{n}", n, 1.0) for n in sorted(args.steps)]
    if args.wide:
        variants.append((f"steps_{max(args.steps)}_wide", max(args.steps), 2.0))
    rows = []
    galleries = ROOT / "results" / "studies" / f"generator_scale_{args.dataset}"
    if args.generators_only:
        for name, steps, width in variants:
            run_variant(
                Path(args.root) / name,
                variant_params(params, args.dataset, steps, width),
                args.dataset,
                stages=("generator",),
            )
        return
    for name, steps, width in variants:
        folder = Path(args.root) / name
        run_variant(folder, variant_params(params, args.dataset, steps, width), args.dataset)
        rows.append({"variant": name, "width": width, **collect(folder, args.dataset)})
        galleries.mkdir(parents=True, exist_ok=True)  # the report's galleries (small: a few 64-px images per prompt)
        shutil.copyfile(
            folder / "results" / args.dataset / "generator" / "gallery.npz", galleries / f"{name}_gallery.npz"
        )
    # the oracle control at the same budget (1×, fresh procedural frames), trained here with the same seeds
    oracle_params = variant_params(params, args.dataset, params["generator"]["latent"]["denoiser"]["steps"])
    oracle_params["train"]["methods"] = ["unet+oracle"]
    oracle_folder = Path(args.root) / "oracle"
    run_variant(oracle_folder, oracle_params, args.dataset, stages=("controls", "train"), run="unet+oracle")
    result = {
        "dataset": args.dataset,
        "params": args.params,
        "variants": rows,
        "references": {
            "unet": reference(ROOT / "results", args.dataset, "unet"),
            "oracle": reference(oracle_folder / "results", args.dataset, "unet+oracle"),
        },
    }
    out = ROOT / "results" / "studies" / f"generator_scale_{args.dataset}.json"
    write_json(out, result)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
