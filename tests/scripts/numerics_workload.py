"""A small piece of the default pipeline whose bits depend on the CPU code path; prints their SHA-256.

    python tests/scripts/numerics_workload.py OUT_JSON

Run by ``tests/test_numerics.py`` in fresh processes under different simulated CPU levels (the
variables NumPy and torch read at start-up). It imports ``benchmark`` first, as every stage does,
so :func:`benchmark.numerics.pin` runs before NumPy and torch load. It writes:

- ``procedural``: SHA-256 over the files of 6 synth_polyp frames and 4 synth_fundus images
  (NumPy and SciPy maths: sin/cos/exp/log, filters, resampling), each generator as the default uses it;
- ``training``: SHA-256 over the weights after two optimizer steps of the default's U-Net (MONAI,
  oneDNN convolutions, ATen element-wise kernels) and of a small diffusers UNet2DConditionModel
  (attention softmax, SiLU, GroupNorm, MKL GEMM), at one torch thread, as the train workers run;
- ``numerics``: what :func:`benchmark.numerics.describe` reports in that process.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import benchmark  # noqa: F401, I001 - first, as in every stage: pins the CPU code paths


def procedural_hash() -> str:
    from benchmark.data.procedural import fundus, polyp

    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory() as folder:
        polyp.generate(polyp.SynthPolypConfig(n_images=6), 0, Path(folder) / "polyp", progress=False)
        fundus.generate(
            fundus.SynthFundusConfig(n_train=2, n_validation=1, n_test=1, size=256),
            0,
            Path(folder) / "fundus",
            progress=False,
        )
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(folder).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def training_hash() -> str:
    import torch
    from diffusers import UNet2DConditionModel
    from monai.networks.nets import UNet

    from benchmark.methods.unet import UNetConfig

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = UNetConfig()
    unet = UNet(
        spatial_dims=2,
        in_channels=3,
        out_channels=1,
        channels=config.channels,
        strides=(2,) * (len(config.channels) - 1),
        num_res_units=config.num_res_units,
    )
    denoiser = UNet2DConditionModel(
        sample_size=16,
        in_channels=9,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(8, 3, 64, 64, generator=generator)
    masks = (torch.rand(8, 1, 64, 64, generator=generator) > 0.7).float()
    latents, noise = torch.randn(4, 9, 16, 16, generator=generator), torch.randn(4, 4, 16, 16, generator=generator)
    text = torch.randn(4, 7, 32, generator=generator)
    optimizer = torch.optim.AdamW([*unet.parameters(), *denoiser.parameters()], lr=1e-3)
    for step in range(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(unet(images), masks)
        predicted = denoiser(latents, torch.tensor([10 + step] * 4), encoder_hidden_states=text).sample
        loss = loss + torch.nn.functional.mse_loss(predicted, noise)
        loss.backward()
        optimizer.step()
    digest = hashlib.sha256()
    for parameter in [*unet.parameters(), *denoiser.parameters()]:
        digest.update(parameter.detach().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    from benchmark import numerics

    result = {"procedural": procedural_hash(), "training": training_hash(), "numerics": numerics.describe()}
    Path(sys.argv[1]).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
