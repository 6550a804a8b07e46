"""U-Net with a ResNet-50 encoder: the paper's "U-Net (with Resnet50)" baseline of Table 2.

segmentation-models-pytorch ``Unet(encoder_name="resnet50")``: the torchvision ResNet-50
(bottleneck stages of 3, 4, 6, 3 blocks) as encoder, a U-Net decoder (upsample, concatenate
the skip, two conv3x3-BN-ReLU) and a conv3x3 head to one logit; trained with BCE + soft Dice, AdamW and
a one-cycle schedule by the shared trainer; the checkpoint is the epoch of best validation Dice.

The paper gives no details beyond the name; a ResNet-50 U-Net is normally ImageNet-initialised.
No weights can be downloaded here, so the encoder is randomly initialised unless
``encoder_weights_path`` names a local torchvision/timm ResNet-50 state dict; which of the two
happened is recorded in ``weights_source`` and in ``weights_source.json`` of the model folder,
so reports can say so. Inputs are mapped from [-1, 1] to ImageNet normalisation inside the
network so that such weights see the statistics they were trained on.

CPU scale: ``encoder_depth`` 4 (the stem and the first three ResNet-50 stages, output stride
16; the unused fourth stage is deleted, so model.pt is ~38 MB instead of ~100 MB),
narrow decoder channels and only 4 epochs of batch 8: the encoder costs ~5x a U-Net step,
and one seed should train in about 40 s on two cores. On 64x64 images a fifth stage would act
on a 2x2 grid for +20% time. Paper scale: ``encoder_depth: 5``,
``decoder_channels: [256, 128, 64, 32, 16]``, ImageNet weights, 256x256 input, more epochs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from benchmark.config import check_epoch_size
from benchmark.data.prepared import SegmentationData
from benchmark.methods.base import SegmentationMethod
from benchmark.methods.supervised import Schedule, predict_probabilities, train_supervised

RANDOM_INIT = "random init (no ImageNet weights: encoder_weights_path is null)"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ResNet50UNetConfig:
    """Hyper-parameters of ``train.resnet50_unet``.

    Attributes:
        encoder_weights_path: local ``.pth``/``.pt`` state dict of a torchvision or timm
            ResNet-50 (``fc.*`` is ignored; a ``state_dict``/``model`` wrapper and ``module.``
            or ``encoder.`` prefixes are accepted); null = random initialisation.
        encoder_depth: ResNet-50 stages used, 3 to 5 (stem counts as one; 5 = the whole
            network, output stride 32).
        decoder_channels: channels of the decoder blocks, one per encoder stage, deepest first.
        epochs, batch_size, learning_rate, weight_decay: AdamW + one-cycle schedule.
        augmentation: "standard" (flip, rotation, scale, elastic) or "none".
        epoch_size: samples per epoch (None: the whole training set); set by ``train.synthetic_budget``
            "equal_steps" for runs with synthetic data (:func:`benchmark.methods.supervised.epoch_order`).
    """

    encoder_weights_path: str | None = None
    encoder_depth: int = 4
    decoder_channels: tuple[int, ...] = (64, 32, 16, 8)
    epochs: int = 4
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    augmentation: Literal["none", "standard"] = "standard"
    epoch_size: int | None = None

    def __post_init__(self):
        check_epoch_size(self.epoch_size)
        if not 3 <= self.encoder_depth <= 5:
            raise ValueError(f"encoder_depth must be 3, 4 or 5, got {self.encoder_depth}")
        if len(self.decoder_channels) != self.encoder_depth or min(self.decoder_channels) < 1:
            raise ValueError(
                f"decoder_channels needs {self.encoder_depth} positive entries (one per encoder stage), got {self.decoder_channels}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


class ResNet50UNetNetwork(torch.nn.Module):
    """float32 (B, 3, H, W) in [-1, 1] -> logits (B, 1, H, W); H, W multiples of 2**encoder_depth."""

    def __init__(self, config: ResNet50UNetConfig):
        super().__init__()
        import segmentation_models_pytorch as smp

        self.unet = smp.Unet(
            encoder_name="resnet50",
            encoder_weights=None,
            encoder_depth=config.encoder_depth,
            decoder_channels=config.decoder_channels,
            in_channels=3,
            classes=1,
        )
        for stage in range(config.encoder_depth, 5):  # stages smp never runs at this depth
            delattr(self.unet.encoder, f"layer{stage}")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.unet(((images + 1) / 2 - self.mean) / self.std)


def load_encoder_weights(encoder: torch.nn.Module, path: str | Path) -> str:
    """Load a local ResNet-50 state dict into ``encoder``; returns a provenance string.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a state dict, or its keys/shapes are not a ResNet-50's.
    """
    path = Path(path)
    fix = "point train.resnet50_unet.encoder_weights_path at a torchvision/timm ResNet-50 state dict, or set it to null for random init"
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} does not exist; {fix}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise ValueError(
            f"{path} could not be read as a PyTorch state dict ({type(error).__name__}: {error}); {fix}"
        ) from error
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a mapping of parameter names to tensors; {fix}")
    for prefix in ("module.", "encoder."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    expected = encoder.state_dict()
    # fc is ImageNet's classifier; stages deleted for a shallow encoder_depth are never run
    unused = {"fc"} | {f"layer{stage}" for stage in range(1, 5) if not hasattr(encoder, f"layer{stage}")}
    state = {key: value for key, value in state.items() if key.split(".")[0] not in unused}
    ignorable = lambda key: key.endswith("num_batches_tracked")  # noqa: E731 - absent from old checkpoints
    missing = sorted(key for key in expected if key not in state and not ignorable(key))
    unexpected = sorted(key for key in state if key not in expected)
    wrong_shape = sorted(
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in state
        if key in expected and state[key].shape != expected[key].shape
    )
    if missing or unexpected or wrong_shape:
        problems = "; ".join(
            f"{label} ({len(keys)}): {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
            if keys
        )
        raise ValueError(f"{path} does not match a ResNet-50 encoder: {problems}; {fix}")
    encoder.load_state_dict(state, strict=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{path} (sha256 {digest})"


class ResNet50UNet(SegmentationMethod):
    """ResNet-50 U-Net (smp), 3 -> 1 channels; ``weights_source`` says how the encoder started."""

    name = "resnet50_unet"
    display_name = "ResNet50-U-Net"
    Config = ResNet50UNetConfig

    @classmethod
    def smoke_config(cls) -> ResNet50UNetConfig:
        return ResNet50UNetConfig(
            encoder_depth=3, decoder_channels=(16, 8, 8), epochs=3, batch_size=8, learning_rate=3e-3
        )

    def __init__(self, config: ResNet50UNetConfig | None = None):
        super().__init__(config)
        self.network = ResNet50UNetNetwork(self.config)
        #: "random init ..." or the weights file with its hash; written to weights_source.json.
        self.weights_source = RANDOM_INIT

    @property
    def pretrained(self) -> bool:
        return self.weights_source != RANDOM_INIT

    def fit(
        self, train: SegmentationData, val: SegmentationData, *, seed: int, out_dir: Path, progress: bool = True
    ) -> None:
        config = self.config
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # weight initialisation draws from torch's global RNG
            self.network = ResNet50UNetNetwork(config)
        self.weights_source = RANDOM_INIT
        if config.encoder_weights_path is not None:
            self.weights_source = load_encoder_weights(self.network.unet.encoder, config.encoder_weights_path)
        schedule = Schedule(
            config.epochs,
            config.batch_size,
            config.learning_rate,
            config.weight_decay,
            config.augmentation,
            config.epoch_size,
        )
        train_supervised(
            self.network,
            train,
            val,
            schedule,
            seed=seed,
            checkpoint_dir=Path(out_dir),
            progress=progress,
            description=f"{self.name} seed {seed}",
        )

    def predict(self, images: np.ndarray) -> np.ndarray:
        return predict_probabilities(self.network, images)

    def _save_weights(self, directory: Path) -> None:
        super()._save_weights(directory)
        payload = {"weights_source": self.weights_source, "pretrained": self.pretrained}
        (directory / "weights_source.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    def _load_weights(self, directory: Path) -> None:
        super()._load_weights(directory)
        source = directory / "weights_source.json"
        if source.is_file():
            self.weights_source = json.loads(source.read_text())["weights_source"]
