"""Stage ``generator@<dataset>``: train DiffAug's inpainting generator on one dataset.

    python -m benchmark.stages.generator --dataset synth_polyp [--params params.yaml]
    python -m benchmark.stages.generator --dataset synth_polyp --set notext   # Table 6 ablation

Builds the training pairs of the training split (lesion image, lesion-free twin or the image
itself, lesion mask, prompt from the attributes in the ``generator.prompt_variant`` wording),
trains the ``generator.backend`` (resumable) and writes

- ``models/<dataset>/generator/model/``: the saved generator (with a copy of its autoencoder);
  ``checkpoint.pt``, ``train_log.csv`` and ``run.json`` (seed, time, sizes) beside it;
- ``results/<dataset>/generator/train.json``: training summary (a DVC metrics file).

``--set`` trains the same recipe (same seed, pairs, steps) with the prompt wording of a Table 6
ablation set (``benchmark.methods.runs.SYNTHETIC_SETS``; "notext": the empty prompt, "basic": one
fixed prompt) into ``models/<dataset>/generator_<set>/`` and ``results/<dataset>/generator_<set>/``
(stage ``ablation_generator@<dataset>-<set>``).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.stages import common


def build_generator(params, dataset: str):
    """An untrained generator of ``params.backend`` for ``dataset`` (the latent backend gets the
    dataset's trained autoencoder from ``models/<dataset>/autoencoder/model``)."""
    from benchmark.generators import get_generator

    cls = get_generator(params.backend)
    if params.backend == "latent":
        from benchmark.generators.autoencoder import LatentAutoencoder

        model = Path("models") / dataset / "autoencoder" / "model"
        if not model.is_dir():
            raise FileNotFoundError(f"{model} is missing; run `dvc repro autoencoder@{dataset}` first")
        return cls(params.latent, autoencoder=LatentAutoencoder.load(model))
    return cls(params.sdxl_inpainting)


def main() -> None:
    from benchmark.methods.runs import SYNTHETIC_SETS

    parser = common.dataset_parser(__doc__)
    parser.add_argument("--set", choices=sorted(SYNTHETIC_SETS), help="train the generator of a Table 6 ablation set")
    args = parser.parse_args()
    import pandas as pd

    from benchmark.config import load_section, to_mapping
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.jobs import training_examples
    from benchmark.utils.io import atomic_dir, read_json, write_json
    from benchmark.utils.seeding import derive_seed

    params = load_section("generator", args.params)
    folder = "generator" if not args.set else f"generator_{args.set}"
    if args.set:
        import dataclasses

        params = dataclasses.replace(params, prompt_variant=SYNTHETIC_SETS[args.set][0])
    common.set_threads(load_section("train", args.params).threads)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    seed = derive_seed(params.seed, "generator", args.dataset)
    examples = training_examples(dataset, part="train", variant=params.prompt_variant, seed=seed)
    out = Path("models") / args.dataset / folder
    settings = {
        key: value for key, value in to_mapping(params).items() if key not in ("steps", "guidance_scale")
    }  # sampling only
    autoencoder = Path("models") / args.dataset / "autoencoder" / "fingerprint.txt"
    payload = {
        "settings": settings,
        "seed": seed,
        "prompts": list(examples.prompts),
        "autoencoder": autoencoder.read_text().strip() if autoencoder.is_file() else None,
    }
    from benchmark.generators import GENERATORS

    code = common.code_closure(GENERATORS[params.backend].split(":")[0], "benchmark.generators.jobs")
    key = common.fingerprint(payload, [examples.images, examples.normal_images, examples.masks], code)
    if common.reuse_or_reset(out, key, done="model"):
        print(f"{out}: already trained with these settings, data and code; skipped")
    else:
        generator = build_generator(params, args.dataset)
        started = time.perf_counter()
        generator.fit(examples, seed=seed, checkpoint_dir=out, progress=not args.no_progress)
        if not common.is_main_process():
            return  # other data-parallel ranks only train; rank 0 writes
        write_json(
            out / "run.json",
            {
                "seed": seed,
                "train_seconds": time.perf_counter() - started,
                "n_examples": len(examples),
                "backend": params.backend,
                "prompt_variant": params.prompt_variant,
            },
        )
        with atomic_dir(out / "model") as tmp:  # written last: its presence marks the run complete
            generator.save(tmp)
    run = read_json(out / "run.json")
    log = pd.read_csv(out / "train_log.csv")
    tail = log.tail(max(1, len(log) // 10))
    summary = {
        **run,
        "final_loss": float(tail["loss"].mean()),
        "first_loss": float(log["loss"].head(max(1, len(log) // 10)).mean()),
        "n_steps": int(len(log)),
        "n_distinct_prompts": len(set(examples.prompts)),
    }
    write_json(Path("results") / args.dataset / folder / "train.json", summary)
    print(
        f"{args.dataset} generator ({params.backend}): {summary['n_steps']} steps in {run['train_seconds']:.0f} s, "
        f"loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}"
    )


if __name__ == "__main__":
    common.run(main)
