"""``synth_fundus``: colour fundus photographs with optic disc and cup, in the REFUGE layout.

Each image is a circular field of view (FOV) of orange-red retina with illumination fall-off,
a macula, a branching vessel tree and a bright optic disc holding a paler cup. Its label map
follows REFUGE (uint8: 0 cup, 128 disc rim, 255 background) and its vertical cup-to-disc ratio
(vCDR) is measured on the written mask with :func:`vertical_cdr`, so the recorded value is exact.
Every image has a "normal twin": the same fundus with a physiological cup (vCDR in [0.25, 0.4]),
identical outside the disc, for counterfactual evaluation.

As in real photographs the annotated cup (the 3-D excavation) is not the pale area: the pallor is
a soft-edged region of its own, usually smaller than the cup in glaucoma, with per-image contrast,
and only subtle cues (vessels kinking and fading, a faint tint change) mark the true cup edge.
Discs also vary in colour, focus, illumination and noise, so the exact cup edge is ambiguous.

Rendering shares one background (retina, macula, vessels) between image and twin and recomposes
only a crop around the disc, which both keeps the twin identical outside the disc and is fast.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from scipy import ndimage
from tqdm import tqdm

from benchmark.data.procedural.noise import coordinate_grid, fractal_noise, smooth
from benchmark.utils.io import atomic_dir
from benchmark.utils.seeding import numpy_rng

NAME = "synth_fundus"
# Target vCDR interval per stratum: (low, high, high inclusive).
STRATA = {"normal": (0.25, 0.5, False), "early": (0.5, 0.6, False), "advanced": (0.6, 0.85, True)}
TWIN_VCDR = (0.25, 0.4, True)
_THINNING = {"early": (0.55, 0.2, 0.25), "advanced": (0.5, 0.2, 0.3)}  # inferior, superior, diffuse
# Pallor vs annotated cup per stratum: pallor size range (share of the cup), share of rounding/centring,
# cup-wall hint strength. Early glaucoma: shallow "saucerised" cups, pallor lags; advanced: pale nearly to the edge.
_PALLOR = {"normal": (0.75, 1.1, 0.3, 1.0), "early": (0.55, 0.95, 1.0, 0.5), "advanced": (0.7, 1.0, 0.6, 1.0)}
COLUMNS = [
    "id",
    "part",
    "glaucoma",
    "vcdr",
    "vcdr_target",
    "stratum",
    "disc_cx",
    "disc_cy",
    "disc_diameter_px",
    "cup_diameter_px",
    "rim_thinning",
    "image",
    "mask",
    "normal_image",
    "normal_mask",
    "normal_vcdr",
]


@dataclasses.dataclass(frozen=True)
class SynthFundusConfig:
    """Size and class balance of ``synth_fundus``.

    Attributes:
        n_train: images in the training part (REFUGE: 400), >= 1.
        n_validation: images in the validation part (REFUGE: 400), >= 1.
        n_test: images in the test part (REFUGE: 400), >= 1.
        size: side of the square images in px (REFUGE: 2124x2056 and 1634x1634), >= 64.
        p_early: share of images with a vertical CDR in [0.5, 0.6) ("early glaucoma"), in [0, 1].
        p_advanced: share with a vertical CDR in [0.6, 0.85], in [0, 1]; ``p_early + p_advanced
            <= 1`` and the rest is normal with a vertical CDR in [0.25, 0.5).
        glaucoma_vcdr: images whose measured vCDR is >= this are labelled glaucoma (Glaucoma
            folder, ``G`` test masks, ``glaucoma`` column), in (0, 1).
    """

    n_train: int = 200
    n_validation: int = 200
    n_test: int = 200
    size: int = 512
    p_early: float = 0.15
    p_advanced: float = 0.15
    glaucoma_vcdr: float = 0.5

    def __post_init__(self) -> None:
        for field, least in (("n_train", 1), ("n_validation", 1), ("n_test", 1), ("size", 64)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{NAME}.{field} must be an int >= {least}, got {value!r}")
        for field in ("p_early", "p_advanced"):
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{NAME}.{field} must be in [0, 1], got {value!r}")
        if self.p_early + self.p_advanced > 1.0:
            raise ValueError(f"{NAME}.p_early + p_advanced must be in [0, 1], got {self.p_early + self.p_advanced!r}")
        if not 0.0 < self.glaucoma_vcdr < 1.0:
            raise ValueError(f"{NAME}.glaucoma_vcdr must be in (0, 1), got {self.glaucoma_vcdr!r}")


def vertical_cdr(label: np.ndarray) -> float:
    """Vertical cup-to-disc ratio as REFUGE computes it.

    Args:
        label: uint8 ``(H, W)`` label map, 0 cup, 128 disc rim, 255 background.

    Returns:
        Largest per-column count of cup pixels divided by the largest per-column count of disc
        pixels (disc = cup and rim), in [0, 1]; NaN when the map holds no disc.
    """
    label = np.asarray(label)
    disc_height = int(((label == 0) | (label == 128)).sum(axis=0).max(initial=0))
    if disc_height == 0:
        return float("nan")
    return int((label == 0).sum(axis=0).max(initial=0)) / disc_height


def stratum_of(vcdr: float) -> str:
    """ "normal" below 0.5, "early" in [0.5, 0.6), "advanced" from 0.6."""
    return "advanced" if vcdr >= 0.6 else "early" if vcdr >= 0.5 else "normal"


def _fov(size: int) -> tuple[float, float, float]:
    """FOV centre x, centre y and radius in px (one camera, so the same for every image)."""
    return size / 2 - 0.5, size / 2 - 0.5, 0.47 * size


def sample_fundus_attributes(rng: np.random.Generator, config: SynthFundusConfig) -> dict:
    """Draw the clinical and geometric attributes of one image (no rendering).

    Args:
        rng: the image's generator; rendering continues drawing from it afterwards.
        config: dataset configuration.

    Returns:
        Dict of Python floats and strings: ``stratum`` and ``vcdr_target`` (target, before rasterisation),
        ``rim_thinning``, ``eye`` ("OD" or "OS"), disc centre ``disc_cx``/``disc_cy`` and semi-axes
        ``disc_rx``/``disc_ry`` in px, ``disc_tilt`` (rad), ``disc_wobble`` (4 floats: harmonic
        amplitudes and phases of the rim), macula centre ``macula_cx``/``macula_cy``, cup shape
        ``cup_aspect`` (width / height), ``cup_shift_x``/``cup_shift_y`` (signed fractions of
        the free room, +y inferior, +x temporal), and the same four ``normal_*`` keys for the twin.
    """
    u = rng.random()
    stratum = "advanced" if u < config.p_advanced else "early" if u < config.p_advanced + config.p_early else "normal"
    low, high, _ = STRATA[stratum]
    vcdr_target = float(rng.uniform(low, high))
    thinning = (
        "none" if stratum == "normal" else str(rng.choice(["inferior", "superior", "diffuse"], p=_THINNING[stratum]))
    )
    cx, cy, radius = _fov(config.size)
    eye = "OD" if rng.random() < 0.5 else "OS"
    nasal = 1.0 if eye == "OD" else -1.0  # right eye: disc on the image's right, macula left
    disc_ry = float(rng.uniform(1 / 7.2, 1 / 5.8)) * radius  # vertical diameter ~ FOV diameter / 6.5
    disc_cx = cx + nasal * float(rng.uniform(0.28, 0.42)) * radius
    disc_cy = cy + float(rng.uniform(-0.12, 0.12)) * radius
    macula_dist = float(rng.uniform(2.3, 2.7)) * 2 * disc_ry

    def cup(kind: str) -> tuple[float, float, float]:
        # Glaucomatous cups elongate vertically (ISNT: inferior rim first); physiological cups are
        # round or horizontally oval, and cups sit slightly temporal in the disc.
        aspect = rng.uniform(*{"none": (0.95, 1.15), "diffuse": (0.9, 1.05)}.get(kind, (0.75, 0.92)))
        shift_y = rng.uniform(*{"inferior": (0.4, 0.8), "superior": (-0.8, -0.4)}.get(kind, (-0.15, 0.15)))
        return float(aspect), float(rng.uniform(0.0, 0.5)), float(shift_y)

    aspect, shift_x, shift_y = cup(thinning)
    normal_aspect, normal_shift_x, normal_shift_y = cup("none")
    return {
        "stratum": stratum,
        "vcdr_target": vcdr_target,
        "rim_thinning": thinning,
        "eye": eye,
        "disc_cx": disc_cx,
        "disc_cy": disc_cy,
        "disc_ry": disc_ry,
        "disc_rx": disc_ry * float(rng.uniform(0.84, 0.97)),
        "disc_tilt": float(rng.uniform(-0.2, 0.2)),
        "disc_wobble": [
            float(rng.uniform(-0.03, 0.03)),
            float(rng.uniform(0, 2 * np.pi)),
            float(rng.uniform(-0.02, 0.02)),
            float(rng.uniform(0, 2 * np.pi)),
        ],
        "macula_cx": disc_cx - nasal * macula_dist,
        "macula_cy": disc_cy + float(rng.uniform(0.05, 0.3)) * 2 * disc_ry,
        "cup_aspect": aspect,
        "cup_shift_x": shift_x,
        "cup_shift_y": shift_y,
        "normal_vcdr_target": float(rng.uniform(0.27, 0.38)),
        "normal_cup_aspect": normal_aspect,
        "normal_cup_shift_x": normal_shift_x,
        "normal_cup_shift_y": normal_shift_y,
    }


@functools.lru_cache(maxsize=4)
def _fov_mask(size: int) -> Image.Image:
    """The circular FOV as an RGB multiplier (255 inside, 0 outside, 1 px anti-aliased edge)."""
    cx, cy, radius = _fov(size)
    dy, dx = coordinate_grid((size, size), (cy, cx))
    alpha = np.clip(radius - np.hypot(dx, dy) + 0.5, 0, 1)
    return Image.fromarray(np.repeat(np.rint(alpha * 255).astype(np.uint8)[..., None], 3, axis=2), "RGB")


def _background(rng: np.random.Generator, attrs: dict, size: int) -> Image.Image:
    """Retina without vessels or disc: RGB ``(size, size)``, black outside the FOV."""
    low = max(32, size // 4)  # smooth fields are rendered at 1/4 resolution, then upsampled
    scale = low / size
    cx, cy, radius = (v * scale for v in _fov(size))
    dy, dx = coordinate_grid((low, low), (cy + rng.normal(0, 0.1) * radius, cx + rng.normal(0, 0.1) * radius))
    r = np.hypot(dx, dy) / radius
    light = (1 - rng.uniform(0.3, 0.5) * r**2) * (1 - 0.5 * np.clip((r - 0.7) / 0.35, 0, 1) ** 2)
    coarse = max(16, low // 4)  # fractal_noise is the costly part, so its octaves stay coarse
    blotch = [
        np.asarray(
            Image.fromarray(fractal_noise(rng, (coarse, coarse), octaves=3, base_cells=3) - 0.5, "F").resize(
                (low, low), Image.BILINEAR
            )
        )
        for _ in range(2)
    ]
    grain = (smooth(rng.random((low, low), dtype=np.float32), 1.0) - 0.5) / 0.08
    dd = 2 * attrs["disc_ry"] * scale
    my, mx = coordinate_grid((low, low), (attrs["macula_cy"] * scale, attrs["macula_cx"] * scale))
    md2 = (mx**2 + my**2) / dd**2
    macula = rng.uniform(0.2, 0.4) * np.exp(-md2 / 0.4) + rng.uniform(0.1, 0.25) * np.exp(-md2 / 0.03)
    py, px = coordinate_grid((low, low), (attrs["disc_cy"] * scale, attrs["disc_cx"] * scale))
    glow = 0.12 * np.exp(-(px**2 + py**2) / (0.9 * dd) ** 2)  # the retina around the disc is brighter
    tint = np.array([0.8, 0.33, 0.12]) * rng.uniform(0.65, 0.95) * np.exp(rng.normal(0, [0.04, 0.1, 0.15]))
    fields = []
    for c in range(3):
        texture = 1 + 0.2 * blotch[0] + (0.08 + 0.12 * c) * blotch[1] + 0.025 * grain
        fields.append(tint[c] * light * texture * (1 - macula * (1 + 0.2 * c)) * (1 + glow * (1 + c)))
    rgb = np.clip(np.stack(fields, axis=-1) * 255 + 0.5, 0, 255).astype(np.uint8)
    return ImageChops.multiply(Image.fromarray(rgb, "RGB").resize((size, size), Image.BILINEAR), _fov_mask(size))


def _vessel_layers(rng: np.random.Generator, attrs: dict, size: int) -> tuple[Image.Image, Image.Image]:
    """Vein and artery coverage as blurred polyline trees, each an ``L`` image (255 = vessel)."""
    dd = 2 * attrs["disc_ry"]  # disc diameter: the natural unit of retinal anatomy
    step = max(1.0, 0.06 * dd)
    disc = np.array([attrs["disc_cx"], attrs["disc_cy"]])
    macula = np.array([attrs["macula_cx"], attrs["macula_cy"]])
    cx, cy, radius = _fov(size)
    temporal = -1.0 if attrs["eye"] == "OD" else 1.0
    branches = []

    def grow(kind, start, heading, length, width, curvature, depth):
        n = max(2, int(length / step))
        headings = heading + np.cumsum(curvature * step + rng.normal(0, 0.07, n))
        points = start + np.cumsum(step * np.column_stack([np.cos(headings), np.sin(headings)]), axis=0)
        outside = np.flatnonzero(np.hypot(points[:, 0] - cx, points[:, 1] - cy) > radius + 2)
        n = int(outside[0]) if outside.size else n
        if n < 2:
            return
        points, widths = np.vstack([start, points[:n]]), width * np.linspace(1.0, 0.4, n + 1)
        branches.append((kind, points, widths))
        if depth == 0:
            return
        for i in np.sort(
            rng.choice(np.arange(n // 5, n), size=min(n - n // 5, int(rng.integers(1, 4))), replace=False)
        ):
            child_heading = headings[i - 1] + rng.choice([-1.0, 1.0]) * rng.uniform(0.45, 1.0)
            to_macula = macula - points[i]
            dist = float(np.hypot(*to_macula))
            room = (n - i) * step * rng.uniform(0.5, 0.9) + dd * rng.uniform(0.3, 1.0)
            if math.cos(child_heading) * to_macula[0] + math.sin(child_heading) * to_macula[1] > 0.8 * dist:
                room = min(room, max(0.0, dist - 0.6 * dd))  # vessels stop short of the avascular fovea
            grow(
                kind,
                points[i],
                child_heading,
                room,
                widths[i] * rng.uniform(0.55, 0.75),
                rng.normal(0, 0.3) / dd,
                depth - 1,
            )

    arc_radius = float(np.hypot(*(macula - disc)))
    for kind, width, offset in (("vein", 0.085, 0.08), ("artery", 0.065, -0.08)):
        origin = disc + np.array([-temporal * 0.04 * dd, 0]) + rng.normal(0, 0.03 * dd, 2)
        for vertical in (-1.0, 1.0):  # superior and inferior halves
            # Temporal arcades leave the disc vertically and bend temporally to arch around the macula.
            heading = math.atan2(vertical, temporal * rng.uniform(0.15, 0.4) + offset)
            turn = -vertical * temporal / (arc_radius * rng.uniform(1.1, 1.5))
            grow(kind, origin, heading, arc_radius * rng.uniform(1.3, 1.8), width * dd, turn, 3)
            nasal_heading = math.atan2(vertical, -temporal * rng.uniform(0.5, 1.5))
            grow(
                kind,
                origin,
                nasal_heading,
                radius * rng.uniform(0.6, 1.0),
                width * dd * 0.75,
                rng.normal(0, 0.2) / dd,
                2,
            )
        for _ in range(int(rng.integers(1, 3))):  # thin papillomacular and nasal twigs
            heading = math.atan2(rng.normal(0, 0.6), temporal * rng.choice([-1.0, 1.0]))
            grow(kind, origin, heading, dd * rng.uniform(1.0, 2.0), width * dd * 0.4, rng.normal(0, 0.5) / dd, 1)
    layers = {kind: Image.new("L", (size, size), 0) for kind in ("vein", "artery")}
    draws = {kind: ImageDraw.Draw(layer) for kind, layer in layers.items()}
    for kind, points, widths in branches:
        # One polyline per run of equal integer width; vessels thinner than 1 px fade instead.
        key = np.maximum(1, np.rint(widths)) * 1000 + np.rint(8 * np.minimum(1.0, widths))
        cuts = [0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), len(widths) - 1]
        coords = points.tolist()
        for a, b in zip(cuts[:-1], cuts[1:]):
            w = float(widths[a])
            run = [tuple(p) for p in coords[a : b + 1]]
            draws[kind].line(run, fill=int(255 * min(1.0, w)), width=max(1, round(w)), joint="curve")
    blur = ImageFilter.BoxBlur(0.6 + 0.3 * size / 512)
    return layers["vein"].filter(blur), layers["artery"].filter(blur)


class _DiscCrop:
    """Disc geometry on a crop around the disc, shared by the image and its twin."""

    def __init__(self, attrs: dict, size: int):
        half = int(math.ceil(1.45 * max(attrs["disc_rx"], attrs["disc_ry"]) + 4))
        cx, cy = round(attrs["disc_cx"]), round(attrs["disc_cy"])
        (y0, y1), (x0, x1) = (
            (max(0, cy - half), min(size, cy + half + 1)),
            (max(0, cx - half), min(size, cx + half + 1)),
        )
        self.box = (slice(y0, y1), slice(x0, x1))
        self.dy, self.dx = coordinate_grid((y1 - y0, x1 - x0), (attrs["disc_cy"] - y0, attrs["disc_cx"] - x0))
        tilt, (a2, p2, a3, p3) = attrs["disc_tilt"], attrs["disc_wobble"]
        u = (self.dx * math.cos(tilt) + self.dy * math.sin(tilt)) / attrs["disc_rx"]
        v = (self.dy * math.cos(tilt) - self.dx * math.sin(tilt)) / attrs["disc_ry"]
        theta = np.arctan2(v, u)
        self.rho = np.hypot(u, v) / (1 + a2 * np.cos(2 * theta + p2) + a3 * np.cos(3 * theta + p3))
        self.disc = self.rho <= 1
        self.inner = ndimage.binary_erosion(self.disc)  # the cup always leaves a rim of >= 1 px
        self.height = int(self.disc.sum(axis=0).max())
        self.rx, self.ry, self.temporal = attrs["disc_rx"], attrs["disc_ry"], (-1.0 if attrs["eye"] == "OD" else 1.0)

    def cup(self, half_height: float, aspect: float, shift_x: float, shift_y: float, nudge: float = 0.0) -> tuple:
        """Normalised cup radius (1 on the cup edge, float32), cup mask (bool), both crop-shaped, and
        the ellipse ``(ox, oy, half_width, half_height)`` in px relative to the disc centre."""
        half_width = min(aspect * half_height, 0.9 * self.rx - 1)
        ox = self.temporal * shift_x * max(0.0, 0.9 * self.rx - half_width - 1.5)
        oy = shift_y * max(0.0, self.ry - half_height - 1.5) + nudge
        rho = np.hypot((self.dx - ox) / half_width, (self.dy - oy) / half_height)
        return rho, (rho <= 1) & self.inner, (ox, oy, half_width, half_height)

    def fit_cup(self, target: float, interval: tuple, aspect: float, shift_x: float, shift_y: float) -> tuple:
        """Cup whose measured vCDR lies in ``interval``, near ``target``: (rho, mask, cup height in px, ellipse)."""
        low, high, inclusive = interval
        ratios = np.arange(self.height + 1) / self.height
        counts = np.flatnonzero((ratios >= low) & ((ratios <= high) if inclusive else (ratios < high))).tolist()
        if not counts:
            raise ValueError(
                f"{NAME}: a disc {self.height} px tall cannot hold a vCDR in {interval[:2]}; increase size"
            )
        want = min(max(round(target * self.height), counts[0]), counts[-1])
        # Column counts of a symmetric cup change in steps of 2 px, so when a narrow interval holds a
        # single count of the other parity, moving the cup by half a pixel reaches it.
        for nudge in (0.0, 0.5):
            half_height = max(0.5, want / 2)
            for attempt in range(12):  # proportional steps converge in 1-3; small steps are a safety net
                rho, mask, ellipse = self.cup(half_height, aspect, shift_x, shift_y, nudge)
                got = int(mask.sum(axis=0).max(initial=0))
                if counts[0] <= got <= counts[-1]:
                    return rho, mask, got, ellipse
                half_height = max(0.5, half_height + ((want - got) / 2 if attempt < 4 else 0.25 * np.sign(want - got)))
        raise RuntimeError(f"{NAME}: could not fit a cup with vCDR in {interval[:2]} on a disc {self.height} px tall")


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C1-smooth in between (float, same shape)."""
    return np.clip(x, 0.0, 1.0) ** 2 * (3 - 2 * np.clip(x, 0.0, 1.0))


