"""Stage ``synthesize@<dataset>``: DiffAug's generation–validation loop (paper §3.3).

    python -m benchmark.stages.synthesize --dataset synth_polyp [--params params.yaml]
    python -m benchmark.stages.synthesize --dataset synth_polyp --set notext   # Table 6 ablation set

For every background of the training split (lesion-free twins where the dataset has them, else
the images, painted outside their lesions), ``synthesize.n_variants`` jobs (donor mask, prompt,
sampling seed) are generated variant-major by the trained generator and gated by the trained
validator (IoU between the new lesion's mask and the validator's single-step prediction, both
outside the background's own lesion, > θ: :func:`benchmark.generators.loop.gate`),
until ``synthesize.volume × n_train`` samples are accepted (``max(synthesize.volumes) × n_train`` on
the datasets of ``ablation.datasets``, for Table 7). Writes ``data/synthetic/<dataset>/``:

- ``samples.npz``: every generated sample, accepted or rejected: ``images`` uint8 (G, S, S, 3),
  ``labels`` (intended labels, {0, 1}) and ``masks`` (the inpainted region);
- ``manifest.csv``: one row per sample (job, background, donor, prompt and its attributes, seed,
  ``iou`` (the gate's, on the new lesion), ``iou_union`` (against own GT ∪ new lesion, recorded
  only), accepted, generation order);
- ``manifest.json``: counts, acceptance rate, mean IoUs of accepted / rejected samples, what a gate
  on the union label would have accepted, the accepted count per volume, settings and seconds
  spent generating / validating.

Training sets of volume v are the first round(v · n_train) accepted samples
(:func:`benchmark.generators.loop.accepted_subset`), so smaller volumes are prefixes of larger ones.

``--set`` makes a Table 6 ablation set with the generator of another prompt wording
(``models/<dataset>/generator_<set>``; "notext": the empty prompt and no classifier-free
guidance; "basic": the fixed basic prompt), same jobs, seeds, gate and θ, until
``synthesize.volume × n_train`` are accepted, into ``data/synthetic/<dataset>-<set>/`` and
``results/<dataset>/synthesize_<set>/summary.json``.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

from benchmark.stages import common

_MODELS: dict = {}


def model_settings(
    dataset: str,
    backend: str,
    steps: int,
    guidance_scale: float,
    negative_prompt: str,
    generator_folder: str = "generator",
) -> dict:
    """What :func:`_load_models` and :func:`_generate_and_segment` need: the dataset's generator
    (``models/<dataset>/<generator_folder>/model``) and validator, and the sampling settings."""
    models = Path("models") / dataset
    return {
        "backend": backend,
        "generator": str(models / generator_folder / "model"),
        "validator": str(models / "validator" / "model"),
        "negative_prompt": negative_prompt,
        "steps": steps,
        "guidance_scale": guidance_scale,
    }


def _load_models(settings: dict) -> None:
    """Worker initializer: the generator and the validator, once per process."""
    from benchmark.generators import get_generator
    from benchmark.methods import get_method

    _MODELS.update(
        settings=settings,
        generator=get_generator(settings["backend"]).load(settings["generator"]),
        validator=get_method("diffaug").load(settings["validator"]),
    )


def _generate_and_segment(jobs):
    """One batch: generate with the worker's generator, segment with its validator (see ``run_loop``)."""
    from benchmark.generators.loop import generate_and_segment
    from benchmark.methods.latent_seg.method import predict_latent_masks

    settings, generator = _MODELS["settings"], _MODELS["generator"]

    def generate(batch):
        return generator.generate(
            batch.backgrounds,
            batch.masks,
            list(batch.table["prompt"]),
            negative_prompt=settings["negative_prompt"],
            steps=settings["steps"],
            guidance_scale=settings["guidance_scale"],
            seeds=[int(s) for s in batch.table["seed"]],
        )

    return generate_and_segment(generate, lambda images: predict_latent_masks(_MODELS["validator"], images), jobs)


