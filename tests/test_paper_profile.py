"""params_paper.yaml, the paper-scale profile: it parses, holds the paper's settings (§4.3-4.4) and the
full augmentation x architecture matrix plus Tables 6 and 7 and the theta sweep. Parsing only: nothing
is loaded or trained, and the local paths it names need not exist here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "params_paper.yaml"

BASELINES = ("unet", "resnet50_unet", "transunet", "medsegdiff_v1", "medsegdiff_v2", "difftrans")
#: every cell of the augmentation x architecture matrix that is not a bare Table 2 run, and the Table 6 runs
MATRIX = tuple(f"{method}+{data}" for method in BASELINES for data in ("noaug", "diffaug")) + (
    "sdseg+standard",
    "sdseg+diffaug",
    "diffaug+standard",
)
TABLE6 = ("diffaug+diffaug_notext", "diffaug+diffaug_unvalidated", "diffaug+diffaug_basic", "diffaug+real")


@pytest.fixture(scope="module")
def sections():
    from benchmark.params import check_params

    return check_params(str(PAPER))


def _key_paths(mapping, prefix=()):
    for key, value in mapping.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _key_paths(value, (*prefix, key))


def test_same_sections_and_keys_as_the_default():
    default, paper = yaml.safe_load((ROOT / "params.yaml").read_text()), yaml.safe_load(PAPER.read_text())
    assert set(paper) == set(default)
    # dataset names under prepare.datasets differ by design (real datasets instead of procedural ones)
    missing = [
        ".".join(path)
        for path in _key_paths(default)
        if path[:2] != ("prepare", "datasets") and path not in set(_key_paths(paper))
    ]
    assert not missing, f"params_paper.yaml lacks keys of params.yaml: {missing}"


def test_paper_settings(sections):
    prepare, autoencoder, generator, synthesize = (
        sections["prepare"],
        sections["autoencoder"],
        sections["generator"],
        sections["synthesize"],
    )
    assert prepare.image_size == 256
    # f = 8 (SD / SDXL VAE): 256 x 256 -> 4 x 32 x 32 latents
    factor = 2 ** (len(autoencoder.block_out_channels) - 1)
    assert factor == 8 and autoencoder.latent_channels == 4
    assert prepare.image_size // factor == 32
    assert autoencoder.pretrained_path == "models/pretrained/sdxl-inpainting/vae"

    assert generator.backend == "sdxl_inpainting"
    sdxl = generator.sdxl_inpainting
    assert sdxl.pretrained_path == "models/pretrained/sdxl-inpainting"
    assert autoencoder.pretrained_path.startswith(sdxl.pretrained_path + "/")  # one latent space for generator and gate
    assert sdxl.resolution == prepare.image_size == 256
    assert (sdxl.steps, sdxl.batch_size, sdxl.learning_rate, sdxl.sampler) == (50_000, 8, 1e-5, "ddim")
    assert generator.steps == 50
    assert generator.guidance_scale == 7.5

    assert synthesize.theta == 0.7
    assert synthesize.volume == 3.0
    assert synthesize.volumes == (0.5, 1.0, 2.0, 3.0, 5.0)
    assert 5 <= synthesize.n_variants <= 10
    assert synthesize.top_up is False  # rejected samples are not regenerated

    train = sections["train"]
    assert train.workers == 1
    for method in ("diffaug", "sdseg"):
        config = train.config_of(method)
        assert config.batch_size == 16 and config.learning_rate == 1e-5 and config.weight_decay == 0.01
        assert config.inference == "single"
        # 100k iterations at effective batch 16 on CVC-ClinicDB's 415 training images (488 - 73 validation)
        steps = config.epochs * math.ceil(415 / config.batch_size)
        assert abs(steps - 100_000) / 100_000 < 0.01
    assert train.config_of("transunet").image_size == prepare.image_size
    for method in ("medsegdiff_v1", "medsegdiff_v2"):
        assert train.config_of(method).image_size == prepare.image_size
    assert sections["validator"].epochs is None  # the gate trains like train.diffaug


def test_real_datasets_and_ablation_on_cvc_clinicdb(sections):
    from benchmark.data import DATASETS

    datasets = sections["prepare"].datasets
    assert {"cvc_clinicdb", "kvasir_seg"} <= set(datasets) and ({"refuge", "refuge2"} & set(datasets))
    assert not any(DATASETS[name].procedural for name in datasets)
    assert all(folder.startswith("data/raw/") for folder in datasets.values())
    assert sections["ablation"].datasets == ("cvc_clinicdb",)


def test_full_matrix_and_studies_are_listed(sections):
    from benchmark.methods.runs import augmentation_runs, theta_run, volume_run

    train, ablation, synthesize = sections["train"], sections["ablation"], sections["synthesize"]
    assert set(train.methods) == {*BASELINES, "sdseg", "diffaug"}
    runs = set(ablation.runs)
    assert not set(train.methods) & runs, "a run is listed in both train.methods and ablation.runs"
    assert set(MATRIX) <= runs
    assert set(TABLE6) <= runs
    assert set(ablation.synthetic_sets) == {"notext", "basic"}
    everything = set(train.methods) | runs
    # every level (none / standard / DiffAug) of every segmenter, as the Table 2 report looks them up
    for method in (*BASELINES, "sdseg", "diffaug"):
        assert set(augmentation_runs(method, train.config_of(method).augmentation).values()) <= everything, method
    # Table 7 and the theta sweep on the U-Net, named from synthesize.volume / theta as the reports do
    assert {volume_run("unet", volume, synthesize.volume) for volume in synthesize.volumes} <= everything
    assert {theta_run("unet", theta, synthesize.theta) for theta in sections["quality"].thetas} <= everything
