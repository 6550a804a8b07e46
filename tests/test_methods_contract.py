"""Contract tests over every entry of the METHODS registry, on a tiny learnable problem."""

import collections
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from benchmark.methods import METHODS, get_method


@pytest.fixture(scope="module", params=sorted(METHODS))
def trained(request, tiny_splits, tmp_path_factory):
    cls = get_method(request.param)
    out = tmp_path_factory.mktemp(request.param)
    method = cls(cls.smoke_config())
    method.fit(tiny_splits["train"], tiny_splits["val"], seed=11, out_dir=out / "run", progress=False)
    return cls, method, out


def test_registry_entries_are_consistent():
    for name in METHODS:
        cls = get_method(name)
        assert cls.name == name
        assert dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen
        assert cls.display_name


def test_prediction_shape_dtype_range(trained, tiny_splits):
    _, method, _ = trained
    probabilities = method.predict(tiny_splits["test"].images)
    assert probabilities.shape == (8, 32, 32)
    assert probabilities.dtype == np.float32
    assert np.isfinite(probabilities).all() and probabilities.min() >= 0 and probabilities.max() <= 1


def test_save_load_round_trip(trained, tiny_splits):
    cls, method, out = trained
    method.save(out / "saved")
    loaded = cls.load(out / "saved")
    np.testing.assert_array_equal(
        method.predict(tiny_splits["test"].images), loaded.predict(tiny_splits["test"].images)
    )


def test_load_rejects_other_method_folder(trained, tmp_path):
    cls, method, _ = trained
    method.save(tmp_path)
    payload = (tmp_path / "config.json").read_text().replace(f'"{cls.name}"', '"someone_else"')
    (tmp_path / "config.json").write_text(payload)
    with pytest.raises(ValueError, match="not"):
        cls.load(tmp_path)


def test_same_seed_same_predictions(trained, tiny_splits, tmp_path):
    cls, method, _ = trained
    again = cls(cls.smoke_config())
    again.fit(tiny_splits["train"], tiny_splits["val"], seed=11, out_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(method.predict(tiny_splits["test"].images), again.predict(tiny_splits["test"].images))


def test_training_loss_decreases(trained):
    _, _, out = trained
    log = pd.read_csv(out / "run" / "train_log.csv")
    assert log["train_loss"].iloc[-1] < log["train_loss"].iloc[0]
    assert (log["val_dice"] >= 0).all() and (log["val_dice"] <= 1).all()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_equal_step_budget_takes_exactly_the_real_only_steps(name, tiny_splits, tmp_path):
    """With synthetic data under "equal_steps" every trainer takes epochs x ceil(n_real / batch) optimizer
    steps, however large the training set (no rounding to whole epochs)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from benchmark.data.prepared import SegmentationData
    from benchmark.methods.runs import budget_config

    cls = get_method(name)
    train = tiny_splits["train"]
    n_real = len(train)
    bigger = SegmentationData(
        list(train.ids) + [f"s{k}_{i}" for k in range(2) for i in train.ids],
        np.concatenate([train.images] * 3),
        np.concatenate([train.masks] * 3),
    )
    config = budget_config(cls.smoke_config(), n_real, len(bigger), "equal_steps")
    assert config.epoch_size == n_real
    steps = collections.Counter()
    handle = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.update([id(optimizer)]))
    try:
        cls(config).fit(bigger, tiny_splits["val"], seed=5, out_dir=tmp_path, progress=False)
    finally:
        handle.remove()
    # the segmenter's optimizer is the last one created (latent methods may first fit their autoencoder)
    assert list(steps.values())[-1] == config.epochs * math.ceil(n_real / config.batch_size)


def test_epoch_order_is_the_plain_permutation_unless_cut():
    import torch

    from benchmark.methods.supervised import epoch_order

    assert torch.equal(
        epoch_order(10, None, torch.Generator().manual_seed(3)),
        torch.randperm(10, generator=torch.Generator().manual_seed(3)),
    )
    assert torch.equal(
        epoch_order(10, 50, torch.Generator().manual_seed(3)),
        torch.randperm(10, generator=torch.Generator().manual_seed(3)),
    )
    cut = epoch_order(60, 10, torch.Generator().manual_seed(3))
    assert len(cut) == 10 and len(set(cut.tolist())) == 10 and 0 <= cut.min() and cut.max() < 60
    with pytest.raises(ValueError, match="epoch_size must be an int >= 1"):
        epoch_order(10, 0, torch.Generator())


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_epoch_size_fails_when_the_config_is_built(name, bad):
    """Every registered config rejects a bad ``epoch_size`` in ``__post_init__``, i.e. when params are parsed."""
    import dataclasses

    cls = get_method(name)
    with pytest.raises(ValueError, match="epoch_size must be an int >= 1"):
        dataclasses.replace(cls.smoke_config(), epoch_size=bad)


def test_steps_per_epoch_is_the_trainers_count():
    from benchmark.methods.supervised import steps_per_epoch

    assert [steps_per_epoch(n, None, 16) for n in (1, 16, 17, 415)] == [1, 1, 2, 26]
    assert steps_per_epoch(1245, 415, 16) == 26 and steps_per_epoch(10, 50, 4) == 3


def test_module_device_falls_back_for_modules_without_parameters():
    import torch

    from benchmark.methods.supervised import module_device

    assert module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(torch.nn.ReLU(), "meta") == torch.device("meta")
    assert module_device(lambda x: x, torch.device("meta")) == torch.device("meta")
    assert module_device(torch.nn.Linear(2, 2, device="meta")) == torch.device("meta")
