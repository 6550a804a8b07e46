"""Stage ``autoencoder@<dataset>``: the latent autoencoder of one dataset (generator and validator share it).

    python -m benchmark.stages.autoencoder --dataset synth_polyp [--params params.yaml]

Trains a diffusers ``AutoencoderKL`` on the training split's images and masks (or loads the
local VAE named by ``autoencoder.pretrained_path``), fits its latent scaling factor, and writes

- ``models/<dataset>/autoencoder/model/``: the frozen autoencoder (``LatentAutoencoder.save``);
  ``checkpoint.pt`` and ``train_log.csv`` beside it (an interrupted run resumes);
- ``results/<dataset>/autoencoder/reconstruction.json``: reconstruction PSNR (whole image and
  inside lesions) and mask Dice on the validation split (a DVC metrics file).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.stages import common


def main() -> None:
    args = common.dataset_parser(__doc__).parse_args()
    from benchmark.config import load_section, to_mapping
    from benchmark.data.prepared import PreparedDataset
    from benchmark.generators.autoencoder import LatentAutoencoder, reconstruction_report, train_autoencoder
    from benchmark.utils.io import atomic_dir, read_json, write_json
    from benchmark.utils.seeding import derive_seed

    params = load_section("autoencoder", args.params)
    common.set_threads(load_section("train", args.params).threads)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    train, val = dataset.subset("train"), dataset.subset("val")
    seed = derive_seed(params.seed, "autoencoder", args.dataset)
    out = Path("models") / args.dataset / "autoencoder"
    key = common.fingerprint(
        {"config": to_mapping(params.config), "seed": seed},
        [train.images, train.masks],
        common.code_closure("benchmark.generators.autoencoder"),
    )
    if common.reuse_or_reset(out, key, done="model"):
        print(f"{out}: already trained with these settings, data and code; skipped")
        autoencoder = LatentAutoencoder.load(out / "model")
    else:
        started = time.perf_counter()
        autoencoder, _ = train_autoencoder(
            train.images, train.masks, params.config, seed=seed, checkpoint_dir=out, progress=not args.no_progress
        )
        if not common.is_main_process():
            return  # other data-parallel ranks only train; rank 0 writes
        write_json(out / "run.json", {"seed": seed, "train_seconds": time.perf_counter() - started})
        with atomic_dir(out / "model") as tmp:  # written last: its presence marks the run complete
            autoencoder.save(tmp)
    report = reconstruction_report(autoencoder, val.images, val.masks)
    report.update(
        dataset=args.dataset,
        split="val",
        n_images=len(val),
        pretrained_path=params.pretrained_path,
        train_seconds=read_json(out / "run.json")["train_seconds"],
    )
    write_json(Path("results") / args.dataset / "autoencoder" / "reconstruction.json", report)
    print(
        f"{args.dataset} autoencoder: PSNR {report['image_psnr_db']:.2f} dB (lesions {report['lesion_psnr_db']:.2f} dB), "
        f"mask Dice {report['mask_dice']:.4f}"
    )


if __name__ == "__main__":
    common.run(main)
