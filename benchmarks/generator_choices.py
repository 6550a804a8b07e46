"""The generator's sampling and training choices, measured on VALIDATION backgrounds (never test).

    python benchmarks/generator_choices.py [--dataset synth_polyp] [--samples 192] [--steps 5 10 20]
                                           [--gamma 5] [--output results/benchmarks/generator_choices_<dataset>.json]

Needs the trained generator and validator of ``dvc repro validator@<dataset> generator@<dataset>``.
Jobs: ``--samples`` inpainting jobs whose backgrounds are the VALIDATION split's images (twins where
the dataset has them) and whose donors are training lesions (``draw_jobs(part="val")``), the same
jobs for every setting. For each setting it generates, segments with the validator, and reports the
share accepted by the gate (new-lesion IoU > θ), the share a union-label gate would accept, the mean
gate IoU and the seconds per sample (2 threads, one process):

1. DDIM timestep spacing "leading" (diffusers' default, used before issue 19) against "trailing"
   (first step at t = T − 1), at each of ``--steps``;
2. eq. 7's preservation weight: a second generator trained with the min-SNR bound
   (``preserve_snr_gamma = --gamma``; same seed, pairs and steps as ``generator@<dataset>``) against
   the unweighted one: validation denoising error inside the mask (ε-MSE) and clean-latent error
   outside it at fixed timesteps, and the acceptance at the configured step count.

The defaults of ``generator.steps`` and ``generator.latent.denoiser.preserve_snr_gamma`` are chosen on
these figures (README, "Generator choices").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path


def gate_figures(generator, validator, jobs, *, negative: str, steps: int, guidance: float, theta: float) -> dict:
    """Generate ``jobs`` at ``steps``, segment, gate: acceptance (new-lesion and union), mean IoU, seconds per sample."""
    import numpy as np

    from benchmark.generators.loop import gate, mask_iou
    from benchmark.methods.latent_seg.method import predict_latent_masks

    started = time.perf_counter()
    images = generator.generate(
        jobs.backgrounds,
        jobs.masks,
        list(jobs.table["prompt"]),
        negative_prompt=negative,
        steps=steps,
        guidance_scale=guidance,
        seeds=[int(s) for s in jobs.table["seed"]],
    )
    seconds = time.perf_counter() - started
    probabilities = predict_latent_masks(validator, images)
    iou, accepted = gate(probabilities, jobs.masks, jobs.scored, theta)
    union = mask_iou(np.asarray(probabilities) >= 0.5, jobs.labels)
    return {
        "steps": steps,
        "n": len(jobs),
        "acceptance": float(accepted.mean()),
        "acceptance_union_gate": float((union > theta).mean()),
        "mean_gate_iou": float(iou.mean()),
        "seconds_per_sample": seconds / len(jobs),
    }


def validation_errors(generator, examples, *, seed: int = 0, timesteps=(50, 250, 500, 750, 950)) -> dict:
    """Denoising error of the generator on validation pairs at fixed timesteps and noise: ε-MSE inside
    the mask and the clean-latent MSE outside (eq. 7's two terms, unweighted), per timestep and mean."""
    import torch

    from benchmark.generators.inpainting import alphas_cumprod, make_inputs

    latents = torch.from_numpy(generator.autoencoder.encode_images(examples.images))
    normal, mask, masked = generator._latent_inputs(examples.normal_images, examples.masks)
    text, _ = generator.text_encoder.encode(list(examples.prompts))
    alphas = alphas_cumprod(generator.config.denoiser)
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
    out = {}
    with torch.no_grad():
        for t in timesteps:
            a = alphas[t]
            noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
            steps = torch.full((len(latents),), t, dtype=torch.long)
            prediction = generator.denoiser(
                make_inputs(noisy, mask, masked), steps, encoder_hidden_states=text.cpu()
            ).sample
            inside = mask.expand_as(noise)
            clean = (noisy - (1 - a).sqrt() * prediction) / a.sqrt()
            out[str(t)] = {
                "inside_eps_mse": float(((noise - prediction) ** 2 * inside).sum() / inside.sum()),
                "outside_clean_mse": float(((clean - normal) ** 2 * (1 - inside)).sum() / (1 - inside).sum()),
            }
    out["mean"] = {
        key: sum(v[key] for v in out.values()) / len(timesteps) for key in ("inside_eps_mse", "outside_clean_mse")
    }
    return out


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--dataset", default="synth_polyp")
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--samples", type=int, default=192)
    cli.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20])
    cli.add_argument(
        "--gamma", type=float, default=5.0, help="min-SNR γ of the bounded preservation weight (0: skip part 2)"
    )
    cli.add_argument("--output", default=None)
    args = cli.parse_args()

    import numpy as np
    import torch

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators import sampler
    from benchmark.generators.jobs import draw_jobs, modality_of, training_examples
    from benchmark.generators.latent import LatentInpaintingGenerator
    from benchmark.generators.prompts import NEGATIVE_PROMPTS
    from benchmark.methods import get_method
    from benchmark.stages.common import set_offline
    from benchmark.stages.generator import build_generator
    from benchmark.utils.io import write_json
    from benchmark.utils.provenance import environment_record
    from benchmark.utils.seeding import derive_seed

    set_offline()
    torch.set_num_threads(load_section("train", args.params).threads)
    generator_params = load_section("generator", args.params)
    theta = load_section("synthesize", args.params).theta
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    models = Path("models") / args.dataset
    for folder in ("generator", "validator"):
        if not (models / folder / "model").is_dir():
            raise FileNotFoundError(
                f"{models / folder / 'model'} is missing; run `dvc repro {folder}@{args.dataset}` first"
            )
    generator = LatentInpaintingGenerator.load(models / "generator" / "model")
    validator = get_method("diffaug").load(models / "validator" / "model")
    negative = NEGATIVE_PROMPTS[modality_of(dataset)]
    n_val = len(dataset.subset("val"))
    jobs = draw_jobs(
        dataset,
        n_variants=max(1, -(-args.samples // n_val)),
        seed=derive_seed(0, "generator_choices", args.dataset),
        variant=generator_params.prompt_variant,
        part="val",
        donor_part="train",
    )
    order = np.lexsort((jobs.table["job"].to_numpy(), jobs.table["variant"].to_numpy()))[
        : args.samples
    ]  # variant-major
    jobs = type(jobs)(
        jobs.table.iloc[order].reset_index(drop=True),
        *(a[order] for a in (jobs.backgrounds, jobs.masks, jobs.labels, jobs.scored)),
    )
    guidance = generator_params.guidance_scale
    result = {
        "dataset": args.dataset,
        "split": "val",
        "n_jobs": len(jobs),
        "theta": theta,
        "guidance_scale": guidance,
        "configured_steps": generator_params.steps,
        "spacing": {},
        "environment": environment_record(),
    }
    configured = sampler.TIMESTEP_SPACING
    try:
        for spacing in ("leading", "trailing"):
            sampler.TIMESTEP_SPACING = spacing
            result["spacing"][spacing] = [
                gate_figures(generator, validator, jobs, negative=negative, steps=s, guidance=guidance, theta=theta)
                for s in args.steps
            ]
            print(spacing, json.dumps(result["spacing"][spacing], indent=1))
    finally:
        sampler.TIMESTEP_SPACING = configured
    if args.gamma > 0:
        seed = derive_seed(generator_params.seed, "generator", args.dataset)  # generator@<dataset>'s seed and pairs
        examples = training_examples(dataset, part="train", variant=generator_params.prompt_variant, seed=seed)
        val_examples = training_examples(dataset, part="val", variant=generator_params.prompt_variant, seed=seed)
        denoiser = dataclasses.replace(generator_params.latent.denoiser, preserve_snr_gamma=args.gamma)
        bounded_params = dataclasses.replace(
            generator_params, latent=dataclasses.replace(generator_params.latent, denoiser=denoiser)
        )
        bounded = build_generator(bounded_params, args.dataset)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            bounded.fit(examples, seed=seed, checkpoint_dir=tmp, progress=True)
            train_seconds = time.perf_counter() - started
        steps = generator_params.steps
        result["preservation"] = {
            "gamma": args.gamma,
            "train_seconds_bounded": train_seconds,
            "steps": steps,
            "unweighted": {
                "validation": validation_errors(generator, val_examples),
                "gate": gate_figures(
                    generator, validator, jobs, negative=negative, steps=steps, guidance=guidance, theta=theta
                ),
            },
            "min_snr": {
                "validation": validation_errors(bounded, val_examples),
                "gate": gate_figures(
                    bounded, validator, jobs, negative=negative, steps=steps, guidance=guidance, theta=theta
                ),
            },
        }
        print(json.dumps({k: v for k, v in result["preservation"].items()}, indent=1))
    write_json(args.output or f"results/benchmarks/generator_choices_{args.dataset}.json", result)


if __name__ == "__main__":
    main()
