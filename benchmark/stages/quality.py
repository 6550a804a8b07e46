"""Stage ``quality@<dataset>``: Table 5, accepted vs rejected generations against real lesion images.

    python -m benchmark.stages.quality --dataset synth_polyp [--params params.yaml]

Reads every generated sample of ``data/synthetic/<dataset>`` (accepted and rejected, with their
validator IoU) and the real training images that show the lesion (every polyp image; the
glaucomatous fundus images). Writes ``results/<dataset>/quality/summary.json`` (a DVC metrics
file): per set (accepted, rejected) FID at one n (mean and 95 % range over random equal-n
subsets drawn without replacement), KID mean ± std over subsets, the
LPIPS distance to the nearest real lesion image (mean ± std), validator IoU (mean ± std) and the
acceptance rate, all at one equal n, with the feature source named; plus the acceptance sweep
over ``quality.thetas`` (rate and mean IoU of the accepted at each θ, from the recorded IoUs),
also as ``theta_sweep.csv`` (a DVC plots file: ``dvc plots show``); acceptance and gate IoU by
lesion stratum (:mod:`benchmark.quality.strata`), what a gate on the union label would accept, and
the validator's pass rate at θ on real validation lesion images (the ceiling of any acceptance).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.stages import common


def real_lesion_images(dataset):
    """Real training images that show the target lesion: uint8 (N, S, S, 3).

    The lesion is defined once for every stage (:func:`benchmark.data.prepared.shows_lesion`: a
    polyp mask; on fundus an enlarged cup, vCDR >= 0.5, else the glaucoma label).
    """
    import numpy as np

    from benchmark.data.prepared import lesion_image_mask

    train = dataset.subset("train")
    keep = lesion_image_mask(dataset, "train")
    if not keep.any():
        raise ValueError(
            f"{dataset.directory}: no real training image shows the lesion (polyp: a non-empty mask; fundus: "
            "vCDR >= 0.5 or a glaucoma label); Table 5 needs real lesion images: check the dataset's masks"
        )
    return train.images[np.flatnonzero(keep)]


def theta_sweep(iou, thetas) -> list[dict]:
    """Acceptance rate, count and mean IoU of the accepted at each θ (accepted when IoU > θ)."""

    rows = []
    for theta in thetas:
        accepted = iou > theta
        rows.append(
            {
                "theta": theta,
                "acceptance_rate": float(accepted.mean()) if len(iou) else float("nan"),
                "n_accepted": int(accepted.sum()),
                "mean_iou_accepted": float(iou[accepted].mean()) if accepted.any() else float("nan"),
            }
        )
    return rows


def main() -> None:
    args = common.dataset_parser(__doc__).parse_args()
    import numpy as np
    import pandas as pd
    from tqdm.auto import tqdm

    from benchmark.config import load_section
    from benchmark.data.prepared import PreparedDataset
    from benchmark.quality import features as domain
    from benchmark.quality import fidelity
    from benchmark.utils.io import atomic_path, write_json
    from benchmark.utils.seeding import derive_seed

    params = load_section("quality", args.params)
    synthesize = load_section("synthesize", args.params)
    common.set_offline()
    common.set_threads(load_section("train", args.params).threads)
    dataset = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    folder = Path("data/synthetic") / args.dataset
    if not (folder / "manifest.csv").is_file():
        raise FileNotFoundError(f"{folder}/manifest.csv is missing; run `dvc repro synthesize@{args.dataset}` first")
    table = pd.read_csv(folder / "manifest.csv")
    with np.load(folder / "samples.npz") as arrays:
        generated = arrays["images"]
    if len(generated) != len(table):
        raise ValueError(
            f"{folder}: {len(generated)} images but {len(table)} manifest rows; rerun `dvc repro synthesize@{args.dataset}`"
        )
    real = real_lesion_images(dataset)
    accepted, rejected = np.flatnonzero(table["accepted"].to_numpy()), np.flatnonzero(~table["accepted"].to_numpy())
    # equal n for every set, at most half the smallest pool so that random subsets differ
    n = min(params.max_images, len(accepted) // 2, len(rejected) // 2, len(real) // 2)
    out = Path("results") / args.dataset / "quality" / "summary.json"
    sweep = pd.DataFrame(theta_sweep(table["iou"].to_numpy(), params.thetas))
    with atomic_path(out.with_name("theta_sweep.csv"), suffix=".csv") as tmp:  # `dvc plots show`: acceptance vs θ
        sweep.to_csv(tmp, index=False, float_format="%.6f")
    from benchmark.quality.strata import acceptance_by_stratum
    from benchmark.utils.io import read_json

    validator_metrics = Path("results") / args.dataset / "validator" / "metrics.json"
    ceiling = read_json(validator_metrics) if validator_metrics.is_file() else {}
    by_stratum = acceptance_by_stratum(table, dataset.attributes)
    base = {
        "dataset": args.dataset,
        "n_generated": int(len(table)),
        "n_real_lesion_images": int(len(real)),
        "theta": synthesize.theta,
        "acceptance_rate": float(table["accepted"].mean()) if len(table) else float("nan"),
        "acceptance_rate_union_gate": float((table["iou_union"] > synthesize.theta).mean())
        if "iou_union" in table
        else None,
        "validator_real_pass_rate": ceiling.get("pass_rate"),
        "validator_real_lesion_images": ceiling.get("n_lesion_images"),
        "strata": by_stratum.replace({np.nan: None}).to_dict(orient="records"),
        "theta_sweep": theta_sweep(table["iou"].to_numpy(), params.thetas),
    }
    if n < 2:
        # nothing is fabricated: the table says why the cell is empty
        reason = f"too few images for equal-n comparison (accepted {len(accepted)}, rejected {len(rejected)}, real {len(real)}; need >= 4 each)"
        write_json(out, {**base, "computed": False, "reason": reason})
        print(f"{args.dataset}: Table 5 not computed: {reason}")
        return
    rng = np.random.default_rng(derive_seed(params.seed, "quality", args.dataset))
    pools = {
        "accepted": rng.permutation(accepted)[: 2 * params.max_images],
        "rejected": rng.permutation(rejected)[: 2 * params.max_images],
    }
    reference = real[rng.choice(len(real), min(params.lpips_reference, len(real)), replace=False)]

    unet = Path("models") / args.dataset / "runs" / "unet" / "seed_0" / "model"
    domain.register()
    domain_extractor = domain.UNetEncoderFeatures(
        domain.EXTRACTOR_NAME, ["pooled"], feature_extractor_weights_path=str(unet)
    )
    if params.inception_weights_path:
        from torch_fidelity.utils import create_feature_extractor

        if not Path(params.inception_weights_path).is_file():
            raise FileNotFoundError(
                f"quality.inception_weights_path {params.inception_weights_path!r} does not exist; "
                "set it to the local weights-inception-2015-12-05-6726825d.pth or to null (domain features)"
            )
        extractor = create_feature_extractor(
            "inception-v3-compat",
            ["2048"],
            cuda=False,
            verbose=False,
            feature_extractor_weights_path=params.inception_weights_path,
        )
        fid_source = "Inception-v3 (torch-fidelity inception-v3-compat, local weights)"
    else:
        extractor = domain_extractor
        fid_source = f"domain features: encoder of the real-data U-Net ({unet}); Inception weights not found (quality.inception_weights_path is null)"
    if fidelity.lpips_weights_available():
        import lpips

        lpips_model = lpips.LPIPS(net="alex", verbose=False).eval()
        lpips_source = "lpips (AlexNet, torch hub cache)"
    else:
        lpips_model = None
        lpips_source = "LPIPS formula, uniform weights, on the domain U-Net encoder's levels; AlexNet weights not found in the torch hub cache"

    seed = derive_seed(params.seed, "quality-bootstrap", args.dataset)
    real_features = fidelity.extract_features(extractor, real[: 2 * params.max_images])
    iou = table["iou"].to_numpy()
    sets = {}
    for name, index in tqdm(pools.items(), desc=f"quality {args.dataset}", unit="set"):
        features = fidelity.extract_features(extractor, generated[index])
        fid, fid_low, fid_high = fidelity.fid_over_subsets(
            features, real_features, n, subsets=params.bootstrap, seed=seed
        )
        kid_mean, kid_std = fidelity.kid(
            features, real_features, subset_size=min(params.kid_subset_size, n), subsets=params.kid_subsets, seed=seed
        )
        images = generated[index[:n]]
        if lpips_model is not None:
            distances = fidelity.nearest_lpips(lpips_model, images, reference)
        else:
            distances = fidelity.nearest_domain_distance(domain_extractor, images, reference)
        all_iou = iou[accepted if name == "accepted" else rejected]
        sets[name] = {
            "n_available": int(len(all_iou)),
            "fid": fid,
            "fid_ci_low": fid_low,
            "fid_ci_high": fid_high,
            "kid_mean": kid_mean,
            "kid_std": kid_std,
            "lpips_mean": float(distances.mean()),
            "lpips_std": float(distances.std(ddof=1)),
            "iou_mean": float(all_iou.mean()),
            "iou_std": float(all_iou.std(ddof=1)),
            "share": len(all_iou) / len(table),
        }
    summary = {
        **base,
        "computed": True,
        "n_per_set": int(n),
        "fid_kid_features": fid_source,
        "lpips_features": lpips_source,
        "lpips_reference_images": int(len(reference)),
        "sets": sets,
    }
    write_json(out, summary)
    for name, values in sets.items():
        print(
            f"{args.dataset} {name}: FID {values['fid']:.2f} [{values['fid_ci_low']:.2f}, {values['fid_ci_high']:.2f}], "
            f"KID {values['kid_mean']:.4f} ± {values['kid_std']:.4f}, LPIPS {values['lpips_mean']:.3f}, IoU {values['iou_mean']:.3f} (n = {n})"
        )


if __name__ == "__main__":
    common.run(main)
