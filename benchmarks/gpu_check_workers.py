"""The workspace side of ``benchmarks/gpu_check.py``: the pipeline's stages, run one after another in this process.

    python benchmarks/gpu_check_workers.py --params P --dataset D --steps 200 --jobs 64 --progress progress.json
                                           [--procedural] [--threads N] [--deadline EPOCH_SECONDS]

Run by the driver with the workspace as working directory (every stage reads and writes relative paths there).
The stages are the pipeline's own command-line ``main`` functions with ``--params P`` (``procedural`` when
``--procedural``, ``prepare``, ``autoencoder``, ``generator``, ``validator``), called in this one process so
that the imports are paid once (they are most of a tiny run's time); then

- ``generate+validate``: the synthesize stage's loop (its worker initializer and batch function,
  ``benchmark.generators.loop.run_loop``) on the first ``--jobs`` jobs of its order, drawn before the clock
  starts, after one warm-up batch. The stage itself runs until its volume is accepted, which has no fixed
  length. Generated + validated samples per wall-clock second, acceptance rate at θ, seconds generating and
  validating, model loading seconds.
- ``train``: every method of ``train.methods``, one seed each, through the train stage's ``run_seed`` (training
  as ``train@<dataset>`` does, then the evaluate stage's scoring of the test split). Per method: training
  samples/s (epochs x samples per epoch over the wall-clock seconds of ``fit``, per-epoch validation
  included), test-split inference images/s (the evaluate stage's own timing), optimizer steps, test Dice
  (after a few hundred steps: a sanity figure, not a result). A failing method (e.g. CUDA out of memory) is
  recorded and the next one runs. DiffAug's default run trains on its synthetic set, which the check does not
  make: it trains the same network on the real split (``diffaug+real``).

After prepare, every trainer's length is set to about ``--steps`` optimizer steps (:func:`length_for`). Each
stage's output goes to ``logs/<stage>.log``; ``--progress`` is rewritten after every stage and method (a stage
being run reads "running"), so the driver keeps what finished when it stops this process at its deadline. No
stage starts after ``--deadline``. Peak GPU memory is recorded per stage and method (0 would mean CPU only).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import itertools
import math
import sys
import time
import traceback
from pathlib import Path

import benchmark  # noqa: F401 - pins the CPU code paths before torch loads (benchmark/numerics.py)


def length_for(steps: int, n_train: int, batch_size: int) -> dict:
    """``{"epochs", "epoch_size"}`` giving about ``steps`` optimizer steps: whole epochs over the training split
    (per-epoch validation included, as in a real run), or one epoch cut to ``steps`` batches when an epoch is longer."""
    per_epoch = math.ceil(n_train / batch_size)
    if per_epoch > steps:
        return {"epochs": 1, "epoch_size": steps * batch_size}
    return {"epochs": math.ceil(steps / per_epoch), "epoch_size": None}


def set_lengths(params_path: str, dataset: str, steps: int) -> None:
    """Rewrite ``train.<method>.epochs`` / ``epoch_size`` and ``validator.epochs`` for the prepared split's size."""
    import yaml

    from benchmark.utils.io import read_json

    n_train = len(read_json(Path("data/splits") / f"{dataset}.json")["train"])
    params = yaml.safe_load(Path(params_path).read_text())
    for name in params["train"]["methods"]:
        section = params["train"].setdefault(name, {})
        section.update(length_for(steps, n_train, section.get("batch_size", 16)))
    params["validator"]["epochs"] = params["train"]["diffaug"]["epochs"]  # train.diffaug.epoch_size applies too
    Path(params_path).write_text(yaml.safe_dump(params, sort_keys=False))


def _peak_memory_gib(reset: bool = False) -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return peak


