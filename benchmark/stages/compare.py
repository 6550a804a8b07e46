"""Stage ``compare@<dataset>``: every difference the reports state, at the independent unit.

    python -m benchmark.stages.compare --dataset synth_polyp [--params params.yaml]

Reads the train stage's ``results/<dataset>/runs/<run>/{per_image,lesions,inference}.csv|json``
and the dataset's analysis unit (video sequence where the data has them, else image:
:mod:`benchmark.stats.units`). Writes

- ``results/<dataset>/comparisons.csv``: one row per claim (:mod:`benchmark.reporting.claims`; Table 3's
  pairs over all lesions and within each lesion stratum of the prepared attributes):
  table, run_a, run_b, metric, unit, n_units, n_seeds, delta, 95 % CI, seed-to-seed sd, p
  (Wilcoxon signed-rank over units), p_holm (within the table), min_attainable_p, mde_80;
- ``results/<dataset>/mixed_effects.json``: Table 2's main comparison (DiffAug − its opponent)
  re-analysed with a random intercept per unit, and whether it agrees with the unit-level test.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.stages import common

N_RESAMPLES = 10_000


def main() -> None:
    args = common.dataset_parser(__doc__).parse_args()
    from benchmark.data.prepared import PreparedDataset
    from benchmark.params import check_params
    from benchmark.reporting import claims
    from benchmark.stats.units import dataset_units
    from benchmark.utils.io import atomic_path, write_json

    sections = check_params(args.params)
    prepared = PreparedDataset(Path("data/prepared") / args.dataset, Path("data/splits") / f"{args.dataset}.json")
    units = dataset_units(prepared)
    comparisons, mixed = claims.build(
        "results", args.dataset, sections, units, strata=claims.lesion_strata(prepared), n_resamples=N_RESAMPLES
    )
    out = Path("results") / args.dataset
    with atomic_path(out / claims.FILENAME, suffix=".csv") as tmp:
        comparisons.to_csv(tmp, index=False, float_format="%.6g")
    write_json(out / claims.MIXED_FILENAME, mixed)
    for table, family in comparisons.groupby("table", sort=False):
        print(
            f"{args.dataset} {table}: {len(family)} comparisons over {int(family['n_units'].min())} {units.name}s, "
            f"MDE(80 %) {100 * family['mde_80'].median():.1f} points (median)"
        )


if __name__ == "__main__":
    common.run(main)
