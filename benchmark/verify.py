"""How far a rerun is from the committed results: exact match, or differences next to seed noise.

    python -m benchmark.verify                          # the working copy vs the last commit (HEAD)
    python -m benchmark.verify --reference v1.0         # ... vs any git revision
    python -m benchmark.verify --reference ../other     # ... vs another clone (a folder with results/, dvc.lock)
    python -m benchmark.verify --results /tmp/rerun/results --json verify.json

Run it after ``make repro`` (``make verify``). It compares, for every dataset and run present in
both result folders:

1. **Bits.** The data outputs of the pipeline stages in ``dvc.lock`` (procedural frames, prepared
   arrays, splits, synthetic sets: their md5) and every run's ``per_image.csv`` and
   ``lesions.csv``, byte for byte. On an x86-64 machine with AVX2 the embedded default is expected
   to match exactly (:mod:`benchmark.numerics`).
2. **Science**, for a run whose files differ: the change of its mean test Dice (and IoU) over
   seeds, next to

   - the seed-to-seed spread: the standard deviation of the per-seed means on each side, and a
     Welch t-test of the per-seed means (the rerun's seeds against the reference's);
   - the unit-level 95 % CI of the paired difference: per-image Dice averaged over seeds, paired
     image by image, bootstrapped over the dataset's independent units (video sequences where the
     prepared data has them, images otherwise).

   A run's difference *exceeds seed noise* when its Welch p-value, Holm-adjusted over all the
   differing runs, is below ``--alpha`` (default 0.01). Only then does the command exit with
   status 1; an exact match or differences within seed noise exit 0. A run present on one side
   only is listed and does not fail the check.

The report prints one line per run with its table (2, 6, 7 ...), and a summary per table.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

COMPARED_FILES = ("per_image.csv", "lesions.csv")


class VerifyError(RuntimeError):
    """A reference or results folder that cannot be compared (the message says how to fix it)."""


# ---------------------------------------------------------------------------------------------
# Where the reference comes from


def materialise_reference(reference: str, root: Path, into: Path) -> Path:
    """A folder holding the reference's ``results/`` (and ``dvc.lock``): ``reference`` itself when it
    is a folder, else the git revision ``reference`` of the repository at ``root``, extracted into ``into``."""
    folder = Path(reference)
    if folder.is_dir():
        if not (folder / "results").is_dir():
            raise VerifyError(
                f"{folder} has no results/ folder: pass the root of another clone (it holds results/ and dvc.lock)"
            )
        return folder
    paths = [path for path in ("results", "dvc.lock", "params.yaml") if _exists_at(root, reference, path)]
    if "results" not in paths:
        raise VerifyError(
            f"{reference!r} is neither a folder nor a git revision with results/ in {root} "
            f"(try --reference HEAD, a tag, or the path of another clone)"
        )
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", reference, *paths], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
        tar.extractall(into, **safe)
    return into


def _exists_at(root: Path, revision: str, path: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(root), "cat-file", "-e", f"{revision}:{path}"], check=False, capture_output=True
    )
    return result.returncode == 0


# ---------------------------------------------------------------------------------------------
# Bits: dvc.lock outputs and result files


def lock_outputs(lock_path: Path) -> dict[str, tuple[str, str]]:
    """``{out path: (stage, md5)}`` of every output in a ``dvc.lock`` (empty when the file is missing)."""
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text()) or {}
    outputs = {}
    for stage, entry in (lock.get("stages") or {}).items():
        for out in entry.get("outs") or []:
            outputs[out["path"]] = (stage, out.get("md5") or out.get("hash") or "")
    return outputs


#: the dvc.lock outputs compared bit for bit: the data the pipeline makes (procedural frames, prepared
#: arrays and splits, synthetic sets). Model folders hold training logs with wall times and result
#: folders hold timings, so they never match byte for byte; the runs' result files are compared one by one.
DATA_PREFIX = "data/"


def compare_locks(reference: Path, rerun: Path) -> pd.DataFrame:
    """One row per data output (``data/...``) in both locks: stage, path, identical (bool)."""
    a, b = lock_outputs(reference), lock_outputs(rerun)
    common = sorted(path for path in set(a) & set(b) if path.startswith(DATA_PREFIX))
    rows = [{"stage": a[path][0], "path": path, "identical": a[path][1] == b[path][1]} for path in common]
    return pd.DataFrame(rows, columns=["stage", "path", "identical"])


def dvc_dir_md5(folder: Path) -> str:
    """DVC's md5 of a directory output (``<md5>.dir`` as ``dvc.lock`` records it): the md5 of the JSON list
    of ``{"md5", "relpath"}`` of its files, sorted by path (dvc-data's ``Tree.as_bytes``)."""
    import hashlib

    entries = []
    for path in folder.rglob("*"):
        if path.is_file():
            entries.append(
                {"md5": hashlib.md5(path.read_bytes()).hexdigest(), "relpath": path.relative_to(folder).as_posix()}
            )
    entries.sort(key=lambda entry: entry["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def check_procedural(params_path: Path, lock_path: Path, scratch: Path) -> dict[str, tuple[str, str]]:
    """Generate the default's procedural datasets afresh into ``scratch`` (the real stage, in a new
    process) and return ``{dataset: (md5 in dvc.lock, md5 now)}`` (about a minute on one core)."""
    params = yaml.safe_load(params_path.read_text())
    committed_dir = str(params["procedural"]["output_dir"]).rstrip("/")
    params["procedural"]["output_dir"] = str(scratch / "procedural")
    scratch_params = scratch / "params.yaml"
    scratch_params.write_text(yaml.safe_dump(params, sort_keys=False))
    command = [sys.executable, "-m", "benchmark.stages.procedural", "--params", str(scratch_params), "--no-progress"]
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    outputs = lock_outputs(lock_path)
    if committed_dir in outputs:  # the stage's one output folder (every listed procedural dataset)
        return {"procedural": (outputs[committed_dir][1], dvc_dir_md5(scratch / "procedural"))}
    result = {}  # a lock from before: one output per dataset
    for dataset in sorted(path.name for path in (scratch / "procedural").iterdir() if path.is_dir()):
        committed = outputs.get(f"{committed_dir}/{dataset}")
        result[dataset] = (committed[1] if committed else "", dvc_dir_md5(scratch / "procedural" / dataset))
    return result


def run_folders(results: Path) -> dict[tuple[str, str], Path]:
    """``{(dataset, run): folder}`` of every ``results/<dataset>/runs/<run>/`` holding a ``per_image.csv``."""
    return {
        (path.parent.parent.parent.name, path.parent.name): path.parent
        for path in sorted(results.glob("*/runs/*/per_image.csv"))
    }


# ---------------------------------------------------------------------------------------------
# Science: a differing run against seed noise


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test of two sets of per-seed means; 1.0 when the means are equal, 0.0 when
    they differ but neither side varies, NaN with fewer than two seeds on a side."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if np.isclose(a.mean(), b.mean(), rtol=0, atol=1e-12):
        return 1.0
    if a.std(ddof=1) == 0 and b.std(ddof=1) == 0:
        return 0.0
    return float(stats.ttest_ind(b, a, equal_var=False).pvalue)


def unit_difference_ci(
    reference: pd.DataFrame,
    rerun: pd.DataFrame,
    metric: str,
    units: dict[str, str] | None,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float, int]:
    """Paired difference rerun - reference of ``metric`` (per image, averaged over seeds) with its
    95 % bootstrap CI over independent units; returns ``(mean, low, high, n_units)``."""
    from benchmark.stats.significance import bootstrap_ci

    a = reference.groupby("image_id")[metric].mean()
    b = rerun.groupby("image_id")[metric].mean()
    common = a.index.intersection(b.index)
    if common.empty:
        return float("nan"), float("nan"), float("nan"), 0
    difference = (b[common] - a[common]).to_numpy(dtype=float)
    groups = (
        np.array([units.get(str(image), str(image)) for image in common]) if units else np.array(common.astype(str))
    )
    mean, low, high = bootstrap_ci(difference, groups=groups, n_resamples=n_resamples, seed=seed)
    return mean, low, high, int(np.unique(groups).size)


def dataset_units(dataset: str, prepared_root: Path, splits_root: Path) -> tuple[dict[str, str] | None, str]:
    """``({image_id: unit}, unit name)``: video sequences where the prepared data has them, else images
    (``None``); also images when the prepared data is not there (say so)."""
    from benchmark.data.prepared import PreparedDataset
    from benchmark.stats.units import dataset_units as units_of

    try:
        units = units_of(PreparedDataset(prepared_root / dataset, splits_root / f"{dataset}.json"))
    except Exception:  # noqa: BLE001 - no prepared data: fall back to images, named in the report
        return None, "image (prepared data not found)"
    return (None, "image") if units.name == "image" else (units.of_image, units.name)


@dataclasses.dataclass
class RunComparison:
    """The comparison of one run (see the module docstring)."""

    dataset: str
    run: str
    tables: tuple[str, ...]  # e.g. ("2", "7"); ("other",) for a run no table reads
    status: str  # "exact", "differs", "reference only", "rerun only"
    n_seeds: tuple[int, int] = (0, 0)
    dice_reference: float = math.nan
    dice_rerun: float = math.nan
    delta_dice: float = math.nan
    delta_iou: float = math.nan
    seed_std_reference: float = math.nan
    seed_std_rerun: float = math.nan
    welch_p: float = math.nan
    p_holm: float = math.nan
    unit: str = ""
    n_units: int = 0
    ci_low: float = math.nan
    ci_high: float = math.nan
    verdict: str = ""


def compare_run(
    dataset: str, run: str, reference: Path, rerun: Path, units: dict[str, str] | None, unit: str, tables: str
) -> RunComparison:
    """Compare one run's folders (``results/<dataset>/runs/<run>``) of the reference and the rerun."""
    from benchmark.stats.summary import mean_std, per_seed_means

    identical = all(_same_bytes(reference / name, rerun / name) for name in COMPARED_FILES)
    a = pd.read_csv(reference / "per_image.csv", dtype={"image_id": str})
    b = pd.read_csv(rerun / "per_image.csv", dtype={"image_id": str})
    seeds_a, seeds_b = per_seed_means(a, ("dice", "iou")), per_seed_means(b, ("dice", "iou"))
    (dice_a, std_a), (dice_b, std_b) = mean_std(seeds_a["dice"]), mean_std(seeds_b["dice"])
    result = RunComparison(
        dataset,
        run,
        tables,
        "exact" if identical else "differs",
        (len(seeds_a), len(seeds_b)),
        dice_a,
        dice_b,
        dice_b - dice_a,
        float(seeds_b["iou"].mean() - seeds_a["iou"].mean()),
        std_a if len(seeds_a) > 1 else math.nan,
        std_b if len(seeds_b) > 1 else math.nan,
        unit=unit,
    )
    if identical:
        result.welch_p, result.verdict = 1.0, "exact match"
        return result
    result.welch_p = welch_p(seeds_a["dice"].to_numpy(), seeds_b["dice"].to_numpy())
    _, result.ci_low, result.ci_high, result.n_units = unit_difference_ci(a, b, "dice", units)
    return result


def _same_bytes(a: Path, b: Path) -> bool:
    if not a.is_file() and not b.is_file():
        return True
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def judge(comparisons: list[RunComparison], alpha: float) -> None:
    """Holm-adjust the Welch p-values of the differing runs and write each run's verdict."""
    from benchmark.stats.significance import holm

    differing = [c for c in comparisons if c.status == "differs"]
    testable = [c for c in differing if not math.isnan(c.welch_p)]
    for comparison, adjusted in zip(testable, holm([c.welch_p for c in testable]) if testable else []):
        comparison.p_holm = float(adjusted)
        comparison.verdict = "EXCEEDS seed noise" if adjusted < alpha else "within seed noise"
    for comparison in differing:
        if math.isnan(comparison.welch_p):
            comparison.verdict = "cannot judge (fewer than 2 seeds)"


def table_membership(run: str, methods: list[str]) -> tuple[str, ...]:
    """The tables a run feeds, from its name (Table 2: ``train.methods``; 6: DiffAug's ablations; 7: volumes)."""
    import re

    from benchmark.reporting.studies import table6_rows

    tables = []
    if run in methods:
        tables.append("2")
    if run in table6_rows("diffaug").values():
        tables.append("6")
    if re.search(r"\+(diffaug(_v\d+)?|noaug)$", run):
        tables.append("7")
    return tuple(tables) or ("other",)


# ---------------------------------------------------------------------------------------------
# The whole comparison


@dataclasses.dataclass
class Report:
    locks: pd.DataFrame
    runs: list[RunComparison]
    alpha: float

    @property
    def failed(self) -> bool:
        return any(c.verdict.startswith("EXCEEDS") for c in self.runs)

    def runs_frame(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(c) for c in self.runs])

    def to_json(self) -> dict:
        frame = self.runs_frame()
        return {
            "alpha": self.alpha,
            "failed": self.failed,
            "locks": self.locks.to_dict(orient="records"),
            "runs": json.loads(frame.to_json(orient="records")) if not frame.empty else [],
        }


def verify(
    reference: Path, rerun_root: Path, *, results: Path | None = None, alpha: float = 0.01, params: Path | None = None
) -> Report:
    """Compare ``rerun_root`` (its ``results/`` or ``results``, its ``dvc.lock``, its prepared data for
    the units) with the reference folder; see the module docstring."""
    results = results or rerun_root / "results"
    if not results.is_dir():
        raise VerifyError(f"{results} does not exist: run `make repro` (or `dvc repro`) first, or pass --results")
    methods = sorted(
        set(_train_methods(params or rerun_root / "params.yaml")) | set(_train_methods(reference / "params.yaml"))
    )
    reference_runs, rerun_runs = run_folders(reference / "results"), run_folders(results)
    if not reference_runs:
        raise VerifyError(f"the reference {reference} holds no results/<dataset>/runs/<run>/per_image.csv")
    unit_cache: dict[str, tuple[dict | None, str]] = {}
    comparisons = []
    for key in sorted(set(reference_runs) | set(rerun_runs)):
        dataset, run = key
        tables = table_membership(run, methods)
        if key not in rerun_runs or key not in reference_runs:
            comparisons.append(
                RunComparison(
                    dataset,
                    run,
                    tables,
                    "reference only" if key not in rerun_runs else "rerun only",
                    verdict="not compared",
                )
            )
            continue
        if dataset not in unit_cache:
            unit_cache[dataset] = dataset_units(
                dataset, rerun_root / "data" / "prepared", rerun_root / "data" / "splits"
            )
        units, unit = unit_cache[dataset]
        comparisons.append(compare_run(dataset, run, reference_runs[key], rerun_runs[key], units, unit, tables))
    judge(comparisons, alpha)
    return Report(compare_locks(reference / "dvc.lock", rerun_root / "dvc.lock"), comparisons, alpha)


def _train_methods(params_path: Path) -> list[str]:
    try:
        return list((yaml.safe_load(params_path.read_text()) or {}).get("train", {}).get("methods") or [])
    except OSError:
        return []


def format_report(report: Report) -> str:
    """The printed report: bits first, then one line per run, then the verdict per table."""
    lines = []
    locks = report.locks
    if locks.empty:
        lines.append("dvc.lock: no outputs to compare (the reference or the rerun has no dvc.lock)")
    else:
        differing = locks[~locks["identical"]]
        lines.append(f"dvc.lock: {int(locks['identical'].sum())} of {len(locks)} data outputs identical (md5)")
        for _, row in differing.iterrows():
            lines.append(f"  differs: {row['path']} (stage {row['stage']})")
    frame = report.runs_frame()
    if frame.empty:
        return "\n".join(lines + ["no runs to compare"])
    exact = int((frame["status"] == "exact").sum())
    compared = int(frame["status"].isin(["exact", "differs"]).sum())
    lines.append(f"runs: {exact} of {compared} compared runs byte-identical (per_image.csv, lesions.csv)")
    lines.append("")
    header = (
        f"{'dataset':<14} {'run':<28} {'tables':<7} {'Dice ref':>8} {'rerun':>7} {'ΔDice pp':>9} {'seed sd pp':>11} "
        f"{'unit CI of Δ (pp)':>22} {'p Welch':>8} {'p Holm':>7}  verdict"
    )
    lines.append(header)
    for c in report.runs:
        if c.status in ("reference only", "rerun only"):
            continue
        spread = f"{c.seed_std_reference * 100:.2f}/{c.seed_std_rerun * 100:.2f}"
        ci = "" if c.status == "exact" else f"[{_pp(c.ci_low)}, {_pp(c.ci_high)}] n={c.n_units} {c.unit.split(' ')[0]}s"
        lines.append(
            f"{c.dataset:<14} {c.run:<28} {', '.join(c.tables):<7} {c.dice_reference:8.4f} {c.dice_rerun:7.4f} {_pp(c.delta_dice):>9} "
            f"{spread:>11} {ci:>22} {_p(c.welch_p):>8} {_p(c.p_holm):>7}  {c.verdict}"
        )
    for status in ("reference only", "rerun only"):
        alone = [f"{c.dataset}/{c.run}" for c in report.runs if c.status == status]
        if alone:
            lines.append(f"not compared, {status} ({len(alone)}): {', '.join(alone)}")
    lines.append("")
    lines.append("per table:")
    for table in sorted({table for c in report.runs for table in c.tables}):
        members = [c for c in report.runs if table in c.tables and c.status in ("exact", "differs")]
        if not members:
            continue
        worst = max(members, key=lambda c: abs(c.delta_dice) if not math.isnan(c.delta_dice) else -1)
        n_exact = sum(c.status == "exact" for c in members)
        n_exceed = sum(c.verdict.startswith("EXCEEDS") for c in members)
        label = f"Table {table}" if table != "other" else "other runs"
        lines.append(
            f"  {label}: {len(members)} runs, {n_exact} exact, {n_exceed} beyond seed noise; "
            f"largest |ΔDice| {abs(worst.delta_dice) * 100:.2f} pp ({worst.dataset} {worst.run})"
        )
    lines.append("")
    data_identical = locks.empty or bool(locks["identical"].all())
    if report.failed:
        verdict = "FAIL: a difference exceeds what seed noise explains"
    elif exact == compared and data_identical:
        verdict = "exact match"
    elif exact == compared:
        verdict = (
            "results byte-identical; some data outputs have another md5 (e.g. .npz containers written by another "
            "Python or zlib version hold the same arrays in other zip headers)"
        )
    else:
        verdict = "OK: every difference is within seed noise"
    lines.append(f"verdict (alpha {report.alpha:g}, Holm over the differing runs): {verdict}")
    return "\n".join(lines)


def _pp(value: float) -> str:
    """A fraction in percentage points with sign ("+1.25", "-0.40"); "0.00" below 0.005 points, "–" for NaN."""
    if value is None or math.isnan(value):
        return "–"
    return "0.00" if abs(value) < 5e-5 else f"{value * 100:+.2f}"


def _p(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.verify",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        "--reference",
        default="HEAD",
        help="a git revision (default HEAD: the committed results) or another clone's folder",
    )
    parser.add_argument(
        "--root",
        default=".",
        help="the rerun's repository root (default: the working copy, also where a git --reference is read)",
    )
    parser.add_argument("--results", default=None, help="the rerun's results folder (default: <root>/results)")
    parser.add_argument(
        "--alpha", type=float, default=0.01, help="family-wise level of the seed-noise check (default 0.01)"
    )
    parser.add_argument("--json", default=None, help="also write the comparison as JSON here")
    parser.add_argument(
        "--procedural",
        action="store_true",
        help="only regenerate the procedural datasets (about a minute) and compare their md5 with dvc.lock",
    )
    args = parser.parse_args(argv)
    if not 0 < args.alpha < 1:
        parser.error(f"--alpha must be in (0, 1), got {args.alpha}")
    root = Path(args.root).resolve()
    if args.procedural:
        return _main_procedural(root)
    try:
        with tempfile.TemporaryDirectory(prefix="verify-reference-") as scratch:
            reference = materialise_reference(args.reference, Path.cwd(), Path(scratch))
            report = verify(reference, root, results=Path(args.results) if args.results else None, alpha=args.alpha)
    except (VerifyError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        from benchmark.utils.io import write_json

        write_json(args.json, report.to_json())
    return 1 if report.failed else 0


def _main_procedural(root: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="verify-procedural-") as scratch:
        try:
            result = check_procedural(root / "params.yaml", root / "dvc.lock", Path(scratch))
        except subprocess.CalledProcessError as error:
            print(f"error: the procedural stage failed:\n{error.stderr.decode(errors='replace')}", file=sys.stderr)
            return 2
    from benchmark import numerics

    print(f"numeric code path: {numerics.level()}")
    for dataset, (committed, fresh) in result.items():
        verdict = "identical" if committed == fresh else ("not in dvc.lock" if not committed else "DIFFERS")
        print(f"{dataset}: dvc.lock {committed or '–'}  fresh {fresh}  {verdict}")
    return 0 if result and all(committed == fresh for committed, fresh in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
