"""Stage ``train@<dataset>-<method>``: train one method on one dataset, ``train.n_seeds`` seeds.

    python -m benchmark.stages.train --dataset synth_polyp --method unet [--params params.yaml]

Writes ``models/<dataset>/<method>/seed_<k>/`` holding ``model/`` (the selected checkpoint),
``checkpoint.pt`` (resumable state), ``train_log.csv``, ``run.json`` (seed, time, provenance).
A seed whose ``run.json`` matches the current fingerprint (method, config, seed, data) is
skipped; a seed interrupted midway resumes from its checkpoint; a stale folder is cleared.
"""

from __future__ import annotations

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


def train_seed(dataset, method_cls, config, seed: int, seed_dir: Path, *, progress: bool) -> dict:
    """Train (or resume, or skip) one seed; returns its run record."""
    from benchmark.config import to_mapping
    from benchmark.utils.io import atomic_dir, read_json, write_json
    from benchmark.utils.provenance import environment_record

    train, val = dataset.subset("train"), dataset.subset("val")
    key = fingerprint(method_cls.name, to_mapping(config), seed, [train.images, train.masks, val.images, val.masks])
    record_path, marker = seed_dir / "run.json", seed_dir / "fingerprint.txt"
    if record_path.is_file() and read_json(record_path).get("fingerprint") == key and (seed_dir / "model").is_dir():
        print(f"{seed_dir}: already trained with this config, data and code; skipped")
        return read_json(record_path)
    if marker.is_file() and marker.read_text().strip() != key:
        shutil.rmtree(seed_dir)  # another config or data: its checkpoint must not be resumed
    seed_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(key + "\n")

    method = method_cls(config)
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
        "n_val": len(val),
        "environment": environment_record(),
    }
    write_json(record_path, record)
    return record


def main() -> None:
    args = common.dataset_method_parser(__doc__).parse_args()
    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.methods import get_method
    from benchmark.utils.seeding import derive_seed

    params = load_section("train", args.params)
    common.set_threads(params.threads)
    method_cls = get_method(args.method)
    config = params.config_of(args.method)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    out = Path("models") / args.dataset / args.method
    for index in range(params.n_seeds):
        seed = derive_seed(params.base_seed, "train", args.dataset, args.method, index)
        record = train_seed(dataset, method_cls, config, seed, out / f"seed_{index}", progress=not args.no_progress)
        print(f"{args.dataset}/{args.method} seed {index} ({seed}): trained in {record['train_seconds']:.1f} s")
    for stale in sorted(out.glob("seed_*")):
        if int(stale.name.split("_")[1]) >= params.n_seeds:
            shutil.rmtree(stale)  # fewer seeds than last time: drop the extra ones


if __name__ == "__main__":
    common.run(main)
