"""Standard geometric augmentation on batches: flips, 90° turns, rotation, scaling, elastic.

Applied on the fly during training, identically to image and mask, driven by an explicit
``torch.Generator``. This is the "standard augmentation" arm of the paper's Table 7
(rotation, flipping, scaling, elastic deformation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def standard_augment(
    images: torch.Tensor,
    masks: torch.Tensor,
    generator: torch.Generator,
    *,
    max_rotation_deg: float = 20.0,
    scale_range: tuple[float, float] = (0.85, 1.15),
    elastic_strength: float = 0.03,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch.

    Args:
        images: float (B, C, H, W).
        masks: float (B, 1, H, W) in [0, 1].
        generator: CPU generator for every random draw.
        max_rotation_deg: rotation drawn uniformly in ±this.
        scale_range: isotropic zoom factor range.
        elastic_strength: amplitude of a smooth random displacement, as a fraction of the image.

    Returns:
        Augmented ``(images, masks)``, same shapes; masks re-binarised at 0.5.
    """
    batch, _, height, width = images.shape
    draw = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    flip_x, flip_y = draw(batch) < 0.5, draw(batch) < 0.5
    angle = (draw(batch) * 2 - 1) * math.radians(max_rotation_deg) + (draw(batch) * 4).floor() * (math.pi / 2)
    scale = scale_range[0] + draw(batch) * (scale_range[1] - scale_range[0])
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    sign_x = torch.where(flip_x, -1.0, 1.0)
    sign_y = torch.where(flip_y, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * sign_x, -sin * sign_y
    theta[:, 1, 0], theta[:, 1, 1] = sin * sign_x, cos * sign_y
    grid = F.affine_grid(theta, (batch, 1, height, width), align_corners=False)
    if elastic_strength > 0:
        coarse = (draw(batch, 2, 4, 4) * 2 - 1) * (2 * elastic_strength)
        displacement = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
        grid = grid + displacement.permute(0, 2, 3, 1)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return images, (masks > 0.5).float()
