"""Parameters of the report notebooks, validated like params.yaml sections.

A notebook's first cell (tagged ``parameters``) holds literals only; papermill injects
overrides after it; the next cell calls :func:`validate` with ``globals()``, which rejects
names that are not parameters (a typo in ``-p``) and values of the wrong type.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from benchmark.config import ParamsError, from_mapping

# Names an IPython kernel defines before any user cell runs.
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


@dataclasses.dataclass(frozen=True)
class Table1Parameters:
    """Parameters of ``notebooks/table1_datasets.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        datasets: datasets to show; empty = every dataset in ``prepare.datasets``.
        gallery_samples: images per dataset in the gallery.
    """

    params_path: str = "params.yaml"
    datasets: tuple[str, ...] = ()
    gallery_samples: int = 6


@dataclasses.dataclass(frozen=True)
class Table2Parameters:
    """Parameters of ``notebooks/table2_segmentation.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with ``<dataset>/<method>/per_image.csv`` and ``metrics.json``.
        datasets: datasets (columns); empty = every dataset in ``prepare.datasets``.
        methods: methods (rows); empty = every method in ``train.methods``.
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    datasets: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class GeneratorParameters:
    """Parameters of ``notebooks/generator.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with ``<dataset>/autoencoder`` and ``<dataset>/generator`` results.
        datasets: datasets to show; empty = every dataset in ``prepare.datasets``.
        background: which gallery background to show (index into the gallery).
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    datasets: tuple[str, ...] = ()
    background: int = 0


NOTEBOOK_PARAMETERS = {"table1_datasets": Table1Parameters, "table2_segmentation": Table2Parameters, "generator": GeneratorParameters}


def validate(namespace: dict[str, Any], notebook: str) -> Any:
    """Build the notebook's parameter dataclass from the kernel's user variables.

    Args:
        namespace: ``globals()`` of the notebook right after the parameter cells.
        notebook: notebook name, a key of :data:`NOTEBOOK_PARAMETERS`.

    Raises:
        ParamsError: for a name that is no parameter (e.g. ``papermill -p dataset x`` instead
            of ``datasets``) or a value of the wrong type.
    """
    cls = NOTEBOOK_PARAMETERS[notebook]
    names = {field.name for field in dataclasses.fields(cls)}
    user = {key: value for key, value in namespace.items() if not key.startswith("_") and key not in _KERNEL_NAMES and not callable(value) and type(value).__name__ != "module"}
    unknown = sorted(set(user) - names)
    if unknown:
        raise ParamsError(f"notebooks/{notebook}.ipynb: unknown parameter(s) {unknown}; parameters are {sorted(names)}")
    return from_mapping(cls, {key: user[key] for key in names if key in user}, where="", source=f"notebooks/{notebook}.ipynb")
