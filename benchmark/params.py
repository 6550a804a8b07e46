"""Schemas of the params.yaml sections; one section per DVC stage, same name.

``SECTIONS`` maps a section name to a parser ``(mapping, source) -> frozen dataclass``; the
stages call :func:`benchmark.config.load_section`. Run ``python -m benchmark.params`` to check
a whole params file (the smoke test does this for the committed one).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from typing import Any, Literal

from benchmark.config import ParamsError, from_mapping, load_section, read_yaml
from benchmark.data.folder import FolderOptions
from benchmark.data.procedural.fundus import SynthFundusConfig
from benchmark.data.procedural.polyp import SynthPolypConfig
from benchmark.generators.configs import AutoencoderConfig, LatentGeneratorConfig, SDXLInpaintingConfig

#: datasets the ``procedural`` stage renders (the only ones with oracle data)
PROCEDURAL_DATASETS = ("synth_polyp", "synth_fundus")


@dataclasses.dataclass(frozen=True)
class ProceduralParams:
    """``procedural``: the embedded datasets, generated from one seed.

    Attributes:
        seed: base seed of both generators' training worlds (frame i of synth_polyp uses a seed hashed from it).
        test_seed: base seed of the reported test worlds (synth_polyp's ``test_sequences``, synth_fundus's
            test part). Keep it apart from ``seed`` and from every seed used while tuning: nothing that
            chose a default may have seen the test world. Change it to draw a fresh one.
        output_dir: where the datasets are written (one folder per dataset).
        synth_polyp: generator settings, see :class:`SynthPolypConfig`.
        synth_fundus: generator settings, see :class:`SynthFundusConfig`.
    """

    seed: int = 0
    test_seed: int = 1
    output_dir: str = "data/procedural"
    synth_polyp: SynthPolypConfig = SynthPolypConfig()
    synth_fundus: SynthFundusConfig = SynthFundusConfig()


@dataclasses.dataclass(frozen=True)
class PrepareParams:
    """``prepare``: which datasets run, and how they become training arrays.

    Attributes:
        datasets: dataset name (a key of ``benchmark.data.DATASETS``, or of ``folders``) -> folder
            holding it as published. Every listed dataset runs through every later stage.
        folders: datasets of your own read by the folder loader (``images/`` + ``masks/``, see
            :mod:`benchmark.data.folder`): name (also a key of ``datasets``) -> options
            (``modality``; optional ``test_fraction``, ``mask_threshold``).
        image_size: side of the square training images (64 on CPU; 256 at paper scale).
        val_fraction: share of the training pool carved out for checkpoint selection.
        split_seed: seed of the train/val/test draw (ids are sorted first).
        fundus_target: "cup" (optic cup only, as SDSeg) or "disc" (whole disc).
        fundus_crop_scale: side of the disc-centred crop, in disc heights.
        min_lesion_fraction: components smaller than this share of the image are not lesions.
        workers: processes reading and resizing images (1: in the stage's process). The prepared
            files do not depend on it, so dvc.yaml does not list it.
    """

    datasets: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "synth_polyp": "data/procedural/synth_polyp",
            "synth_fundus": "data/procedural/synth_fundus",
        }
    )
    folders: dict[str, FolderOptions] = dataclasses.field(default_factory=dict)
    image_size: int = 64
    val_fraction: float = 0.15
    split_seed: int = 0
    fundus_target: Literal["cup", "disc"] = "cup"
    fundus_crop_scale: float = 2.0
    min_lesion_fraction: float = 0.0005
    workers: int = 2

    def __post_init__(self):
        from benchmark.data import DATASETS

        for name in self.datasets:
            if name not in DATASETS and name not in self.folders:
                raise ValueError(
                    f"datasets lists unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}. For a dataset of "
                    f"your own in images/ + masks/, add it under prepare.folders ({name}: {{modality: polyp}}), or "
                    "use one of the registered names"
                )
        for name in self.folders:
            if name not in self.datasets:
                raise ValueError(
                    f"folders lists {name!r}, which datasets does not; add '{name}: <its folder>' under "
                    "prepare.datasets, or remove it from prepare.folders"
                )
            if name in DATASETS:
                raise ValueError(f"folders lists {name!r}, a registered dataset name; give your dataset another name")
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ValueError(
                    f"folders lists {name!r}; a dataset name becomes a stage and folder name (prepare@{name}): "
                    "use letters, digits, '_' and '-' only"
                )
        if not self.datasets:
            raise ValueError("datasets is empty; list at least one dataset")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1 (1 runs in the stage's process), got {self.workers}")
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 and >= 16, got {self.image_size}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.fundus_crop_scale < 1:
            raise ValueError(
                f"fundus_crop_scale must be >= 1 (the crop holds the whole disc), got {self.fundus_crop_scale}"
            )


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """``train``: every method on every dataset, several seeds.

    Attributes:
        methods: runs to train: a method (key of ``benchmark.methods.METHODS``), optionally with
            its training data, ``<method>+real`` or ``<method>+diffaug`` (see
            ``benchmark.methods.runs``).
        n_seeds: independent runs per dataset and method (seeds hashed from ``base_seed``).
        base_seed: base of every training seed.
        threads: CPU threads the stage may use in all (torch threads per process when it runs alone).
        workers: processes that train and evaluate seeds in parallel, ``threads // workers`` threads
            each (two one-thread processes do more work than one two-thread process on this
            suite's small networks: 1.3x for a U-Net step at 64²); results do not depend on it.
        synthetic_budget: training length of runs with synthetic data: "equal_steps" (exactly the
            optimizer steps of the same method on the real split: same epochs, each a random draw of
            n_real samples from real + synthetic; the augmentation axis compares data at equal compute) or "equal_epochs" (the method's epochs over real + synthetic).
        method_configs: one section per method, e.g. ``train.unet``; parsed with the method's
            ``Config``. Methods without a section use their defaults.
    """

    methods: tuple[str, ...] = ("unet",)
    n_seeds: int = 3
    base_seed: int = 2024
    threads: int = 2
    workers: int = 2
    synthetic_budget: Literal["equal_steps", "equal_epochs"] = "equal_steps"
    method_configs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {self.n_seeds}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    def config_of(self, method: str) -> Any:
        """The parsed config of ``method`` (defaults when params.yaml has no section)."""
        from benchmark.methods import get_method

        return self.method_configs.get(method) or get_method(method).Config()


@dataclasses.dataclass(frozen=True)
class EvaluateParams:
    """``evaluate``: per-image metrics on the test split.

    Attributes:
        threshold: probability threshold (fixed, never tuned on test).
        min_lesion_fraction: lesion-level detection ignores ground-truth components smaller than
            this share of the image (DATASETS.md, "Lesion-level strata").
        detection_iou: a lesion is detected when its best-overlapping predicted component has
            IoU >= this (0.5, the primary rule; any overlap is recorded as well).
        inference_steps: sampling-step counts among which every iterative method's inference is
            chosen per seed on the validation split (latent segmenters also try the single-step
            estimate); empty = each method's configured default.
    """

    threshold: float = 0.5
    min_lesion_fraction: float = 0.0005
    detection_iou: float = 0.5
    inference_steps: tuple[int, ...] = (1, 5, 10, 20)

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0 <= self.min_lesion_fraction < 1:
            raise ValueError(f"min_lesion_fraction must be in [0, 1), got {self.min_lesion_fraction}")
        if not 0 < self.detection_iou <= 1:
            raise ValueError(f"detection_iou must be in (0, 1], got {self.detection_iou}")
        if any(n < 1 for n in self.inference_steps):
            raise ValueError(f"inference_steps must be positive step counts, got {self.inference_steps}")


@dataclasses.dataclass(frozen=True)
class CrossParams:
    """``cross``: cross-dataset generalisation, beyond the paper (stage ``cross@<dataset>``).

    The models trained on dataset A are scored on the test split of every other dataset B of the
    same modality (``modality`` of ``data/prepared/<name>/manifest.json``); they never see B in training.
    See :mod:`benchmark.reporting.cross`.

    Attributes:
        runs: runs scored out of domain, each trained by ``train@A`` (``train.methods``, or ``ablation.runs``
            on ``ablation.datasets``; a run A does not train is skipped there). Each run with synthetic data
            (``unet+diffaug``, DiffAug's ``diffaug``) is compared with the same method's real-only run
            (``unet``, ``diffaug+real``) where both are listed.
        datasets: the datasets taking part, as training and as test sets (keys of ``prepare.datasets``);
            empty = all of ``prepare.datasets``.
    """

    runs: tuple[str, ...] = ("unet", "unet+diffaug")
    datasets: tuple[str, ...] = ()

    def __post_init__(self):
        from benchmark.methods.runs import parse_run

        if not self.runs:
            raise ValueError("runs is empty; list at least one run, e.g. [unet, unet+diffaug]")
        for run in self.runs:
            try:
                parse_run(run)
            except KeyError as error:
                raise ValueError(f"runs lists {run!r}: {error.args[0]}") from None
        for name, values in (("runs", self.runs), ("datasets", self.datasets)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists {sorted(v for v in values if values.count(v) > 1)} twice")


@dataclasses.dataclass(frozen=True)
class ReportParams:
    """``report``: notebooks rendered by papermill into ``reports/``.

    Attributes:
        notebooks: notebook names under ``notebooks/`` (without ``.ipynb``).
        html: also export each executed notebook to HTML.
        timeout_s: per-cell execution timeout.
    """

    notebooks: tuple[str, ...] = (
        "table1_datasets",
        "table2_segmentation",
        "table3_lesions",
        "table4_efficiency",
        "table5_quality",
        "table6_ablation",
        "table7_volume",
        "generator",
        "cross_dataset",
    )
    html: bool = True
    timeout_s: int = 600


@dataclasses.dataclass(frozen=True)
class AutoencoderParams(AutoencoderConfig):
    """``autoencoder``: the latent autoencoder of each dataset (shared by generator and validator).

    Every field of :class:`~benchmark.generators.autoencoder.AutoencoderConfig` (architecture,
    training length, or ``pretrained_path`` to load a local SD / SDXL VAE instead), plus:

    Attributes:
        seed: seeds initialisation and batches (hashed with the dataset name).
    """

    seed: int = 0

    @property
    def config(self) -> AutoencoderConfig:
        return AutoencoderConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(AutoencoderConfig)})


@dataclasses.dataclass(frozen=True)
class GeneratorParams:
    """``generator``: DiffAug's inpainting generator of each dataset, and how it samples.

    Attributes:
        backend: a key of ``benchmark.generators.GENERATORS``: "latent" (small latent diffusion
            model trained here) or "sdxl_inpainting" (SDXL-inpainting + LoRA from a local folder).
        seed: seeds training, prompt paraphrases and placements (hashed with the dataset name).
        prompt_variant: "diverse" (attribute-based paraphrases), "basic" (one fixed prompt) or "none"
            (empty prompt: no text guidance).
        steps: DDIM steps at sampling (paper: 50).
        guidance_scale: classifier-free guidance scale s of eq. 8 (paper: 7.5).
        latent: settings of the "latent" backend.
        sdxl_inpainting: settings of the "sdxl_inpainting" backend (``pretrained_path`` is
            required when it is selected).
    """

    backend: Literal["latent", "sdxl_inpainting"] = "latent"
    seed: int = 0
    prompt_variant: Literal["diverse", "basic", "none"] = "diverse"
    steps: int = 20
    guidance_scale: float = 3.0
    latent: LatentGeneratorConfig = LatentGeneratorConfig()
    sdxl_inpainting: SDXLInpaintingConfig = SDXLInpaintingConfig()

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {self.guidance_scale}")
        if self.backend == "sdxl_inpainting" and not self.sdxl_inpainting.pretrained_path:
            raise ValueError(
                "backend sdxl_inpainting needs sdxl_inpainting.pretrained_path: a local folder written by "
                "StableDiffusionXLInpaintPipeline.save_pretrained (no weights are downloaded)"
            )


@dataclasses.dataclass(frozen=True)
class GeneratorCheckParams:
    """``generator_check``: the gallery and the "does the text matter" test of each generator.

    Attributes:
        n_pairs: paired samples per prompt contrast (same background, mask and seed; only the
            prompt differs); drawn from the validation split's backgrounds.
        gallery_backgrounds: backgrounds shown in the gallery.
        gallery_seeds: samples per prompt and background in the gallery.
        seed: seeds the choice of backgrounds, masks and sampling seeds.
    """

    n_pairs: int = 48
    gallery_backgrounds: int = 2
    gallery_seeds: int = 3
    seed: int = 0

    def __post_init__(self):
        if self.n_pairs < 4 or self.gallery_backgrounds < 1 or self.gallery_seeds < 1:
            raise ValueError(
                f"need n_pairs >= 4, gallery_backgrounds >= 1, gallery_seeds >= 1; got {self.n_pairs}, "
                f"{self.gallery_backgrounds}, {self.gallery_seeds}"
            )


@dataclasses.dataclass(frozen=True)
class ValidatorParams:
    """``validator``: the quality gate, DiffAug's latent segmenter (``train.diffaug``) on real data only.

    Attributes:
        seed: seeds its training (hashed with the dataset name).
        epochs: its training epochs (null: ``train.diffaug.epochs``); the gate is trained once per
            dataset, so it may train longer than each of the segmenter's seeds.
    """

    seed: int = 0
    epochs: int | None = None

    def __post_init__(self):
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 or null, got {self.epochs}")


@dataclasses.dataclass(frozen=True)
class SynthesizeParams:
    """``synthesize``: the generation–validation loop.

    Attributes:
        seed: seeds donors, placements, prompts and sampling seeds (hashed with the dataset name).
        theta: IoU acceptance threshold θ (paper 0.7; accepted when IoU > θ).
        volume: synthetic volume (× real training images) that DiffAug's segmenter and the
            "+DiffAug" baselines train with (paper 3).
        volumes: every volume studied in Table 7; the loop generates until the largest is reached.
        n_variants: variants per background (paper 5–10).
        top_up: keep generating beyond the planned variants when too few were accepted
            (the paper does not regenerate rejected samples: false).
        top_up_rounds: extra variants per background available to top-up.
        batch_size: samples per generator call.
        workers: processes generating and validating batches in parallel (``train.threads //
            workers`` threads each); the accepted set does not depend on it.
        min_validator_pass_rate: measured before generating: the share of real validation lesion
            images whose validator IoU exceeds θ (``results/<dataset>/validator/metrics.json``) is
            the ceiling of any acceptance rate; below this share the stage stops at once and says
            how to strengthen the validator, instead of spending the whole job budget (0: never stop).
    """

    seed: int = 0
    theta: float = 0.7
    volume: float = 1.0
    volumes: tuple[float, ...] = (0.5, 1.0)
    n_variants: int = 5
    top_up: bool = False
    top_up_rounds: int = 5
    batch_size: int = 32
    workers: int = 1
    min_validator_pass_rate: float = 0.1

    def __post_init__(self):
        if not 0 <= self.min_validator_pass_rate <= 1:
            raise ValueError(f"min_validator_pass_rate must be in [0, 1], got {self.min_validator_pass_rate}")
        if not 0 <= self.theta < 1:
            raise ValueError(f"theta must be in [0, 1), got {self.theta}")
        if not self.volumes or min(self.volumes) <= 0:
            raise ValueError(f"volumes must be positive multiples of the real training set, got {self.volumes}")
        if not 0 < self.volume <= max(self.volumes):
            raise ValueError(
                f"volume {self.volume} must be positive and at most max(volumes) = {max(self.volumes)} (only that much is generated)"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.n_variants < 1 or self.batch_size < 1 or self.top_up_rounds < 0:
            raise ValueError(
                f"need n_variants >= 1, batch_size >= 1, top_up_rounds >= 0; got {self.n_variants}, {self.batch_size}, {self.top_up_rounds}"
            )


@dataclasses.dataclass(frozen=True)
class ControlsParams:
    """``controls``: the control data of Table 7 and the augmentation matrix (stage ``controls@<dataset>``).

    Attributes:
        feather_px: σ (pixels) of the feathered edge of copy-paste lesions (0: a hard edge).
        oracle_seed: base seed of the oracle world (fresh procedural frames); must differ from
            ``procedural.seed`` (the training world) and ``procedural.test_seed`` (the test world).
    """

    feather_px: float = 1.5
    oracle_seed: int = 2

    def __post_init__(self):
        if not self.feather_px >= 0:
            raise ValueError(f"feather_px must be >= 0, got {self.feather_px}")


@dataclasses.dataclass(frozen=True)
class QualityParams:
    """``quality``: Table 5, accepted vs rejected generations against real lesion images.

    Attributes:
        seed: seeds the equal-n subsampling, the bootstraps and KID's subsets.
        max_images: n per compared set (accepted, rejected, real) = min(this, half the smallest pool).
        bootstrap: random equal-n subsets behind FID's mean and 95 % range.
        kid_subsets: random subsets of KID.
        kid_subset_size: images per KID subset (capped at n).
        lpips_reference: real images each generated sample is compared with (nearest one counts).
        inception_weights_path: local torch-fidelity Inception file
            (``weights-inception-2015-12-05-6726825d.pth``); null = domain features.
        thetas: thresholds of the acceptance sweep (Table 5, right part).
    """

    seed: int = 0
    max_images: int = 300
    bootstrap: int = 200
    kid_subsets: int = 100
    kid_subset_size: int = 50
    lpips_reference: int = 50
    inception_weights_path: str | None = None
    thetas: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)

    def __post_init__(self):
        if min(self.max_images, self.bootstrap, self.kid_subsets, self.kid_subset_size, self.lpips_reference) < 2:
            raise ValueError("max_images, bootstrap, kid_subsets, kid_subset_size and lpips_reference must be >= 2")
        if not self.thetas or not all(0 <= theta < 1 for theta in self.thetas):
            raise ValueError(f"thetas must be in [0, 1), got {self.thetas}")


@dataclasses.dataclass(frozen=True)
class AblationParams:
    """``ablation``: the studies run on some datasets only (stages ``ablation_generator`` and
    ``ablation_synthesize``; their runs train in ``train@<dataset>``; paper: CVC-ClinicDB).

    Attributes:
        datasets: keys of ``prepare.datasets``; on these the main synthesize stage generates up to
            ``max(synthesize.volumes)`` (Table 7) and every run of ``runs`` trains.
        synthetic_sets: ablation synthetic sets (keys of ``benchmark.methods.runs.SYNTHETIC_SETS``:
            "notext", a generator trained and sampled without text; "basic", with the basic prompt).
        runs: runs (``<method>+<data>``, see ``benchmark.methods.runs``) trained on these datasets
            besides ``train.methods``: the augmentation × architecture matrix, Table 6, Table 7
            and the θ sweep's downstream Dice.
    """

    datasets: tuple[str, ...] = ()
    synthetic_sets: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()

    def __post_init__(self):
        from benchmark.methods.runs import SYNTHETIC_SETS, parse_run, parse_synthetic

        for name in self.synthetic_sets:
            if name not in SYNTHETIC_SETS:
                raise ValueError(f"synthetic_sets lists {name!r}; known: {', '.join(SYNTHETIC_SETS)}")
        for run in self.runs:
            try:
                spec = parse_synthetic(parse_run(run)[1])
            except KeyError as error:
                raise ValueError(f"runs lists {run!r}: {error.args[0]}") from None
            if spec is not None and spec.set != "main" and spec.set not in self.synthetic_sets:
                raise ValueError(
                    f"runs lists {run!r}, which needs the synthetic set {spec.set!r}; add it to ablation.synthetic_sets"
                )
        if len(set(self.runs)) != len(self.runs):
            raise ValueError(f"runs lists a run twice: {sorted(r for r in self.runs if self.runs.count(r) > 1)}")


def _parse_train(mapping: Any, source: str) -> TrainParams:
    from benchmark.methods import METHODS, get_method

    mapping = dict(mapping or {})
    if "method_configs" in mapping:
        raise ParamsError(f"{source}: write method settings as 'train.<method>' sections, not 'train.method_configs'")
    configs = {}
    for name in list(mapping):
        if name in METHODS:
            configs[name] = from_mapping(
                get_method(name).Config, mapping.pop(name), where=f"train.{name}", source=source
            )
    params = from_mapping(TrainParams, mapping, where="train", source=source)
    from benchmark.methods.runs import parse_run

    for run in params.methods:
        try:
            parse_run(run)
        except KeyError as error:
            raise ParamsError(f"{source}: train.methods lists {run!r}: {error.args[0]}") from None
    return dataclasses.replace(params, method_configs=configs)


def _simple(cls: type, section: str) -> Callable[[Any, str], Any]:
    return lambda mapping, source: from_mapping(cls, mapping, where=section, source=source)


SECTIONS: dict[str, Callable[[Any, str], Any]] = {
    "procedural": _simple(ProceduralParams, "procedural"),
    "prepare": _simple(PrepareParams, "prepare"),
    "train": _parse_train,
    "autoencoder": _simple(AutoencoderParams, "autoencoder"),
    "generator": _simple(GeneratorParams, "generator"),
    "generator_check": _simple(GeneratorCheckParams, "generator_check"),
    "validator": _simple(ValidatorParams, "validator"),
    "synthesize": _simple(SynthesizeParams, "synthesize"),
    "controls": _simple(ControlsParams, "controls"),
    "quality": _simple(QualityParams, "quality"),
    "ablation": _simple(AblationParams, "ablation"),
    "evaluate": _simple(EvaluateParams, "evaluate"),
    "cross": _simple(CrossParams, "cross"),
    "report": _simple(ReportParams, "report"),
}


def check_params(path: str = "params.yaml") -> dict[str, Any]:
    """Parse every section of ``path``; raises :class:`ParamsError` on the first problem."""
    read_yaml(path)
    sections = {section: load_section(section, path) for section in SECTIONS}
    check_consistency(sections, path)
    return sections


def check_consistency(sections: dict[str, Any], source: str = "params.yaml") -> None:
    """Rules across sections: ablation datasets are prepared, its runs are not also in train.methods
    (a run is listed once; both lists train into ``models/<dataset>/runs/<run>``).

    Raises:
        ParamsError: naming both keys and the fix.
    """
    ablation, prepare, train = sections["ablation"], sections["prepare"], sections["train"]
    missing = [name for name in ablation.datasets if name not in prepare.datasets]
    if missing:
        raise ParamsError(
            f"{source}: ablation.datasets lists {missing}, not in prepare.datasets ({', '.join(prepare.datasets)}); "
            f"add them there or remove them from ablation.datasets"
        )
    both = sorted(set(ablation.runs) & set(train.methods))
    if both:
        raise ParamsError(
            f"{source}: {both} are listed in both train.methods and ablation.runs; keep each run in one list"
        )
    from benchmark.methods.runs import parse_run, parse_synthetic

    oracle_runs = [
        run for run in ablation.runs if getattr(parse_synthetic(parse_run(run)[1]), "source", None) == "oracle"
    ]
    real = [name for name in ablation.datasets if name not in PROCEDURAL_DATASETS]
    if oracle_runs and real:
        raise ParamsError(
            f"{source}: ablation.runs lists {oracle_runs}, but oracle data exists only for procedural datasets and "
            f"ablation.datasets holds {real}; drop the +oracle runs or those datasets"
        )
    procedural, controls = sections["procedural"], sections["controls"]
    if oracle_runs and controls.oracle_seed in (procedural.seed, procedural.test_seed):
        raise ParamsError(
            f"{source}: controls.oracle_seed {controls.oracle_seed} equals procedural.seed or procedural.test_seed; "
            "oracle data must come from a world of its own: pick another seed"
        )
    cross = sections.get("cross")
    if cross is not None:
        outside = [name for name in cross.datasets if name not in prepare.datasets]
        if outside:
            raise ParamsError(
                f"{source}: cross.datasets lists {outside}, not in prepare.datasets ({', '.join(prepare.datasets)}); "
                "add them there or remove them from cross.datasets (empty: every prepared dataset)"
            )
        untrained = [run for run in cross.runs if run not in train.methods and run not in ablation.runs]
        if untrained:
            raise ParamsError(
                f"{source}: cross.runs lists {untrained}, which no dataset trains; add them to train.methods "
                "(or ablation.runs) or remove them from cross.runs"
            )


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "params.yaml"
    try:
        check_params(target)
    except ParamsError as error:
        sys.exit(f"error: {error}")
    print(f"{target}: all sections valid")
