"""An interrupted supervised run resumes from its checkpoint and ends where an uninterrupted one does.

Final weights alone cannot show that the checkpoint was read (a deterministic restart from scratch
ends identical), so the optimiser steps of the second call are counted (tests/resume_evidence.py);
the variant that deletes the checkpoint first shows the count then says "from scratch".
"""

import numpy as np
import pytest
from resume_evidence import counting_optimizer_steps, resume_evidence

import benchmark.methods.supervised as supervised
from benchmark.methods.unet import UNet


@pytest.mark.parametrize("delete_checkpoint, evidence", [(False, "resumed"), (True, "from scratch")])
def test_interrupted_training_resumes_identically(tiny_splits, tmp_path, monkeypatch, delete_checkpoint, evidence):
    config = UNet.smoke_config()
    reference = UNet(config)
    with counting_optimizer_steps() as reference_steps:
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
    checkpoint = tmp_path / "resumed" / "checkpoint.pt"
    assert checkpoint.is_file()
    if delete_checkpoint:
        checkpoint.unlink()

    resumed = UNet(config)
    with counting_optimizer_steps() as resumed_steps:
        resumed.fit(tiny_splits["train"], tiny_splits["val"], seed=5, out_dir=tmp_path / "resumed", progress=False)
    one_epoch = reference_steps.count // config.epochs
    assert (
        resume_evidence(resumed_steps.count, total_steps=reference_steps.count, checkpoint_steps=one_epoch) == evidence
    )
    images = tiny_splits["test"].images
    np.testing.assert_array_equal(reference.predict(images), resumed.predict(images))
