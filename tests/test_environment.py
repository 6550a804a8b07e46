"""pyproject.toml and environment.yml describe the same pinned environment."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    name, _, version = requirement.partition("==")
    return re.sub(r"[-_.]+", "-", name.strip().lower()), version.strip()


def test_pyproject_and_environment_yml_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = dict(_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    conda = dict(_normalise(r) for r in pip_section if not r.startswith("-e"))
    assert pyproject == conda, (
        f"only in pyproject: {set(pyproject.items()) - set(conda.items())}; only in environment.yml: {set(conda.items()) - set(pyproject.items())}"
    )


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert "==" in requirement, f"{requirement} is not pinned"
    assert "torch==2.14.1" in project["dependencies"] and "torchvision==0.29.1" in project["dependencies"]


def test_dvc_analytics_off():
    assert re.search(r"analytics\s*=\s*false", (ROOT / ".dvc" / "config").read_text())
