"""Where DiffAug inpaints a new lesion (paper §3.3): masks derived from existing annotations.

A new lesion's mask is another training lesion's mask (one connected component of it), randomly
scaled, rotated and moved onto tissue that holds no lesion, inside the field of view:

- polyps: anywhere in the endoscope's field of view (:func:`field_of_view`) at least
  ``margin_px`` away from every annotated lesion of the background image;
- fundus: the new (enlarged) cup goes inside the optic disc, near the disc centre, leaving at
  least ``margin_px`` of rim; the disc is kept.

The synthetic image's label is the union of the background's own ground truth and the new mask
(:func:`union_label`); the quality gate scores only the new lesion, outside the background's own
(:func:`gate_region`). Everything is drawn from the ``numpy.random.Generator`` passed in, so a
placement is reproducible from its seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage


@dataclasses.dataclass(frozen=True)
class Placement:
    """One placed mask.

    Attributes:
        mask: uint8 (S, S) in {0, 1}: the region to inpaint (the new lesion).
        scale: linear scale applied to the donor component (> 0).
        angle_deg: rotation applied to the donor component, degrees.
        centre: (row, col) of the placed mask's bounding-box centre, pixels.
    """

    mask: np.ndarray
    scale: float
    angle_deg: float
    centre: tuple[float, float]


def field_of_view(image: np.ndarray, *, threshold: int = 20, erode_px: int = 2) -> np.ndarray:
    """The endoscope's field of view: bool (S, S), True where the image is not the black border.

    Args:
        image: uint8 (S, S, 3) RGB.
        threshold: a pixel whose brightest channel is below this is border.
        erode_px: the FOV is shrunk by this many pixels so lesions keep off the vignetted rim.

    Returns:
        The largest bright connected component, holes filled, eroded; all False for a black image.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 (S, S, 3), got {image.dtype} {image.shape}")
    bright = image.max(axis=-1) >= threshold
    labels, count = ndimage.label(bright)
    if count == 0:
        return bright
    largest = labels == 1 + int(np.argmax(ndimage.sum_labels(bright, labels, index=range(1, count + 1))))
    fov = ndimage.binary_fill_holes(largest)
    return ndimage.binary_erosion(fov, iterations=erode_px) if erode_px > 0 else fov


def donor_components(masks: np.ndarray, *, min_pixels: int = 4) -> list[np.ndarray]:
    """Every lesion of every mask, cropped to its bounding box.

    Args:
        masks: (N, S, S) in {0, 1}, e.g. the training split's masks.
        min_pixels: smaller components are skipped (annotation specks).

    Returns:
        bool arrays (h, w), one per connected component, tight bounding box; in mask order.
    """
    return [component for mask in np.asarray(masks) for _, component in donor_boxes(mask, min_pixels=min_pixels)]


def donor_boxes(mask: np.ndarray, *, min_pixels: int = 4) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """The lesions of one mask (S, S) as ``(bounding box, bool component)``, in :func:`donor_components` order.

    The box indexes the source image, so a donor's pixels can be cut out with it (copy-paste control).
    """
    labels, count = ndimage.label(np.asarray(mask).astype(bool))
    boxes = []
    for box, index in zip(ndimage.find_objects(labels), range(1, count + 1)):
        component = labels[box] == index
        if component.sum() >= min_pixels:
            boxes.append((box, component))
    return boxes


