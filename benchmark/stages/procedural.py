"""Stage ``procedural``: generate the embedded datasets (synth_polyp, synth_fundus).

    python -m benchmark.stages.procedural [--params params.yaml]

Writes ``<procedural.output_dir>/synth_polyp`` (CVC-ClinicDB layout) and ``.../synth_fundus``
(REFUGE layout), each with an ``attributes.csv`` sidecar and lesion-free ``Normal/`` twins: only
those that ``prepare.datasets`` lists (none for a real-data run: the stage then only creates the
empty folder, in a second).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.stages import common


def main() -> None:
    args = common.parser(__doc__).parse_args()
    from benchmark.config import load_section

    params = load_section("procedural", args.params)
    listed = set(load_section("prepare", args.params).datasets)
    output = Path(params.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if not listed & {"synth_polyp", "synth_fundus"}:
        print(f"no procedural dataset in prepare.datasets: nothing to generate ({output} left empty)")
    if "synth_polyp" in listed:
        _polyp(params, output, progress=not args.no_progress)
    if "synth_fundus" in listed:
        _fundus(params, output, progress=not args.no_progress)


def _polyp(params, output: Path, *, progress: bool) -> None:
    from benchmark.data.procedural import polyp
    from benchmark.utils.seeding import derive_seed

    table = polyp.generate(
        params.synth_polyp,
        derive_seed(params.seed, "synth_polyp"),
        output / "synth_polyp",
        test_seed=derive_seed(params.test_seed, "synth_polyp", "test_world"),
        progress=progress,
    )
    test = table["part"].eq("test")
    print(
        f"synth_polyp: {len(table)} frames ({int(test.sum())} in a test world of {table.loc[test, 'sequence'].nunique()} sequences), {int(table['small'].sum())} small, {int(table['flat'].sum())} flat -> {output / 'synth_polyp'}"
    )


def _fundus(params, output: Path, *, progress: bool) -> None:
    from benchmark.data.procedural import fundus
    from benchmark.utils.seeding import derive_seed

    table = fundus.generate(
        params.synth_fundus,
        derive_seed(params.seed, "synth_fundus"),
        output / "synth_fundus",
        test_seed=derive_seed(params.test_seed, "synth_fundus", "test_world"),
        progress=progress,
    )
    counts = table["stratum"].value_counts().to_dict()
    print(f"synth_fundus: {len(table)} images, strata {counts} -> {output / 'synth_fundus'}")


if __name__ == "__main__":
    common.run(main)