def check_validator_ceiling(metrics_path: Path, minimum: float, dataset: str) -> str:
    """Stop before generating when the gate's validator cannot pass θ often enough.

    ``metrics_path`` is ``results/<dataset>/validator/metrics.json`` (written by ``validator@<dataset>``):
    its ``pass_rate`` is the share of real validation lesion images whose
    validator IoU exceeds θ, the ceiling of any acceptance rate. Returns the line to print; raises
    ``ValueError`` saying how to fix it when the rate is below ``minimum`` (or the file is missing).
    """
    import math

    from benchmark.utils.io import read_json

    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path} is missing; run `dvc repro validator@{dataset}` first")
    ceiling = read_json(metrics_path)
    rate, n, theta = ceiling.get("pass_rate"), ceiling.get("n_lesion_images"), ceiling.get("theta")
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return f"validator ceiling unknown ({metrics_path} has no real validation lesion image)"
    line = (
        f"validator ceiling: {rate:.1%} of {n} real validation lesion images pass θ = {theta} "
        f"(no acceptance rate can be expected above it)"
    )
    if rate < minimum:
        raise ValueError(
            f"{line}: below synthesize.min_validator_pass_rate = {minimum:g}, so the gate would reject almost "
            f"every sample and spend the whole job budget. Strengthen the validator (more validator.epochs, wider "
            f"train.diffaug.denoiser_channels, a larger prepare.image_size), or lower synthesize.theta; set "
            f"synthesize.min_validator_pass_rate: 0 to generate anyway"
        )
    return line


