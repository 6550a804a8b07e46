"""Export a validated synthetic set as a plain folder of PNG files that trains anywhere.

    python -m benchmark.export --dataset synth_polyp --out exports/synth_polyp
    python -m benchmark.export --dataset synth_polyp --set notext --out exports/synth_polyp-notext
    python -m benchmark.export --dataset synth_polyp --out exports/synth_polyp --include-rejected --force

Reads ``data/synthetic/<dataset>`` (``data/synthetic/<dataset>-<set>`` for a Table 6 set), written by
``synthesize@<dataset>``, and writes ``--out`` at once (into a temporary sibling folder, renamed when
complete, so a failed export leaves nothing):

- ``images/<sample_id>.png``: every accepted sample, RGB uint8 at the prepared size S × S;
- ``masks/<sample_id>.png``: its training label (the background's own lesion ∪ the new one), 0 / 255 uint8;
- ``inpainted/<sample_id>.png``: the region the generator painted (the new lesion the gate scored), 0 / 255;
- ``rejected/{images,masks,inpainted}/`` with ``--include-rejected``: the samples the gate rejected;
- ``manifest.csv``: one row per exported sample (ids as in training, ``syn<generation order>``): file
  names, prompt, donor, background, sampling seed, both gate IoUs, ``accepted``, ``in_training_subset``
  and the lesion strata of Table 5 (:mod:`benchmark.quality.strata`), then the synthesize manifest's
  other columns;
- ``datasheet.md``: source dataset, generator, validator, θ, acceptance, counts per stratum, licence
  note, how to load it and the command that made it.

Every accepted sample is exported; ``in_training_subset`` marks the ones DiffAug's segmenter trains on at
``synthesize.volume`` (the first ``round(volume · n_train)`` accepted in generation order, chosen by the
training code's own :func:`benchmark.generators.loop.accepted_subset`). Synthetic samples exist only at
the prepared size: there is no native-resolution mask.

A non-empty ``--out`` is refused; ``--force`` replaces it only when it holds a previous export
(``datasheet.md`` and ``manifest.csv``), never another folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.base import DatasetError
from benchmark.stages import common

#: what the synthetic set inherits from the images and annotations it was made from (keyed by loader);
#: a pointer, not legal advice: the datasheet tells the user to check the publisher's current terms
LICENCE_NOTES = {
    "KvasirSEG": "Kvasir-SEG (Simula) is released for research and educational use; commercial use needs the "
    "publisher's permission; cite Jha et al., MMM 2020.",
    "CVCClinicDB": "CVC-ClinicDB (Computer Vision Center, Barcelona) is released for research use; cite Bernal "
    "et al., 2015.",
    "REFUGE": "REFUGE images are distributed under the challenge's data-use terms (registration with the "
    "organisers); cite Orlando et al., 2020, and do not redistribute outside those terms.",
    "FolderDataset": "This is your own data (`folder` loader): the terms under which you hold its images and "
    "masks apply to this set too.",
    "REFUGE2": "REFUGE2 images are distributed under the challenge's data-use terms; cite the REFUGE2 "
    "challenge and Orlando et al., 2020, and do not redistribute outside those terms.",
}

#: the leading columns of the exported manifest (the synthesize manifest's other columns follow)
LEADING_COLUMNS = (
    "sample_id",
    "image",
    "mask",
    "inpainted",
    "accepted",
    "in_training_subset",
    "iou",
    "iou_union",
    "prompt",
    "donor_id",
    "donor_component",
    "background_id",
    "variant",
    "seed",
    "order",
)


def source_folder(dataset: str, synthetic_set: str = "main") -> tuple[Path, str]:
    """``(data/synthetic/<dataset>[-<set>], the DVC stage that writes it)``; raises on an unknown set."""
    from benchmark.methods.runs import SYNTHETIC_SETS, SyntheticSpec

    if synthetic_set != "main" and synthetic_set not in SYNTHETIC_SETS:
        raise DatasetError(
            f"unknown synthetic set {synthetic_set!r}; known sets: main, {', '.join(sorted(SYNTHETIC_SETS))} "
            "(benchmark.methods.runs.SYNTHETIC_SETS)"
        )
    spec = SyntheticSpec(set=synthetic_set)
    return Path(spec.folder(dataset)), spec.stage(dataset)


def read_synthetic(folder: Path, stage: str) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """The synthesize stage's manifest table, arrays (images, labels, masks) and summary of ``folder``."""
    from benchmark.utils.io import read_json

    needed = [folder / name for name in ("manifest.csv", "samples.npz", "manifest.json")]
    missing = [path for path in needed if not path.is_file()]
    if missing:
        raise DatasetError(f"{missing[0]} is missing; run `dvc repro {stage}` first (it writes {folder}/)")
    table = pd.read_csv(folder / "manifest.csv", dtype={"background_id": str, "donor_id": str})
    with np.load(folder / "samples.npz") as archive:
        arrays = {key: archive[key] for key in ("images", "labels", "masks")}
    if not len(arrays["images"]) == len(arrays["labels"]) == len(arrays["masks"]) == len(table):
        raise DatasetError(
            f"{folder}: samples.npz holds {len(arrays['images'])} images but manifest.csv {len(table)} rows; "
            f"rerun `dvc repro {stage}`"
        )
    return table, arrays, read_json(folder / "manifest.json")