def _pallor(crop: _DiscCrop, look: dict, ellipse: tuple, stratum: str) -> np.ndarray:
    """Visible pallor of one cup (``ellipse`` from :meth:`_DiscCrop.cup`): float ``(h, w)`` in [0, 1], 0 outside the disc.

    The annotated cup is the 3-D excavation, whose edge graders place where vessels bend; the pale
    area is a separate, soft-edged, irregular region, smaller (glaucoma: cup/pallor dissociation,
    rounder and more central) or in physiological cups sometimes larger than the cup (:data:`_PALLOR`).
    """
    ox, oy, half_width, half_height = ellipse
    low, high, share, _ = _PALLOR[stratum]
    scale, mean = low + (high - low) * look["pallor_size"], math.sqrt(half_width * half_height)
    round_, central = share * look["pallor_round"], share * look["pallor_central"]
    rx, ry = (scale * ((1 - round_) * h + round_ * mean) for h in (half_width, half_height))
    u = (crop.dx - ox * (1 - central)) / rx - mean / rx * (
        look["pallor_offset"][0] + crop.temporal * look["pallor_temporal"]
    )
    v = (crop.dy - oy * (1 - central)) / ry - mean / ry * look["pallor_offset"][1]
    a2, p2, a3, p3 = look["pallor_wobble"]
    theta = np.arctan2(v, u)
    rho = np.hypot(u, v) / (1 + a2 * np.cos(2 * theta + p2) + a3 * np.cos(3 * theta + p3))
    # The edge is a gradient whose width is a share of the disc (not of the cup): 3-11 px at size 512.
    return _smoothstep((1 - rho) * math.sqrt(rx * ry) / (look["pallor_soft"] * crop.ry) + 0.5) * np.clip(
        (1 - crop.rho) * 8, 0, 1
    )


