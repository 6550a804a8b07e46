"""Stage ``report``: execute the parameterised notebooks into ``reports/`` (``.ipynb`` + ``.html``),
write the results index ``reports/index.html`` / ``index.md`` (:mod:`benchmark.reporting.index`), and write the study curves ``reports/plots/dice_vs_volume.csv`` and ``dice_vs_theta.csv`` (``dvc plots show``).

    python -m benchmark.stages.report [--params params.yaml] [--only table1_datasets]
"""

from __future__ import annotations

from benchmark.stages import common


def main() -> None:
    cli = common.parser(__doc__)
    cli.add_argument("--only", action="append", help="render only this notebook (repeatable)")
    args = cli.parse_args()
    from benchmark.config import load_section
    from benchmark.reporting.render import not_run_reason, render_not_run, render_notebook

    params = load_section("report", args.params)
    from benchmark.reporting.inputs import require_inputs

    # on a fresh clone (no data/prepared, data/synthetic, models/) stop at once with how to fix it
    require_inputs(args.only or params.notebooks, list(load_section("prepare", args.params).datasets))
    if not args.only:
        from benchmark.reporting.studies import write_study_plots

        print("plots: " + ", ".join(map(str, write_study_plots("reports/plots", args.params))))
    from benchmark.utils.pool import WorkerPool

    names = list(args.only or params.notebooks)
    for name in [name for name in names if not_run_reason(name, args.params)]:  # a study switched off: say so
        reason = not_run_reason(name, args.params)
        print(f"{name}: not run ({reason}): " + ", ".join(map(str, render_not_run(name, reason, html=params.html))))
        names.remove(name)
    # each notebook executes in its own kernel: render as many at a time as train.threads allows
    workers = max(1, min(len(names), load_section("train", args.params).threads))
    with WorkerPool(workers, 1) as pool:
        futures = {
            name: pool.submit(
                render_notebook,
                name,
                {"params_path": args.params},
                html=params.html,
                timeout_s=params.timeout_s,
                progress=not args.no_progress and workers == 1,
            )
            for name in names
        }
        for name, future in futures.items():  # in the listed order; the first failure is raised
            print(f"{name}: " + ", ".join(map(str, future.result())))
    if not args.only:
        from benchmark.reporting.index import write as write_index

        print("index: " + ", ".join(map(str, write_index(args.params))))


if __name__ == "__main__":
    common.run(main)
