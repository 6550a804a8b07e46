"""The method contract shared by every segmenter in ``METHODS``.

A method is a small class with a frozen ``Config`` dataclass (its ``train.<name>`` section of
params.yaml) and four operations:

- ``fit(train, val, *, seed, out_dir)``: train; select the checkpoint on ``val`` only; resume
  from ``out_dir`` when a checkpoint of an interrupted run is there.
- ``predict(images) -> float32 (N, H, W)``: foreground probabilities in [0, 1] at the input
  resolution. Thresholding and metrics happen once, in the evaluate stage, for every method.
- ``save(directory)`` / ``load(directory)``: a round trip giving identical predictions.
"""

from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.config import from_mapping, to_mapping
from benchmark.data.prepared import SegmentationData


class SegmentationMethod(abc.ABC):
    """Base class of a registered segmentation method."""

    #: registry key, identical in params.yaml, stage names and results folders.
    name: ClassVar[str]
    #: label used in tables (say "re-implementation" where it is one).
    display_name: ClassVar[str]
    #: frozen dataclass of hyper-parameters.
    Config: ClassVar[type]

    @classmethod
    def smoke_config(cls) -> Any:
        """A configuration that trains in seconds on 32x32 images (contract and smoke tests)."""
        return cls.Config()

    def __init__(self, config: Any | None = None):
        self.config = config if config is not None else self.Config()

    @abc.abstractmethod
    def fit(
        self, train: SegmentationData, val: SegmentationData, *, seed: int, out_dir: Path, progress: bool = True
    ) -> None:
        """Train on ``train``; choose the checkpoint on ``val``; keep resumable state in ``out_dir``."""

    @abc.abstractmethod
    def predict(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> float32 (N, H, W) foreground probabilities in [0, 1]."""

    def _save_weights(self, directory: Path) -> None:
        """Default for methods holding one ``torch.nn.Module`` as ``self.network``: ``model.pt``."""
        import torch

        torch.save(self.network.state_dict(), directory / "model.pt")

    def _load_weights(self, directory: Path) -> None:
        """Inverse of :meth:`_save_weights`; a missing file is a clear error."""
        from benchmark.utils.io import load_torch_file

        self.network.load_state_dict(load_torch_file(directory / "model.pt"))

    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` and the weights into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"method": self.name, "config": to_mapping(self.config)}
        (directory / "config.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        self._save_weights(directory)

    @classmethod
    def load(cls, directory: str | Path) -> SegmentationMethod:
        """Rebuild a saved method; the folder must have been written by the same method."""
        directory = Path(directory)
        config_path = directory / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path} is missing; the model folder is incomplete, rerun `dvc repro`")
        payload = json.loads(config_path.read_text())
        if payload.get("method") != cls.name:
            raise ValueError(f"{directory} holds a '{payload.get('method')}' model, not '{cls.name}'")
        method = cls(from_mapping(cls.Config, payload["config"], where=f"train.{cls.name}", source=str(config_path)))
        method._load_weights(directory)
        return method
