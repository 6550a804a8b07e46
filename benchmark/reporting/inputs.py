"""What the report notebooks read besides ``results/``, and a clear, early error where it is missing.

The committed ``results/`` and ``reports/`` hold every figure of the default run, but some notebooks
also read intermediate files the pipeline writes and git does not carry (they are large and
reproducible): prepared images and masks (galleries, lesion strata), accepted synthetic samples
(Table 5's galleries) and the trained models' ``run.json`` files (Table 4's training times). On a
fresh clone those are absent, and ``dvc repro report`` would silently retrain everything first
(about an hour on 2 CPU cores). So ``make reports``, the report stage and every notebook check here
first and stop at once with :data:`HOW_TO_FIX`.

    python -m benchmark.reporting.inputs [--params params.yaml] [NOTEBOOK ...]

exits 1 with the message where something is missing (``make reports`` runs it before ``dvc repro report``).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: per notebook, the kinds of pipeline intermediates it reads (none: ``results/`` and committed splits only)
NEEDS: dict[str, tuple[str, ...]] = {
    "table1_datasets": ("prepared",),
    "table2_segmentation": ("prepared",),
    "table3_lesions": ("prepared",),
    "table4_efficiency": ("models",),
    "table5_quality": ("prepared", "synthetic"),
    "table6_ablation": (),
    "table7_volume": ("prepared",),
    "generator": (),
    "generator_scale": (),
    "cross_dataset": ("prepared",),  # the modality of each dataset (manifest.json): which pairs exist
}

#: where each kind lives, per dataset
LOCATIONS = {
    "prepared": "data/prepared/{dataset}",
    "synthetic": "data/synthetic/{dataset}",
    "models": "models/{dataset}/runs",
}

HOW_TO_FIX = (
    "the reports read pipeline files that git does not carry (data/prepared, data/synthetic, models/): "
    "run `make repro` (the whole default `dvc repro`, about 60 min on 2 CPU cores) first; afterwards `make reports` "
    "and the papermill examples rerun in seconds. The committed reports/ already show the default run's results."
)


class ReportInputsMissing(FileNotFoundError):
    """A report notebook's pipeline inputs are absent (a fresh clone before ``make repro``)."""


def missing_inputs(notebooks, datasets, root: str | Path = ".") -> list[str]:
    """The missing paths (relative to ``root``) that ``notebooks`` read for ``datasets``, sorted.

    Raises:
        KeyError: for a notebook name this module does not know (add it to :data:`NEEDS`).
    """
    root = Path(root)
    missing = set()
    for notebook in notebooks:
        if notebook not in NEEDS:
            raise KeyError(
                f"benchmark/reporting/inputs.py: notebook {notebook!r} is not in NEEDS; add what it reads there"
            )
        for kind in NEEDS[notebook]:
            for dataset in datasets:
                path = LOCATIONS[kind].format(dataset=dataset)
                if not (root / path).exists():
                    missing.add(path)
    return sorted(missing)


def require_inputs(notebooks, datasets, root: str | Path = ".") -> None:
    """Raise :class:`ReportInputsMissing` naming every missing path and :data:`HOW_TO_FIX`; else nothing."""
    missing = missing_inputs(list(notebooks), list(datasets), root)
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise ReportInputsMissing(f"{shown} missing: {HOW_TO_FIX}")


def require_for(notebook: str, parameters) -> None:
    """The check a notebook runs after its parameter cell: its own needs, for the datasets it shows."""
    from benchmark.config import load_section

    datasets = list(getattr(parameters, "datasets", ()) or ()) or list(
        load_section("prepare", parameters.params_path).datasets
    )
    require_inputs([notebook], datasets)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from benchmark.config import load_section

    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("notebooks", nargs="*", help="default: report.notebooks of --params")
    args = cli.parse_args(argv)
    notebooks = args.notebooks or list(load_section("report", args.params).notebooks)
    try:
        require_inputs(notebooks, list(load_section("prepare", args.params).datasets))
    except ReportInputsMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
