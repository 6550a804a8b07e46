"""Figures for the reports: dataset galleries and per-image score distributions."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from benchmark.data import resolve_dataset


def overlay(image: np.ndarray, mask: np.ndarray, colour=(0, 255, 0), alpha: float = 0.45) -> np.ndarray:
    """RGB uint8 (H, W, 3) with a translucent ``mask`` (H, W) and its outline."""
    from scipy import ndimage

    out = image.astype(np.float32).copy()
    mask = mask.astype(bool)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, dtype=np.float32)
    edge = mask & ~ndimage.binary_erosion(mask)
    out[edge] = colour
    return out.clip(0, 255).astype(np.uint8)


def dataset_gallery(
    name: str,
    root: str,
    attributes: pd.DataFrame,
    n_samples: int,
    *,
    caption_columns: tuple[str, ...] = (),
    crop_scale: float = 2.0,
    folders=None,
) -> plt.Figure:
    """Rows of (image, ground truth overlay, lesion-free twin) at native resolution.

    Samples are ``n_samples`` test images evenly spaced in id order (so several sequences show),
    the same on every run. Read through the dataset's loader (registered, or the folder loader for
    a name in ``folders``, i.e. ``prepare.folders``), the same code that trains.
    """
    from benchmark.data.prepare import crop_padded, disc_crop_box

    spec = resolve_dataset(name, folders)
    loader = spec.make_loader(root)
    records = {record.id: record for record in loader.records()}
    test_ids = attributes[attributes["split"] == "test"]["id"].astype(str).tolist()
    picks = np.unique(np.linspace(0, len(test_ids) - 1, min(n_samples, len(test_ids))).round().astype(int))
    chosen = [test_ids[i] for i in picks]
    has_twin = (loader.root / "Normal").is_dir()
    columns = 3 if has_twin else 2
    figure, axes = plt.subplots(len(chosen), columns, figsize=(3.2 * columns, 2.6 * len(chosen)), squeeze=False)
    for row, key in enumerate(chosen):
        record = records[key]
        image, labels = loader.read_image(record), loader.read_label(record)
        panels = [image, overlay(image, labels == labels.max())]
        if has_twin:
            twin_path = next(p for p in sorted((loader.root / "Normal").glob(f"{key}.*")) if p.suffix.lower() != ".bmp")
            from benchmark.data.base import read_rgb

            panels.append(read_rgb(twin_path))
        if loader.modality == "fundus":
            top, left, side = disc_crop_box(labels, crop_scale)
            panels = [crop_padded(panel, top, left, side, 0) for panel in panels]
        info = attributes.set_index(attributes["id"].astype(str)).loc[key]
        caption = ", ".join(f"{column}={_short(info[column])}" for column in caption_columns if column in info)
        for column, (panel, title) in enumerate(zip(panels, ["image", "ground truth", "lesion-free twin"])):
            axes[row, column].imshow(panel)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row == 0:
                axes[row, column].set_title(title)
        axes[row, 1].set_xlabel(f"{key}: {caption}" if caption else key, fontsize=8)
    figure.suptitle(
        f"{name}: test samples (native resolution{', disc-centred crop' if loader.modality == 'fundus' else ''})"
    )
    figure.tight_layout()
    return figure


def _short(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def per_image_boxplot(
    seed_averaged: pd.DataFrame, metric: str = "dice", display_names: dict[str, str] | None = None
) -> plt.Figure:
    """Box plot of seed-averaged per-image scores, one panel per dataset."""
    import seaborn as sns

    data = seed_averaged.copy()
    data["method"] = data["method"].map(lambda m: (display_names or {}).get(m, m))
    datasets = list(dict.fromkeys(data["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        subset = data[data["dataset"] == dataset]
        sns.boxplot(data=subset, x="method", y=metric, ax=axis, color="#9ecae1", fliersize=2)
        sns.stripplot(data=subset, x="method", y=metric, ax=axis, color="#08519c", size=2, alpha=0.5)
        axis.set_title(f"{dataset} (n = {subset['image_id'].nunique()} test images)")
        axis.set_ylim(-0.02, 1.02)
        axis.set_xlabel("")
        axis.set_ylabel(f"per-image {metric} (mean over seeds)")
        axis.tick_params(axis="x", labelrotation=60)
        plt.setp(axis.get_xticklabels(), ha="right", fontsize=7)
    figure.tight_layout()
    return figure


def fnr_bars(table: pd.DataFrame) -> plt.Figure:
    """Lesion FNR in percent (the unit of Table 3) with bootstrap 95 % CIs: one panel per dataset, strata on x,
    a bar per method.

    Args:
        table: :func:`~benchmark.reporting.tables.lesion_detection_table` output (fractions; plotted × 100).
    """
    datasets = list(dict.fromkeys(table["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 3.8), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        subset = table[table["dataset"] == dataset]
        strata, methods = list(dict.fromkeys(subset["stratum"])), list(dict.fromkeys(subset["method"]))
        width = 0.8 / len(methods)
        for k, method in enumerate(methods):
            rows = subset[subset["method"] == method].set_index("stratum").reindex(strata)
            x = np.arange(len(strata)) + (k - (len(methods) - 1) / 2) * width
            fnr, low, high = 100 * rows["fnr"], 100 * rows["fnr_low"], 100 * rows["fnr_high"]
            axis.bar(x, fnr, width, yerr=np.vstack([fnr - low, high - fnr]), capsize=2, label=method)
        n = subset.groupby("stratum", sort=False)["lesions"].max().reindex(strata)
        axis.set_xticks(
            np.arange(len(strata)), [f"{name}\n(n = {count})" for name, count in zip(strata, n)], fontsize=8
        )
        axis.set_ylim(0, 100)
        axis.set_ylabel("lesion FNR (%)")
        axis.set_title(dataset)
    axes[0][-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    figure.tight_layout()
    return figure


def generation_gallery(gallery: dict[str, np.ndarray], background: int = 0, title: str = "") -> plt.Figure:
    """Generated lesions per prompt on one background and mask, next to real lesions of that kind.

    Args:
        gallery: the arrays of ``results/<dataset>/generator/gallery.npz`` (see the
            ``generator_check`` stage): ``samples`` uint8 (B, P, K, S, S, 3), ``backgrounds``
            (B, S, S, 3), ``masks`` (B, S, S), ``prompt_labels`` (P,), ``prompts`` (P,),
            ``real`` (P, K, S, S, 3) (all-zero panels where no real lesion of the kind exists).
        background: which of the B backgrounds to show.
        title: figure title.

    Returns:
        P rows: [background with the mask outlined, K samples, K real lesions].
    """
    samples, real = gallery["samples"][background], gallery["real"]
    n_prompts, k = samples.shape[:2]
    figure, axes = plt.subplots(n_prompts, 1 + 2 * k, figsize=(1.5 * (1 + 2 * k), 1.7 * n_prompts), squeeze=False)
    outlined = overlay(gallery["backgrounds"][background], gallery["masks"][background], alpha=0.0)
    for row in range(n_prompts):
        panels = [outlined, *samples[row], *real[row]]
        for column, panel in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(panel)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(
                    "background + mask"
                    if column == 0
                    else f"generated {column}"
                    if column <= k
                    else f"real {column - k}",
                    fontsize=8,
                )
        axes[row, 0].set_ylabel(str(gallery["prompt_labels"][row]), fontsize=8)
    figure.suptitle(
        title or "generated lesions per prompt (same background, mask and seeds) vs real lesions", fontsize=9
    )
    figure.tight_layout()
    return figure


def iou_histogram(manifests: dict[str, pd.DataFrame], theta: float) -> plt.Figure:
    """Validator IoU of every generated sample, accepted and rejected stacked, with θ marked; a panel per dataset."""
    figure, axes = plt.subplots(1, len(manifests), figsize=(4.5 * len(manifests), 3.2), squeeze=False)
    bins = np.linspace(0, 1, 41)
    for axis, (dataset, table) in zip(axes[0], manifests.items()):
        accepted = table["accepted"].astype(bool)
        axis.hist(
            [table.loc[accepted, "iou"], table.loc[~accepted, "iou"]],
            bins=bins,
            stacked=True,
            color=["#31a354", "#de2d26"],
            label=[f"accepted ({int(accepted.sum())})", f"rejected ({int((~accepted).sum())})"],
        )
        axis.axvline(theta, color="black", linestyle="--", linewidth=1, label=f"θ = {theta}")
        axis.set_xlabel("gate IoU (new lesion vs validator prediction)")
        axis.set_ylabel("generated samples")
        axis.set_title(dataset)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def accepted_rejected_gallery(
    images: np.ndarray, labels: np.ndarray, table: pd.DataFrame, n: int, seed: int = 0, title: str = ""
) -> plt.Figure:
    """Two rows of generated samples, accepted on top and rejected below, each with its intended
    label outlined and its gate IoU in percent (with the union-label IoU where the manifest has it); samples
    drawn at random with ``seed``. Captions are two short lines in room reserved for them, so no caption
    overlaps the row above or leaves the figure (:func:`caption_overlaps`)."""
    rng = np.random.default_rng(seed)
    rows = {
        "accepted": np.flatnonzero(table["accepted"].to_numpy()),
        "rejected": np.flatnonzero(~table["accepted"].to_numpy()),
    }
    figure, axes = plt.subplots(2, n, figsize=(1.6 * n, 4.4), squeeze=False)
    for r, (name, pool) in enumerate(rows.items()):
        picks = rng.choice(pool, min(n, len(pool)), replace=False) if len(pool) else []
        for c in range(n):
            axis = axes[r][c]
            axis.axis("off")
            if c < len(picks):
                k = picks[c]
                axis.imshow(
                    overlay(
                        images[k], labels[k] > 0, colour=(0, 255, 0) if name == "accepted" else (255, 0, 0), alpha=0.0
                    )
                )
                caption = f"{name}\nIoU {100 * table['iou'].iloc[k]:.0f} %"
                if "iou_union" in table:  # the gate's IoU (new lesion) and eq. 14's against the union label
                    caption = f"{name[:3]}. new {100 * table['iou'].iloc[k]:.0f} %\nunion {100 * table['iou_union'].iloc[k]:.0f} %"
                axis.set_title(caption, fontsize=7, pad=2)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout(h_pad=1.5)
    return figure


def caption_overlaps(figure: plt.Figure) -> list[str]:
    """The axes titles of ``figure`` that leave the figure or overlap another axes' drawing area (empty: all fit)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    whole = figure.bbox
    problems = []
    for axis in figure.axes:
        text = axis.title.get_text()
        if not text:
            continue
        box = axis.title.get_window_extent(renderer)
        if box.x0 < whole.x0 - 0.5 or box.x1 > whole.x1 + 0.5 or box.y0 < whole.y0 - 0.5 or box.y1 > whole.y1 + 0.5:
            problems.append(f"{text!r} leaves the figure")
        for other in figure.axes:
            if other is not axis and other.images and box.overlaps(other.get_window_extent(renderer)):
                problems.append(f"{text!r} overlaps another image")
    return problems


