"""An interrupted supervised run resumes from its checkpoint and ends where an uninterrupted one does."""

import numpy as np
import pytest

import benchmark.methods.supervised as supervised
from benchmark.methods.unet import UNet


def test_interrupted_training_resumes_identically(tiny_splits, tmp_path, monkeypatch):
    config = UNet.smoke_config()
    reference = UNet(config)
    reference.fit(tiny_splits["train"], tiny_splits["val"], seed=5, out_dir=tmp_path / "reference", progress=False)

    calls = {"n": 0}
    original = supervised.mean_dice

    def failing_mean_dice(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # dies during epoch 1, after epoch 0 was checkpointed
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(supervised, "mean_dice", failing_mean_dice)
    with pytest.raises(KeyboardInterrupt):
        UNet(config).fit(tiny_splits["train"], tiny_splits["val"], seed=5, out_dir=tmp_path / "resumed", progress=False)
    monkeypatch.setattr(supervised, "mean_dice", original)
    assert (tmp_path / "resumed" / "checkpoint.pt").is_file()

    resumed = UNet(config)
    resumed.fit(tiny_splits["train"], tiny_splits["val"], seed=5, out_dir=tmp_path / "resumed", progress=False)
    images = tiny_splits["test"].images
    np.testing.assert_array_equal(reference.predict(images), resumed.predict(images))
