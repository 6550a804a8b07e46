"""Stage ``train@<dataset>``: train and evaluate every run on one dataset, ``train.n_seeds`` seeds each.

    python -m benchmark.stages.train --dataset synth_polyp [--params params.yaml]
    python -m benchmark.stages.train --dataset synth_polyp --runs unet,unet+diffaug   # only these

The runs are ``train.methods`` plus, on the datasets of ``ablation.datasets``, ``ablation.runs``.
A run is a method and its training data (``benchmark.methods.runs``): ``+diffaug`` adds the first
``synthesize.volume × n_train`` accepted synthetic pairs of ``data/synthetic/<dataset>`` (modifiers
pick another volume, θ, no gate, or an ablation set; ``+copypaste``, ``+oracle`` and ``+shuffled``
take the controls instead). With ``train.synthetic_budget`` "equal_steps" such a run trains for
exactly the optimizer steps of the method's real-only run (``budget_config``); the ``_epochs``
modifier trains one run under "equal_epochs" instead.

Every (run, seed) is one job; ``train.workers`` processes take jobs longest first, each with
``train.threads // train.workers`` torch threads, and evaluate a seed as soon as it is trained
(``benchmark.stages.evaluate``). A seed's result does not depend on the worker or the order.

Writes, per run, ``models/<dataset>/runs/<run>/seed_<k>/`` holding ``model/`` (the checkpoint
selected on validation), ``checkpoint.pt`` (resumable state while the seed trains; deleted once
``model/`` and ``run.json`` are written, so DVC does not hash and cache optimizer states), ``train_log.csv``, ``run.json``
(seed, time, sizes, provenance) and ``evaluation/`` (that seed's test scores); then
``results/<dataset>/runs/<run>/`` (per_image.csv, lesions.csv, metrics.json, inference.json) and
``results/<dataset>/runs.json`` (Dice per run and seed: the DVC metrics file).

A seed whose ``run.json`` matches the current fingerprint (method, config, seed, data, code) is not
retrained, and its evaluation is reused while the ``evaluate`` params are unchanged; a seed
interrupted midway resumes from its checkpoint; a stale folder is cleared.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import types
from pathlib import Path

from benchmark.stages import common

#: CPU seconds per optimizer step relative to the U-Net (measured at 64², one thread): only the
#: order in which jobs start (longest first), never a result.
RELATIVE_STEP_COST = {
    "diffaug": 4.0,
    "sdseg": 4.0,
    "resnet50_unet": 3.0,
    "medsegdiff_v1": 1.4,
    "medsegdiff_v2": 1.6,
    "difftrans": 1.5,
    "unet": 1.0,
    "transunet": 0.6,
}


def runs_of(dataset: str, params_path: str) -> list[str]:
    """``train.methods`` plus ``ablation.runs`` when ``dataset`` is in ``ablation.datasets``."""
    from benchmark.config import load_section

    runs = list(load_section("train", params_path).methods)
    ablation = load_section("ablation", params_path)
    if dataset in ablation.datasets:
        runs += [run for run in ablation.runs if run not in runs]
    return runs


def fingerprint(method: str, config: dict, seed: int, arrays: list) -> str:
    """SHA-256 over everything a trained model depends on: method, config, seed, data and the
    source of the method's module and every benchmark module it imports (``code_closure``)."""
    from benchmark.methods import METHODS

    module = METHODS[method].split(":")[0]
    return common.fingerprint({"method": method, "config": config, "seed": seed}, arrays, common.code_closure(module))