def loss_curve(logs: dict[str, pd.DataFrame], title: str = "generator training loss") -> plt.Figure:
    """Per-step training loss of each dataset's generator (``models/<dataset>/generator/train_log.csv``: columns
    ``step``, ``loss`` and, when logged, its parts ``noise`` and ``preserve``), log y axis, with a moving mean."""
    figure, axes = plt.subplots(1, len(logs), figsize=(5 * len(logs), 3.2), squeeze=False)
    for axis, (name, log) in zip(axes[0], logs.items()):
        window = max(1, len(log) // 20)
        axis.plot(log["step"], log["loss"], color="0.75", linewidth=0.8, label="loss (per step)")
        axis.plot(
            log["step"],
            log["loss"].rolling(window, min_periods=1).mean(),
            color="C0",
            label=f"loss, moving mean of {window}",
        )
        for part, colour in (("noise", "C1"), ("preserve", "C2")):
            if part in log:
                axis.plot(
                    log["step"],
                    log[part].rolling(window, min_periods=1).mean(),
                    color=colour,
                    linestyle="--",
                    label=f"{part} term, moving mean",
                )
        axis.set_yscale("log")
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("loss (eq. 7)")
        axis.set_title(name)
        axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def volume_plot(curve: pd.DataFrame, volumes: list[float], title: str = "") -> plt.Figure:
    """Table 7's curve: Dice (%) with its 95 % CI against synthetic volume; the real-only rows
    (the first two of ``curve``: no / standard augmentation) as horizontal dashed lines."""
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    synthetic = curve.iloc[len(curve) - len(volumes) :]
    centre = 100 * synthetic["dice"].to_numpy()
    error = np.vstack(
        [centre - 100 * synthetic["dice_ci_low"].to_numpy(), 100 * synthetic["dice_ci_high"].to_numpy() - centre]
    )
    axis.errorbar(volumes, centre, yerr=error, marker="o", capsize=3, label="DiffAug synthetic")
    for (_, row), style in zip(curve.iloc[: len(curve) - len(volumes)].iterrows(), (":", "--")):
        axis.axhline(100 * row["dice"], linestyle=style, color="grey", label=row["label"])
    axis.set_xlabel("synthetic volume (× real training images)")
    axis.set_ylabel("test Dice (%)")
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def generator_scale_plot(result: dict) -> plt.Figure:
    """The generator-scale study's curves against generator training steps (log axis): domain FID of the
    accepted samples, acceptance (%), and U-Net + DiffAug validation and test Dice (%) with the U-Net
    alone and the oracle control as horizontal lines."""
    rows = [row for row in result["variants"] if row.get("width", 1.0) == 1.0]
    steps = [row["generator_steps"] for row in rows]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(steps, [row["fid_accepted"] for row in rows], marker="o")
    axes[0].set_ylabel("FID of accepted samples (domain features)")
    axes[1].plot(steps, [100 * row["acceptance_rate"] for row in rows], marker="o")
    axes[1].set_ylabel("acceptance (%)")
    axes[2].plot(
        steps,
        [100 * row["unet_diffaug_validation_dice"] for row in rows],
        marker="o",
        label="U-Net + DiffAug, validation",
    )
    axes[2].plot(
        steps, [100 * row["unet_diffaug_test_dice"] for row in rows], marker="s", label="U-Net + DiffAug, test"
    )
    for key, style, label in (("unet", ":", "U-Net alone, test"), ("oracle", "--", "U-Net + oracle 1×, test")):
        ref = result["references"].get(key)
        if ref:
            axes[2].axhline(100 * ref["test_dice"], linestyle=style, color="grey", label=label)
    axes[2].set_ylabel("Dice (%)")
    axes[2].legend(fontsize=7)
    for axis in axes:
        axis.set_xscale("log")
        axis.set_xlabel("generator training steps")
    figure.suptitle(f"{result['dataset']}: generator scale", fontsize=10)
    figure.tight_layout()
    return figure
