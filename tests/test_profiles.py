"""Profiles (benchmark/profiles.py): params_<name>.yaml + a generated profiles/<name>/dvc.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark import profiles
from benchmark.params import check_params

ROOT = Path(__file__).resolve().parents[1]
PROFILE_PARAMS = sorted(
    path.name for path in ROOT.glob("params_*.yaml") if (ROOT / "profiles" / path.stem[7:]).is_dir()
)


def test_the_kvasir_profile_is_committed():
    assert "params_kvasir.yaml" in PROFILE_PARAMS


@pytest.mark.parametrize("params_file", PROFILE_PARAMS)
def test_committed_profile_pipeline_is_generated_from_dvc_yaml(params_file):
    """Editing dvc.yaml without regenerating the profile fails here (run `python -m benchmark.profiles ...`)."""
    committed = (ROOT / "profiles" / profiles.profile_name(params_file) / "dvc.yaml").read_text()
    assert committed == profiles.render(params_file), f"regenerate: python -m benchmark.profiles {params_file}"


def _param_keys(pipeline: dict, params: dict) -> set[str]:
    """Every params key the pipeline's stages declare, with ${key} resolved over prepare.datasets."""
    keys = set()
    for stage in pipeline["stages"].values():
        body = stage.get("do", stage)
        for entry in body.get("params") or []:
            names = entry if isinstance(entry, str) else None
            for name in [names] if names else next(iter(entry.values())):
                if "${key}" in name:
                    keys |= {name.replace("${key}", dataset) for dataset in params["prepare"]["datasets"]}
                else:
                    keys.add(name)
    return keys


def _has(params: dict, dotted: str) -> bool:
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("params_file", ["params.yaml", "params_paper.yaml", *PROFILE_PARAMS])
def test_every_params_key_dvc_tracks_exists(params_file):
    """DVC stops with "Parameters ... are missing" when a params file lacks a key a stage tracks."""
    check_params(str(ROOT / params_file))
    params = yaml.safe_load((ROOT / params_file).read_text())
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    missing = sorted(key for key in _param_keys(pipeline, params) if not _has(params, key))
    assert not missing, f"{params_file} lacks {missing}"


def test_profile_runs_in_its_own_workspace_with_the_repository_code():
    root = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = {"prepare": {"datasets": {"kvasir_seg": "../../data/raw/Kvasir-SEG"}}}
    pipeline = profiles.profile_pipeline(root, "params_x.yaml", params)
    assert pipeline["vars"] == ["../../params_x.yaml"]
    assert "procedural" not in pipeline["stages"]  # no procedural dataset listed: the stage is left out
    train = pipeline["stages"]["train"]["do"]
    assert train["cmd"].endswith("--params ../../params_x.yaml")
    assert "../../benchmark/methods" in train["deps"] and "data/prepared/${key}" in train["deps"]
    assert train["params"] == [{"../../params_x.yaml": root["stages"]["train"]["do"]["params"]}]
    report = pipeline["stages"]["report"]
    assert "../../notebooks" in report["deps"] and not any("data/procedural" in str(d) for d in report["deps"])
    assert {next(iter(o)) if isinstance(o, dict) else o for o in report["outs"]} >= {"reports/index.html"}


def test_procedural_stage_is_kept_when_the_profile_lists_procedural_data():
    root = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    pipeline = profiles.profile_pipeline(root, "params_x.yaml", {"prepare": {"datasets": {"synth_polyp": "x"}}})
    assert pipeline["stages"]["procedural"]["cmd"].endswith("--params ../../params_x.yaml")


def test_profile_file_names():
    assert profiles.profile_name("params_kvasir.yaml") == "kvasir"
    with pytest.raises(ValueError, match="params_<name>.yaml"):
        profiles.profile_name("kvasir.yaml")