def train_seed(
    train,
    val,
    method_cls,
    config,
    seed: int,
    seed_dir: Path,
    *,
    progress: bool,
    n_real: int | None = None,
    autoencoder=None,
    autoencoder_key: str | None = None,
):
    """Train (or resume, or skip) one seed.

    Args:
        train, val: ``SegmentationData``; ``train`` may hold synthetic pairs after the first ``n_real``.
        autoencoder: attached to methods that need one (latent segmenters), keyed by ``autoencoder_key``.

    Returns:
        ``(record, method)``: the run record (``run.json``) and the trained method (None when the
        seed was already trained: load it from ``seed_dir/model``).
    """
    from benchmark.config import to_mapping
    from benchmark.utils.io import atomic_dir, read_json, write_json
    from benchmark.utils.provenance import environment_record

    n_real = len(train) if n_real is None else n_real
    settings = {"config": to_mapping(config), "autoencoder": autoencoder_key}
    key = fingerprint(method_cls.name, settings, seed, [train.images, train.masks, val.images, val.masks])
    record_path, marker = seed_dir / "run.json", seed_dir / "fingerprint.txt"
    if record_path.is_file() and read_json(record_path).get("fingerprint") == key and (seed_dir / "model").is_dir():
        return read_json(record_path), None
    if marker.is_file() and marker.read_text().strip() != key:
        shutil.rmtree(seed_dir)  # another config or data: its checkpoint must not be resumed
    seed_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(key + "\n")

    method = method_cls(config)
    if getattr(method_cls, "needs_autoencoder", False):
        method.attach_autoencoder(autoencoder)
    resumable = (seed_dir / "checkpoint.pt").is_file()
    started = time.perf_counter()
    with counting_optimizer_steps() as steps:
        method.fit(train, val, seed=seed, out_dir=seed_dir, progress=progress)
    elapsed = time.perf_counter() - started
    with atomic_dir(seed_dir / "model") as tmp:
        method.save(tmp)
    from benchmark.methods.supervised import epoch_samples, steps_per_epoch

    epochs = getattr(config, "epochs", None)
    epoch_size, batch_size = getattr(config, "epoch_size", None), getattr(config, "batch_size", 1)
    per_epoch = epoch_samples(len(train), epoch_size)
    record = {
        "fingerprint": key,
        "seed": seed,
        "train_seconds": elapsed,
        "n_train": len(train),
        "n_train_real": n_real,
        "n_train_synthetic": len(train) - n_real,
        "n_val": len(val),
        "epochs": epochs,
        "samples_per_epoch": per_epoch,
        "optimizer_steps": (epochs or 0)
        * steps_per_epoch(len(train), epoch_size, batch_size),  # the trainers' own count
        # evidence of a resume: a seed that continued from its checkpoint takes fewer steps in this call
        "checkpoint_at_start": resumable,
        "optimizer_steps_this_call": steps.count,
        "environment": environment_record(),
    }
    write_json(record_path, record)
    (seed_dir / "checkpoint.pt").unlink(
        missing_ok=True
    )  # done: model/ holds the selected weights, train_log.csv the history
    return record, method


