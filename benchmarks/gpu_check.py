"""GPU readiness in one command: a shortened paper-scale pipeline, timed, in a scratch workspace.

    benchmarks/gpu_check.sh   (= make gpu-check; arguments are passed on)
    python benchmarks/gpu_check.py [--device auto|cuda|cpu] [--tiny] [--steps 200] [--loop-jobs 64]
                                   [--dataset NAME] [--real-only] [--raw-dir data/raw] [--sdxl-path DIR]
                                   [--base PARAMS] [--budget-s 540] [--threads N] [--output PATH]
                                   [--workspace DIR]

On a CUDA machine it derives a params file from ``params_paper.yaml`` (256 px, the paper's networks), cut to
``--steps`` optimizer steps per trainer and one seed, writes it into a temporary workspace and runs the
pipeline's own stages there with ``--params`` (``benchmarks/gpu_check_workers.py``, one process, so the imports
are paid once): ``procedural`` (only for synth_polyp), ``prepare``, ``autoencoder``, ``generator`` and
``validator``; then the synthesize stage's generate + validate loop on ``--loop-jobs`` jobs (its worker function
and ``run_loop``, capped: the stage itself runs until its volume is accepted) and the train stage's per-seed
training + evaluation (``run_seed``) for every segmentation method, one after another, each failure (e.g. out
of memory) recorded without stopping the others. Nothing is written into the repository except the result:

    results/benchmarks/gpu_<slug of the GPU name>.json   (gpu_cpu.json on the CPU; Table 4's report reads it)

holding the device, torch / CUDA versions, the settings, per method the training samples/s (samples over
the wall-clock seconds of ``fit``, per-epoch validation included) and test-split inference images/s (the
evaluate stage's own timing), the loop's generated + validated samples/s and acceptance rate, the wall
seconds and status of every stage, and the total.

Dataset: ``--dataset``, else the first of the paper's datasets found under ``--raw-dir`` (the folders of
``params_paper.yaml``: CVC-ClinicDB, Kvasir-SEG, REFUGE2, then REFUGE) that its registry loader can read,
else the procedural synth_polyp (rendered in the workspace; ``--real-only`` refuses it). Generator: the
SDXL-inpainting backend when ``--sdxl-path`` (default: the paper profile's folder) holds a saved pipeline,
else the latent backend at the same 256 px (the json says which and why).

Budget: ``--budget-s`` (540 s by default, so the whole check stays under 10 minutes) bounds the stages
together; no stage starts in its last 5 s, a stage still running when it ends is stopped, and the json records
what finished. The mask-diffusion baselines are evaluated at 10 DDIM steps x 1 sample (paper: 100 x 5;
sampling cost scales with steps x samples), recorded in the json.

``--device cpu --tiny`` is the CPU fallback (params.yaml, 32 px, the contract tests' network sizes, a
handful of steps, 8 loop jobs); tests/test_gpu_check.py runs it. Exit status: 0 every stage finished,
1 a stage failed, 2 nothing run (no dataset, no CUDA device), 3 the budget ran out (json written).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the order methods are timed in: DiffAug's segmenter and SDSeg (the same network, one encoder) first, then the
#: baselines from the cheapest to the most expensive at paper size, so that a budget that runs out cuts the latter
METHOD_ORDER = ("diffaug", "sdseg", "unet", "resnet50_unet", "transunet", "difftrans", "medsegdiff_v1", "medsegdiff_v2")
#: registry datasets with a documented folder that are not in params_paper.yaml
EXTRA_REAL = {"refuge": "data/raw/REFUGE"}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1"}


def slug(name: str) -> str:
    """File-name form of a device name: "NVIDIA H100 80GB HBM3" -> "nvidia_h100_80gb_hbm3"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unknown"


