"""Stage ``report``: execute the parameterised notebooks into ``reports/`` (``.ipynb`` + ``.html``)
and write the study curves ``reports/plots/dice_vs_volume.csv`` and ``dice_vs_theta.csv`` (``dvc plots show``).

    python -m benchmark.stages.report [--params params.yaml] [--only table1_datasets]
"""

from __future__ import annotations

from benchmark.stages import common


def main() -> None:
    cli = common.parser(__doc__)
    cli.add_argument("--only", action="append", help="render only this notebook (repeatable)")
    args = cli.parse_args()
    from benchmark.config import load_section
    from benchmark.reporting.render import render_notebook

    params = load_section("report", args.params)
    if not args.only:
        from benchmark.reporting.studies import write_study_plots

        print("plots: " + ", ".join(map(str, write_study_plots("reports/plots", args.params))))
    for name in args.only or params.notebooks:
        paths = render_notebook(name, {"params_path": args.params}, html=params.html, timeout_s=params.timeout_s, progress=not args.no_progress)
        print(f"{name}: " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    common.run(main)
