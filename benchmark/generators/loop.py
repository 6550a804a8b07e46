"""DiffAug's generation–validation loop and quality gate (paper §3.3, eq. 14).

For each lesion-free background, several variants (prompt, mask, seed) are generated; each
generated image is segmented by the latent validator and kept only when the IoU between the
intended label and the validator's decoded prediction exceeds θ (default 0.7). Generation stops
once the requested number of accepted samples is reached. As in the paper, a rejected sample is
not regenerated; with ``top_up`` the loop draws further variants until the target is met or the
job budget is spent.

Every generated sample is recorded (accepted or not) so that Table 5 can compare accepted with
rejected generations. The training label is the background's own ground truth ∪ the new lesion
(for lesion-free polyp twins: the new lesion's mask M_i itself). The gate scores the NEW lesion
only (:func:`new_lesion_iou`): IoU between M_i and the validator's prediction, both restricted to
outside the background's own lesion (dilated for polyps; for an enlarged cup, the ring by which it
grows), so a sample in which nothing was painted cannot pass however well the validator segments
the lesion the background already had. Eq. 14's IoU against the union label is recorded beside it
(``iou_union``); on lesion-free polyp twins the two are equal.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from benchmark.generators.jobs import Jobs


def mask_iou(predicted: np.ndarray, intended: np.ndarray) -> np.ndarray:
    """Per-sample IoU of two binary mask stacks (N, S, S) -> float64 (N,); both empty -> 1."""
    predicted, intended = np.asarray(predicted, bool), np.asarray(intended, bool)
    if predicted.shape != intended.shape:
        raise ValueError(f"predicted {predicted.shape} and intended {intended.shape} masks differ in shape")
    intersection = (predicted & intended).sum(axis=(1, 2))
    union = (predicted | intended).sum(axis=(1, 2))
    return np.where(union == 0, 1.0, intersection / np.maximum(union, 1))


def new_lesion_iou(predicted: np.ndarray, new_masks: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """IoU of the new lesion: prediction and new mask both restricted to ``scored``. float64 (N,).

    Args:
        predicted: binary validator predictions (N, S, S).
        new_masks: the inpainted regions M_i (N, S, S) in {0, 1}.
        scored: where the gate looks (N, S, S) in {0, 1}: outside the background's own lesion.

    Returns:
        IoU per sample; 0 where the new mask has no pixel inside ``scored`` (nothing new to check:
        such a sample never passes).
    """
    predicted, new_masks, scored = (np.asarray(a, bool) for a in (predicted, new_masks, scored))
    if not predicted.shape == new_masks.shape == scored.shape:
        raise ValueError(
            f"predicted {predicted.shape}, new masks {new_masks.shape} and scored regions {scored.shape} differ in shape"
        )
    predicted, new_masks = predicted & scored, new_masks & scored
    intersection = (predicted & new_masks).sum(axis=(1, 2))
    union = (predicted | new_masks).sum(axis=(1, 2))
    return np.where(new_masks.any(axis=(1, 2)), intersection / np.maximum(union, 1), 0.0)


def gate(
    probabilities: np.ndarray, new_masks: np.ndarray, scored: np.ndarray, theta: float, *, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """The quality gate (eq. 14 on the new lesion): :func:`new_lesion_iou` of the prediction and ``IoU > θ``.

    Args:
        probabilities: validator output, float (N, S, S) in [0, 1].
        new_masks: the inpainted regions M_i, (N, S, S) in {0, 1}.
        scored: (N, S, S) in {0, 1}: outside the backgrounds' own lesions (``Jobs.scored``).
        theta: acceptance threshold in [0, 1) (paper 0.7; strict inequality as in the paper).
        threshold: probability threshold of the prediction (0.5, as everywhere in the suite).

    Returns:
        ``(iou float64 (N,), accepted bool (N,))``.
    """
    if not 0 <= theta < 1:
        raise ValueError(f"theta must be in [0, 1), got {theta}")
    iou = new_lesion_iou(np.asarray(probabilities) >= threshold, new_masks, scored)
    return iou, iou > theta


def run_loop(
    generate: Callable[[Jobs], np.ndarray] | None,
    segment: Callable[[np.ndarray], np.ndarray] | None,
    job_batches: Iterator[Jobs],
    *,
    target: int,
    theta: float,
    top_up: bool = False,
    max_jobs: int | None = None,
    progress: bool = True,
    submit: Callable[[Jobs], Any] | None = None,
    lookahead: int = 4,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Generate, validate and collect until ``target`` samples are accepted.

    Args:
        generate: jobs -> uint8 images (J, S, S, 3) (a generator's ``generate`` bound to its
            sampling settings; ``jobs.table["seed"]`` are the sampling seeds).
        segment: uint8 images -> validator probabilities float (J, S, S).
        job_batches: batches of jobs in a fixed order (first variants of every background first,
            see :func:`iterate_jobs`).
        target: accepted samples wanted (>= 1).
        theta: acceptance threshold of :func:`gate`.
        top_up: keep drawing jobs after the first pass over every background's planned
            variants (the caller's iterator decides how many); without it the loop stops after the
            planned jobs even if fewer than ``target`` were accepted.
        max_jobs: hard cap on generated samples (None = no cap).
        progress: tqdm bar over accepted samples.
        submit: instead of ``generate`` and ``segment``: jobs -> a future whose result is
            ``(images, probabilities, generate_seconds, validate_seconds)``, computed elsewhere (e.g.
            :class:`benchmark.utils.pool.WorkerPool` workers holding the models). Up to
            ``lookahead`` batches are in flight; results are consumed in batch order and the loop
            stops at the same batch as the serial loop, so the outcome does not depend on it
            (batches computed past the stopping point are discarded).

    Returns:
        ``(table, images, labels, masks, timings)``: one table row per generated sample (the
        jobs' columns plus ``iou`` (the gate's, on the new lesion), ``iou_union`` (eq. 14 against
        the union label, recorded only), ``accepted``, ``order`` = generation order); all generated
        images uint8 (G, S, S, 3), their intended labels and inpainted masks (G, S, S), accepted
        and rejected alike (the caller stores both); seconds spent generating and validating
        (summed over workers when ``submit`` is used).
    """
    if target < 1:
        raise ValueError(f"target must be >= 1 accepted samples, got {target}")
    if submit is None:
        lookahead = 1  # the serial loop computes at submission: never ahead of the stopping point

        def submit(jobs):
            return _Done(generate_and_segment(generate, segment, jobs))

    tables, images, labels, masks = [], [], [], []
    timings = {"generate_s": 0.0, "validate_s": 0.0}
    accepted = generated = submitted = 0
    pending: collections.deque = collections.deque()
    batches = iter(job_batches)
    bar = tqdm(total=target, desc="accepted", disable=not progress, unit="img")
    try:
        while accepted < target:
            while len(pending) < max(1, lookahead):  # keep the workers busy with the next batches in order
                jobs = next(batches, None)
                if jobs is None or (max_jobs is not None and submitted >= max_jobs):
                    break
                if not top_up and bool(jobs.table.get("top_up", pd.Series([False])).any()):
                    break
                pending.append((jobs, submit(jobs)))
                submitted += len(jobs.table)
            if not pending:
                break
            jobs, future = pending.popleft()
            batch_images, probabilities, generate_s, validate_s = future.result()
            timings["generate_s"] += generate_s
            timings["validate_s"] += validate_s
            iou, ok = gate(probabilities, jobs.masks, jobs.scored, theta)
            table = jobs.table.copy()
            table["iou"], table["accepted"] = iou, ok
            table["iou_union"] = mask_iou(np.asarray(probabilities) >= 0.5, jobs.labels)
            table["order"] = np.arange(generated, generated + len(table))
            tables.append(table)
            images.append(batch_images)
            labels.append(jobs.labels)
            masks.append(jobs.masks)
            generated += len(table)
            newly = int(ok.sum())
            bar.update(min(newly, target - accepted))
            accepted += newly
    finally:
        for _, future in pending:  # past the stopping point: not needed
            cancel = getattr(future, "cancel", None)
            if cancel is not None:
                cancel()
        bar.close()
    if not tables:
        raise ValueError("no job was generated: the job iterator is empty")
    return (
        pd.concat(tables, ignore_index=True),
        np.concatenate(images),
        np.concatenate(labels),
        np.concatenate(masks),
        timings,
    )