def read_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def find_dataset(raw_dir: Path, wanted: str | None, real_only: bool) -> tuple[str, str | None, str]:
    """``(registry key, folder or None for the procedural synth_polyp, note)``; SystemExit when nothing fits."""
    from benchmark.data import DATASETS, DatasetError

    paper = read_yaml(ROOT / "params_paper.yaml")["prepare"]["datasets"]
    candidates = {**{k: v for k, v in paper.items() if str(v).startswith("data/raw/")}, **EXTRA_REAL}
    candidates = {name: raw_dir / Path(folder).relative_to("data/raw") for name, folder in candidates.items()}
    if wanted == "synth_polyp":
        return "synth_polyp", None, "synth_polyp asked for (--dataset)"
    if wanted is not None and wanted not in candidates:
        raise SystemExit(
            f"error: --dataset {wanted!r} is not one the check can find; choose from "
            f"{', '.join([*candidates, 'synth_polyp'])}"
        )
    problems = []
    for name, folder in candidates.items():
        if wanted is not None and name != wanted:
            continue
        if not folder.is_dir():
            problems.append(f"{folder}: not there")
            continue
        try:
            count = len(DATASETS[name].make_loader(folder).records())
        except (DatasetError, OSError) as error:
            problems.append(f"{folder}: {error}")
            continue
        if count:
            return name, str(folder.absolute()), f"{name}: {count} images in {folder}"  # links kept: siblings
        problems.append(f"{folder}: no images")
    if wanted is None and not real_only:
        return "synth_polyp", None, "no real dataset under " + str(raw_dir) + " (" + "; ".join(problems) + ")"
    raise SystemExit(
        "error: no dataset the registry can load was found: "
        + "; ".join(problems)
        + f". Place a dataset as published under {raw_dir}/ (README, 'Real datasets'), or run without "
        "--dataset / --real-only to use the procedural synth_polyp"
    )