def training_orders(folder: Path, volume: float, n_train: int) -> tuple[set[int], str | None]:
    """Generation orders of the samples the segmenter trains on at ``volume`` (the train stage's rule), and
    the shortfall warning of :func:`~benchmark.generators.loop.accepted_subset` (None without one)."""
    from benchmark.generators.loop import accepted_subset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = accepted_subset(folder, volume, n_train, strict=False)
    shortfall = next((str(w.message) for w in caught if issubclass(w.category, UserWarning)), None)
    return {int(key.removeprefix("syn")) for key in chosen.ids}, shortfall


def export_table(
    table: pd.DataFrame, attributes: pd.DataFrame | None, in_training: set[int], include_rejected: bool
) -> pd.DataFrame:
    """The exported manifest: one row per exported sample, in generation order (see the module docstring)."""
    from benchmark.quality.strata import strata

    accepted = table["accepted"].astype(bool)
    groups = strata(table, attributes)  # tertile edges over every generated sample, as in Table 5
    out = table.assign(accepted=accepted)
    for kind in groups.columns:
        out[f"stratum_{kind}"] = groups[kind]
    if not include_rejected:
        out = out[accepted]
    out = out.sort_values("order").reset_index(drop=True)
    out["sample_id"] = [f"syn{order}" for order in out["order"]]
    folder = np.where(out["accepted"], "", "rejected/")
    for column, name in (("image", "images"), ("mask", "masks"), ("inpainted", "inpainted")):
        out[column] = [f"{prefix}{name}/{key}.png" for prefix, key in zip(folder, out["sample_id"])]
    out["in_training_subset"] = out["order"].isin(in_training)
    leading = [column for column in LEADING_COLUMNS if column in out]
    return out[leading + [column for column in out.columns if column not in leading]]


