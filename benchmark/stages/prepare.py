"""Stage ``prepare@<dataset>``: dataset as published -> training arrays, split file, attributes.

    python -m benchmark.stages.prepare --dataset synth_polyp [--params params.yaml]

Writes ``data/prepared/<dataset>/`` and, once, ``data/splits/<dataset>.json``.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.stages import common


def main() -> None:
    cli = common.parser(__doc__)
    cli.add_argument("--dataset", required=True, help="a key of prepare.datasets")
    args = cli.parse_args()
    from benchmark.config import ParamsError, load_section
    from benchmark.data.prepare import PrepareOptions, prepare_dataset

    params = load_section("prepare", args.params)
    if args.dataset not in params.datasets:
        raise ParamsError(
            f"{args.params}: prepare.datasets has no entry {args.dataset!r}; listed: {', '.join(params.datasets)}"
        )
    options = PrepareOptions(
        image_size=params.image_size,
        val_fraction=params.val_fraction,
        split_seed=params.split_seed,
        fundus_target=params.fundus_target,
        fundus_crop_scale=params.fundus_crop_scale,
        min_lesion_fraction=params.min_lesion_fraction,
        workers=params.workers,
    )
    manifest = prepare_dataset(
        args.dataset,
        Path(params.datasets[args.dataset]),
        Path("data/prepared") / args.dataset,
        Path("data/splits") / f"{args.dataset}.json",
        options,
        progress=not args.no_progress,
        folders=params.folders,
    )
    print(f"{args.dataset}: {manifest['n_images']} images, split {manifest['counts']} -> data/prepared/{args.dataset}")


if __name__ == "__main__":
    common.run(main)