def _free_memory() -> None:
    import torch

    from benchmark.stages import synthesize

    synthesize._MODELS.clear()  # the loop's generator and validator
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def loop(args) -> dict:
    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.jobs import draw_jobs, modality_of
    from benchmark.generators.loop import iterate_jobs, run_loop
    from benchmark.generators.prompts import NEGATIVE_PROMPTS
    from benchmark.stages import synthesize
    from benchmark.utils.io import read_json
    from benchmark.utils.pool import WorkerPool
    from benchmark.utils.seeding import derive_seed

    params = load_section("synthesize", args.params)
    generator = load_section("generator", args.params)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    settings = synthesize.model_settings(
        args.dataset,
        generator.backend,
        generator.steps,
        generator.guidance_scale,
        NEGATIVE_PROMPTS[modality_of(dataset)],
    )
    seed = derive_seed(params.seed, "synthesize", args.dataset)
    draw = functools.partial(draw_jobs, dataset, seed=seed, variant=generator.prompt_variant, part="train")
    # the stage draws its jobs once for all its samples: drawn before the clock starts; the first --jobs of its
    # variant-major order need ceil(jobs / backgrounds) variants per background
    clock = time.perf_counter()
    variants = min(params.n_variants, math.ceil(args.jobs / len(dataset.subset("train"))))
    count = -(-args.jobs // params.batch_size)
    batches = list(itertools.islice(iterate_jobs(draw, variants, params.batch_size), count))
    draw_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    with WorkerPool(1, args.threads, initializer=synthesize._load_models, initargs=(settings,)) as pool:
        load_seconds = time.perf_counter() - clock
        submit = functools.partial(pool.submit, synthesize._generate_and_segment)
        submit(batches[0]).result()  # warm-up: kernels chosen, buffers allocated
        clock = time.perf_counter()
        table, *_, timings = run_loop(
            None,
            None,
            iter(batches),
            target=args.jobs + 1,  # never reached: every drawn job is generated, --jobs at most
            theta=params.theta,
            max_jobs=args.jobs,
            progress=False,
            submit=submit,
            lookahead=2,
        )
        seconds = time.perf_counter() - clock
    validator = Path("results") / args.dataset / "validator" / "metrics.json"
    return {
        "samples": int(len(table)),
        "seconds": round(seconds, 3),
        "samples_per_second": len(table) / seconds,
        "acceptance_rate": float(table["accepted"].mean()),
        "accepted": int(table["accepted"].sum()),
        "theta": params.theta,
        "batch_size": params.batch_size,
        "generate_seconds": round(timings["generate_s"], 3),
        "validate_seconds": round(timings["validate_s"], 3),
        "model_load_seconds": round(load_seconds, 3),
        "job_draw_seconds": round(draw_seconds, 3),
        "backend": generator.backend,
        "sampling": f"{generator.steps} DDIM steps, guidance {generator.guidance_scale:g}",
        "validator_real_pass_rate": read_json(validator).get("pass_rate") if validator.is_file() else None,
    }


def _inference_setting(config) -> str:
    if hasattr(config, "inference_steps"):
        return f"{config.inference_steps} DDIM steps x {config.ensemble_size} samples"
    if hasattr(config, "inference"):
        return "single-step latent estimate" if config.inference == "single" else f"{config.iterative_steps}-step DDIM"
    return "one forward pass"


def methods(args, save) -> None:
    """Every method of train.methods, one seed, through the train stage's ``run_seed``; ``save(name, record)``."""
    from benchmark.config import load_section
    from benchmark.methods.runs import parse_run, parse_synthetic
    from benchmark.stages import evaluate, train
    from benchmark.utils.io import read_json

    train._setup_worker(args.dataset, args.params)
    params = load_section("train", args.params)
    for name in params.methods:
        if time.time() > args.deadline - 5:
            save(name, {"status": "skipped: budget exhausted"})
            continue
        save(name, {"status": "running"})
        _peak_memory_gib(reset=True)
        clock = time.perf_counter()
        run = name if parse_synthetic(parse_run(name)[1]) is None else f"{name}+real"
        try:
            with _logged(f"train_{name}"):
                train.run_seed(run, 0)
        except Exception as error:  # noqa: BLE001 - one method's failure (e.g. out of memory) must not hide the rest
            save(name, {"status": f"failed: {type(error).__name__}: {str(error)[:300]}", **_clock(clock)})
            _free_memory()
            continue
        seed_dir = Path("models") / args.dataset / "runs" / run / "seed_0"
        record, inference = read_json(seed_dir / "run.json"), evaluate.load_evaluation(seed_dir)
        config = params.config_of(name)
        save(
            name,
            {
                "status": "ok",
                "run": run,
                **_clock(clock),
                "train_seconds": round(record["train_seconds"], 3),
                "train_samples_per_second": record["epochs"] * record["samples_per_epoch"] / record["train_seconds"],
                "epochs": record["epochs"],
                "optimizer_steps": record["optimizer_steps"],
                "batch_size": getattr(config, "batch_size", None),
                "n_train": record["n_train"],
                "inference_images_per_second": inference["inference"]["test_images_per_second"],
                "inference_setting": _inference_setting(config),
                "test_images": int(len(inference["per_image"])),
                "test_dice": float(inference["per_image"]["dice"].mean()),
                "peak_gpu_memory_gib": _peak_memory_gib(),
            },
        )
        _free_memory()


def _clock(started: float) -> dict:
    return {"wall_seconds": round(time.perf_counter() - started, 2)}


@contextlib.contextmanager
def _logged(name: str):
    """Python-level output of the block into ``logs/<name>.log``."""
    path = Path("logs") / f"{name.replace('@', '_')}.log"
    path.parent.mkdir(exist_ok=True)
    with path.open("a") as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--params", required=True)
    cli.add_argument("--dataset", required=True)
    cli.add_argument("--procedural", action="store_true", help="render the procedural datasets first")
    cli.add_argument("--steps", type=int, required=True, help="optimizer steps per trainer")
    cli.add_argument("--jobs", type=int, required=True, help="generate + validate samples timed")
    cli.add_argument("--threads", type=int, default=1)
    cli.add_argument("--deadline", type=float, default=float("inf"), help="no stage or method starts after this")
    cli.add_argument("--progress", required=True, help="json rewritten after every stage and method")
    cli.add_argument("--started", type=float, default=None, help="the check's start (epoch seconds), for its clock")
    args = cli.parse_args()
    from benchmark.stages import common
    from benchmark.utils.io import write_json

    common.set_offline()
    common.set_threads(args.threads)
    started = args.started or time.time()
    progress = {"stages": {}, "methods": {}}

    def save_method(name: str, record: dict) -> None:
        progress["methods"][name] = record
        write_json(args.progress, progress)

    def stage(name: str, call, needs: tuple[str, ...] = ()) -> None:
        blocked = [need for need in needs if progress["stages"].get(need, {}).get("status") != "ok"]
        if blocked or time.time() > args.deadline - 5:
            status = f"skipped: needs {', '.join(blocked)}" if blocked else "skipped: budget exhausted"
            progress["stages"][name] = {"status": status, "wall_seconds": 0.0}
        else:
            progress["stages"][name] = {"status": "running"}
            write_json(args.progress, progress)
            print(f"[gpu-check {time.time() - started:6.1f} s] {name} ...", flush=True)
            _peak_memory_gib(reset=True)
            clock, record = time.perf_counter(), {}
            try:
                with _logged(name):
                    record = call() or {}
                status = "ok"
            except SystemExit as ended:  # a stage's expected error: its message is in the log
                status = "ok" if not ended.code else f"failed (exit {ended.code})"
            except Exception:  # noqa: BLE001 - recorded; the stages that need this one are skipped
                status = "failed"
                with _logged(name):
                    traceback.print_exc()
            record = {**record, "status": status, **_clock(clock), "peak_gpu_memory_gib": _peak_memory_gib()}
            if status != "ok":
                log = Path("logs") / f"{name.replace('@', '_')}.log"
                record["log_tail"] = log.read_text(errors="replace").splitlines()[-15:]
            progress["stages"][name] = record
            _free_memory()
        write_json(args.progress, progress)
        line = progress["stages"][name]["status"]
        if not line.startswith("skipped"):
            line += f" in {progress['stages'][name]['wall_seconds']:.1f} s"
        print(f"[gpu-check {time.time() - started:6.1f} s] {name}: {line}", flush=True)
        for text in progress["stages"][name].get("log_tail", []):
            print(f"    {text}", flush=True)

    def command(module: str, *extra: str):
        def call() -> None:
            sys.argv = [module, "--params", args.params, "--no-progress", *extra]
            common.run(importlib.import_module(module).main)

        return call

    dataset = ("--dataset", args.dataset)
    if args.procedural:
        stage("procedural", command("benchmark.stages.procedural"))
    prepare = f"prepare@{args.dataset}"
    stage(prepare, command("benchmark.stages.prepare", *dataset))
    if progress["stages"][prepare]["status"] == "ok":
        set_lengths(args.params, args.dataset, args.steps)
    autoencoder = f"autoencoder@{args.dataset}"
    stage(autoencoder, command("benchmark.stages.autoencoder", *dataset), (prepare,))
    for part in ("generator", "validator"):
        stage(f"{part}@{args.dataset}", command(f"benchmark.stages.{part}", *dataset), (prepare, autoencoder))
    stage("generate+validate", lambda: loop(args), (f"generator@{args.dataset}", f"validator@{args.dataset}"))
    stage("train", lambda: methods(args, save_method), (prepare,))


if __name__ == "__main__":
    main()