def export(
    dataset: str,
    out: str | Path,
    *,
    synthetic_set: str = "main",
    params_path: str = "params.yaml",
    include_rejected: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write the export folder ``out`` (paths relative to the repository root, as in every stage).

    Raises:
        DatasetError: no synthetic folder (with the stage to run), no accepted sample (without
            ``include_rejected``), an unknown set, or an ``out`` that is not empty (without ``force``)
            or is not a previous export.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    from benchmark.config import load_section
    from benchmark.utils.io import atomic_dir, read_json

    folder, stage = source_folder(dataset, synthetic_set)
    out = Path(out)
    check_target(out, force)
    table, arrays, summary = read_synthetic(folder, stage)
    accepted = table["accepted"].astype(bool).to_numpy()
    theta = summary.get("theta", load_section("synthesize", params_path).theta)
    if not accepted.any() and not include_rejected:
        raise DatasetError(
            f"{folder} holds no accepted sample ({len(table)} generated, θ = {theta}): nothing to export. "
            f"Lower synthesize.theta or strengthen the validator and rerun `dvc repro {stage}`, "
            "or pass --include-rejected to export the rejected samples"
        )
    prepared = Path("data/prepared") / dataset
    for name in ("manifest.json", "attributes.csv"):
        if not (prepared / name).is_file():
            raise DatasetError(f"{prepared / name} is missing; run `dvc repro prepare@{dataset}` first")
    split = Path("data/splits") / f"{dataset}.json"
    n_train = len(read_json(split)["train"]) if split.is_file() else summary.get("n_train_real")
    if n_train is None:
        raise DatasetError(f"{split} is missing; run `dvc repro prepare@{dataset}` first")
    volume = load_section("synthesize", params_path).volume
    in_training, shortfall = training_orders(folder, volume, int(n_train))
    attributes = pd.read_csv(prepared / "attributes.csv", dtype={"id": str})
    rows = export_table(table, attributes, in_training, include_rejected)
    with atomic_dir(out) as tmp:
        for column in ("image", "mask", "inpainted"):
            for parent in {str(Path(path).parent) for path in rows[column]}:
                (tmp / parent).mkdir(parents=True, exist_ok=True)
        for row in tqdm(rows.itertuples(index=False), total=len(rows), desc="export", disable=not progress):
            order = int(row.order)
            Image.fromarray(arrays["images"][order]).save(tmp / row.image)
            Image.fromarray((arrays["labels"][order] > 0).astype(np.uint8) * 255).save(tmp / row.mask)
            Image.fromarray((arrays["masks"][order] > 0).astype(np.uint8) * 255).save(tmp / row.inpainted)
        rows.to_csv(tmp / "manifest.csv", index=False, float_format="%.6f")
        context = {
            "dataset": dataset,
            "synthetic_set": synthetic_set,
            "folder": folder,
            "stage": stage,
            "theta": theta,
            "volume": volume,
            "n_train": int(n_train),
            "size": int(arrays["images"].shape[1]),
            "shortfall": shortfall,
            "command": command_line(dataset, out, synthetic_set, params_path, include_rejected),
        }
        text = datasheet(table, rows, summary, read_json(prepared / "manifest.json"), attributes, context, params_path)
        (tmp / "datasheet.md").write_text(text)
    return out


def check_target(out: Path, force: bool) -> None:
    """Refuse a file, a non-empty folder without ``force``, and with ``force`` anything but a previous export."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file; choose a folder path")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise DatasetError(f"--out {out} is not empty; pass --force to replace it, or choose another folder")
    if not ((out / "datasheet.md").is_file() and (out / "manifest.csv").is_file()):
        raise DatasetError(
            f"--out {out} is not empty and holds no previous export (datasheet.md, manifest.csv): --force replaces "
            "only an export; choose another folder or empty this one yourself"
        )


def command_line(dataset: str, out: Path, synthetic_set: str, params_path: str, include_rejected: bool) -> str:
    """The command that reproduces this export."""
    parts = ["python -m benchmark.export", f"--dataset {dataset}", f"--out {out}"]
    if synthetic_set != "main":
        parts.append(f"--set {synthetic_set}")
    if params_path != "params.yaml":
        parts.append(f"--params {params_path}")
    if include_rejected:
        parts.append("--include-rejected")
    return " ".join(parts)


def licence_note(dataset: str, prepared_manifest: dict) -> str:
    """What the synthetic set inherits from its source dataset's terms."""
    from benchmark.data import DATASETS

    spec = DATASETS.get(dataset)
    if spec is not None and spec.procedural:
        return (
            "The source images are procedural (generated by this suite, no third-party images or annotations), "
            "so no dataset terms apply beyond the repository's licence (MIT)."
        )
    specific = LICENCE_NOTES.get(str(prepared_manifest.get("loader")), "")
    return (
        "The backgrounds are the source dataset's training images (or their lesion-free twins) and the lesion "
        "masks are its annotations, so this set inherits the source dataset's terms. "
        + (specific + " " if specific else "The terms are not recorded in this suite. ")
        + "Check the publisher's current terms before sharing this folder."
    )


def datasheet(
    table: pd.DataFrame,
    rows: pd.DataFrame,
    summary: dict,
    prepared_manifest: dict,
    attributes: pd.DataFrame,
    context: dict,
    params_path: str,
) -> str:
    """``datasheet.md``: where the samples came from, how they were gated, what they hold, how to load them."""
    from benchmark.config import load_section
    from benchmark.quality.strata import acceptance_by_stratum
    from benchmark.utils.io import read_json
    from benchmark.utils.provenance import git_revision

    dataset, theta = context["dataset"], context["theta"]
    accepted = table["accepted"].astype(bool)
    n_generated, n_accepted = len(table), int(accepted.sum())
    n_subset = int(rows["in_training_subset"].sum())
    generator = summary.get("generator") or {}
    generator_params = load_section("generator", params_path)
    backend = generator.get("backend", generator_params.backend)
    model = generator.get("model", f"models/{dataset}/generator")
    train_record = Path("results") / dataset / Path(model).name / "train.json"
    if train_record.is_file():
        record = read_json(train_record)
        training = (
            f"{record.get('n_steps', '?')} steps on {record.get('n_examples', '?')} training pairs, seed "
            f"{record.get('seed', '?')} (`{train_record}`)"
        )
    else:
        configured = (
            generator_params.latent.denoiser if backend == "latent" else generator_params.sdxl_inpainting
        ).steps
        training = f"{configured} steps as configured in `{params_path}` (no `{train_record}` to confirm it)"
    theta_now = load_section("synthesize", params_path).theta
    validator_metrics = Path("results") / dataset / "validator" / "metrics.json"
    if validator_metrics.is_file():
        metrics = read_json(validator_metrics)
        validator = (
            f"validation Dice {metrics.get('dice', float('nan')):.4f}, IoU {metrics.get('iou', float('nan')):.4f} "
            f"(single step, {metrics.get('n_images', '?')} real validation images); "
            f"{_percent(metrics.get('pass_rate'))} of {metrics.get('n_lesion_images', '?')} real validation lesion "
            f"images pass θ = {metrics.get('theta', theta)} (the ceiling of any acceptance rate)"
        )
    else:
        validator = f"no `{validator_metrics}` (run `dvc repro validator@{dataset}` for its validation Dice)"
    size = context["size"]
    lines = [
        f"# Validated synthetic set: {dataset}"
        + (f" ({context['synthetic_set']})" if context["synthetic_set"] != "main" else ""),
        "",
        f"{n_accepted} synthetic lesion images with segmentation masks, generated by DiffAug's text-guided inpainting "
        f"generator on `{dataset}` and kept because the validator found the new lesion (IoU > θ = {theta}). "
        f"Made from `{context['folder']}/` (stage `{context['stage']}`).",
        "",
        "## Source dataset",
        "",
        f"- name: `{dataset}`: {prepared_manifest.get('description', 'no description recorded')}",
        f"- modality: {prepared_manifest.get('modality', '?')}, target: {prepared_manifest.get('target', '?')}",
        f"- image size: {size} × {size} px (the prepared size). Synthetic samples exist only at this size: they "
        "were generated there, so there is no native-resolution mask.",
        f"- real training images: {context['n_train']} (the backgrounds and donor masks all come from the "
        "training split; the test split was never used)",
        "",
        "## Generator",
        "",
        f"- backend: {backend}, model `{model}`",
        f"- sampling: {generator.get('steps', generator_params.steps)} DDIM steps, classifier-free guidance "
        f"{generator.get('guidance_scale', generator_params.guidance_scale)}, prompt variant "
        f"{generator.get('prompt_variant', generator_params.prompt_variant)}",
        f"- training: {training}",
        "",
        "## Validator and gate",
        "",
        f"- validator (DiffAug's latent segmenter, real training data only): {validator}",
        f"- θ = {theta}: a sample is accepted when the IoU of the new lesion (the validator's prediction and the "
        "painted mask, both outside the background's own lesion) exceeds θ (`iou`); `iou_union` is the IoU "
        "against the whole label, recorded only",
        f"- acceptance: {n_accepted} of {n_generated} generated ({_percent(n_accepted / max(n_generated, 1))})",
        f"- training subset: {n_subset} samples (`in_training_subset`), the first round({context['volume']:g} × "
        f"{context['n_train']}) accepted in generation order: what the runs on this set (DiffAug's segmenter, `+diffaug`) train on "
        f"at synthesize.volume = {context['volume']:g}",
    ]
    if theta_now != theta:
        lines.append(
            f"- note: `{params_path}` now sets synthesize.theta = {theta_now}; this set was gated at {theta} "
            f"(rerun `dvc repro {context['stage']}` for the new θ)"
        )
    if context["shortfall"]:
        lines.append(f"- shortfall: {context['shortfall']}")
    lines += ["", "## Counts per stratum", ""]
    by_stratum = acceptance_by_stratum(table, attributes)
    if len(by_stratum):
        subset = rows[rows["in_training_subset"]]

        def trained(kind: str, stratum: str) -> int:
            return int(subset[f"stratum_{kind}"].eq(stratum).sum())

        lines += [
            "| kind | stratum | generated | accepted | acceptance | training subset |",
            "| --- | --- | --- | --- | --- | --- |",
            *(
                f"| {row.kind} | {row.stratum} | {row.n} | {row.n_accepted} | {_percent(row.acceptance_rate)} "
                f"| {trained(row.kind, row.stratum)} |"
                for row in by_stratum.itertuples()
            ),
            "",
            "Size tertiles are taken over every generated sample's intended area; the manifest's `stratum_*` "
            "columns give each sample's strata.",
        ]
    else:
        lines.append("No stratum is recorded for this dataset.")
    lines += [
        "",
        "## Files",
        "",
        "- `images/<sample_id>.png`: RGB uint8; `masks/<sample_id>.png`: the training label (the background's own "
        "lesion ∪ the new one), 0 / 255; `inpainted/<sample_id>.png`: the region the generator painted, 0 / 255",
        "- `manifest.csv`: one row per sample: file names, prompt, donor (`donor_id`), background "
        "(`background_id`), sampling `seed`, `iou`, `iou_union`, `accepted`, `in_training_subset`, `stratum_*`",
    ]
    n_rejected = int((~rows["accepted"]).sum())
    if n_rejected:
        lines.append(f"- `rejected/`: {n_rejected} samples the gate rejected (`accepted` false); not for training")
    lines += [
        "",
        "## Licence",
        "",
        licence_note(dataset, prepared_manifest),
        "",
        "## Load it",
        "",
        "```python",
        "import numpy as np, pandas as pd",
        "from PIL import Image",
        'table = pd.read_csv("manifest.csv").query("accepted")  # or .query("in_training_subset")',
        'images = np.stack([np.asarray(Image.open(path)) for path in table["image"]])  # (N, S, S, 3) uint8',
        'masks = np.stack([np.asarray(Image.open(path)) > 127 for path in table["mask"]])  # (N, S, S) bool',
        "```",
        "",
        "## Made by",
        "",
        "```bash",
        context["command"],
        "```",
        "",
        f"Commit: {git_revision() or 'unknown'}.",
        "",
    ]
    return "\n".join(lines)


def _percent(value) -> str:
    return "?" if value is None or pd.isna(value) else f"{100 * float(value):.1f} %"


def main() -> None:
    parser = common.dataset_parser(__doc__)
    parser.add_argument("--out", required=True, help="folder to write (must not exist or be empty, see --force)")
    parser.add_argument("--set", default="main", help="synthetic set: main (default) or a Table 6 set (notext, basic)")
    parser.add_argument("--include-rejected", action="store_true", help="also export rejected samples, in rejected/")
    parser.add_argument("--force", action="store_true", help="replace --out when it holds a previous export")
    args = parser.parse_args()
    out = export(
        args.dataset,
        args.out,
        synthetic_set=args.set,
        params_path=args.params,
        include_rejected=args.include_rejected,
        force=args.force,
        progress=not args.no_progress,
    )
    rows = pd.read_csv(out / "manifest.csv", usecols=["accepted"])
    print(f"{args.dataset}: {int(rows['accepted'].sum())} accepted samples (of {len(rows)} exported) -> {out}")


if __name__ == "__main__":
    common.run(main)
