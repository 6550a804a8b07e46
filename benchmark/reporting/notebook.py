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

    The paired differences come from ``results/<dataset>/comparisons.csv`` (``compare@<dataset>``).
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    datasets: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Table3Parameters:
    """Parameters of ``notebooks/table3_lesions.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with ``<dataset>/<method>/lesions.csv`` and ``per_image.csv``.
        datasets: datasets; empty = every dataset in ``prepare.datasets``.
        methods: methods; empty = every method in ``train.methods``.
        reference: the method the relative FNR reduction is computed against.
        n_resamples: bootstrap replicates of the FNR CIs.
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    datasets: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    reference: str = "unet"
    n_resamples: int = 10000


@dataclasses.dataclass(frozen=True)
class Table4Parameters:
    """Parameters of ``notebooks/table4_efficiency.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with the evaluate outputs and ``benchmarks/`` (benchmark scripts' files).
        models_dir: folder with ``<dataset>/<run>/seed_k/run.json`` (training time, hardware).
        datasets: datasets; empty = every dataset in ``prepare.datasets``.
        methods: runs; empty = every run in ``train.methods``.
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    models_dir: str = "models"
    datasets: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Table5Parameters:
    """Parameters of ``notebooks/table5_quality.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with ``<dataset>/quality/summary.json``.
        datasets: datasets; empty = every dataset in ``prepare.datasets``.
        gallery_samples: accepted and rejected samples shown per dataset.
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    datasets: tuple[str, ...] = ()
    gallery_samples: int = 6


@dataclasses.dataclass(frozen=True)
class Table6Parameters:
    """Parameters of ``notebooks/table6_ablation.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with the evaluate outputs and ``<dataset>/synthesize*/summary.json``.
        dataset: the ablation dataset; empty = the first of ``ablation.datasets``.
        segmenter: the segmenter whose ablations are shown (DiffAug's: "diffaug").
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    dataset: str = ""
    segmenter: str = "diffaug"


@dataclasses.dataclass(frozen=True)
class Table7Parameters:
    """Parameters of ``notebooks/table7_volume.ipynb``.

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with the evaluate outputs.
        dataset: the ablation dataset; empty = the first of ``ablation.datasets``.
        segmenter: the segmenter trained at every volume (its runs must be in ``ablation.runs``).
        n_resamples: bootstrap replicates of the CIs.
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    dataset: str = ""
    segmenter: str = "unet"
    n_resamples: int = 10000


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


@dataclasses.dataclass(frozen=True)
class GeneratorScaleParameters:
    """Parameters of ``notebooks/generator_scale.ipynb`` (the opt-in generator-scale study).

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with ``studies/generator_scale_<dataset>.json``.
        dataset: the study's dataset.
        background: which gallery background to show (index into each gallery).
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    dataset: str = "synth_polyp"
    background: int = 0


@dataclasses.dataclass(frozen=True)
class CrossDatasetParameters:
    """Parameters of ``notebooks/cross_dataset.ipynb`` (cross-dataset generalisation, beyond the paper).

    Attributes:
        params_path: the params file of the run being reported.
        results_dir: folder with ``<dataset>/cross/summary.csv`` (``cross@<dataset>``).
        datasets: training datasets shown; empty = every dataset of ``cross.datasets`` (else ``prepare.datasets``).
    """

    params_path: str = "params.yaml"
    results_dir: str = "results"
    datasets: tuple[str, ...] = ()


NOTEBOOK_PARAMETERS = {
    "table1_datasets": Table1Parameters,
    "table2_segmentation": Table2Parameters,
    "table3_lesions": Table3Parameters,
    "table4_efficiency": Table4Parameters,
    "table5_quality": Table5Parameters,
    "table6_ablation": Table6Parameters,
    "table7_volume": Table7Parameters,
    "generator": GeneratorParameters,
    "generator_scale": GeneratorScaleParameters,
    "cross_dataset": CrossDatasetParameters,
}


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
    user = {
        key: value
        for key, value in namespace.items()
        if not key.startswith("_")
        and key not in _KERNEL_NAMES
        and not callable(value)
        and type(value).__name__ != "module"
    }
    unknown = sorted(set(user) - names)
    if unknown:
        raise ParamsError(f"notebooks/{notebook}.ipynb: unknown parameter(s) {unknown}; parameters are {sorted(names)}")
    return from_mapping(
        cls, {key: user[key] for key in names if key in user}, where="", source=f"notebooks/{notebook}.ipynb"
    )
