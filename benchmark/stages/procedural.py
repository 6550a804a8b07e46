"""Stage ``procedural``: generate the embedded datasets (synth_polyp, synth_fundus).

    python -m benchmark.stages.procedural [--params params.yaml]

Writes ``<procedural.output_dir>/synth_polyp`` (CVC-ClinicDB layout) and ``.../synth_fundus``
(REFUGE layout), each with an ``attributes.csv`` sidecar and lesion-free ``Normal/`` twins.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.stages import common


def main() -> None:
    args = common.parser(__doc__).parse_args()
    from benchmark.config import load_section
    from benchmark.data.procedural import fundus, polyp
    from benchmark.utils.seeding import derive_seed

    params = load_section("procedural", args.params)
    output = Path(params.output_dir)
    table = polyp.generate(
        params.synth_polyp,
        derive_seed(params.seed, "synth_polyp"),
        output / "synth_polyp",
        test_seed=derive_seed(params.test_seed, "synth_polyp", "test_world"),
        progress=not args.no_progress,
    )
    test = table["part"].eq("test")
    print(
        f"synth_polyp: {len(table)} frames ({int(test.sum())} in a test world of {table.loc[test, 'sequence'].nunique()} sequences), {int(table['small'].sum())} small, {int(table['flat'].sum())} flat -> {output / 'synth_polyp'}"
    )
    table = fundus.generate(
        params.synth_fundus,
        derive_seed(params.seed, "synth_fundus"),
        output / "synth_fundus",
        test_seed=derive_seed(params.test_seed, "synth_fundus", "test_world"),
        progress=not args.no_progress,
    )
    counts = table["stratum"].value_counts().to_dict()
    print(f"synth_fundus: {len(table)} images, strata {counts} -> {output / 'synth_fundus'}")


if __name__ == "__main__":
    common.run(main)