def generate_and_segment(
    generate: Callable[[Jobs], np.ndarray], segment: Callable[[np.ndarray], np.ndarray], jobs: Jobs
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One batch of the loop: ``(images, validator probabilities, generate seconds, validate seconds)``."""
    clock = time.perf_counter()
    batch_images = generate(jobs)
    now = time.perf_counter()
    probabilities = segment(batch_images)
    return batch_images, np.asarray(probabilities), now - clock, time.perf_counter() - now


class _Done:
    """A finished result with the ``Future.result`` interface (the serial loop)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def iterate_jobs(
    draw: Callable[[int], Jobs], n_variants: int, batch_size: int, *, top_up_rounds: int = 0
) -> Iterator[Jobs]:
    """Batches of jobs, variant-major: variant 0 of every background, then variant 1, ...

    Args:
        draw: ``draw(n_variants=k) -> Jobs`` for every background (e.g. ``functools.partial(draw_jobs,
            dataset, seed=...)``); called once with ``n_variants + top_up_rounds``.
        n_variants: planned variants per background (paper 5–10).
        batch_size: jobs per yielded batch.
        top_up_rounds: extra variants per background drawn only for top-up; their rows carry
            ``top_up = True`` so that :func:`run_loop` stops before them unless ``top_up``.

    Yields:
        :class:`Jobs` slices of at most ``batch_size`` rows, in generation order. Because every
        background's k-th variant comes before any (k+1)-th one, a smaller target gives a prefix
        that covers as many backgrounds as possible.
    """
    jobs = draw(n_variants=n_variants + top_up_rounds)
    order = np.lexsort((jobs.table["job"].to_numpy(), jobs.table["variant"].to_numpy()))
    table = jobs.table.iloc[order].reset_index(drop=True)
    table["top_up"] = table["variant"] >= n_variants
    arrays = [jobs.backgrounds[order], jobs.masks[order], jobs.labels[order], jobs.scored[order]]
    for start in range(0, len(table), batch_size):
        part = slice(start, start + batch_size)
        # a batch never mixes planned and top-up jobs, so the loop can stop exactly between them
        chunk = table.iloc[part]
        if chunk["top_up"].any() and not chunk["top_up"].all():
            cut = start + int(np.argmax(chunk["top_up"].to_numpy()))
            yield Jobs(table.iloc[start:cut].reset_index(drop=True), *(array[start:cut] for array in arrays))
            part = slice(cut, start + batch_size)
        yield Jobs(table.iloc[part].reset_index(drop=True), *(array[part] for array in arrays))


def accepted_subset(
    directory,
    volume: float,
    n_real: int,
    *,
    strict: bool = True,
    theta: float | None = None,
    validated: bool = True,
    shuffle_labels: bool = False,
):
    """The first ``round(volume · n_real)`` accepted samples (in generation order) of a synthetic set.

    Args:
        directory: a folder written by the ``synthesize`` stage (``samples.npz``, ``manifest.csv``).
        volume: synthetic volume as a multiple of the real training set (0 gives an empty set).
        n_real: real training images.
        strict: raise on a shortfall (else warn and return every qualifying sample).
        theta: re-gate the generated pool: accepted = recorded gate IoU (``iou``, new lesion) > ``theta``
            (None: the loop's own decisions, column ``accepted``).
        validated: False ignores the gate: the first generated samples, accepted or not
            (the "w/o validation loop" ablation).
        shuffle_labels: the negative control: sample i gets the label of sample i − 1 of the chosen
            set (a cyclic shift, so no sample keeps its own label; needs >= 2 samples: with fewer, ``strict``
            raises and otherwise the set is empty, with a warning).

    Returns:
        ``SegmentationData`` of the chosen images and their labels (ids ``syn<order>``); sets of
        smaller volumes are prefixes of larger ones.

    Raises:
        ValueError: fewer qualifying samples than the volume needs (the message says how many exist), or
            ``shuffle_labels`` on fewer than 2 samples with ``strict``.
    """
    import warnings
    from pathlib import Path

    from benchmark.data.prepared import SegmentationData

    directory = Path(directory)
    if not (directory / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"{directory}/manifest.csv is missing; run the synthesize stage that writes {directory} first"
        )
    table = pd.read_csv(directory / "manifest.csv")
    wanted = int(round(volume * n_real))
    if not validated:
        accepted = table
    elif theta is None:
        accepted = table[table["accepted"].astype(bool)]  # astype: an empty manifest reads as object dtype
    else:
        accepted = table[table["iou"] > theta]
    accepted = accepted.sort_values("order")
    what = "generated" if not validated else f"accepted (θ = {theta})" if theta is not None else "accepted"
    if wanted > len(accepted) and not strict:
        warnings.warn(
            f"{directory}: only {len(accepted)} {what} samples for volume {volume} ({wanted} wanted); using all of them"
        )
        wanted = len(accepted)
    if wanted > len(accepted):
        raise ValueError(
            f"{directory} holds {len(accepted)} {what} samples, volume {volume} needs {wanted}; "
            f"raise synthesize.volumes' maximum or set synthesize.top_up: true and rerun `dvc repro synthesize`"
        )
    rows = accepted["order"].to_numpy(dtype=np.int64)[:wanted]
    with np.load(directory / "samples.npz") as archive:
        images, labels = archive["images"][rows], archive["labels"][rows]
    if shuffle_labels:
        if len(rows) < 2 and strict:
            raise ValueError(f"{directory}: shuffled labels need at least 2 samples, volume {volume} gives {len(rows)}")
        if len(rows) < 2:  # a single label cannot be given to another image: the control adds nothing
            warnings.warn(
                f"{directory}: shuffled labels need at least 2 samples, volume {volume} gives {len(rows)}; "
                f"the shuffled-labels control trains on real data only"
            )
            rows, images, labels = rows[:0], images[:0], labels[:0]
        labels = np.roll(labels, 1, axis=0)
    return SegmentationData(tuple(f"syn{order}" for order in rows), images, labels.astype(np.uint8))