def _compose(crop: _DiscCrop, base: np.ndarray, shared: tuple, look: dict, cup: tuple) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 ``(H, W, 3)`` and REFUGE label map uint8 ``(H, W)`` for one cup on the shared fundus."""
    background, vessels, noise = (
        shared  # float32 crops: (h, w, 3) and two (h, w) in [0, 1], noise (h, w, 3) in 0..255 units
    )
    rho_cup, cup_mask, cup_height, ellipse = cup
    rho = crop.rho
    edge = np.clip((1 - rho) * crop.ry / look["margin"] + 0.5, 0, 1)[..., None]  # disc margin, softer when defocused
    stratum = stratum_of(cup_height / crop.height)
    pallor = look["contrast"] * _pallor(crop, look, ellipse, stratum)[..., None]
    side = np.clip(crop.temporal * crop.dx / crop.rx, 0, 1)  # the temporal rim is paler than the nasal
    retina = background.mean(axis=(0, 1))
    relief = (background / retina) ** 0.4  # retinal texture shows through the rim
    # The disc stays clearly brighter than the retina around it, however bright the fundus.
    rim = look["rim"] * max(1.0, 1.4 * retina.sum() / look["rim"].sum()) * relief
    rim = rim * ((0.9 + 0.2 * (1 - np.clip(rho, 0, 1))) * (1 + look["rim_temporal"] * side))[..., None]
    gx, gy = look["gradient"]  # uneven illumination across the disc
    # Inside the excavation the rim's pink capillary tint fades even where the floor is not pale: a
    # faint hint of the true cup edge, soft over 0.15 disc radius.
    wall = (
        _smoothstep((1 - rho_cup) * min(ellipse[2:]) / (0.15 * crop.ry) + 0.5)[..., None]
        * look["wall"]
        * _PALLOR[stratum][3]
    )
    rim = rim * (1 - wall) + wall * rim.mean(axis=-1, keepdims=True) * np.array([1.0, 0.95, 0.9])
    disc = (rim * (1 - pallor) + look["cup"] * pallor) * (1 + (gx * crop.dx + gy * crop.dy) / crop.rx)[..., None]
    colour = background * (1 - edge) + edge * disc
    if look["ppa"] > 0:  # peripapillary atrophy: a pale or pigmented temporal crescent outside the disc
        crescent = side * np.clip((1.25 - rho) / 0.1, 0, 1) * (rho > 1)
        colour += look["ppa"] * crescent[..., None] * (look["rim"] * 0.85 - colour)
    # Vessels kink where they dip over the cup edge: inside the cup they are shifted sideways.
    # The shift ramps up over 0.4 cup radii and is at most 0.2 of one, so the warp never folds.
    inside = np.clip((1 - rho_cup) / 0.4, 0, 1) * (rho < 0.98)
    shift = look["kink"] * cup_height / 2 * inside[..., None]
    ys, xs = np.mgrid[0 : rho.shape[0], 0 : rho.shape[1]].astype(np.float32)
    coords = [ys + shift[..., 0], xs + shift[..., 1]]
    # Vessels dip out of sight past the true (3-D) cup edge, whatever the pallor does: the real cue.
    fade = 1 - look["dip"] * inside
    for layer, tone in zip(vessels, (look["vein"], look["artery"])):
        alpha = ndimage.map_coordinates(layer, coords, order=1, mode="nearest") * fade
        colour *= 1 - alpha[..., None] * (1 - tone)
    near = rho < 1.3  # disc, its soft margin and the crescent; beyond it the shared base is kept as is
    image = base.copy()
    image[crop.box][near] = np.clip(colour[near] * 255 + noise[near] + 0.5, 0, 255).astype(np.uint8)
    label = np.full(base.shape[:2], 255, dtype=np.uint8)
    label[crop.box][crop.disc] = 128
    label[crop.box][cup_mask] = 0
    return image, label


def _tone_lut(tone: np.ndarray) -> list[int]:
    """Per-channel lookup: vessel coverage 0..255 -> multiplicative factor 0..255 (for ImageChops)."""
    cover = np.arange(256) / 255
    return np.concatenate([np.rint(255 * (1 - cover * (1 - t))) for t in tone]).astype(int).tolist()


def render_fundus(rng: np.random.Generator, attrs: dict, size: int) -> dict:
    """Render one image and its normal twin from :func:`sample_fundus_attributes` output.

    Returns:
        Dict with ``image``/``normal_image`` (uint8 ``(size, size, 3)`` RGB), ``mask``/``normal_mask``
        (uint8 ``(size, size)``, values {0, 128, 255}), ``disc_height``, ``cup_height`` and
        ``normal_cup_height`` (max per-column pixel counts, so vCDR = cup_height / disc_height).
    """
    background = _background(rng, attrs, size)
    vessels = _vessel_layers(rng, attrs, size)
    defocus = size / 512 * rng.uniform(0.0, 1.0) ** 2 * 2.0  # Gaussian sigma (px): most images sharp, a few soft
    look = {  # per image; "pallor_*", "contrast", "dip", "wall" and "kink" decide how ambiguous the cup is
        "vein": np.array([0.5, 0.3, 0.45]) * rng.uniform(0.85, 1.1),
        "artery": np.array([0.85, 0.58, 0.72]),
        "rim": np.array([0.97, 0.63, 0.34]) * rng.uniform(0.8, 1.0) * np.exp(rng.normal(0, [0.02, 0.06, 0.12])),
        "cup": np.array([1.0, 0.92, 0.76]) * rng.uniform(0.9, 1.0) * np.exp(rng.normal(0, [0.0, 0.03, 0.08])),
        "rim_temporal": rng.uniform(0.0, 0.15),
        "ppa": rng.uniform(0.2, 0.5) if rng.random() < 0.4 else 0.0,
        "kink": np.clip(rng.normal(0, 0.1, 2), -0.14, 0.14),
        "dip": rng.uniform(0.15, 0.4),
        "wall": rng.uniform(0.0, 0.15),
        "contrast": rng.uniform(0.3, 1.0),
        "pallor_size": rng.random(),
        "pallor_round": rng.uniform(0.0, 0.7),
        "pallor_central": rng.uniform(0.0, 0.6),
        "pallor_offset": rng.normal(0, 0.08, 2),
        "pallor_temporal": rng.uniform(0.0, 0.12),
        "pallor_soft": rng.uniform(0.08, 0.3),
        "pallor_wobble": [
            rng.uniform(-0.08, 0.08),
            rng.uniform(0, 2 * np.pi),
            rng.uniform(-0.06, 0.06),
            rng.uniform(0, 2 * np.pi),
        ],
        "gradient": rng.uniform(0.0, 0.12) * np.array([math.cos(phi := rng.uniform(0, 2 * np.pi)), math.sin(phi)]),
        "margin": math.hypot(1.2, 2 * defocus),
    }
    if defocus > 0.05:  # defocus blurs the vessels everywhere (the retina is smooth already)
        vessels = tuple(layer.filter(ImageFilter.GaussianBlur(defocus)) for layer in vessels)
    base_image = background
    for layer, tone in zip(vessels, (look["vein"], look["artery"])):
        base_image = ImageChops.multiply(base_image, layer.convert("RGB").point(_tone_lut(tone)))
    # Sensor noise, shared by image and twin so that they stay identical outside the disc.
    amplitude = int(rng.integers(1, 5))
    noise = rng.integers(-amplitude, amplitude + 1, (size, size, 3), dtype=np.int8)
    base = np.clip(np.asarray(base_image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    crop = _DiscCrop(attrs, size)
    shared = (
        np.asarray(background, dtype=np.float32)[crop.box] / 255,
        [np.asarray(layer, dtype=np.float32)[crop.box] / 255 for layer in vessels],
        noise[crop.box],
    )
    cup, twin = (
        crop.fit_cup(
            attrs[f"{prefix}vcdr_target"],
            interval,
            *(attrs[f"{prefix}cup_{k}"] for k in ("aspect", "shift_x", "shift_y")),
        )
        for prefix, interval in (("", STRATA[attrs["stratum"]]), ("normal_", TWIN_VCDR))
    )
    image, mask = _compose(crop, base, shared, look, cup)
    normal_image, normal_mask = _compose(crop, base, shared, look, twin)
    return {
        "image": image,
        "mask": mask,
        "normal_image": normal_image,
        "normal_mask": normal_mask,
        "disc_height": crop.height,
        "cup_height": cup[2],
        "normal_cup_height": twin[2],
    }


def _paths(part: str, image_id: str, glaucoma: bool) -> tuple[str, str]:
    """Image and mask paths (relative, POSIX) in the REFUGE layout."""
    if part == "train":
        folder = "Glaucoma" if glaucoma else "Non-Glaucoma"
        return f"Training400/{folder}/{image_id}.jpg", f"Annotation-Training400/Disc_Cup_Masks/{folder}/{image_id}.bmp"
    if part == "validation":
        return f"REFUGE-Validation400/{image_id}.jpg", f"REFUGE-Validation400-GT/Disc_Cup_Masks/{image_id}.bmp"
    return f"Test400/{image_id}.jpg", f"REFUGE-Test-GT/Disc_Cup_Masks/{'G' if glaucoma else 'N'}/{image_id}.bmp"


def _save(root: Path, relative: str, array: np.ndarray) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        Image.fromarray(array, "RGB").save(path, format="JPEG", quality=95)
    else:
        Image.fromarray(array, "L").save(path, format="BMP")


def generate(
    config: SynthFundusConfig, seed: int, out_dir: str | Path, *, test_seed: int | None = None, progress: bool = True
) -> pd.DataFrame:
    """Write ``synth_fundus`` in the REFUGE layout under ``out_dir`` (atomically) and return its table.

    Image ``j`` of part ``p`` draws everything from ``numpy_rng(seed, "synth_fundus", p, j)``, so
    it never depends on other images and the same seed gives byte-identical files. The test part
    uses ``test_seed`` instead of ``seed`` when given (a test world no tuning has seen).

    Args:
        config: sizes and class balance.
        seed: base seed.
        test_seed: base seed of the test part (``None``: ``seed``).
        out_dir: dataset root; replaced as a whole once complete.
        progress: show a tqdm bar.

    Returns:
        The table written to ``attributes.csv`` (columns :data:`COLUMNS`, one row per image).
    """
    parts = (("train", config.n_train), ("validation", config.n_validation), ("test", config.n_test))
    rows = []
    with atomic_dir(out_dir) as root, tqdm(total=sum(n for _, n in parts), desc=NAME, disable=not progress) as bar:
        for part, glaucoma in ((p, g) for p in ("train", "test") for g in (True, False)):
            for relative in _paths(part, "x", glaucoma):  # class folders exist even when empty
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
        for part, count in parts:
            per_class = {True: 0, False: 0}
            for j in range(count):
                rng = numpy_rng(test_seed if part == "test" and test_seed is not None else seed, NAME, part, j)
                attrs = sample_fundus_attributes(rng, config)
                out = render_fundus(rng, attrs, config.size)
                vcdr = out["cup_height"] / out["disc_height"]
                glaucoma = vcdr >= config.glaucoma_vcdr
                per_class[glaucoma] += 1
                if part == "train":
                    image_id = f"{'g' if glaucoma else 'n'}{per_class[glaucoma]:04d}"
                else:
                    image_id = f"{'V' if part == 'validation' else 'T'}{j + 1:04d}"
                image_path, mask_path = _paths(part, image_id, glaucoma)
                normal_image, normal_mask = f"Normal/{image_id}.jpg", f"Normal/{image_id}.bmp"
                for key, relative in zip(
                    ("image", "mask", "normal_image", "normal_mask"), (image_path, mask_path, normal_image, normal_mask)
                ):
                    _save(root, relative, out[key])
                rows.append(
                    {
                        "id": image_id,
                        "part": part,
                        "glaucoma": bool(glaucoma),
                        "vcdr": vcdr,
                        "vcdr_target": attrs["vcdr_target"],
                        "stratum": stratum_of(vcdr),
                        "disc_cx": round(attrs["disc_cx"], 2),
                        "disc_cy": round(attrs["disc_cy"], 2),
                        "disc_diameter_px": out["disc_height"],
                        "cup_diameter_px": out["cup_height"],
                        "rim_thinning": attrs["rim_thinning"],
                        "image": image_path,
                        "mask": mask_path,
                        "normal_image": normal_image,
                        "normal_mask": normal_mask,
                        "normal_vcdr": out["normal_cup_height"] / out["disc_height"],
                    }
                )
                bar.update()
        table = pd.DataFrame(rows, columns=COLUMNS)
        table.to_csv(root / "attributes.csv", index=False)
    return table
