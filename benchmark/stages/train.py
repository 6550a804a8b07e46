"""Stage ``train@<dataset>-<run>``: train one run on one dataset, ``train.n_seeds`` seeds.

    python -m benchmark.stages.train --dataset synth_polyp --method unet [--params params.yaml]
    python -m benchmark.stages.train --dataset synth_polyp --method unet+diffaug

A run is a method and its training data (``benchmark.methods.runs``): ``+diffaug`` adds the
first ``synthesize.volume × n_train`` accepted synthetic pairs of ``data/synthetic/<dataset>``
(modifiers pick another volume, θ, no gate, or an ablation set). With ``train.synthetic_budget``
"equal_steps" such a run trains for the optimizer steps of the method's real-only run
(``budget_epochs``); ``run.json`` records the epochs and steps taken.
Stage ``ablation_train@<dataset>-<run>`` is this same command for the runs of ``ablation.runs``.

Writes ``models/<dataset>/<method>/seed_<k>/`` holding ``model/`` (the selected checkpoint),
``checkpoint.pt`` (resumable state), ``train_log.csv``, ``run.json`` (seed, time, provenance).
A seed whose ``run.json`` matches the current fingerprint (method, config, seed, data) is
skipped; a seed interrupted midway resumes from its checkpoint; a stale folder is cleared.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from benchmark.stages import common


def fingerprint(method: str, config: dict, seed: int, arrays: list) -> str:
    """SHA-256 over everything a trained model depends on: method, config, seed, data and the
    source of the method's module and every benchmark module it imports (``code_closure``)."""
    from benchmark.methods import METHODS

    module = METHODS[method].split(":")[0]
    return common.fingerprint({"method": method, "config": config, "seed": seed}, arrays, common.code_closure(module))


def train_seed(dataset, method_cls, config, seed: int, seed_dir: Path, *, progress: bool, extra=None, autoencoder=None,
               autoencoder_key: str | None = None) -> dict:  # fmt: skip
    """Train (or resume, or skip) one seed; returns its run record.

    ``extra`` (SegmentationData) is appended to the training split (synthetic pairs);
    ``autoencoder`` is attached to methods that need one (latent segmenters).
    """
    import numpy as np

    from benchmark.config import to_mapping
    from benchmark.data.prepared import SegmentationData
    from benchmark.utils.io import atomic_dir, read_json, write_json
    from benchmark.utils.provenance import environment_record

    train, val = dataset.subset("train"), dataset.subset("val")
    n_real = len(train)
    if extra is not None and len(extra):
        train = SegmentationData(train.ids + extra.ids, np.concatenate([train.images, extra.images]), np.concatenate([train.masks, extra.masks]))
    settings = {"config": to_mapping(config), "autoencoder": autoencoder_key}
    key = fingerprint(method_cls.name, settings, seed, [train.images, train.masks, val.images, val.masks])
    record_path, marker = seed_dir / "run.json", seed_dir / "fingerprint.txt"
    if record_path.is_file() and read_json(record_path).get("fingerprint") == key and (seed_dir / "model").is_dir():
        print(f"{seed_dir}: already trained with this config, data and code; skipped")
        return read_json(record_path)
    if marker.is_file() and marker.read_text().strip() != key:
        shutil.rmtree(seed_dir)  # another config or data: its checkpoint must not be resumed
    seed_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(key + "\n")

    method = method_cls(config)
    if getattr(method_cls, "needs_autoencoder", False):
        method.attach_autoencoder(autoencoder)
    started = time.perf_counter()
    method.fit(train, val, seed=seed, out_dir=seed_dir, progress=progress)
    elapsed = time.perf_counter() - started
    with atomic_dir(seed_dir / "model") as tmp:
        method.save(tmp)
    record = {
        "fingerprint": key,
        "seed": seed,
        "train_seconds": elapsed,
        "n_train": len(train),
        "n_train_real": n_real,
        "n_train_synthetic": len(train) - n_real,
        "n_val": len(val),
        "epochs": getattr(config, "epochs", None),
        "optimizer_steps": getattr(config, "epochs", 0) * -(-len(train) // getattr(config, "batch_size", 1)),
        "environment": environment_record(),
    }
    write_json(record_path, record)
    return record


def main() -> None:
    args = common.dataset_method_parser(__doc__).parse_args()
    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.loop import accepted_subset
    from benchmark.methods import get_method
    from benchmark.methods.runs import budget_epochs, parse_run, parse_synthetic, run_config
    from benchmark.utils.seeding import derive_seed

    params = load_section("train", args.params)
    common.set_threads(params.threads)
    name, data = parse_run(args.method)
    method_cls = get_method(name)
    config = run_config(params.config_of(name), data)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    extra = None
    spec = parse_synthetic(data)
    if spec is not None:
        synthesize = load_section("synthesize", args.params)
        folder = Path(spec.folder(args.dataset))
        if not (folder / "manifest.csv").is_file():
            stage = f"synthesize@{args.dataset}" if spec.set == "main" else f"ablation_synthesize@{args.dataset}-{spec.set}"
            raise FileNotFoundError(f"{folder}/manifest.csv is missing; run `dvc repro {stage}` first")
        # the paper does not regenerate rejected samples: a shortfall trains with what was accepted
        # (run.json records n_train_synthetic)
        volume = spec.volume if spec.volume is not None else synthesize.volume
        extra = accepted_subset(folder, volume, len(dataset.subset("train")), strict=False, theta=spec.theta, validated=spec.validated)
        n_real = len(dataset.subset("train"))
        config = dataclasses.replace(config, epochs=budget_epochs(config.epochs, n_real, n_real + len(extra), params.synthetic_budget))
    autoencoder = autoencoder_key = None
    if getattr(method_cls, "needs_autoencoder", False):
        from benchmark.stages.validator import load_autoencoder

        autoencoder = load_autoencoder(args.dataset)
        autoencoder_key = (Path("models") / args.dataset / "autoencoder" / "fingerprint.txt").read_text().strip()
    out = Path("models") / args.dataset / args.method
    for index in range(params.n_seeds):
        seed = derive_seed(params.base_seed, "train", args.dataset, name, index)  # shared by every run of the method
        record = train_seed(dataset, method_cls, config, seed, out / f"seed_{index}", progress=not args.no_progress, extra=extra,
                            autoencoder=autoencoder, autoencoder_key=autoencoder_key)  # fmt: skip
        print(f"{args.dataset}/{args.method} seed {index} ({seed}): trained in {record['train_seconds']:.1f} s")
    for stale in sorted(out.glob("seed_*")):
        if int(stale.name.split("_")[1]) >= params.n_seeds:
            shutil.rmtree(stale)  # fewer seeds than last time: drop the extra ones


if __name__ == "__main__":
    common.run(main)
