"""``synth_polyp``: procedural colonoscopy frames with one polyp each, in the CVC-ClinicDB layout.

Each frame is a shaded lumen (a tube seen from inside, haustral folds, textured pink-red mucosa,
vessels, specular highlights, black endoscope border) with one polyp rendered from a height map
in millimetres. A lesion-free twin of every frame is written beside it, so the polyp's own
contribution (``image - twin``) is known exactly. Frames are grouped into video sequences that
share a scene; each frame and its polyp come from their own seeded stream, so any frame can be
regenerated alone and the same seed gives byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage
from tqdm import tqdm

from benchmark.data.cvc_clinicdb import CVC_SEQUENCE_RANGES
from benchmark.data.procedural.noise import coordinate_grid, fractal_noise, smooth
from benchmark.utils.io import atomic_dir
from benchmark.utils.seeding import numpy_rng

NAME = "synth_polyp"
COLUMNS = (
    "id",
    "sequence",
    "part",
    "diameter_mm",
    "small",
    "paris_type",
    "flat",
    "surface",
    "vascular_pattern",
    "height_mm",
    "contrast",
    "center_x",
    "center_y",
    "area_px",
    "area_fraction",
)
_VESSEL_TINT = np.array([0.3, 0.65, 0.55], np.float32)  # vessels absorb green/blue most: dark red
_LUT = 2048  # samples of the angle functions around the lumen
_HALO = 0.16  # shadows and blending may reach this fraction of the polyp radius (+ 2 px) past its mask


@dataclass(frozen=True)
class SynthPolypConfig:
    """Settings of the ``synth_polyp`` generator.

    Attributes:
        n_images: number of frames (>= 1); 612 mirrors CVC-ClinicDB and its 29 sequences.
        height: native frame height in px (>= 32); CVC-ClinicDB frames are 288 high.
        width: native frame width in px (>= 32); CVC-ClinicDB frames are 384 wide.
        px_per_mm: fixed scale in native px per mm (>= 1.5, so a 2 mm polyp spans >= 3 px);
            ``max_diameter_mm * px_per_mm`` must be <= 0.6 * min(height, width).
        p_small: probability in [0, 1] that a polyp's diameter is < 5 mm.
        p_flat: probability in [0, 1] of a flat polyp (Paris 0-II).
        p_pedunculated: probability in [0, 1] of a pedunculated polyp (Paris 0-Ip); the rest,
            ``1 - p_flat - p_pedunculated`` (so the sum must be <= 1), is sessile (0-Is).
        max_diameter_mm: largest polyp diameter in mm, in [5, 100].
        test_sequences: video sequences of the separate test world (>= 0; 0 = none, the test
            split is then drawn from the ``n_images`` frames). The test world is drawn from its
            own seed (``procedural.test_seed``), so nothing tuned on the training world saw it.
        test_frames: frames per test-world sequence (>= 1). Frames of one sequence are not
            independent, so statistics run over sequences: many short sequences give more power
            per rendered frame than few long ones.
    """

    n_images: int = 612
    height: int = 288
    width: int = 384
    px_per_mm: float = 10.0
    p_small: float = 0.12
    p_flat: float = 0.12
    p_pedunculated: float = 0.28
    max_diameter_mm: float = 17.0
    test_sequences: int = 0
    test_frames: int = 5

    def __post_init__(self) -> None:
        def check(field: str, low: float, high: float, rule: str, integer: bool = False) -> None:
            value = getattr(self, field)
            kinds = (int, np.integer) if integer else (int, float, np.number)
            if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:  # NaN fails too
                raise ValueError(f"{NAME}.{field} must be {rule}, got {value!r}")

        for field, low in (("n_images", 1), ("height", 32), ("width", 32), ("test_sequences", 0), ("test_frames", 1)):
            check(field, low, math.inf, f"an int >= {low}", integer=True)
        for field in ("p_small", "p_flat", "p_pedunculated"):
            check(field, 0, 1, "in [0, 1]")
        room = 1 - self.p_flat
        check("p_pedunculated", 0, room, f"in [0, 1 - p_flat] = [0, {room:g}] (p_flat + p_pedunculated <= 1)")
        check("px_per_mm", 1.5, math.inf, ">= 1.5")
        check("max_diameter_mm", 5, 100, "in [5, 100]")
        limit = 0.6 * min(self.height, self.width) / self.px_per_mm
        fit = "so that max_diameter_mm * px_per_mm <= 0.6 * min(height, width)"
        check("max_diameter_mm", 5, limit + 1e-9, f"in [5, {limit:g}] {fit}")


def sequence_of_frames(n_images: int) -> np.ndarray:
    """1-based video sequence of every frame: CVC-ClinicDB's ranges for 612 frames, else
    ``min(29, n_images)`` contiguous near-equal blocks.

    Returns:
        int64 array ``(n_images,)`` with values in ``[1, min(29, n_images)]``, non-decreasing.
    """
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 1:
        raise ValueError(f"{NAME}.n_images must be an int >= 1, got {n_images!r}")
    if n_images == 612:
        lengths = [stop - start + 1 for start, stop in CVC_SEQUENCE_RANGES]
        return np.repeat(np.arange(1, 30, dtype=np.int64), lengths)
    blocks = min(29, int(n_images))
    return np.arange(n_images, dtype=np.int64) * blocks // n_images + 1


def sample_polyp_attributes(rng: np.random.Generator, config: SynthPolypConfig) -> dict:
    """Draw one polyp's clinical attributes (no rendering).

    Args:
        rng: random generator; :func:`generate` calls this first on each frame's stream.
        config: generator settings (strata probabilities, largest diameter).

    Returns:
        dict with ``diameter_mm`` (float in [2, max_diameter_mm], largest footprint diameter),
        ``small`` (bool, diameter_mm < 5), ``paris_type`` ("pedunculated" | "sessile" | "flat"),
        ``flat`` (bool), ``surface`` ("smooth" | "lobulated" | "irregular"),
        ``vascular_pattern`` ("faint" | "regular" | "irregular") and ``height_mm`` (float > 0).
    """
    small = bool(rng.random() < config.p_small)
    diameter = rng.uniform(2.0, 5.0) if small else 8.0
    for _ in range(0 if small else 100):  # truncated log-normal: most mass at 6-12 mm, a tail of large polyps
        diameter = rng.lognormal(math.log(8.5), 0.45)
        if 5.0 <= diameter <= config.max_diameter_mm:
            break
    diameter = float(np.clip(diameter, 2.0 if small else 5.0, config.max_diameter_mm))
    # floor, not round, so rounding never moves a diameter across the 5 mm stratum boundary
    diameter = max(2.0, math.floor(diameter * 100) / 100)
    u = rng.random()
    paris = "flat" if u < config.p_flat else "pedunculated" if u < config.p_flat + config.p_pedunculated else "sessile"
    surface_p = {"flat": (0.5, 0.1, 0.4), "sessile": (0.5, 0.3, 0.2), "pedunculated": (0.4, 0.45, 0.15)}[paris]
    if small:
        surface_p = (0.8, 0.1, 0.1)
    surface = str(rng.choice(["smooth", "lobulated", "irregular"], p=surface_p))
    p_irregular = 0.05 + 0.2 * (diameter >= 15) + 0.3 * (surface == "irregular")  # advanced-looking lesions
    p_regular = 0.35 if small else 0.4
    p_vascular = (1 - p_regular - p_irregular, p_regular, p_irregular)
    vascular = str(rng.choice(["faint", "regular", "irregular"], p=p_vascular))
    # flat (0-II) lesions rise well under 1 mm; pedunculated heads sit on a stalk, so are taller
    scale = {"flat": (0.2, 0.8), "sessile": (0.3, 0.55), "pedunculated": (0.7, 1.1)}[paris]
    height = rng.uniform(*scale) * (1.0 if paris == "flat" else diameter)
    return {
        "diameter_mm": diameter,
        "small": diameter < 5.0,
        "paris_type": paris,
        "flat": paris == "flat",
        "surface": surface,
        "vascular_pattern": vascular,
        "height_mm": round(float(height), 3),
    }


def generate(
    config: SynthPolypConfig, seed: int, out_dir: str | Path, *, test_seed: int | None = None, progress: bool = True
) -> pd.DataFrame:
    """Render the data set and write it atomically in the CVC-ClinicDB layout.

    Writes ``Original/<i>.tif`` (RGB uint8 ``(H, W, 3)``), ``Ground Truth/<i>.tif`` (uint8
    ``(H, W)`` in {0, 255}, 255 = polyp), ``Normal/<i>.tif`` (the lesion-free twin, RGB uint8
    ``(H, W, 3)``) for i = 1..n_images (the training world), then the test world's
    ``test_sequences x test_frames`` frames (ids continue after n_images, sequences after the
    training world's; ``part`` = "test", "train" for the training world), and ``attributes.csv``.

    Args:
        config: generator settings.
        seed: base seed of the training world; sequence k uses ``numpy_rng(seed, "synth_polyp",
            "sequence", k)`` and frame i ``numpy_rng(seed, "synth_polyp", "frame", i)``.
        out_dir: target directory, replaced as a whole only once everything is written.
        test_seed: base seed of the test world (required when ``config.test_sequences > 0``);
            test sequence j uses ``numpy_rng(test_seed, "synth_polyp", "test_sequence", j)``.
        progress: show a tqdm progress bar.

    Returns:
        The attributes table (one row per frame, columns :data:`COLUMNS`), as in the CSV.
    """
    if config.test_sequences and test_seed is None:
        raise ValueError(f"{NAME}: test_sequences = {config.test_sequences} needs a test_seed (procedural.test_seed)")
    sequences = sequence_of_frames(config.n_images)
    starts = {k: int(np.argmax(sequences == k)) for k in np.unique(sequences)}
    counts = np.bincount(sequences)
    # (sequence, position t in [0, 1], scene stream, frame stream, part) of every frame, training world first
    frames = [
        (
            int(sequences[i]),
            (i - starts[int(sequences[i])]) / max(1, counts[int(sequences[i])] - 1),
            (seed, NAME, "sequence", int(sequences[i])),
            (seed, NAME, "frame", i + 1),
            "train",
        )
        for i in range(config.n_images)
    ]
    last = int(sequences.max())
    for j in range(1, config.test_sequences + 1):
        frames += [
            (
                last + j,
                f / max(1, config.test_frames - 1),
                (test_seed, NAME, "test_sequence", j),
                (test_seed, NAME, "test_frame", j, f + 1),
                "test",
            )
            for f in range(config.test_frames)
        ]
    rows, scene, scene_k = [], None, None
    with atomic_dir(out_dir) as tmp:
        folders = [tmp / "Original", tmp / "Ground Truth", tmp / "Normal"]
        for folder in folders:
            folder.mkdir()
        for index, (k, t, scene_stream, frame_stream, part) in enumerate(tqdm(frames, desc=NAME, disable=not progress)):
            if k != scene_k:
                scene, scene_k = _Scene(numpy_rng(*scene_stream), config), k
            image, mask, twin, row = _render_frame(scene, numpy_rng(*frame_stream), t, config)
            for folder, array in zip(folders, (image, mask, twin)):
                photometric = "rgb" if array.ndim == 3 else "minisblack"
                tifffile.imwrite(folder / f"{index + 1}.tif", array, photometric=photometric)
            rows.append({"id": str(index + 1), "sequence": k, "part": part, **row})
        table = pd.DataFrame(rows, columns=list(COLUMNS))
        table.to_csv(tmp / "attributes.csv", index=False)
    return table


class _Scene:
    """One video sequence's scene: lumen geometry, mucosa, wall texture maps, endoscope border."""

    def __init__(self, rng: np.random.Generator, config: SynthPolypConfig) -> None:
        h, w = self.shape = (config.height, config.width)
        self.d = 0.5 * math.hypot(h, w)  # the unit of lumen geometry, so it scales with the frame
        self.vp = np.array([h * (0.5 + rng.uniform(-0.22, 0.22)), w * (0.5 + rng.uniform(-0.25, 0.25))])
        # functions of the angle around the lumen, tabulated: lumen bulge, fold waviness, fold strength
        angle = np.linspace(0, 2 * np.pi, _LUT, endpoint=False)
        bulge = 1 + _waves(rng, angle, [0, rng.uniform(0, 0.2), rng.uniform(0, 0.1)])  # oval / triangular
        wave = _waves(rng, angle, rng.uniform(0, 0.25, 4) / np.arange(1, 5))
        strength = np.clip(0.45 + _waves(rng, angle, rng.uniform(0.2, 0.5, 3)), 0, 1)  # partial folds
        self.lut = np.stack([bulge, wave, strength], -1).astype(np.float32)
        self.fold_gap, self.fold_phase, self.fold_amp = rng.uniform(1.1, 2.0), rng.uniform(0, 1), rng.uniform(0.45, 0.7)
        self.r0, self.gamma = rng.uniform(0.22, 0.34), rng.uniform(1.6, 2.4)
        self.base = np.array([rng.uniform(0.85, 1.0), rng.uniform(0.3, 0.45), rng.uniform(0.2, 0.32)], np.float32)
        self.exposure, self.light, self.vessels = rng.uniform(2.1, 2.8), rng.normal(0, 0.12, 2), rng.uniform(0.3, 0.8)
        self.drift = rng.normal(0, [0.04 * self.d, 0.04 * self.d, 0.08, 0.12])  # camera path over the sequence
        # wall maps in (log radius, angle): isotropic texels, so texture shrinks with depth as in perspective
        self.mw = max(96, int(round(0.7 * w)))
        self.v0, span = math.log(0.02), math.log(2.5 / 0.02)
        self.mh = int(round(self.mw * span / (2 * np.pi)))
        self.dv = span / (self.mh - 1)
        overlap = self.mw // 8
        cells = (6, 4, 7, 28)  # albedo texture, two vessel scales, specular spots
        maps = np.stack([fractal_noise(rng, (self.mh, self.mw + overlap), octaves=4, base_cells=c) for c in cells], -1)
        ramp = np.linspace(0, 1, overlap, dtype=np.float32)[None, :, None]  # cross-fade makes the angle wrap seamless
        maps[:, :overlap] = ramp * maps[:, :overlap] + (1 - ramp) * maps[:, self.mw :]
        self.maps = np.ascontiguousarray(maps[:, : self.mw]).reshape(-1, len(cells))
        # endoscope border: rounded octagon, fixed to the frame
        s = min(h, w)
        my, mx, cut = rng.uniform(0.015, 0.04) * s, rng.uniform(0.015, 0.04) * s, rng.uniform(0.12, 0.2) * s
        gy, gx = coordinate_grid(self.shape, ((h - 1) / 2, (w - 1) / 2))
        ay, ax, hy, hx = np.abs(gy), np.abs(gx), h / 2 - my, w / 2 - mx
        self.edge = np.minimum(np.minimum(hy - ay, hx - ax), (hy + hx - cut - ay - ax) / math.sqrt(2))
        self.fov = np.clip(self.edge / 1.5 + 0.5, 0, 1)
        vignette = 1 - 0.35 * np.exp(-np.maximum(self.edge, 0) / (0.08 * s))
        self.lighting = (vignette * (1 + (self.light[0] * gy + self.light[1] * gx) / self.d)).astype(np.float32)

    def sample(self, logr: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Bilinear look-up of the wall maps at wall coordinates; returns float32 ``(..., 4)``."""
        u = (theta % (2 * np.pi)) * (self.mw / (2 * np.pi))
        v = np.clip((logr - self.v0) / self.dv, 0, self.mh - 1.001)
        fu, fv = (u - np.floor(u))[..., None], (v - np.floor(v))[..., None]  # float32, unlike u - int
        u0, v0 = u.astype(np.int32) % self.mw, v.astype(np.int32)
        u1 = (u0 + 1) % self.mw
        row0, row1 = v0 * self.mw, (v0 + 1) * self.mw
        top = self.maps[row0 + u0] * (1 - fu) + self.maps[row0 + u1] * fu
        bottom = self.maps[row1 + u0] * (1 - fu) + self.maps[row1 + u1] * fu
        return top * (1 - fv) + bottom * fv

    def render(self, camera: np.ndarray) -> dict[str, np.ndarray]:
        """Wall layers for a camera pose ``(dy, dx, rotation, log zoom)``, all float32 ``(H, W[, 3])``."""
        dy, dx = coordinate_grid(self.shape, tuple(self.vp + camera[:2]))
        theta = np.arctan2(dy, dx) - np.float32(camera[2])
        index = ((theta + np.float32(4 * np.pi)) * np.float32(_LUT / (2 * np.pi))).astype(np.int32) % _LUT
        bulge, wave, strength = np.moveaxis(self.lut[index], -1, 0)
        reff = np.maximum(np.hypot(dx, dy) / (bulge * self.d) * np.float32(math.exp(camera[3])), 1e-3)
        light = 1 - np.exp(-((reff / self.r0) ** self.gamma))
        # haustral folds: rings at equal depth steps (depth ~ 1/r); u runs from just behind a rim
        # (in its shadow) to the proximal face of the next fold, which faces the light
        u = (1 / (reff * self.fold_gap) + self.fold_phase + wave) % 1
        ring_px = self.fold_gap * reff**2 * self.d  # rings closer than a few px would only alias
        amp = self.fold_amp * np.clip((ring_px - 4) / 10, 0, 1) * strength
        crest = np.exp(-((((1 - u) - 0.07) / 0.09) ** 2))
        folds = smooth(1 - amp * (0.75 * np.exp(-u / 0.15) - 0.4 * crest), 0.8)  # soften the rim to ~1 px
        # smooth noise fields are sampled at every second pixel; contours are still taken per pixel
        tex = _upsample2(self.sample(np.log(reff[::2, ::2]), theta[::2, ::2]), self.shape)
        albedo = self.base * (1 + 0.3 * (tex[..., :1] - 0.5) * np.array([0.6, 1.2, 1.2], np.float32))
        near = np.clip((reff - 0.1) / 0.3, 0, 1)
        vessel = np.exp(-(((tex[..., 1] - 0.5) / 0.011) ** 2)) + 0.7 * np.exp(-(((tex[..., 2] - 0.5) / 0.007) ** 2))
        vessel *= self.vessels * near * np.clip(tex[..., 0] * 2.2 - 0.4, 0, 1)  # vessels show in patches
        albedo *= 1 - np.minimum(vessel, 1)[..., None] * _VESSEL_TINT
        spots = np.clip((tex[..., 3] - 0.7) / 0.05, 0, 1)  # wet glints, mostly along the lit fold crests
        spec = np.clip(spots * (0.05 + 2 * crest * amp) * np.clip(light * 1.4 - 0.3, 0, 1) * near, 0, 1)
        lit = light * self.lighting
        return {"albedo": albedo, "shade": lit * folds, "lit": lit, "light": light, "spec": spec}


def _waves(rng: np.random.Generator, angle: np.ndarray, amplitudes) -> np.ndarray:
    """Sum of harmonics ``a_k cos((k + 1) angle - phase_k)`` with random phases."""
    phases = rng.uniform(0, 2 * np.pi, len(amplitudes))
    return sum(a * np.cos((k + 1) * angle - p) for k, (a, p) in enumerate(zip(amplitudes, phases)))


def _upsample2(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Linear 2x upsampling of ``x[::2, ::2]`` samples back to ``shape`` (last row/column repeated)."""
    for axis, size in enumerate(shape):
        a = np.moveaxis(a, axis, 0)
        out = np.empty((size, *a.shape[1:]), a.dtype)
        out[0::2] = a
        out[1::2] = np.concatenate([0.5 * (a[:-1] + a[1:]), a[-1:]])[: size // 2]
        a = np.moveaxis(out, 0, axis)
    return a


def _tone(albedo: np.ndarray, shade: np.ndarray, spec: np.ndarray, exposure: float, fov: np.ndarray) -> np.ndarray:
    """Camera response: exposure saturates red first (pale orange near the tip), speculars go white."""
    rgb = 1 - np.exp(-exposure * albedo * shade[..., None])
    rgb += spec[..., None] * (1 - rgb)
    return np.clip(rgb * fov[..., None] * 255 + 0.5, 0, 255).astype(np.uint8)


def _render_frame(scene: _Scene, rng: np.random.Generator, t: float, config: SynthPolypConfig):
    """One frame from its own stream ``rng`` at sequence position ``t`` in [0, 1].

    Returns:
        ``(image, mask, twin, row)``: RGB uint8 ``(H, W, 3)``, uint8 ``(H, W)`` in {0, 255}, the
        lesion-free RGB uint8 ``(H, W, 3)`` twin, and the attribute dict (table columns but id/sequence).
    """
    attrs = sample_polyp_attributes(rng, config)
    jitter = rng.normal(0, [0.015 * scene.d, 0.015 * scene.d, 0.03, 0.04])
    camera = scene.drift * (t - 0.5) + jitter
    wall = scene.render(camera)
    twin = _tone(wall["albedo"], wall["shade"], wall["spec"], scene.exposure, scene.fov)
    radius = attrs["diameter_mm"] * config.px_per_mm / 2
    for attempt in range(20):  # resample placement and shape until one clean component in view
        centre = _place(scene, wall["light"], camera, radius, rng, relax=attempt / 10)
        crop, h, extra = _polyp_height(attrs, centre, radius, scene, camera, rng, config)
        mask = h > 0.01 * attrs["height_mm"]
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        if n:
            keep = labels == 1 + np.argmax(np.bincount(labels.ravel())[1:])
            if np.all(scene.fov[crop][keep] > 0.999):
                break
    else:
        raise RuntimeError(f"{NAME}: could not place a {attrs['diameter_mm']} mm polyp in the field of view")
    h = np.where(keep, h, 0).astype(np.float32)
    # beyond the halo the image is the twin by construction, whatever the shading computed there
    reach = ndimage.binary_dilation(keep, np.ones((3, 3), bool), iterations=int(math.ceil(2 + _HALO * radius)))
    layers = _polyp_layers(attrs, h, keep, {k: v[crop] for k, v in wall.items()}, extra, rng, config)
    patch = _tone(*layers, scene.exposure, scene.fov[crop])
    image = twin.copy()
    image[crop] = np.where(reach[..., None], patch, twin[crop])
    mask = np.zeros(scene.shape, np.uint8)
    mask[crop] = np.where(keep, 255, 0)
    ys, xs = np.nonzero(mask)
    diff = np.abs(image[ys, xs].astype(np.int16) - twin[ys, xs].astype(np.int16))
    area = int(ys.size)
    row = dict(
        attrs,
        contrast=round(float(diff.mean()) / 255, 5),
        center_x=round(float(xs.mean()), 2),
        center_y=round(float(ys.mean()), 2),
        area_px=area,
        area_fraction=area / mask.size,
    )
    return image, mask, twin, row


def _place(scene: _Scene, light: np.ndarray, camera: np.ndarray, radius: float, rng, relax: float):
    """Random polyp centre ``(y, x)`` whose disc lies in the field of view and off the dark lumen."""
    step = 4
    ok = (light[::step, ::step] > 0.35 * max(0.0, 1 - relax)) & (scene.edge[::step, ::step] > 2)
    room = ndimage.distance_transform_edt(ok) * step
    room = np.minimum(room, scene.edge[::step, ::step])  # edge is an exact distance; EDT is coarse there
    ys, xs = np.nonzero(room >= radius + 3 + step)
    if ys.size == 0:
        ys, xs = np.unravel_index([np.argmax(room)], room.shape)
    pick = rng.integers(ys.size)
    return ys[pick] * step + rng.uniform(-1, 1), xs[pick] * step + rng.uniform(-1, 1)


def _harmonic_radius(rng, surface: str, angles: np.ndarray) -> np.ndarray:
    """Boundary radius factor per angle, max 1 so the largest diameter stays the drawn one."""
    if surface == "lobulated":
        ks, amps = [2, int(rng.integers(3, 7))], [0.02, rng.uniform(0.02, 0.045)]
    elif surface == "irregular":
        ks, amps = list(range(2, 10)), list(rng.uniform(0, 0.12, 8) / np.sqrt(np.arange(1, 9)))
    else:
        ks, amps = [2, 3], [0.02, 0.015]
    phases = rng.uniform(0, 2 * np.pi, len(ks))
    f = lambda a: 1 + sum(amp * np.cos(k * a + p) for k, amp, p in zip(ks, amps, phases))  # noqa: E731
    return (f(angles) / f(np.linspace(0, 2 * np.pi, 360, endpoint=False)).max()).astype(np.float32)


def _polyp_height(attrs: dict, centre, radius: float, scene: _Scene, camera, rng, config):
    """Height map (mm, float32) on a crop around ``centre``; returns (crop slices, h, geometry)."""
    h_img, w_img = scene.shape
    reach = radius + 2 + _HALO * radius + 3  # the crop holds the footprint and its halo
    y0, y1 = max(0, int(centre[0] - reach)), min(h_img, int(math.ceil(centre[0] + reach)) + 1)
    x0, x1 = max(0, int(centre[1] - reach)), min(w_img, int(math.ceil(centre[1] + reach)) + 1)
    dy, dx = coordinate_grid((y1 - y0, x1 - x0), (centre[0] - y0, centre[1] - x0))
    out = np.array(centre) - (scene.vp + camera[:2])
    out = out / (np.hypot(*out) + 1e-6)  # image direction away from the lumen: the proximal, lit side
    paris, height, surface = attrs["paris_type"], attrs["height_mm"], attrs["surface"]
    if paris == "pedunculated":
        psi, aspect = rng.uniform(0, 2 * np.pi), rng.uniform(0.92, 1.0)
        head = radius / (1 + rng.uniform(0.1, 0.22))  # footprint runs from stalk base (-r) to head rim (+r)
    else:  # foreshortened along the radial direction, as the wall is seen obliquely
        psi, aspect, head = math.atan2(out[0], out[1]) + np.pi / 2, rng.uniform(0.85, 1.0), radius
    a = dx * math.cos(psi) + dy * math.sin(psi)
    b = (-dx * math.sin(psi) + dy * math.cos(psi)) / aspect
    ah = a - (radius - head)
    angle = np.arctan2(b, ah)
    dist = np.hypot(ah, b) / head
    # the boundary wobble fades towards the centre, else height contours would crease radially
    rho = dist / (1 + (_harmonic_radius(rng, surface, angle) - 1) * np.minimum(dist, 1) ** 2)
    if paris == "flat":  # 0-II: a low plateau with a gently sloping rim
        s = np.clip((1 - rho) / 0.6, 0, 1)
        h = height * s * s * (3 - 2 * s)
    elif paris == "sessile":
        h = height * np.maximum(1 - rho**2, 0) ** rng.uniform(0.6, 1.2)  # steep dome to broad-based mound
    else:  # 0-Ip: a dome on a stalk of height `neck`; the head's rim rolls under, so it ends steeply
        neck = height * rng.uniform(0.3, 0.45)
        rim = np.clip((1 - rho) / 0.15, 0, 1)
        dome = (neck + (height - neck) * np.sqrt(np.maximum(1 - rho**2, 0))) * rim * rim * (3 - 2 * rim)
        # the stalk: a round-ended ridge from its foot (tip at -radius) to under the head's centre,
        # widening and sinking onto the wall
        half_width = head * rng.uniform(0.22, 0.32)
        foot = -radius + 1.3 * half_width
        along = np.clip((a - foot) / (radius - head - foot), 0, 1)
        dist = np.hypot(np.minimum(a - foot, 0), b) / (half_width * (1 + 0.3 * (1 - along) ** 2))
        rise = np.clip((a + radius) / (2 * (radius - head)), 0, 1)  # full height where the head begins
        ridge = neck * rise * rise * (3 - 2 * rise) * np.sqrt(np.maximum(1 - dist**2, 0))
        h = np.maximum(dome, np.where(a <= radius - head, ridge, 0))
    crop_mm = (y1 - y0) / config.px_per_mm
    cells = max(2, int(round(crop_mm / 2.0)))  # noise cells of ~2 mm on the polyp
    if surface == "lobulated":  # distinct lobes with creases between them (max, not sum, of bumps)
        lobes = np.zeros_like(h)
        for j in range(int(rng.integers(5, 10))):
            r, phi = rng.uniform(0, 0.15 if j == 0 else 0.7) * head, rng.uniform(0, 2 * np.pi)
            spread = 2 * (rng.uniform(0.2, 0.32) * head) ** 2
            lobes = np.maximum(lobes, np.exp(-((ah - r * math.cos(phi)) ** 2 + (b - r * math.sin(phi)) ** 2) / spread))
        h = h * (0.6 + 0.5 * lobes)
    elif surface == "irregular":
        h = h * (0.7 + 0.6 * fractal_noise(rng, h.shape, octaves=3, base_cells=cells))
    geometry = {"out": out, "rho": rho, "pedunculated": paris == "pedunculated", "cells": cells}
    return (slice(y0, y1), slice(x0, x1)), h.astype(np.float32), geometry


def _polyp_layers(attrs, h, keep, wall, geometry, rng, config):
    """Albedo, shade and specular layers of the crop with the polyp composited over the wall."""
    gy, gx = (g * np.float32(config.px_per_mm) for g in np.gradient(smooth(h, 0.7)))  # slopes, mm per mm
    lx, ly = 0.3 * float(geometry["out"][1]), 0.3 * float(geometry["out"][0])  # python floats keep float32
    norm = np.sqrt(1 + gx * gx + gy * gy)
    cos_l = (1 - gx * lx - gy * ly) / (norm * math.sqrt(1 + lx * lx + ly * ly))
    cos_flat = 1 / math.sqrt(1 + lx * lx + ly * ly)
    lambert = 0.35 + 0.65 * np.maximum(cos_l, 0) / cos_flat  # 1 on flat mucosa
    peak = attrs["height_mm"]
    radius_px = attrs["diameter_mm"] * config.px_per_mm / 2
    cavity = np.maximum(smooth(h, max(1.0, 0.06 * radius_px)) - h, 0)  # ambient occlusion at the base and neck
    shade_factor = lambert * (1 - 0.25 * np.clip(cavity / (0.3 * peak), 0, 1)) * (1 + 0.01 * h)
    if geometry["pedunculated"]:  # the head shades its stalk and the wall right under its rim
        rho = geometry["rho"]
        width = np.where(keep, 0.15, 0.08)  # longer on the stalk, short on the wall (stays inside the halo)
        shade_factor *= 1 - 0.35 * np.where(rho > 1, np.exp(-(((rho - 1) / width) ** 2)), 0)
    alpha = (np.clip(h / (0.1 * peak), 0, 1) * keep)[..., None]
    flat = attrs["paris_type"] == "flat"
    strength = rng.uniform(0.02, 0.06) if flat else rng.uniform(0.08, 0.22)
    redder = rng.random() < (0.75 if attrs["paris_type"] == "pedunculated" else 0.5)
    tint = [1, 1 - strength, 1 - strength] if redder else [1 - strength / 4, 1 + strength / 2, 1 + strength / 2]
    cells = geometry["cells"]
    pits = fractal_noise(rng, h.shape, octaves=3, base_cells=2 * cells)[..., None]
    local = smooth(wall["albedo"], 3.0)  # keep the mucosa's colour drift, drop its vessels
    albedo = local * np.array(tint, np.float32) * (1 + 0.1 * (pits - 0.5) * np.array([0.5, 1, 1], np.float32))
    pattern = attrs["vascular_pattern"]
    if pattern == "irregular":  # dilated tortuous vessels of varying calibre
        net = fractal_noise(rng, h.shape, octaves=4, base_cells=cells)
        width = 0.02 + 0.05 * fractal_noise(rng, h.shape, octaves=2, base_cells=2)
        vessels = 0.8 * np.exp(-(((net - 0.5) / width) ** 2))
    else:  # a fine regular meshwork, barely visible when faint
        net = fractal_noise(rng, h.shape, octaves=2, base_cells=cells * 4 // 3)
        vessels = (0.45 if pattern == "regular" else 0.12) * np.exp(-(((net - 0.5) / 0.03) ** 2))
    albedo *= 1 - vessels[..., None] * _VESSEL_TINT
    albedo = wall["albedo"] * (1 - alpha) + albedo * alpha
    glints = np.clip((fractal_noise(rng, h.shape, octaves=2, base_cells=2 * cells) - 0.55) / 0.3, 0, 1)
    facing = np.clip((cos_l - cos_flat) / (1 - cos_flat), 0, 1)  # only facets tilted towards the light
    sheen = np.maximum(cos_l, 0) ** rng.uniform(30, 70) + 0.6 * glints * facing**3
    sheen *= (0.3 if flat else 1.3) * wall["light"]  # a flat lesion barely changes the mucosa's sheen
    spec = wall["spec"] * (1 - alpha[..., 0]) + alpha[..., 0] * np.clip(sheen, 0, 1)
    # a polyp stands off the wall, so a fold rim behind it must not cut across it: use the mean fold shade
    folds = float(np.mean(wall["shade"] / np.maximum(wall["lit"], 1e-4)))
    shade = wall["shade"] * (1 - alpha[..., 0]) + wall["lit"] * folds * alpha[..., 0]
    return albedo, shade * shade_factor, spec
