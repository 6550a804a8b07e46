"""Registry keys are the same strings in params.yaml, dvc.yaml stage names and the registries."""

import subprocess
import sys
from pathlib import Path

import yaml

from benchmark.data import DATASETS, resolve_dataset
from benchmark.methods import METHODS
from benchmark.params import SECTIONS

ROOT = Path(__file__).resolve().parents[1]


def test_params_sections_mirror_stage_names():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stages = set(pipeline["stages"])
    # a section names a stage, or a family of stages "<section>_<stage>" (ablation: ablation_generator, ablation_synthesize)
    families = {name.split("_", 1)[0] for name in stages if name.startswith("ablation_")}
    # and "evaluate": the scoring step that train@<dataset> runs on every seed it trains
    steps = {"evaluate"}
    assert "evaluate" in pipeline["stages"]["train"]["do"]["params"]
    assert set(params) <= stages | families | steps, (
        f"params sections without a stage: {set(params) - stages - families - steps}"
    )
    assert set(SECTIONS) == set(params)


def test_stage_commands_use_the_stage_modules():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in pipeline["stages"].items():
        command = (stage.get("do") or stage)["cmd"]
        module = name.removeprefix(
            "ablation_"
        )  # the studies rerun the generator, synthesize, train and evaluate stages
        assert command.startswith(f"python -m benchmark.stages.{module}"), f"{name}: {command}"
        assert (ROOT / "benchmark" / "stages" / f"{module}.py").is_file()


def test_params_names_are_registry_keys():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["prepare"]["datasets"]) <= set(DATASETS) | set(params["prepare"].get("folders") or {})
    from benchmark.methods.runs import parse_run

    for run in params["train"]["methods"]:
        method, _ = parse_run(run)  # "<method>[+data]"
        assert method in METHODS
        assert method in params["train"], f"train.{method} section missing (dvc.yaml declares it as a param)"
    for name in params["prepare"]["datasets"]:
        resolve_dataset(name, params["prepare"].get("folders"))


def test_dvc_stage_names_follow_registry_keys():
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "stage", "list", "--name-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dataset in params["prepare"]["datasets"]:
        assert f"prepare@{dataset}" in listing
        assert f"train@{dataset}" in listing  # trains and evaluates every run of the dataset


def test_prepare_depends_on_every_registered_loader_file():
    """A change to any dataset loader re-prepares (each loader file is a dep of prepare@<dataset>)."""
    import inspect

    deps = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["prepare"]["do"]["deps"])
    for name, spec in DATASETS.items():
        path = Path(inspect.getfile(spec.loader)).resolve().relative_to(ROOT).as_posix()
        assert path in deps, f"dvc.yaml: prepare's deps lack {path}, the loader of {name!r}; add it"