def derive_params(base: dict, args, dataset: str, folder: str | None) -> tuple[dict, dict]:
    """The check's params file (sizes of ``base`` cut to seconds of work; the trainers' lengths are set after
    prepare by the workspace side) and what it changed, for the json."""
    params = json.loads(json.dumps(base))
    steps, notes = args.steps, {}
    absolute = lambda path: None if path is None else str((ROOT / path).resolve())  # noqa: E731
    if args.tiny:
        params["prepare"].update(image_size=32, val_fraction=0.2)
        params["procedural"]["synth_polyp"].update(
            n_images=24, height=96, width=128, px_per_mm=2.0, test_sequences=2, test_frames=2
        )
        params["autoencoder"].update(block_out_channels=[8, 16], batch_size=4, warmup_steps=1)
        params["generator"]["latent"].update(max_length=16, batch_size=8)
        params["generator"]["latent"]["denoiser"].update(block_out_channels=[8, 16], batch_size=4, warmup_steps=1)
        params["synthesize"]["batch_size"] = 8
        if "workers" in params["prepare"]:
            params["prepare"]["workers"] = 1  # 28 images: a process pool costs more than it saves
    else:
        params["procedural"]["synth_polyp"].update(n_images=160, test_sequences=20, test_frames=2)
    params["procedural"]["synth_fundus"].update(n_train=2, n_validation=2, n_test=2, size=64)  # rendered, unused
    params["prepare"]["datasets"] = {dataset: folder or "data/procedural/synth_polyp"}
    params["autoencoder"]["pretrained_path"] = absolute(params["autoencoder"].get("pretrained_path"))
    configured = params["generator"]["sdxl_inpainting"].get("pretrained_path")
    sdxl = Path(args.sdxl_path) if args.sdxl_path else Path(absolute(configured)) if configured else None
    if sdxl is not None and (sdxl / "model_index.json").is_file():
        params["generator"]["backend"] = "sdxl_inpainting"
        params["generator"]["sdxl_inpainting"].update(
            pretrained_path=str(sdxl.resolve()), steps=steps, checkpoint_every=steps, warmup_steps=steps // 10
        )
        notes["generator"] = f"sdxl_inpainting backend (LoRA, {steps} steps) from {sdxl.resolve()}"
        if (sdxl / "vae").is_dir():
            params["autoencoder"]["pretrained_path"] = str((sdxl / "vae").resolve())
    else:
        params["generator"]["backend"] = "latent"
        where = f"SDXL weights not found at {sdxl}" if sdxl else "no SDXL-inpainting folder configured"
        notes["generator"] = f"latent backend at {params['prepare']['image_size']} px, {where}"
    denoiser = params["generator"]["latent"]["denoiser"]
    denoiser.update(steps=steps, checkpoint_every=steps, warmup_steps=min(denoiser["warmup_steps"], steps // 4))
    ae = params["autoencoder"]
    if ae["pretrained_path"] is None or not Path(ae["pretrained_path"]).is_dir():
        where = f"not found at {ae['pretrained_path']}" if ae["pretrained_path"] else "none configured"
        ae.update(pretrained_path=None, steps=steps, checkpoint_every=steps)
        ae["warmup_steps"] = min(ae["warmup_steps"], steps // 4)
        notes["autoencoder"] = f"trained from scratch, {steps} steps (pretrained VAE {where})"
    else:
        notes["autoencoder"] = f"pretrained VAE {params['autoencoder']['pretrained_path']}"
    train = params["train"]
    methods = [m for m in METHOD_ORDER if m in {run.split("+")[0] for run in train["methods"]}]
    train.update(methods=methods, n_seeds=1, workers=1, threads=args.threads)
    from benchmark.config import to_mapping
    from benchmark.methods import get_method

    for name in methods:
        section = train.setdefault(name, {})
        if args.tiny:  # the contract tests' sizes (32 px), only the keys params files carry
            smoke = to_mapping(get_method(name).smoke_config())
            section.update({k: v for k, v in smoke.items() if k in section and k != "autoencoder_path"})
        if "inference_steps" in section and not args.tiny:  # sampling cost scales with steps x samples
            before = f"{section['inference_steps']} x {section.get('ensemble_size', 1)}"
            section.update(inference_steps=min(10, section["inference_steps"]), ensemble_size=1)
            section["validation_steps"] = min(5, section.get("validation_steps", 5))
            notes[f"{name} inference"] = f"{section['inference_steps']} DDIM steps x 1 sample (profile: {before})"
        if section.get("encoder_weights_path"):
            section["encoder_weights_path"] = absolute(section["encoder_weights_path"])
    params["synthesize"].update(workers=1, top_up=False)
    params["evaluate"]["inference_steps"] = []  # each method's configured sampling, no validation sweep
    params["ablation"].update(datasets=[], synthetic_sets=[], runs=[])
    if "cross" in params:  # cross-dataset scoring: not part of the check
        params["cross"]["runs"] = [run for run in params["cross"]["runs"] if run in methods]
    if params["quality"].get("inception_weights_path"):
        params["quality"]["inception_weights_path"] = absolute(params["quality"]["inception_weights_path"])
    return params, notes


def device_record(device: str) -> dict:
    """Name, memory and versions of the device the check runs on."""
    import platform

    import torch

    record = {
        "kind": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device == "cuda" else None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        record.update(
            name=props.name,
            memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            count=torch.cuda.device_count(),
        )
    else:
        from benchmark.utils.provenance import hardware_name

        record["name"] = hardware_name()
    return record


def run_workspace(
    command: list[str], workspace: Path, env: dict, budget_s: float, progress: Path
) -> tuple[dict, float]:
    """Run the workspace side until it ends or ``budget_s`` passes (then stop it: what was running reads
    "aborted"); returns its progress record and the wall seconds."""
    clock = time.monotonic()
    process = subprocess.Popen(command, cwd=workspace, env=env, start_new_session=True)
    stopped = False
    try:
        code = process.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        stopped = True
        os.killpg(process.pid, signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
    why = (
        f"aborted: the check's budget of {budget_s:.0f} s ran out"
        if stopped
        else f"failed: the workspace process ended (exit {code}) while it ran; see the logs"
    )
    record = (
        json.loads(progress.read_text())
        if progress.is_file()
        else {"stages": {"start": {"status": why.replace("while it ran", "before any stage")}}, "methods": {}}
    )
    for part in (record["stages"], record["methods"]):
        for entry in part.values():
            if entry["status"] == "running":
                entry["status"] = why
    if stopped:
        print(f"[gpu-check {time.monotonic() - clock:6.1f} s] budget of {budget_s:.0f} s ran out: stopped", flush=True)
    return record, time.monotonic() - clock


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    cli.add_argument("--tiny", action="store_true", help="32 px, contract-test networks, a handful of steps")
    cli.add_argument("--steps", type=int, default=None, help="optimizer steps per trainer (default 200; tiny 4)")
    cli.add_argument("--loop-jobs", type=int, default=None, help="generate + validate samples (default 64; tiny 8)")
    cli.add_argument("--dataset", default=None, help="registry key (default: the first real dataset found)")
    cli.add_argument("--real-only", action="store_true", help="fail instead of using the procedural synth_polyp")
    cli.add_argument("--raw-dir", default=str(ROOT / "data" / "raw"), help="where real datasets are looked for")
    cli.add_argument("--sdxl-path", default=None, help="saved SDXL-inpainting pipeline (default: params_paper.yaml's)")
    cli.add_argument(
        "--base", default=None, help="params file to shorten (default: params_paper.yaml on CUDA, else params.yaml)"
    )
    cli.add_argument("--budget-s", type=float, default=540.0, help="wall seconds for all stages together")
    cli.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: cores, at most 16)")
    cli.add_argument("--output", default=None, help="default: results/benchmarks/gpu_<device slug>.json")
    cli.add_argument("--workspace", default=None, help="work (and keep everything) here instead of a temp dir")
    args = cli.parse_args(argv)
    started, clock_start = time.monotonic(), time.time()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch loads; the workspace side inherits it
    import benchmark  # noqa: F401, I001 - first: pins the CPU code paths before torch loads (benchmark/numerics.py)
    import torch
    import yaml

    from benchmark.utils.io import write_json
    from benchmark.utils.provenance import environment_record

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device; `--device cpu --tiny` checks the CPU path")
        return 2
    args.steps = args.steps or (4 if args.tiny else 200)
    args.loop_jobs = args.loop_jobs or (8 if args.tiny else 64)
    args.threads = args.threads or min(16, os.cpu_count() or 1)
    try:
        dataset, folder, found = find_dataset(Path(args.raw_dir), args.dataset, args.real_only)
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    base_path = Path(
        args.base or ROOT / ("params_paper.yaml" if args.device == "cuda" and not args.tiny else "params.yaml")
    )
    device = device_record(args.device)
    device_slug = slug(device["name"]) if args.device == "cuda" else "cpu"
    output = Path(args.output) if args.output else ROOT / "results" / "benchmarks" / f"gpu_{device_slug}.json"
    scratch = None if args.workspace else tempfile.TemporaryDirectory(prefix="gpu_check_")
    workspace = Path(args.workspace or scratch.name).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    params, notes = derive_params(read_yaml(base_path), args, dataset, folder)
    params_path, progress_path = workspace / "params.yaml", workspace / "progress.json"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    progress_path.unlink(missing_ok=True)
    print(f"[gpu-check] {device['name']} ({args.device}); dataset {found}; workspace {workspace}", flush=True)
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check_workers.py"), "--params", str(params_path)]
    command += ["--dataset", dataset, "--steps", str(args.steps), "--jobs", str(args.loop_jobs)]
    command += ["--threads", str(args.threads), "--progress", str(progress_path), "--started", str(clock_start)]
    command += ["--deadline", str(time.time() + args.budget_s)] + (["--procedural"] if folder is None else [])
    env = {**os.environ, **OFFLINE, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    record, workspace_seconds = run_workspace(command, workspace, env, args.budget_s, progress_path)
    split = workspace / "data" / "splits" / f"{dataset}.json"
    loop = record["stages"].get("generate+validate", {"status": "not run"})
    kept = ("status", "wall_seconds", "peak_gpu_memory_gib", "log_tail")
    stages = {name: {key: entry[key] for key in kept if key in entry} for name, entry in record["stages"].items()}
    statuses = [entry["status"] for part in (record["stages"], record["methods"]) for entry in part.values()]
    payload = {
        "check": "benchmarks/gpu_check.sh",
        "device": device,
        "profile": {
            "base_params": base_path.name,
            "tiny": args.tiny,
            "image_size": params["prepare"]["image_size"],
            "steps": args.steps,
            "n_seeds": 1,
            "base_seed": params["train"]["base_seed"],
            "dataset": dataset,
            "dataset_source": found,
            "n_train": len(json.loads(split.read_text())["train"]) if split.is_file() else None,
            "methods": params["train"]["methods"],  # in the order they were timed
            "loop_jobs": args.loop_jobs,
            "generator_sampling": {key: params["generator"][key] for key in ("steps", "guidance_scale")},
            "threads": args.threads,
            "shortened": notes,
            "budget_seconds": args.budget_s,
        },
        "methods": record["methods"],
        "generate_validate": loop,
        "stages": stages,
        "workspace_wall_seconds": round(workspace_seconds, 2),
        "total_wall_seconds": round(time.monotonic() - started, 2),  # the whole check, set-up included
        "completed": bool(statuses) and all(status == "ok" for status in statuses),
        "environment": environment_record(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(output, payload)
    print(f"[gpu-check {payload['total_wall_seconds']:6.1f} s] wrote {output}", flush=True)
    for method, entry in record["methods"].items():
        rates = entry["status"]
        if rates == "ok":
            rates = f"train {entry['train_samples_per_second']:.1f} samples/s, "
            rates += f"inference {entry['inference_images_per_second']:.1f} images/s ({entry['inference_setting']})"
        print(f"  {method:15s} {rates}")
    if loop["status"] == "ok":
        print(
            f"  {'generate+valid.':15s} {loop['samples_per_second']:.2f} samples/s, acceptance {loop['acceptance_rate']:.0%}"
        )
    if scratch is not None:
        scratch.cleanup()
    if payload["completed"]:
        return 0
    return 3 if any("budget" in status for status in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
