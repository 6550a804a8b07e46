"""Table 4's "GPU readiness check" block: the files ``benchmarks/gpu_check.sh`` writes.

``results/benchmarks/gpu_<device>.json`` (``gpu_cpu.json`` for the CPU fallback) holds, for one shortened
paper-scale run on one device, per segmentation method the training samples/s and test-split inference
images/s, and the generate + validate loop's samples/s and acceptance rate (see ``benchmarks/gpu_check.py``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.utils.io import read_json

TITLE = "GPU readiness check (benchmarks/gpu_check.sh)"
NOT_RUN = (
    "No GPU readiness check has been run. On a machine with a CUDA GPU, `benchmarks/gpu_check.sh` (or "
    "`make gpu-check`) runs a shortened paper-scale pipeline in under 10 minutes and writes "
    "`results/benchmarks/gpu_<gpu name>.json`; this table then shows its rates."
)
COLUMNS = ("device", "setting", "what", "training samples/s", "inference samples/s (wall clock)", "status", "source")


def readiness_files(results_dir: str | Path) -> list[Path]:
    """The check's result files under ``<results_dir>/benchmarks/``, sorted by name."""
    return sorted((Path(results_dir) / "benchmarks").glob("gpu_*.json"))


def _display_name(method: str) -> str:
    try:
        from benchmark.methods.runs import run_display_name

        return run_display_name(method)
    except (ImportError, KeyError):
        return method


def _device(record: dict) -> str:
    device = record.get("device", {})
    versions = f"torch {device.get('torch', '?')}" + (
        f", CUDA {device['cuda']}" if device.get("kind") == "cuda" else ""
    )
    memory = f", {device['memory_gib']:g} GiB" if device.get("memory_gib") else ""
    return f"{device.get('name', '?')} ({versions}{memory})"


def _setting(record: dict) -> str:
    profile = record.get("profile", {})
    text = (
        f"{profile.get('image_size', '?')} px, {profile.get('steps', '?')} steps, "
        f"{profile.get('n_seeds', 1)} seed, {profile.get('dataset', '?')}"
    )
    return text + (" (tiny)" if profile.get("tiny") else "")


def readiness_table(results_dir: str | Path) -> pd.DataFrame:
    """One row per method and one for the generate + validate loop of every ``gpu_*.json``.

    Columns (:data:`COLUMNS`): the device with its torch / CUDA versions, the check's setting (image size,
    optimizer steps per trainer, seeds, dataset), what was timed, training samples/s (samples over the
    wall-clock seconds of ``fit``), inference samples/s (test split, the evaluate stage's timing, with the
    sampling setting; for the loop: generated + validated samples/s and the share accepted), the status
    ("ok", or why a method failed or did not run) and the source file. Empty (with those columns) when no
    check was run.
    """
    rows = []
    for path in readiness_files(results_dir):
        record = read_json(path)
        common = {"device": _device(record), "setting": _setting(record), "source": path.name}
        methods = record.get("methods", {})
        timed = [name for name in record.get("profile", {}).get("methods", []) if name in methods]
        for method in [*timed, *(name for name in methods if name not in timed)]:  # in the order they were timed
            entry = methods[method]
            ok = entry.get("status") == "ok"
            rows.append(
                {
                    **common,
                    "what": _display_name(method),
                    "training samples/s": f"{entry['train_samples_per_second']:.1f}" if ok else "–",
                    "inference samples/s (wall clock)": f"{entry['inference_images_per_second']:.1f} "
                    f"({entry.get('inference_setting', '?')})"
                    if ok
                    else "–",
                    "status": entry.get("status", "?"),
                }
            )
        loop = record.get("generate_validate", {})
        ok = loop.get("status") == "ok"
        what = "DiffAug generate + validate loop"
        if ok:
            what += f" ({loop['backend']} backend, {loop['samples']} samples, {loop['sampling']})"
        rows.append(
            {
                **common,
                "what": what,
                "training samples/s": "–",
                "inference samples/s (wall clock)": f"{loop['samples_per_second']:.2f} generated + validated, "
                f"{loop['acceptance_rate']:.0%} accepted"
                if ok
                else "–",
                "status": loop.get("status", "not run"),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def readiness_notes(results_dir: str | Path) -> str:
    """Markdown under the table: per file, the wall time against the budget, whether every stage finished, and
    what the check changed from its profile (e.g. "latent backend, SDXL weights not found at ..."); the
    :data:`NOT_RUN` sentence when no check was run."""
    files = readiness_files(results_dir)
    if not files:
        return NOT_RUN
    lines = []
    for path in files:
        record = read_json(path)
        profile = record.get("profile", {})
        unfinished = [name for name, stage in record.get("stages", {}).items() if stage.get("status") != "ok"]
        state = "every stage finished" if not unfinished else "not finished: " + ", ".join(unfinished)
        line = (
            f"- `{path.name}`: {record.get('total_wall_seconds', float('nan')):.0f} s of the "
            f"{profile.get('budget_seconds', float('nan')):.0f} s budget, {state}; from {profile.get('base_params', '?')}"
        )
        shortened = profile.get("shortened", {})
        if shortened:
            line += "; " + "; ".join(f"{key}: {value}" for key, value in shortened.items())
        lines.append(line)
    return "\n".join(lines)
