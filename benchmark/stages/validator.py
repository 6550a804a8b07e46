"""Stage ``validator@<dataset>``: DiffAug's latent segmentation network trained on REAL data, the quality gate.

    python -m benchmark.stages.validator --dataset synth_polyp [--params params.yaml]

The network and its training are those of DiffAug's segmenter (``train.diffaug``: dual encoder,
single-step latent estimation, eq. 12), with the dataset's autoencoder; it is trained on the
real training split only (checkpoint chosen on validation) with seed ``validator.seed``. Writes
``models/<dataset>/validator/`` (``model/`` + resumable state) and
``results/<dataset>/validator/metrics.json`` (validation Dice and IoU, single-step, and the share of
real validation lesion images whose IoU passes θ: the ceiling of any acceptance rate; a DVC metrics file).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.stages import common


def load_autoencoder(dataset: str):
    """The dataset's frozen autoencoder from ``autoencoder@<dataset>``."""
    from benchmark.generators.autoencoder import LatentAutoencoder

    model = Path("models") / dataset / "autoencoder" / "model"
    if not model.is_dir():
        raise FileNotFoundError(f"{model} is missing; run `dvc repro autoencoder@{dataset}` first")
    return LatentAutoencoder.load(model)


def main() -> None:
    args = common.dataset_parser(__doc__).parse_args()
    import dataclasses

    import numpy as np

    from benchmark.config import load_section, to_mapping
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.loop import mask_iou
    from benchmark.methods import get_method
    from benchmark.methods.supervised import mean_dice
    from benchmark.utils.io import atomic_dir, read_json, write_json
    from benchmark.utils.seeding import derive_seed

    params = load_section("validator", args.params)
    train_params = load_section("train", args.params)
    common.set_threads(train_params.threads)
    method_cls = get_method("diffaug")
    config = train_params.config_of("diffaug")
    if params.epochs is not None:
        config = dataclasses.replace(config, epochs=params.epochs)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    train, val = dataset.subset("train"), dataset.subset("val")
    seed = derive_seed(params.seed, "validator", args.dataset)
    out = Path("models") / args.dataset / "validator"
    autoencoder_key = (Path("models") / args.dataset / "autoencoder" / "fingerprint.txt").read_text().strip()
    key = common.fingerprint(
        {"config": to_mapping(config), "seed": seed, "autoencoder": autoencoder_key},
        [train.images, train.masks, val.images, val.masks],
        common.code_closure("benchmark.methods.latent_seg.method"),
    )
    if common.reuse_or_reset(out, key, done="model"):
        print(f"{out}: already trained with these settings, data and code; skipped")
        method = method_cls.load(out / "model")
    else:
        method = method_cls(config)
        method.attach_autoencoder(load_autoencoder(args.dataset))
        started = time.perf_counter()
        method.fit(train, val, seed=seed, out_dir=out, progress=not args.no_progress)
        write_json(
            out / "run.json", {"seed": seed, "train_seconds": time.perf_counter() - started, "n_train": len(train)}
        )
        with atomic_dir(out / "model") as tmp:  # written last: its presence marks the run complete
            method.save(tmp)
    probabilities = method.predict(val.images)
    iou = mask_iou(probabilities >= 0.5, val.masks)
    theta = load_section("synthesize", args.params).theta
    metrics = {
        "dataset": args.dataset,
        "split": "val",
        "n_images": len(val),
        "dice": mean_dice(probabilities, val.masks),
        "iou": float(np.mean(iou)),
        **real_pass_rates(iou, val.masks, theta, load_section("quality", args.params).thetas),
        **read_json(out / "run.json"),
    }
    write_json(Path("results") / args.dataset / "validator" / "metrics.json", metrics)
    print(
        f"{args.dataset} validator: validation Dice {metrics['dice']:.4f}, IoU {metrics['iou']:.4f}; "
        f"{metrics['pass_rate']:.1%} of {metrics['n_lesion_images']} real validation lesion images pass θ = {theta}"
    )


def real_pass_rates(iou, masks, theta: float, thetas=()) -> dict:
    """The gate's ceiling: the share of real validation images WITH a lesion whose validator IoU exceeds θ.

    A generated sample passes only if the validator segments its lesion this well, so no acceptance
    rate can be expected above this (images without a lesion are left out: an empty prediction
    scores IoU 1 there).

    Returns:
        ``{"theta": θ, "pass_rate": float (NaN without lesion images), "n_lesion_images": int,
        "pass_rate_by_theta": {str(θ'): rate}}``.
    """
    import numpy as np

    has = np.asarray(masks).reshape(len(masks), -1).any(axis=1)
    values = np.asarray(iou)[has]
    rate = lambda t: float((values > t).mean()) if len(values) else float("nan")  # noqa: E731
    return {
        "theta": theta,
        "pass_rate": rate(theta),
        "n_lesion_images": int(has.sum()),
        "pass_rate_by_theta": {f"{t:g}": rate(t) for t in sorted({*thetas, theta})},
    }


if __name__ == "__main__":
    common.run(main)
