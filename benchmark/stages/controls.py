"""Stage ``controls@<dataset>``: the control data that calibrates DiffAug's verdict (Table 7, augmentation matrix).

    python -m benchmark.stages.controls --dataset synth_polyp [--params params.yaml]

Runs on the datasets of ``ablation.datasets``. For the ``+copypaste`` and ``+oracle`` runs of
``ablation.runs`` it writes as many pairs as the largest volume they ask for
(:mod:`benchmark.generators.controls`), each like a synthesize folder (``samples.npz``,
``manifest.csv``, ``manifest.json``), under ``data/controls/<dataset>/``:

- ``copypaste/``: job k of the synthesize stage (same seed, background, donor, scale, rotation and
  placement as DiffAug's job k, variant-major) with the donor's real pixels pasted, feathered by
  ``controls.feather_px``;
- ``oracle/`` (procedural datasets): fresh frames of the dataset's own generator from
  ``controls.oracle_seed``, prepared like the dataset.

``+shuffled`` runs need nothing here (they read DiffAug's accepted set). A summary goes to
``results/<dataset>/controls/summary.json``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from benchmark.stages import common


def control_volumes(dataset: str, params_path: str) -> dict[str, float]:
    """``{"copypaste": v, "oracle": v}``: the largest volume each control's runs ask for on ``dataset`` (absent: none)."""
    from benchmark.config import load_section
    from benchmark.methods.runs import parse_run, parse_synthetic
    from benchmark.stages.train import runs_of

    default = load_section("synthesize", params_path).volume
    volumes: dict[str, float] = {}
    for run in runs_of(dataset, params_path):
        spec = parse_synthetic(parse_run(run)[1])
        if spec is not None and spec.source in ("copypaste", "oracle"):
            volume = spec.volume if spec.volume is not None else default
            volumes[spec.source] = max(volume, volumes.get(spec.source, 0.0))
    return volumes


def main() -> None:
    args = common.dataset_parser(__doc__).parse_args()
    import functools

    import numpy as np
    import pandas as pd

    from benchmark.config import load_section
    from benchmark.data.prepare import PrepareOptions
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.controls import copy_paste, oracle_images, write_control_set
    from benchmark.generators.jobs import draw_jobs
    from benchmark.generators.loop import iterate_jobs
    from benchmark.utils.io import atomic_dir, write_json
    from benchmark.utils.seeding import derive_seed

    params = load_section("controls", args.params)
    synthesize = load_section("synthesize", args.params)
    generator = load_section("generator", args.params)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    n_train = len(dataset.subset("train"))
    volumes = control_volumes(args.dataset, args.params)
    out = Path("data/controls") / args.dataset
    summary: dict = {"dataset": args.dataset, "n_train_real": n_train, "volumes": volumes}
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        if "copypaste" in volumes:
            count = math.ceil(volumes["copypaste"] * n_train)
            # DiffAug's jobs, in DiffAug's order: the same seed, draw and batching as synthesize@<dataset>
            draw = functools.partial(
                draw_jobs,
                dataset,
                seed=derive_seed(synthesize.seed, "synthesize", args.dataset),
                variant=generator.prompt_variant,
                part="train",
            )
            rounds = synthesize.top_up_rounds if synthesize.top_up else 0
            train = dataset.subset("train")
            donors = dict(zip(train.ids, train.images)), dict(zip(train.ids, train.masks))
            images, labels, tables = [], [], []
            for jobs in iterate_jobs(draw, synthesize.n_variants, synthesize.batch_size, top_up_rounds=rounds):
                images.append(copy_paste(jobs, *donors, feather_px=params.feather_px))
                labels.append(jobs.labels)
                tables.append(jobs.table)
                if sum(len(t) for t in tables) >= count:
                    break
            table = pd.concat(tables, ignore_index=True).iloc[:count]
            made = {
                "kind": "copypaste",
                "count": len(table),
                "wanted": count,
                "feather_px": params.feather_px,
                "jobs": f"synthesize@{args.dataset}'s first {len(table)} jobs (variant-major)",
            }
            write_control_set(
                tmp / "copypaste", np.concatenate(images)[:count], np.concatenate(labels)[:count], table, made
            )
            summary["copypaste"] = made
            print(f"{args.dataset}: {len(table)} copy-paste pairs (of {count} wanted)")
        if "oracle" in volumes:
            count = math.ceil(volumes["oracle"] * n_train)
            prepare = load_section("prepare", args.params)
            options = PrepareOptions(
                prepare.image_size,
                prepare.val_fraction,
                prepare.split_seed,
                prepare.fundus_target,
                prepare.fundus_crop_scale,
                prepare.min_lesion_fraction,
            )
            world = derive_seed(params.oracle_seed, args.dataset, "oracle_world")
            images, masks, attributes = oracle_images(
                args.dataset,
                load_section("procedural", args.params),
                world,
                count,
                options,
                progress=not args.no_progress,
            )
            made = {"kind": "oracle", "count": count, "oracle_seed": params.oracle_seed, "world_seed": world}
            write_control_set(tmp / "oracle", images, masks, attributes.rename(columns={"id": "oracle_id"}), made)
            summary["oracle"] = made
            print(f"{args.dataset}: {count} oracle pairs from a fresh procedural world (seed {params.oracle_seed})")
        summary["seconds"] = time.perf_counter() - started
        write_json(tmp / "summary.json", summary)  # the folder is never empty (DVC tracks it either way)
    write_json(Path("results") / args.dataset / "controls" / "summary.json", summary)


if __name__ == "__main__":
    common.run(main)
