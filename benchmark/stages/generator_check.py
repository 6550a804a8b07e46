"""Stage ``generator_check@<dataset>``: gallery and "does the text matter" test of the trained generator.

    python -m benchmark.stages.generator_check --dataset synth_polyp [--params params.yaml]

Uses validation-split backgrounds and donor masks only. Writes to ``results/<dataset>/generator/``:

- ``gallery.npz``: generated lesions per prompt on the same backgrounds and masks
  (``samples`` uint8 (B, P, K, S, S, 3)), with ``backgrounds``, ``masks``, ``prompts``,
  ``labels`` and real lesions of each prompt's kind (``real`` uint8 (P, K, S, S, 3), ``real_ids``);
- ``text_check.csv``: one row per prompt pair (contrast, proxies under both prompts, follows);
- ``text_check.json``: per contrast: share of pairs following the prompt, Wilson CI, one-sided
  binomial p, the proxy's AUC on real images; plus the sampling settings (a DVC metrics file).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.stages import common


def main() -> None:
    args = common.dataset_parser(__doc__).parse_args()
    import numpy as np
    import pandas as pd

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators import get_generator
    from benchmark.generators.jobs import draw_jobs, modality_of
    from benchmark.generators.prompts import NEGATIVE_PROMPTS
    from benchmark.generators.text_check import (
        CONTRASTS,
        GALLERY_PROMPTS,
        binomial_summary,
        proxy_auc,
        real_examples,
        run_contrast,
    )
    from benchmark.utils.io import atomic_path, write_json
    from benchmark.utils.seeding import derive_seed, numpy_rng

    params = load_section("generator_check", args.params)
    generator_params = load_section("generator", args.params)
    common.set_threads(load_section("train", args.params).threads)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    modality = modality_of(dataset)
    model = Path("models") / args.dataset / "generator" / "model"
    if not model.is_dir():
        raise FileNotFoundError(f"{model} is missing; run `dvc repro generator@{args.dataset}` first")
    generator = get_generator(generator_params.backend).load(model)
    sampling = {"steps": generator_params.steps, "guidance_scale": generator_params.guidance_scale}
    negative = NEGATIVE_PROMPTS[modality]
    seed = derive_seed(params.seed, "generator_check", args.dataset)
    out = Path("results") / args.dataset / "generator"
    started = time.perf_counter()

    tables, summary = [], {"dataset": args.dataset, "backend": generator_params.backend, **sampling, "contrasts": {}}
    val_ids = list(dataset.subset("val").ids)
    for contrast in CONTRASTS[modality]:
        rng = numpy_rng(seed, "pairs", contrast.name)
        ids = list(rng.choice(val_ids, size=params.n_pairs, replace=len(val_ids) < params.n_pairs))
        jobs = draw_jobs(
            dataset,
            n_variants=1,
            seed=derive_seed(seed, contrast.name),
            part="val",
            background_ids=list(dict.fromkeys(ids)),
            scale_range=contrast.mask_scale,
        )
        table = jobs.table.head(params.n_pairs)
        n = len(table)
        discs = _discs(dataset, table["background_id"], modality, jobs.masks[:n].shape)
        pairs = run_contrast(
            generator,
            contrast,
            jobs.backgrounds[:n],
            jobs.masks[:n],
            discs,
            list(table["seed"]),
            negative_prompt=negative,
            **sampling,
        )
        pairs.insert(1, "background_id", table["background_id"].to_numpy())
        tables.append(pairs)
        summary["contrasts"][contrast.name] = {
            "attribute": contrast.attribute,
            "high_prompt": contrast.high_prompt,
            "low_prompt": contrast.low_prompt,
            **binomial_summary(pairs["follows"].to_numpy()),
            "real_proxy": proxy_auc(dataset, contrast),
        }
        result = summary["contrasts"][contrast.name]
        print(
            f"{args.dataset} text check '{contrast.name}': {result['n_follow']}/{result['n_pairs']} pairs follow the prompt "
            f"({result['share_follow']:.2f}, p = {result['p_value']:.3g}); proxy AUC on real images {result['real_proxy']['auc']:.2f}"
        )

    # gallery: every prompt on the same backgrounds, masks and seeds
    prompts = GALLERY_PROMPTS[modality]
    jobs = draw_jobs(
        dataset,
        n_variants=1,
        seed=derive_seed(seed, "gallery"),
        part="val",
        background_ids=list(numpy_rng(seed, "gallery").choice(val_ids, size=params.gallery_backgrounds, replace=False)),
    )
    b, p, k = len(jobs), len(prompts), params.gallery_seeds
    seeds = [derive_seed(seed, "gallery", i, j) for i in range(b) for j in range(k)]
    repeat = lambda array: np.repeat(array, k, axis=0)  # noqa: E731  (b, ...) -> (b·k, ...)
    samples = np.stack(
        [
            generator.generate(
                repeat(jobs.backgrounds),
                repeat(jobs.masks),
                [text] * (b * k),
                negative_prompt=negative,
                seeds=seeds,
                **sampling,
            )
            for _, text, _ in prompts
        ],
        axis=1,
    )
    samples = samples.reshape(b, k, p, *samples.shape[2:]).transpose(0, 2, 1, 3, 4, 5)
    reals, real_ids = [], []
    for label, _, (column, values) in prompts:
        images, ids = real_examples(dataset, column, values, k, numpy_rng(seed, "real", label))
        pad = np.zeros((k - len(images), *samples.shape[-3:]), np.uint8)
        reals.append(np.concatenate([images, pad]))
        real_ids.append(ids + [""] * (k - len(ids)))
    with atomic_path(out / "gallery.npz", suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            samples=samples,
            backgrounds=jobs.backgrounds,
            masks=jobs.masks,
            labels=jobs.labels,
            prompts=np.array([text for _, text, _ in prompts]),
            prompt_labels=np.array([label for label, _, _ in prompts]),
            real=np.stack(reals),
            real_ids=np.array(real_ids),
        )
    with atomic_path(out / "text_check.csv", suffix=".csv") as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False, float_format="%.6f")
    summary["seconds"] = time.perf_counter() - started
    write_json(out / "text_check.json", summary)


def _discs(dataset, ids, modality: str, shape):
    import numpy as np

    if modality != "fundus":
        return np.zeros(shape, bool)
    val_ids = list(dataset.subset("val").ids)
    labels = dataset.normal_labels(val_ids)
    labels = labels if labels is not None else dataset.labels(val_ids)  # no twins: the images' own discs
    index = {key: i for i, key in enumerate(val_ids)}
    return labels[[index[key] for key in ids]] >= 1


if __name__ == "__main__":
    common.run(main)
