"""Profile a whole ``dvc repro``: wall time, CPU time and peak memory of every stage process.

    python benchmarks/profile_repro.py --run [--force] [-- <dvc repro targets>]   # run and profile
    python benchmarks/profile_repro.py --from .profile/run1                       # summarise a profiled run

Every stage command goes through ``benchmark.stages.common.run``, which appends one JSON line per
process to ``$BENCHMARK_PROFILE_DIR/stages.jsonl`` (argv, seconds in the stage's ``main`` and in
the whole process including imports, user + system CPU seconds of the process and its children,
peak resident memory). This script sets that variable around ``dvc repro``, then groups the lines
by stage, prints a table (slowest first) and writes ``results/benchmarks/profile_<label>.json``:
per stage and per stage family (train, evaluate, ...) plus the totals and the machine. The sum of
the stage processes' wall times is the pipeline's compute; the whole ``dvc repro`` wall time (DVC's
own hashing and locking included) is recorded when ``--run`` measured it, with the peak of the
summed resident memory of ``dvc`` and all its descendants (stage processes and their parallel
workers together), sampled every second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage_name(record: dict) -> str:
    """``benchmark.stages.train --dataset d --method m`` -> ``train@d-m`` (the dvc.yaml name)."""
    module = record["module"].rsplit(".", 1)[-1]
    argv = record["argv"]

    def option(name: str) -> str | None:
        return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None

    dataset, method, subset = option("--dataset"), option("--method") or option("--runs"), option("--set")
    if method and dataset:
        return f"{module}@{dataset}-{method}"
    if subset and dataset:
        return f"ablation_{module}@{dataset}-{subset}"
    return f"{module}@{dataset}" if dataset else module


def summarise(records: list[dict]) -> dict:
    """Per stage (last record of a stage wins, i.e. the run that completed) and per family."""
    stages: dict[str, dict] = {}
    for record in records:
        stages[stage_name(record)] = {
            key: record[key] for key in ("process_seconds", "main_seconds", "cpu_seconds", "peak_rss_mib")
        }
    families: dict[str, dict] = {}
    for name, values in stages.items():
        family = families.setdefault(
            name.split("@")[0], {"stages": 0, "process_seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mib": 0.0}
        )
        family["stages"] += 1
        family["process_seconds"] += values["process_seconds"]
        family["cpu_seconds"] += values["cpu_seconds"]
        family["peak_rss_mib"] = max(family["peak_rss_mib"], values["peak_rss_mib"])
    totals = {
        "stages": len(stages),
        "process_seconds": sum(v["process_seconds"] for v in stages.values()),
        "import_and_setup_seconds": sum(v["process_seconds"] - v["main_seconds"] for v in stages.values()),
        "cpu_seconds": sum(v["cpu_seconds"] for v in stages.values()),
        "peak_rss_mib": max((v["peak_rss_mib"] for v in stages.values()), default=0.0),
    }
    return {"stages": stages, "families": families, "totals": totals}


def run_sampling_memory(command: list[str], environment: dict) -> tuple[float, float]:
    """Run ``command``; returns ``(wall seconds, peak MiB of the summed RSS of the process tree)``."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    root, peak = psutil.Process(process.pid), 0.0
    while process.poll() is None:
        total = 0
        try:
            for member in [root, *root.children(recursive=True)]:
                try:
                    total += member.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total / 2**20)
        time.sleep(1.0)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - started, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="run `dvc repro` with profiling on")
    parser.add_argument("--force", action="store_true", help="pass --force to dvc repro (profile every stage)")
    parser.add_argument("--from", dest="source", help="a profile folder of an earlier run (holds stages.jsonl)")
    parser.add_argument("--label", default="default", help="results/benchmarks/profile_<label>.json")
    parser.add_argument("targets", nargs="*", help="dvc repro targets (default: the whole pipeline)")
    args = parser.parse_args()
    if not args.run and not args.source:
        parser.error("give --run or --from <folder>")
    folder = Path(args.source) if args.source else ROOT / ".profile" / time.strftime("%Y%m%d-%H%M%S")
    repro_seconds = peak_tree = None
    if args.run:
        folder.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "BENCHMARK_PROFILE_DIR": str(folder.resolve())}
        command = [
            str(Path(sys.executable).parent / "dvc"),
            "repro",
            *(["--force"] if args.force else []),
            *args.targets,
        ]
        repro_seconds, peak_tree = run_sampling_memory(command, environment)
        (folder / "repro.json").write_text(
            json.dumps({"dvc_repro_seconds": repro_seconds, "peak_tree_rss_mib": peak_tree}) + "\n"
        )
    elif (folder / "repro.json").is_file():
        measured = json.loads((folder / "repro.json").read_text())
        repro_seconds, peak_tree = measured["dvc_repro_seconds"], measured["peak_tree_rss_mib"]
    path = folder / "stages.jsonl"
    if not path.is_file():
        sys.exit(f"error: {path} does not exist; run with --run, or point --from at a folder written by a profiled run")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    summary = summarise(records)
    from benchmark.utils.provenance import environment_record

    summary.update(
        {
            "dvc_repro_seconds": repro_seconds,
            "peak_tree_rss_mib": peak_tree,
            "source": str(folder),
            "environment": environment_record(),
        }
    )
    print(f"{'stage':58s} {'wall s':>8s} {'cpu s':>8s} {'peak MiB':>9s}")
    for name, values in sorted(summary["stages"].items(), key=lambda item: -item[1]["process_seconds"]):
        print(f"{name:58s} {values['process_seconds']:8.1f} {values['cpu_seconds']:8.1f} {values['peak_rss_mib']:9.0f}")
    totals = summary["totals"]
    print(
        f"\n{totals['stages']} stage processes: {totals['process_seconds'] / 60:.1f} min wall ({totals['import_and_setup_seconds'] / 60:.1f} min "
        f"outside the stages' main), {totals['cpu_seconds'] / 60:.1f} min CPU, peak {totals['peak_rss_mib'] / 1024:.2f} GiB"
        + (f"; dvc repro {repro_seconds / 60:.1f} min" if repro_seconds else "")
        + (f", peak of all processes together {peak_tree / 1024:.2f} GiB" if peak_tree else "")
    )
    out = ROOT / "results" / "benchmarks" / f"profile_{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
