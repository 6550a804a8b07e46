"""The params loader: unknown keys, wrong types, missing sections, and the committed params.yaml."""

import dataclasses
from typing import Literal

import pytest
import yaml

from benchmark.config import ParamsError, from_mapping, load_section, to_mapping


@dataclasses.dataclass(frozen=True)
class Inner:
    rate: float = 0.1


@dataclasses.dataclass(frozen=True)
class Example:
    epochs: int = 3
    name: str = "a"
    sizes: tuple[int, ...] = (1, 2)
    mode: Literal["x", "y"] = "x"
    flag: bool = False
    inner: Inner = Inner()

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")


def test_valid_mapping_and_round_trip():
    value = from_mapping(Example, {"epochs": 5, "sizes": [3, 4], "inner": {"rate": 1}}, where="train.x")
    assert value == Example(epochs=5, sizes=(3, 4), inner=Inner(rate=1.0))
    assert from_mapping(Example, to_mapping(value), where="x") == value
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.epochs = 2


def test_unknown_key_names_key_and_suggests():
    with pytest.raises(ParamsError, match=r"unknown key 'train\.x\.epoch'.*did you mean 'epochs'"):
        from_mapping(Example, {"epoch": 5}, where="train.x")
    with pytest.raises(ParamsError, match=r"unknown key 'train\.x\.inner\.rat'"):
        from_mapping(Example, {"inner": {"rat": 1}}, where="train.x")


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"epochs": "ten"}, r"'train\.x\.epochs' must be an integer, got 'ten'"),
        ({"epochs": 2.5}, r"'train\.x\.epochs' must be an integer"),
        ({"epochs": True}, r"'train\.x\.epochs' must be an integer"),
        ({"flag": "yes"}, r"'train\.x\.flag' must be true or false"),
        ({"sizes": 3}, r"'train\.x\.sizes' must be a list"),
        ({"sizes": [1, "b"]}, r"'train\.x\.sizes\[1\]' must be an integer"),
        ({"mode": "z"}, r"'train\.x\.mode' must be one of 'x', 'y'"),
        ({"inner": 3}, r"'train\.x\.inner' must be a mapping"),
        ({"epochs": 0}, r"invalid value in 'train\.x': epochs must be >= 1"),
    ],
)
def test_wrong_types_and_values(mapping, message):
    with pytest.raises(ParamsError, match=message):
        from_mapping(Example, mapping, where="train.x")


def test_committed_params_are_valid():
    from benchmark.params import check_params

    sections = check_params("params.yaml")
    assert set(sections) == {
        "procedural",
        "prepare",
        "autoencoder",
        "generator",
        "generator_check",
        "validator",
        "synthesize",
        "controls",
        "quality",
        "train",
        "ablation",
        "evaluate",
        "cross",
        "report",
    }
    assert sections["train"].n_seeds >= 3


def test_section_typos_are_rejected(tmp_path):
    content = yaml.safe_load(open("params.yaml"))
    content["trian"] = content.pop("train")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match=r"unknown key 'trian' \(did you mean 'train'\?\)"):
        load_section("prepare", path)


def test_method_section_is_checked_against_the_method_config(tmp_path):
    content = yaml.safe_load(open("params.yaml"))
    content["train"]["unet"]["epoch"] = 3
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match=r"unknown key 'train\.unet\.epoch' \(did you mean 'epochs'\?\)"):
        load_section("train", path)
    content["train"]["unet"].pop("epoch")
    content["train"]["methods"] = ["unet", "unett"]
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match="unknown method 'unett'"):
        load_section("train", path)


def test_unknown_dataset_and_missing_file(tmp_path):
    content = yaml.safe_load(open("params.yaml"))
    content["prepare"]["datasets"]["kvasir"] = "data/raw/kvasir"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match="unknown dataset 'kvasir'"):
        load_section("prepare", path)
    with pytest.raises(ParamsError, match="not found"):
        load_section("prepare", tmp_path / "absent.yaml")


def test_generator_sections_check_nested_keys_and_backend_requirements(tmp_path):
    from benchmark.config import load_section

    content = yaml.safe_load(open("params.yaml"))
    content["generator"]["latent"]["denoiser"]["stepz"] = 3
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match=r"generator\.latent\.denoiser\.stepz.*did you mean 'steps'"):
        load_section("generator", path)
    content = yaml.safe_load(open("params.yaml"))
    content["generator"]["backend"] = "sdxl_inpainting"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match="pretrained_path"):
        load_section("generator", path)


def test_fixed_length_tuples_convert_item_by_item():
    import dataclasses as dc

    @dc.dataclass(frozen=True)
    class Pair:
        pair: tuple[int, float] = (1, 2.0)

    assert from_mapping(Pair, {"pair": [3, 4]}, where="x").pair == (3, 4.0)
    with pytest.raises(ParamsError, match="2 items"):
        from_mapping(Pair, {"pair": [3]}, where="x")