def main() -> None:
    from benchmark.methods.runs import SYNTHETIC_SETS

    parser = common.dataset_parser(__doc__)
    parser.add_argument(
        "--set", choices=sorted(SYNTHETIC_SETS), help="make a Table 6 ablation set instead of the main one"
    )
    args = parser.parse_args()
    import numpy as np

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.jobs import draw_jobs, modality_of
    from benchmark.generators.loop import iterate_jobs, run_loop
    from benchmark.generators.prompts import NEGATIVE_PROMPTS
    from benchmark.utils.io import atomic_dir, write_json
    from benchmark.utils.pool import WorkerPool, split_threads
    from benchmark.utils.seeding import derive_seed

    params = load_section("synthesize", args.params)
    generator_params = load_section("generator", args.params)
    ablation = load_section("ablation", args.params)
    generator_folder, guidance_scale, variant = (
        "generator",
        generator_params.guidance_scale,
        generator_params.prompt_variant,
    )
    if args.set:
        variant = SYNTHETIC_SETS[args.set][0]
        generator_folder = f"generator_{args.set}"
        guidance_scale = 1.0 if variant == "none" else guidance_scale  # no text: the conditional branch alone
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    negative = NEGATIVE_PROMPTS[modality_of(dataset)]
    n_train = len(dataset.subset("train"))
    largest = max(params.volumes) if args.dataset in ablation.datasets and not args.set else params.volume
    target = math.ceil(largest * n_train)
    generator_stage = f"ablation_generator@{args.dataset}-{args.set}" if args.set else f"generator@{args.dataset}"
    for stage, folder in ((generator_stage, generator_folder), (f"validator@{args.dataset}", "validator")):
        if not (Path("models") / args.dataset / folder / "model").is_dir():
            raise FileNotFoundError(f"models/{args.dataset}/{folder}/model is missing; run `dvc repro {stage}` first")
    # the gate's ceiling, measured on real validation images before any generation
    metrics_path = Path("results") / args.dataset / "validator" / "metrics.json"
    print(check_validator_ceiling(metrics_path, params.min_validator_pass_rate, args.dataset))
    seed = derive_seed(params.seed, "synthesize", args.dataset)
    draw = functools.partial(draw_jobs, dataset, seed=seed, variant=variant, part="train")
    batches = iterate_jobs(
        draw, params.n_variants, params.batch_size, top_up_rounds=params.top_up_rounds if params.top_up else 0
    )
    workers, threads = split_threads(load_section("train", args.params).threads, params.workers)
    settings = model_settings(
        args.dataset, generator_params.backend, generator_params.steps, guidance_scale, negative, generator_folder
    )
    started = time.perf_counter()
    with WorkerPool(workers, threads, initializer=_load_models, initargs=(settings,)) as pool:
        table, images, labels, masks, timings = run_loop(
            None,
            None,
            batches,
            target=target,
            theta=params.theta,
            top_up=params.top_up,
            progress=not args.no_progress,
            submit=functools.partial(pool.submit, _generate_and_segment),
            lookahead=2 * workers,
        )
    elapsed = time.perf_counter() - started
    accepted = table["accepted"].to_numpy()
    summary = {
        "dataset": args.dataset,
        "theta": params.theta,
        "n_variants": params.n_variants,
        "top_up": params.top_up,
        "n_train_real": n_train,
        "target_accepted": target,
        "n_generated": int(len(table)),
        "n_accepted": int(accepted.sum()),
        "acceptance_rate": float(accepted.mean()),
        "mean_iou_accepted": float(table.loc[accepted, "iou"].mean()) if accepted.any() else None,
        "mean_iou_rejected": float(table.loc[~accepted, "iou"].mean()) if (~accepted).any() else None,
        "gate": "new_lesion",
        "mean_iou_union_accepted": float(table.loc[accepted, "iou_union"].mean()) if accepted.any() else None,
        "acceptance_rate_union_gate": float((table["iou_union"] > params.theta).mean()),
        "accepted_by_both_gates": int((accepted & (table["iou_union"] > params.theta).to_numpy()).sum()),
        "accepted_per_volume": {str(v): min(int(round(v * n_train)), int(accepted.sum())) for v in params.volumes},
        "target_reached": bool(accepted.sum() >= target),
        "seconds": elapsed,
        **timings,
        "workers": workers,
        "threads_per_worker": threads,
        "validated_images_per_hour": 3600 * len(table) / elapsed,
        "accepted_images_per_hour": 3600 * float(accepted.sum()) / elapsed,
        "set": args.set or "main",
        "generator": {
            "backend": generator_params.backend,
            "steps": generator_params.steps,
            "guidance_scale": guidance_scale,
            "prompt_variant": variant,
            "model": f"models/{args.dataset}/{generator_folder}",
        },
    }
    # Table 6's "w/o validation loop" takes the first generated samples, the full set the first accepted:
    # how many distinct backgrounds each covers at the default volume
    wanted = int(round(params.volume * n_train))
    summary["coverage"] = {
        "volume": params.volume,
        "validated_backgrounds": int(table.loc[accepted, "background_id"].iloc[:wanted].nunique()),
        "unvalidated_backgrounds": int(table["background_id"].iloc[:wanted].nunique()),
        "n_backgrounds": int(table["background_id"].nunique()),
    }
    out = (
        Path("data/synthetic") / args.dataset if not args.set else Path("data/synthetic") / f"{args.dataset}-{args.set}"
    )
    with atomic_dir(out) as tmp:
        np.savez_compressed(tmp / "samples.npz", images=images, labels=labels, masks=masks)
        table.to_csv(tmp / "manifest.csv", index=False, float_format="%.6f")
        write_json(tmp / "manifest.json", summary)
    write_json(
        Path("results") / args.dataset / ("synthesize" if not args.set else f"synthesize_{args.set}") / "summary.json",
        summary,
    )
    print(
        f"{args.dataset}: {summary['n_accepted']}/{summary['n_generated']} accepted at θ = {params.theta} "
        f"({summary['acceptance_rate']:.2f}); target {target} {'reached' if summary['target_reached'] else 'NOT reached'}"
    )


if __name__ == "__main__":
    common.run(main)