def transform_component(component: np.ndarray, scale: float, angle_deg: float) -> np.ndarray:
    """Scale then rotate a bool component (nearest neighbour), cropped to its new bounding box.

    Returns bool (h', w'); empty (0, 0) when nothing survives (a tiny component scaled down).
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    padded = np.pad(component.astype(np.float32), 1)
    zoomed = ndimage.zoom(padded, scale, order=1) >= 0.5
    rotated = ndimage.rotate(zoomed.astype(np.float32), angle_deg, reshape=True, order=1) >= 0.5
    rows, cols = np.nonzero(rotated)
    if len(rows) == 0:
        return np.zeros((0, 0), bool)
    return rotated[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def place_mask(
    donor: np.ndarray,
    allowed: np.ndarray,
    rng: np.random.Generator,
    *,
    scale_range: tuple[float, float] = (0.75, 1.25),
    max_rotation_deg: float = 180.0,
    target: tuple[float, float] | None = None,
    max_offset_px: float | None = None,
    tries: int = 8,
) -> Placement | None:
    """Put a transformed copy of ``donor`` where it lies entirely inside ``allowed``.

    Draws a scale in ``scale_range`` and a rotation in ±``max_rotation_deg``, then a position
    uniformly among those where the whole transformed component fits in ``allowed`` (found by
    erosion of ``allowed`` with the component as structuring element). With ``target``, only
    positions whose centre lies within ``max_offset_px`` of it are used (the nearest fitting
    position when none does). When the component fits nowhere, the scale is redrawn below the
    last one, up to ``tries`` times.

    Args:
        donor: bool (h, w) component (see :func:`donor_components`).
        allowed: bool (S, S): where the new lesion may lie.
        rng: numpy generator (all draws).
        scale_range: (low, high) linear scales, 0 < low <= high.
        max_rotation_deg: rotations drawn uniformly in [-max, max].
        target: (row, col) the centre should be near (fundus: the disc centre).
        max_offset_px: radius around ``target`` (required with ``target``).
        tries: attempts before giving up.

    Returns:
        A :class:`Placement`, or None when the donor fits nowhere even scaled down (e.g. the
        allowed region is empty or too thin).
    """
    low, high = scale_range
    if not 0 < low <= high:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
    if (target is None) != (max_offset_px is None):
        raise ValueError("target and max_offset_px go together")
    allowed = np.asarray(allowed, bool)
    for attempt in range(tries):
        scale = float(rng.uniform(low, high)) * (0.8**attempt)
        angle = float(rng.uniform(-max_rotation_deg, max_rotation_deg))
        shape = transform_component(donor, scale, angle)
        if shape.size == 0 or shape.shape[0] > allowed.shape[0] or shape.shape[1] > allowed.shape[1]:
            continue
        h, w = shape.shape
        # anchor = top-left corner; fits[r, c] is True when the shape at (r, c) stays inside allowed
        fits = _fitting_corners(allowed, shape)
        rows, cols = np.nonzero(fits)
        if len(rows) == 0:
            continue
        centres = np.stack([rows + (h - 1) / 2, cols + (w - 1) / 2], axis=1)
        if target is not None:
            distance = np.hypot(centres[:, 0] - target[0], centres[:, 1] - target[1])
            near = np.nonzero(distance <= max_offset_px)[0]
            choice = int(rng.choice(near)) if len(near) else int(np.argmin(distance))
        else:
            choice = int(rng.integers(len(rows)))
        mask = np.zeros(allowed.shape, np.uint8)
        r, c = rows[choice], cols[choice]
        mask[r : r + h, c : c + w] = shape
        return Placement(mask, scale, angle, (float(centres[choice, 0]), float(centres[choice, 1])))
    return None


def _fitting_corners(allowed: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """bool (S, S): True at (r, c) when ``shape`` placed with its top-left corner there lies in ``allowed``."""
    from scipy import signal

    # hits[r, c] = number of shape pixels that land on forbidden pixels with the corner at (r, c)
    hits = signal.correlate((~allowed).astype(np.float32), shape.astype(np.float32), mode="valid")
    fits = np.zeros(allowed.shape, bool)
    fits[: hits.shape[0], : hits.shape[1]] = hits < 0.5  # corners further right/down would leave the image
    return fits


def polyp_allowed_region(image: np.ndarray, label: np.ndarray, *, margin_px: int = 2) -> np.ndarray:
    """Tissue without a lesion: FOV of ``image`` minus ``label`` dilated by ``margin_px``. bool (S, S)."""
    lesion = np.asarray(label, bool)
    if lesion.any() and margin_px > 0:
        lesion = ndimage.binary_dilation(lesion, structure=np.ones((3, 3), bool), iterations=margin_px)
    return field_of_view(image) & ~lesion


def fundus_allowed_region(class_map: np.ndarray, *, rim_px: int = 2) -> tuple[np.ndarray, tuple[float, float]]:
    """Inside the optic disc, ``rim_px`` away from its border; and the disc's centre (row, col).

    Args:
        class_map: (S, S) with 0 background, 1 disc rim, 2 cup (prepared fundus ``labels``).
    """
    disc = np.asarray(class_map) >= 1
    if not disc.any():
        raise ValueError("the fundus label has no optic disc; cannot place a cup")
    centre = tuple(float(v) for v in ndimage.center_of_mass(disc))
    inner = ndimage.binary_erosion(disc, iterations=rim_px) if rim_px > 0 else disc
    return inner, centre


def union_label(label: np.ndarray, new_mask: np.ndarray) -> np.ndarray:
    """The synthetic image's target: own ground truth ∪ the new lesion. uint8 (S, S) in {0, 1}."""
    if np.shape(label) != np.shape(new_mask):
        raise ValueError(f"label {np.shape(label)} and new mask {np.shape(new_mask)} differ in shape")
    return (np.asarray(label, bool) | np.asarray(new_mask, bool)).astype(np.uint8)


def gate_region(own_target: np.ndarray, modality: str, *, margin_px: int = 2) -> np.ndarray:
    """Where the quality gate scores a sample: everywhere except the background's own lesion. bool (S, S).

    An unpainted sample must never pass the gate, so the validator's prediction of the lesion the
    background already has may not count towards the new one:

    - polyp: outside the own lesion dilated by ``margin_px`` (the margin :func:`polyp_allowed_region`
      keeps the new mask away from it, so the new mask lies wholly inside this region);
    - fundus: outside the own (physiological) cup, not dilated: the new, enlarged cup contains it,
      and what the gate checks is the ring by which the cup grows.

    Args:
        own_target: (S, S) in {0, 1}: the background's own target (zeros for a lesion-free twin).
        modality: "polyp" or "fundus".
    """
    own = np.asarray(own_target, bool)
    if modality == "polyp" and own.any() and margin_px > 0:
        own = ndimage.binary_dilation(own, structure=np.ones((3, 3), bool), iterations=margin_px)
    elif modality not in ("polyp", "fundus"):
        raise ValueError(f"modality must be 'polyp' or 'fundus', got {modality!r}")
    return ~own


def vertical_cdr(cup: np.ndarray, disc: np.ndarray) -> float:
    """Vertical cup-to-disc ratio: rows spanned by the cup / rows spanned by the disc (0 without cup)."""
    cup_rows, disc_rows = (
        np.nonzero(np.asarray(cup, bool).any(axis=1))[0],
        np.nonzero(np.asarray(disc, bool).any(axis=1))[0],
    )
    if len(disc_rows) == 0:
        raise ValueError("no disc: the vertical CDR is undefined")
    if len(cup_rows) == 0:
        return 0.0
    return float((cup_rows.max() - cup_rows.min() + 1) / (disc_rows.max() - disc_rows.min() + 1))
