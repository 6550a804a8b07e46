"""Wall time of ``prepare`` on a dataset as published, in one process and in N worker processes.

    python benchmarks/prepare_speed.py --dataset kvasir_seg --root ../shared/data/Kvasir-SEG
                                       [--workers 2] [--repeats 2] [--params params.yaml]
                                       [--output results/benchmarks/prepare_speed_<dataset>.json]

Runs :func:`benchmark.data.prepare.prepare_dataset` with the ``prepare`` section of ``--params``
(image size, split seed, ...) at ``workers = 1`` and ``workers = --workers``, alternating, each
``--repeats`` times, into a temporary folder (split file included: nothing in the checkout changes),
and checks that both write byte-identical files. Prints seconds and images/s per run (the fastest
is the figure: on a shared machine other jobs only ever add time) and the CPU seconds of the run
and its workers, which the load of other jobs changes less. Then times the steps of one process
apart, in CPU seconds (decode image, decode mask, resize, count lesions, write the npz files), to
show where the time goes. Writes ``results/benchmarks/prepare_speed_<dataset>.json``. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

OUTPUTS = ("arrays.npz", "native_masks.npz", "attributes.csv", "manifest.json")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_prepare(name: str, root: Path, folder: Path, options) -> dict:
    """One prepare run into ``folder``: wall and CPU seconds, and the load average around it."""
    from benchmark.data.prepare import prepare_dataset

    shutil.rmtree(folder, ignore_errors=True)
    load_before, cpu_before, started = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
    manifest = prepare_dataset(name, root, folder / "prepared", folder / "split.json", options, progress=False)
    seconds = time.perf_counter() - started
    return {
        "workers": options.workers,
        "seconds": seconds,
        "images_per_second": manifest["n_images"] / seconds,
        "cpu_seconds": cpu_seconds() - cpu_before,
        "load_average_1min_before": load_before,
        "load_average_1min_after": os.getloadavg()[0],
        "n_images": manifest["n_images"],
    }


def same_bytes(first: Path, second: Path) -> dict[str, bool]:
    """Whether each prepared file (and the split) of two runs is byte-identical."""
    paths = [Path("prepared") / name for name in OUTPUTS] + [Path("split.json")]
    return {str(path): (first / path).read_bytes() == (second / path).read_bytes() for path in paths}


def phase_seconds(name: str, root: Path, options, folder: Path) -> dict[str, float]:
    """CPU seconds of the steps of :func:`benchmark.data.prepare.prepare_record` in this process
    (CPU, not wall time: other jobs' load changes it less), without the fundus disc crop and the
    lesion-free twins (the polyp datasets' path)."""
    import numpy as np

    from benchmark.data import get_dataset
    from benchmark.data.prepare import count_lesions, resize_binary, resize_image, resize_labels, target_from_labels

    loader = get_dataset(name).make_loader(root)
    records = loader.records()
    seconds = dict.fromkeys(["decode_image", "decode_mask", "resize", "count_lesions_and_area", "write_npz"], 0.0)
    images, masks, labels, natives = [], [], [], {}
    for record in records:
        started = time.process_time()
        image = loader.read_image(record)
        decoded = time.process_time()
        label = loader.read_label(record)
        target = target_from_labels(label, loader.modality, options.fundus_target)
        read = time.process_time()
        images.append(resize_image(image, options.image_size))
        masks.append(resize_binary(target, options.image_size))
        labels.append(resize_labels(label, options.image_size))
        resized = time.process_time()
        count_lesions(target, options.min_lesion_fraction)
        target.mean()
        natives[record.id] = target.astype(bool)
        counted = time.process_time()
        seconds["decode_image"] += decoded - started
        seconds["decode_mask"] += read - decoded
        seconds["resize"] += resized - read
        seconds["count_lesions_and_area"] += counted - resized
    started = time.process_time()
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "arrays.npz", images=np.stack(images), masks=np.stack(masks), labels=np.stack(labels))
    np.savez_compressed(folder / "native_masks.npz", **natives)
    seconds["write_npz"] = time.process_time() - started
    return seconds


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--dataset", default="kvasir_seg", help="a key of benchmark.data.DATASETS")
    cli.add_argument("--root", required=True, help="the dataset's folder as published (read only)")
    cli.add_argument("--workers", type=int, default=2, help="worker processes of the parallel runs")
    cli.add_argument("--repeats", type=int, default=2, help="runs at each worker count; the fastest is kept")
    cli.add_argument("--params", default="params.yaml", help="its prepare section gives image_size and the rest")
    cli.add_argument("--output", default=None, help="default: results/benchmarks/prepare_speed_<dataset>.json")
    args = cli.parse_args()

    from benchmark.config import load_section
    from benchmark.data.prepare import PrepareOptions
    from benchmark.stages.common import set_offline
    from benchmark.utils.io import write_json
    from benchmark.utils.provenance import environment_record

    set_offline()
    params = load_section("prepare", args.params)
    options = PrepareOptions(
        image_size=params.image_size,
        val_fraction=params.val_fraction,
        split_seed=params.split_seed,
        fundus_target=params.fundus_target,
        fundus_crop_scale=params.fundus_crop_scale,
        min_lesion_fraction=params.min_lesion_fraction,
    )
    root = Path(args.root)
    runs = []
    with tempfile.TemporaryDirectory(prefix="prepare_speed_") as scratch:
        scratch = Path(scratch)
        for repeat in range(args.repeats):
            for workers in (1, args.workers):
                run = timed_prepare(
                    args.dataset, root, scratch / f"w{workers}", dataclasses.replace(options, workers=workers)
                )
                runs.append(run)
                print(
                    f"workers {workers} (run {repeat + 1}): {run['seconds']:.1f} s, {run['images_per_second']:.0f} images/s, "
                    f"{run['cpu_seconds']:.1f} CPU s, load {run['load_average_1min_before']:.1f} -> "
                    f"{run['load_average_1min_after']:.1f}"
                )
        identical = same_bytes(scratch / "w1", scratch / f"w{args.workers}")
        phases = phase_seconds(args.dataset, root, options, scratch / "phases")
    best = {
        workers: min((r for r in runs if r["workers"] == workers), key=lambda r: r["seconds"])
        for workers in sorted({1, args.workers})
    }
    result = {
        "dataset": args.dataset,
        "root": str(root),
        "image_size": options.image_size,
        "n_images": runs[0]["n_images"],
        "workers": args.workers,
        "runs": runs,
        "best_seconds": {str(workers): run["seconds"] for workers, run in best.items()},
        "best_images_per_second": {str(workers): run["images_per_second"] for workers, run in best.items()},
        "speedup": best[1]["seconds"] / best[args.workers]["seconds"],
        "identical_bytes": identical,
        "all_identical": all(identical.values()),
        "phase_cpu_seconds_one_process": phases,
        "cpu_count": os.cpu_count(),
        "environment": environment_record(),
    }
    print(
        f"{args.dataset}: {result['n_images']} images at {options.image_size} px; best of {args.repeats}: "
        + ", ".join(
            f"workers {w}: {r['seconds']:.1f} s ({r['images_per_second']:.0f} images/s)" for w, r in best.items()
        )
        + f"; speed-up {result['speedup']:.2f}x; outputs byte-identical: {result['all_identical']}"
    )
    print("one process, CPU seconds by step: " + ", ".join(f"{step} {value:.1f} s" for step, value in phases.items()))
    output = args.output or f"results/benchmarks/prepare_speed_{args.dataset}.json"
    write_json(output, result)
    print(f"-> {output}")
    if not result["all_identical"]:
        raise SystemExit(f"outputs differ between workers 1 and {args.workers}: {identical}")


if __name__ == "__main__":
    main()
