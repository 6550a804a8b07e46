"""Generation throughput of DiffAug's default generator and where the time goes.

    python benchmarks/generation.py [--dataset synth_polyp] [--samples 64] [--batch-size 32]
                                    [--steps 20] [--guidance-scale 3.0] [--threads 2]
                                    [--output results/benchmarks/generation_<dataset>.json]

Uses the trained generator in ``models/<dataset>/generator/model`` when it exists, else a freshly
initialised one of the configured size (speed does not depend on the weights; the output says
which). Jobs are real inpainting jobs of the dataset's training split (``draw_jobs``). Prints and
writes: samples/s, seconds per part (text encoding, image encoding, denoising, decoding, paste-back),
the denoiser's forward passes, and the raw batched denoiser bound (the same UNet forward passes
alone, timed on the same batch), so the overhead outside the UNet is visible. When the synthesize
stage has run, also the throughput of its whole generate + validate loop (with its workers) and
that as a fraction of the raw bound (the goal is at least 80 %).

``--loop-samples N`` (needs the trained generator and validator) also runs the synthesize stage's own
loop (its worker pool, ``_generate_and_segment``, ``run_loop``) on the first N jobs at ``--steps``
and compares it with the raw bound at the same steps, measured in the same call: e.g. ``--steps 50``
gives the figure at the paper's step count, ``--steps`` left out the default's.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--dataset", default="synth_polyp")
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--samples", type=int, default=64)
    cli.add_argument("--batch-size", type=int, default=None, help="default: generator.latent.batch_size")
    cli.add_argument("--steps", type=int, default=None, help="default: generator.steps")
    cli.add_argument("--guidance-scale", type=float, default=None, help="default: generator.guidance_scale")
    cli.add_argument("--threads", type=int, default=None, help="default: train.threads")
    cli.add_argument("--output", default=None, help="default: results/benchmarks/generation_<dataset>.json")
    cli.add_argument(
        "--loop-samples", type=int, default=0, help="also time the synthesize stage's loop on this many jobs (0: no)"
    )
    args = cli.parse_args()

    import dataclasses

    import torch

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.autoencoder import LatentAutoencoder, build_autoencoder
    from benchmark.generators.inpainting import build_denoiser
    from benchmark.generators.jobs import draw_jobs, modality_of
    from benchmark.generators.latent import LatentInpaintingGenerator
    from benchmark.generators.prompts import NEGATIVE_PROMPTS
    from benchmark.stages.common import set_offline
    from benchmark.utils.io import write_json
    from benchmark.utils.provenance import environment_record

    set_offline()
    generator_params = load_section("generator", args.params)
    threads = args.threads or load_section("train", args.params).threads
    torch.set_num_threads(threads)
    steps = args.steps or generator_params.steps
    guidance = generator_params.guidance_scale if args.guidance_scale is None else args.guidance_scale
    config = generator_params.latent
    if args.batch_size:
        config = dataclasses.replace(config, batch_size=args.batch_size)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    model = Path("models") / args.dataset / "generator" / "model"
    if model.is_dir():
        generator = LatentInpaintingGenerator.load(model)
        generator.config = dataclasses.replace(generator.config, batch_size=config.batch_size)
        weights = str(model)
    else:
        autoencoder_params = load_section("autoencoder", args.params)
        autoencoder = LatentAutoencoder(build_autoencoder(autoencoder_params.config), 1.0, autoencoder_params.config)
        generator = LatentInpaintingGenerator(config, autoencoder=autoencoder)
        generator.denoiser = build_denoiser(
            config.denoiser,
            generator.text_encoder.dim,
            dataset.subset("train").images.shape[1] // autoencoder.downsampling_factor,
        ).eval()
        weights = "freshly initialised (no trained generator found; speed only)"
    jobs = draw_jobs(dataset, n_variants=max(1, -(-args.samples // len(dataset.subset("train")))), seed=0)
    n = min(args.samples, len(jobs))
    backgrounds, masks, prompts = jobs.backgrounds[:n], jobs.masks[:n], list(jobs.table["prompt"][:n])
    negative = NEGATIVE_PROMPTS[modality_of(dataset)]
    # warm-up (first calls allocate and load the text encoder)
    generator.generate(
        backgrounds[:2],
        masks[:2],
        prompts[:2],
        negative_prompt=negative,
        steps=2,
        guidance_scale=guidance,
        seeds=[0, 1],
    )
    started = time.perf_counter()
    generator.generate(
        backgrounds,
        masks,
        prompts,
        negative_prompt=negative,
        steps=steps,
        guidance_scale=guidance,
        seeds=list(range(n)),
        progress=True,
    )
    total = time.perf_counter() - started
    parts = dict(generator.last_timings)

    # raw bound: the same number of batched UNet forward passes (2B for guidance), nothing else
    latent = generator.denoiser.config.sample_size
    raw = sum(
        raw_denoiser_seconds(generator, min(config.batch_size, n - start), steps)
        for start in range(0, n, config.batch_size)
    )
    result = {
        "dataset": args.dataset,
        "weights": weights,
        "samples": n,
        "batch_size": config.batch_size,
        "steps": steps,
        "guidance_scale": guidance,
        "image_size": int(backgrounds.shape[1]),
        "latent_size": int(latent),
        "threads": threads,
        "samples_per_second": n / total,
        "seconds_total": total,
        "seconds_per_part": parts,
        "share_per_part": {key: value / total for key, value in parts.items()},
        "denoiser_forward_passes": steps * -(-n // config.batch_size),
        "raw_denoiser_seconds": raw,
        "raw_denoiser_samples_per_second": n / raw,
        "fraction_of_raw_bound": (n / total) / (n / raw),
        "hardware": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": __import__("os").cpu_count(),
            "cuda": torch.cuda.is_available(),
        },
        "environment": environment_record(),
    }
    loop = Path("results") / args.dataset / "synthesize" / "summary.json"
    if loop.is_file():  # the whole generate + validate loop as the synthesize stage ran it (its workers, its steps)
        from benchmark.utils.io import read_json

        summary = read_json(loop)
        rate = summary["n_generated"] / summary["seconds"]
        same = summary["generator"]["steps"] == steps and summary["generator"]["guidance_scale"] == guidance
        result["loop"] = {
            "validated_images_per_second": rate,
            "workers": summary.get("workers"),
            "threads_per_worker": summary.get("threads_per_worker"),
            "steps": summary["generator"]["steps"],
            "acceptance_rate": summary["acceptance_rate"],
            "fraction_of_raw_bound": rate / (n / raw) if same else None,
            "note": "raw bound: the denoiser passes alone in one process at --threads threads",
        }
    if args.loop_samples:
        result["measured_loop"] = measure_loop(args, dataset, negative, steps, guidance, n / raw)
    write_json(args.output or f"results/benchmarks/generation_{args.dataset}.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=2, default=str))


def measure_loop(args, dataset, negative: str, steps: int, guidance: float, raw_rate: float) -> dict:
    """The synthesize stage's loop (worker pool, generate + validate per batch) on ``--loop-samples`` jobs."""
    import functools

    from benchmark.config import load_section
    from benchmark.generators.jobs import draw_jobs
    from benchmark.generators.loop import iterate_jobs, run_loop
    from benchmark.stages import synthesize
    from benchmark.utils.pool import WorkerPool, split_threads

    params = load_section("synthesize", args.params)
    folder = Path("models") / args.dataset
    if not (folder / "generator" / "model").is_dir() or not (folder / "validator" / "model").is_dir():
        raise FileNotFoundError(
            f"--loop-samples needs {folder}/generator/model and {folder}/validator/model; run `dvc repro validator@{args.dataset}` first"
        )
    workers, threads = split_threads(load_section("train", args.params).threads, params.workers)
    settings = synthesize.model_settings(args.dataset, "latent", steps, guidance, negative)
    draw = functools.partial(draw_jobs, dataset, seed=0, part="train")
    with WorkerPool(workers, threads, initializer=synthesize._load_models, initargs=(settings,)) as pool:
        submit = functools.partial(pool.submit, synthesize._generate_and_segment)
        warm = [
            submit(jobs) for jobs, _ in zip(iterate_jobs(draw, 1, 2), range(workers))
        ]  # models loaded, first calls done
        for future in warm:
            future.result()
        started = time.perf_counter()
        table, *_ = run_loop(
            None,
            None,
            iterate_jobs(draw, params.n_variants, params.batch_size),
            target=args.loop_samples + 1,
            theta=params.theta,
            max_jobs=args.loop_samples,
            progress=True,
            submit=submit,
            lookahead=2 * workers,
        )
        elapsed = time.perf_counter() - started
        # the same denoiser passes alone, on the same workers (random inputs of the batches' sizes)
        sizes = [min(params.batch_size, len(table) - start) for start in range(0, len(table), params.batch_size)]
        started = time.perf_counter()
        for future in [pool.submit(_raw_denoiser_in_worker, size, steps) for size in sizes]:
            future.result()
        pool_raw_rate = len(table) / (time.perf_counter() - started)
    rate = len(table) / elapsed
    return {
        "steps": steps,
        "samples": int(len(table)),
        "workers": workers,
        "threads_per_worker": threads,
        "seconds": elapsed,
        "validated_images_per_second": rate,
        "raw_denoiser_samples_per_second": raw_rate,
        "fraction_of_raw_bound": rate / raw_rate,
        "raw_denoiser_samples_per_second_same_workers": pool_raw_rate,
        "fraction_of_raw_bound_same_workers": rate / pool_raw_rate,
        "acceptance_rate": float(table["accepted"].mean()),
        "note": "raw_denoiser_samples_per_second: one process at --threads threads; _same_workers: the loop's own worker processes",
    }


def raw_denoiser_seconds(generator, size: int, steps: int) -> float:
    """Seconds of one batch's ``steps`` batched UNet passes alone (2 × ``size`` for guidance), on random inputs."""
    import torch

    latent = generator.denoiser.config.sample_size
    inputs = torch.randn(2 * size, 9, latent, latent)
    text = torch.randn(2 * size, generator.config.max_length, generator.text_encoder.dim)
    clock = time.perf_counter()
    with torch.no_grad():
        for t in range(steps):
            generator.denoiser(inputs, torch.full((2 * size,), 999 - t * (1000 // steps)), encoder_hidden_states=text)
    return time.perf_counter() - clock


def _raw_denoiser_in_worker(size: int, steps: int) -> float:
    """:func:`raw_denoiser_seconds` with the loop worker's own generator."""
    from benchmark.stages import synthesize

    return raw_denoiser_seconds(synthesize._MODELS["generator"], size, steps)


if __name__ == "__main__":
    main()
