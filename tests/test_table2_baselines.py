"""ResNet50-U-Net (local encoder weights) and TransUNet (shapes, loss, SGD + poly, resume)."""

import json

import numpy as np
import pytest
import torch
from resume_evidence import counting_optimizer_steps, resume_evidence

import benchmark.methods.supervised as supervised
from benchmark.methods.resnet50_unet import (
    RANDOM_INIT,
    ResNet50UNet,
    ResNet50UNetConfig,
    ResNet50UNetNetwork,
    load_encoder_weights,
)
from benchmark.methods.transunet import TransUNet, TransUNetConfig
from benchmark.methods.transunet.method import ce_dice_loss, sgd_poly


def _encoder(seed: int, depth: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    channels = {3: (16, 8, 8), 4: (16, 8, 8, 8), 5: (16, 8, 8, 8, 8)}[depth]
    return ResNet50UNetNetwork(ResNet50UNetConfig(encoder_depth=depth, decoder_channels=channels)).unet.encoder


def _assert_same_weights(first: torch.nn.Module, second: torch.nn.Module) -> None:
    one, two = first.state_dict(), second.state_dict()
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=0, msg=key)


def test_encoder_weights_round_trip(tmp_path):
    source, target = _encoder(1), _encoder(2)
    assert not torch.equal(source.conv1.weight, target.conv1.weight)
    torch.save(source.state_dict(), tmp_path / "encoder.pth")
    provenance = load_encoder_weights(target, tmp_path / "encoder.pth")
    _assert_same_weights(source, target)
    assert str(tmp_path / "encoder.pth") in provenance and "sha256" in provenance


def test_encoder_accepts_torchvision_resnet50_with_wrapper_and_prefix(tmp_path):
    import torchvision

    reference = torchvision.models.resnet50(weights=None)  # fc and all four stages, like an ImageNet file
    wrapped = {"state_dict": {f"module.{key}": value for key, value in reference.state_dict().items()}}
    torch.save(wrapped, tmp_path / "resnet50.pt")
    encoder = _encoder(3, depth=4)  # layer4 is deleted at depth 4, so its keys are ignored
    load_encoder_weights(encoder, tmp_path / "resnet50.pt")
    torch.testing.assert_close(encoder.layer3[5].conv3.weight, reference.layer3[5].conv3.weight, rtol=0, atol=0)


def test_encoder_weights_errors_name_the_file_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.pth.*encoder_weights_path"):
        load_encoder_weights(_encoder(0), tmp_path / "absent.pth")
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"corrupt\.pth could not be read"):
        load_encoder_weights(_encoder(0), tmp_path / "corrupt.pth")
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match=r"resnet18\.pth does not match a ResNet-50 encoder: missing .*wrong shape"):
        load_encoder_weights(_encoder(0), tmp_path / "resnet18.pth")


def test_weights_source_is_recorded_in_the_model_folder(tiny_splits, tmp_path):
    torch.save(_encoder(4).state_dict(), tmp_path / "encoder.pth")
    config = ResNet50UNetConfig(
        encoder_weights_path=str(tmp_path / "encoder.pth"),
        encoder_depth=3,
        decoder_channels=(8, 8, 8),
        epochs=1,
        batch_size=8,
    )
    method = ResNet50UNet(config)
    assert method.weights_source == RANDOM_INIT and not method.pretrained
    method.fit(tiny_splits["train"], tiny_splits["val"], seed=0, out_dir=tmp_path / "run", progress=False)
    assert method.pretrained
    method.save(tmp_path / "saved")
    recorded = json.loads((tmp_path / "saved" / "weights_source.json").read_text())
    assert recorded["pretrained"] and str(tmp_path / "encoder.pth") in recorded["weights_source"]
    assert ResNet50UNet.load(tmp_path / "saved").weights_source == recorded["weights_source"]


def test_resnet50_unet_config_rejects_mismatched_decoder():
    with pytest.raises(ValueError, match="decoder_channels needs 4"):
        ResNet50UNetConfig(encoder_depth=4, decoder_channels=(64, 32, 16))


def test_transunet_shapes_and_position_embedding_resize():
    network = TransUNet().network.eval()
    with torch.no_grad():
        assert network(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 64, 64)
        assert network(torch.zeros(1, 3, 32, 48)).shape == (1, 1, 32, 48)  # grid 2x3 instead of 4x4
    assert network.transformer.position_embedding.shape == (1, 16, TransUNetConfig().hidden_size)
    with pytest.raises(ValueError, match="divisible by 16"):
        network(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match="multiple of 16"):
        TransUNetConfig(image_size=40)


def test_transunet_rejects_training_size_mismatch(tiny_splits, tmp_path):
    with pytest.raises(ValueError, match=r"image_size is 64 but the training images are 32x32"):
        TransUNet().fit(tiny_splits["train"], tiny_splits["val"], seed=0, out_dir=tmp_path, progress=False)


def test_ce_dice_loss_values():
    target = torch.zeros(2, 1, 4, 4)
    target[:, :, :2] = 1
    confident = torch.where(target > 0, 20.0, -20.0)
    assert ce_dice_loss(confident, target) < 1e-6
    expected = 0.5 * np.log(2) + 0.5 * (1 - 2 * 0.5 * 16 / (0.25 * 32 + 16))  # all logits 0 -> p = 0.5
    assert ce_dice_loss(torch.zeros_like(target), target).item() == pytest.approx(expected, rel=1e-5)


def test_sgd_poly_schedule():
    network = torch.nn.Linear(2, 1)
    schedule = supervised.Schedule(epochs=1, batch_size=1, learning_rate=0.01, weight_decay=1e-4, augmentation="none")
    optimizer, scheduler = sgd_poly(0.9, 0.9)(network, schedule, 10)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["weight_decay"] == 1e-4
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(rates, [0.01 * (1 - step / 10) ** 0.9 for step in range(10)], rtol=1e-12)
    assert optimizer.param_groups[0]["lr"] == 0


def test_transunet_interrupted_training_resumes_identically(tiny_splits, tmp_path, monkeypatch):
    config = TransUNet.smoke_config()
    reference = TransUNet(config)
    with counting_optimizer_steps() as reference_steps:
        reference.fit(tiny_splits["train"], tiny_splits["val"], seed=5, out_dir=tmp_path / "reference", progress=False)
    calls, original = {"n": 0}, supervised.mean_dice

    def failing_mean_dice(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # dies during epoch 1, after epoch 0 was checkpointed
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(supervised, "mean_dice", failing_mean_dice)
    with pytest.raises(KeyboardInterrupt):
        TransUNet(config).fit(
            tiny_splits["train"], tiny_splits["val"], seed=5, out_dir=tmp_path / "resumed", progress=False
        )
    monkeypatch.setattr(supervised, "mean_dice", original)
    resumed = TransUNet(config)
    with counting_optimizer_steps() as steps:  # the predictions alone cannot tell a resume from a restart
        resumed.fit(tiny_splits["train"], tiny_splits["val"], seed=5, out_dir=tmp_path / "resumed", progress=False)
    one_epoch = reference_steps.count // config.epochs
    assert resume_evidence(steps.count, total_steps=reference_steps.count, checkpoint_steps=one_epoch) == "resumed"
    images = tiny_splits["test"].images
    np.testing.assert_array_equal(reference.predict(images), resumed.predict(images))
