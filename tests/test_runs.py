"""Training runs: ``<method>[+data]`` parsing, labels and the augmentation axis."""

import pytest

from benchmark.methods import get_method
from benchmark.methods.runs import parse_run, run_config, run_display_name


def test_parse_run_defaults_and_suffixes():
    assert parse_run("unet") == ("unet", "real")
    assert parse_run("diffaug") == ("diffaug", "diffaug")  # DiffAug's segmenter trains on synthetic data by default
    assert parse_run("unet+diffaug") == ("unet", "diffaug")
    assert parse_run("diffaug+real") == ("diffaug", "real")
    assert parse_run("transunet+noaug") == ("transunet", "noaug")
    with pytest.raises(KeyError, match="unknown training data 'synthetic'"):
        parse_run("unet+synthetic")
    with pytest.raises(KeyError, match="registered methods"):
        parse_run("unte")


def test_display_names_state_the_training_data():
    assert run_display_name("unet") == "U-Net"
    assert run_display_name("unet+diffaug") == "U-Net + real + DiffAug synthetic"
    assert run_display_name("unet+noaug") == "U-Net + real data, no augmentation"
    assert run_display_name("diffaug+real") == get_method("diffaug").display_name + " + real data only"
    assert run_display_name("diffaug") == get_method("diffaug").display_name


def test_noaug_switches_augmentation_off_and_only_that():
    config = get_method("unet").Config()
    assert config.augmentation == "standard"
    assert run_config(config, "real") is config
    off = run_config(config, "noaug")
    assert off.augmentation == "none" and off.channels == config.channels and off.epochs == config.epochs