@contextlib.contextmanager
def counting_optimizer_steps():
    """Count every ``torch.optim.Optimizer.step`` taken in this process inside the block (``.count``)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps = types.SimpleNamespace(count=0)

    def hook(optimizer, args, kwargs) -> None:
        steps.count += 1

    handle = register_optimizer_step_post_hook(hook)
    try:
        yield steps
    finally:
        handle.remove()


# --- worker side: one process per worker, the dataset and shared inputs loaded once --------------

_STATE: dict = {}


def _setup_worker(dataset: str, params_path: str) -> None:
    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset

    data = PreparedDataset(Path("data/prepared") / dataset, Path("data/splits") / f"{dataset}.json")
    test, val = data.subset("test"), data.subset("val")
    _STATE.clear()
    _STATE.update(
        dataset=dataset,
        data=data,
        test=test,
        val=val,
        native=data.native_masks(list(test.ids)),
        native_val=data.native_masks(list(val.ids)),
        synthetic={},
        autoencoder=None,
        train_params=load_section("train", params_path),
        eval_params=load_section("evaluate", params_path),
        volume=load_section("synthesize", params_path).volume,
        iterative=iterative_scoring(dataset, params_path),
    )


def iterative_scoring(dataset: str, params_path: str) -> frozenset[str]:
    """The methods whose base run also scores its weights with N-step DDIM (Table 6's "w/o latent
    estimation" row): only a segmenter with ablation runs (``<method>+...`` in ``ablation.runs``) on
    the datasets of ``ablation.datasets``, where Table 6 reads it. Elsewhere nothing reads that score,
    so it is not computed (it costs a full DDIM pass over the test split per seed)."""
    from benchmark.config import load_section

    ablation = load_section("ablation", params_path)
    if dataset not in ablation.datasets:
        return frozenset()
    return frozenset(run.split("+", 1)[0] for run in ablation.runs if "+" in run)


def _training_set(spec, n_train: int):
    """Real training split plus the synthetic pairs of ``spec`` (cached per worker)."""
    import numpy as np

    from benchmark.data.prepared import SegmentationData
    from benchmark.generators.loop import accepted_subset

    train = _STATE["data"].subset("train")
    if spec is None:
        return train
    volume = spec.volume if spec.volume is not None else _STATE["volume"]
    shuffled = spec.source == "shuffled"
    cache_key = (spec.folder(_STATE["dataset"]), volume, spec.theta, spec.validated, shuffled)
    if cache_key not in _STATE["synthetic"]:
        # the paper does not regenerate rejected samples: a shortfall trains with what was accepted
        # (run.json records n_train_synthetic)
        extra = accepted_subset(
            cache_key[0],
            volume,
            n_train,
            strict=False,
            theta=spec.theta,
            validated=spec.validated,
            shuffle_labels=shuffled,
        )
        _STATE["synthetic"][cache_key] = SegmentationData(
            train.ids + extra.ids,
            np.concatenate([train.images, extra.images]),
            np.concatenate([train.masks, extra.masks]),
        )
    return _STATE["synthetic"][cache_key]


def run_seed(run: str, index: int) -> dict:
    """Train (or skip) and evaluate (or reuse) seed ``index`` of ``run``; returns a short summary."""
    from benchmark.methods import get_method
    from benchmark.methods.runs import budget_config, parse_run, parse_synthetic, run_config
    from benchmark.stages import evaluate
    from benchmark.utils.io import read_json
    from benchmark.utils.seeding import derive_seed

    dataset, params = _STATE["dataset"], _STATE["train_params"]  # parsed once per worker
    name, data = parse_run(run)
    method_cls = get_method(name)
    config = run_config(params.config_of(name), data)
    n_real = len(_STATE["data"].subset("train"))
    spec = parse_synthetic(data)
    train = _training_set(spec, n_real)
    config = budget_config(config, n_real, len(train), (spec.budget if spec else None) or params.synthetic_budget)
    autoencoder_key = None
    if getattr(method_cls, "needs_autoencoder", False):
        if _STATE["autoencoder"] is None:
            from benchmark.stages.validator import load_autoencoder

            _STATE["autoencoder"] = load_autoencoder(dataset)
        autoencoder_key = (Path("models") / dataset / "autoencoder" / "fingerprint.txt").read_text().strip()
    seed = derive_seed(params.base_seed, "train", dataset, name, index)  # shared by every run of the method
    seed_dir = Path("models") / dataset / "runs" / run / f"seed_{index}"
    started = time.perf_counter()
    record, method = train_seed(
        train,
        _STATE["val"],
        method_cls,
        config,
        seed,
        seed_dir,
        progress=False,
        n_real=n_real,
        autoencoder=_STATE["autoencoder"],
        autoencoder_key=autoencoder_key,
    )
    trained = method is not None
    eval_params = _STATE["eval_params"]
    iterative = run == name and name in _STATE["iterative"]
    key = evaluate.evaluation_key(record["fingerprint"], eval_params, iterative=iterative)
    result = evaluate.load_evaluation(seed_dir, key)
    if result is None:
        if method is None:
            method = method_cls.load(seed_dir / "model")
        result = evaluate.evaluate_seed(
            method,
            read_json(seed_dir / "run.json"),
            _STATE["test"],
            _STATE["val"],
            _STATE["native"],
            _STATE["native_val"],
            eval_params,
            iterative=iterative,
        )
        evaluate.save_evaluation(result, seed_dir, key)
    return {
        "run": run,
        "index": index,
        "trained": trained,
        "seconds": time.perf_counter() - started,
        "dice": float(result["per_image"]["dice"].mean()),
    }


# --- parent side ----------------------------------------------------------------------------------


def plan(dataset: str, runs: list[str], params_path: str) -> list[tuple[str, int]]:
    """Every (run, seed index), longest expected first; checks each run's inputs before any work."""
    import math

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.methods.runs import parse_run, parse_synthetic, run_config

    params = load_section("train", params_path)
    data = PreparedDataset(Path("data/prepared") / dataset, Path("data/splits") / f"{dataset}.json")
    n_train = len(data.subset("train"))
    costs = {}
    for run in runs:
        try:
            name, kind = parse_run(run)
        except KeyError as error:
            from benchmark.config import ParamsError

            raise ParamsError(f"train@{dataset}: {error.args[0]}") from None
        spec = parse_synthetic(kind)
        if spec is not None:
            folder = Path(spec.folder(dataset))
            if not (folder / "manifest.csv").is_file():
                raise FileNotFoundError(
                    f"{folder}/manifest.csv is missing (run {run!r}); run `dvc repro {spec.stage(dataset)}` first"
                )
        config = run_config(params.config_of(name), kind)  # the run's own settings (e.g. +noaug: no augmentation)
        seen = n_train
        if spec is not None and (spec.budget or params.synthetic_budget) == "equal_epochs":
            seen = n_train * (1 + (spec.volume if spec.volume is not None else 1.0))  # longer runs start first
        steps = getattr(config, "epochs", 1) * math.ceil(seen / getattr(config, "batch_size", 1))
        costs[run] = (
            steps
            * RELATIVE_STEP_COST.get(name, 1.0)
            * (1.3 if getattr(config, "augmentation", "") == "standard" else 1.0)
        )
    jobs = [(run, index) for run in runs for index in range(params.n_seeds)]
    return sorted(jobs, key=lambda job: -costs[job[0]])  # stable: ties keep the listed order


def main() -> None:
    parser = common.dataset_parser(__doc__)
    parser.add_argument(
        "--runs", help="comma-separated runs to train (default: train.methods and, on ablation datasets, ablation.runs)"
    )
    args = parser.parse_args()
    from tqdm.auto import tqdm

    from benchmark.config import load_section
    from benchmark.stages.evaluate import write_run_results
    from benchmark.utils.io import write_json
    from benchmark.utils.pool import WorkerPool, split_threads

    params = load_section("train", args.params)
    eval_params = load_section("evaluate", args.params)
    every = runs_of(args.dataset, args.params)
    runs = every if not args.runs else [run.strip() for run in args.runs.split(",") if run.strip()]
    unknown = [run for run in runs if run not in every]
    if unknown:
        from benchmark.config import ParamsError

        raise ParamsError(
            f"--runs names {unknown}, not in train.methods or ablation.runs for {args.dataset}; add them to params.yaml"
        )
    jobs = plan(args.dataset, runs, args.params)
    workers, threads = split_threads(params.threads, params.workers)
    print(
        f"train@{args.dataset}: {len(runs)} runs x {params.n_seeds} seeds = {len(jobs)} jobs on {workers} worker(s) x {threads} thread(s)"
    )
    started = time.perf_counter()
    with WorkerPool(workers, threads, initializer=_setup_worker, initargs=(args.dataset, args.params)) as pool:
        bar = tqdm(total=len(jobs), desc=f"train@{args.dataset}", unit="seed", disable=args.no_progress)
        try:
            for done in pool.imap_unordered(run_seed, jobs):  # a worker's error is raised here; the rest are cancelled
                bar.update()
                state = "trained" if done["trained"] else "up to date"
                bar.write(
                    f"{args.dataset}/{done['run']} seed {done['index']}: {state}, evaluated, test Dice {done['dice']:.4f} ({done['seconds']:.1f} s)"
                )
        finally:
            bar.close()
    out = Path("results") / args.dataset / "runs"
    summaries = {}
    for run in runs:
        seed_dirs = [Path("models") / args.dataset / "runs" / run / f"seed_{index}" for index in range(params.n_seeds)]
        summary = write_run_results(args.dataset, run, seed_dirs, out / run, eval_params.threshold)
        summaries[run] = {
            "dice_mean": summary["mean"]["dice"],
            "dice_std": summary["std"]["dice"],
            "dice_per_seed": {name: seed["dice"] for name, seed in summary["per_seed"].items()},
        }
    if not args.runs:  # the full list: drop runs and seeds no longer asked for, write the metrics file
        for root in (Path("models") / args.dataset / "runs", out):
            for stale in sorted(root.iterdir()) if root.is_dir() else []:
                if stale.is_dir() and stale.name not in runs:
                    shutil.rmtree(stale)
        for run in runs:
            for stale in sorted((Path("models") / args.dataset / "runs" / run).glob("seed_*")):
                if int(stale.name.split("_")[1]) >= params.n_seeds:
                    shutil.rmtree(stale)
        write_json(Path("results") / args.dataset / "runs.json", summaries)
    print(f"train@{args.dataset}: {len(jobs)} seeds in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    common.run(main)
