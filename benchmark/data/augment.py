"""Standard geometric augmentation on batches: flips, 90° turns, rotation, scaling, elastic.

Applied on the fly during training, identically to image and mask, driven by an explicit
``torch.Generator``. This is the "standard augmentation" arm of the paper's Table 7
(rotation, flipping, scaling, elastic deformation).

Flips and 90° turns are exact pixel permutations. The resampling transforms (rotation by any
angle, scaling, elastic) are applied to a random share of the samples only: a network that sees
*every* training image resampled (slightly smoothed) can learn to rely on that smoothing and
then fail on the untouched validation and test images.
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
    p_resample: float = 0.5,
    max_rotation_deg: float = 20.0,
    scale_range: tuple[float, float] = (0.85, 1.15),
    elastic_strength: float = 0.03,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch.

    Args:
        images: float (B, C, H, W).
        masks: float (B, 1, H, W) in {0, 1}.
        generator: CPU generator for every random draw (the draws do not depend on content).
        p_resample: share of samples that also get rotation, scaling and elastic deformation.
        max_rotation_deg: rotation drawn uniformly in ±this.
        scale_range: isotropic zoom factor range.
        elastic_strength: amplitude of a smooth random displacement, as a fraction of the image.

    Returns:
        Augmented ``(images, masks)``, same shapes and dtypes; masks stay in {0, 1}.
    """
    batch, _, height, width = images.shape
    draw = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    flip_x, flip_y, turns = draw(batch) < 0.5, draw(batch) < 0.5, (draw(batch) * 4).long()
    resample = draw(batch) < p_resample
    angle = (draw(batch) * 2 - 1) * math.radians(max_rotation_deg)
    scale = scale_range[0] + draw(batch) * (scale_range[1] - scale_range[0])
    coarse = (draw(batch, 2, 4, 4) * 2 - 1) * (2 * elastic_strength)

    images, masks = images.clone(), masks.clone()
    for index in range(batch):
        dims = [d for d, flip in ((3, flip_x[index]), (2, flip_y[index])) if flip]
        image, mask = images[index : index + 1], masks[index : index + 1]
        if dims:
            image, mask = image.flip(dims), mask.flip(dims)
        if height == width and turns[index]:
            image, mask = image.rot90(int(turns[index]), (2, 3)), mask.rot90(int(turns[index]), (2, 3))
        images[index], masks[index] = image[0], mask[0]

    chosen = torch.nonzero(resample).flatten()
    if len(chosen):
        cos, sin = torch.cos(angle[chosen]) / scale[chosen], torch.sin(angle[chosen]) / scale[chosen]
        theta = torch.zeros(len(chosen), 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
        grid = F.affine_grid(theta, (len(chosen), 1, height, width), align_corners=False)
        if elastic_strength > 0:
            displacement = F.interpolate(coarse[chosen], size=(height, width), mode="bicubic", align_corners=False)
            grid = grid + displacement.permute(0, 2, 3, 1)
        images[chosen] = F.grid_sample(
            images[chosen], grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        warped = F.grid_sample(masks[chosen], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        masks[chosen] = (warped > 0.5).float()
    return images, masks
