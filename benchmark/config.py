"""One loader from YAML mappings to frozen dataclasses, strict about keys and types.

Every stage reads exactly one ``params.yaml`` section through :func:`load_section`; notebooks
validate their papermill parameters through :func:`from_mapping`. Typos are never silent:

    >>> from_mapping(UNetConfig, {"epoch": 3}, where="train.unet")
    ParamsError: params.yaml: unknown key 'train.unet.epoch' (did you mean 'epochs'?). Known keys: ...

Supported field types: ``int``, ``float`` (ints accepted), ``str``, ``bool``, ``Literal[...]``,
``tuple[T, ...]`` (from YAML lists), ``dict[str, T]``, ``Optional[T]`` and nested dataclasses.
A dataclass may define ``__post_init__`` to check values; its ``ValueError`` is re-raised as a
:class:`ParamsError` naming the section.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    """A params file or mapping does not match its schema. The message names key and fix."""


def check_epoch_size(epoch_size: int | None) -> None:
    """Raise ``ValueError`` unless ``epoch_size`` is None or an int >= 1: every segmenter config's
    ``__post_init__`` calls it, so a bad value fails when params are parsed, not at the first seed."""
    if epoch_size is not None and (isinstance(epoch_size, bool) or not isinstance(epoch_size, int) or epoch_size < 1):
        raise ValueError(f"epoch_size must be an int >= 1 or None (the whole training set), got {epoch_size!r}")


def read_yaml(path: str | os.PathLike = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found; run from the repository root or pass --params PATH")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {error}") from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ParamsError(f"{path} must hold a mapping of sections, got {type(content).__name__}")
    return content


def from_mapping(cls: type[T], mapping: Any, *, where: str, source: str = "params.yaml") -> T:
    """Build the frozen dataclass ``cls`` from ``mapping``, rejecting unknown keys and bad types.

    Args:
        cls: a dataclass type (ideally ``frozen=True``).
        mapping: the raw mapping (from YAML or papermill parameters). Missing keys take the
            dataclass defaults; a missing key without default is an error.
        where: dotted location used in messages, e.g. ``"train.unet"``.
        source: the file or origin named in messages.

    Raises:
        ParamsError: unknown key (with a close-match suggestion), missing required key,
            wrong type, or a value rejected by the dataclass's ``__post_init__``.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ParamsError(f"{source}: '{where}' must be a mapping of keys, got {_describe(mapping)}")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    for key in mapping:
        if key not in fields:
            raise ParamsError(_unknown_key_message(source, where, str(key), list(fields)))
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        location = f"{where}.{name}" if where else name
        if name in mapping:
            values[name] = _convert(mapping[name], hints[name], location, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ParamsError(f"{source}: missing required key '{location}'")
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise ParamsError(f"{source}: invalid value in '{where}': {error}") from error


def to_mapping(instance: Any) -> Any:
    """Inverse of :func:`from_mapping`: plain dicts/lists, ready for YAML or JSON."""
    if dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        return {field.name: to_mapping(getattr(instance, field.name)) for field in dataclasses.fields(instance)}
    if isinstance(instance, (tuple, list)):
        return [to_mapping(value) for value in instance]
    if isinstance(instance, Mapping):
        return {key: to_mapping(value) for key, value in instance.items()}
    return instance


def load_section(section: str, path: str | os.PathLike = DEFAULT_PARAMS) -> Any:
    """Load one top-level section of a params file into its frozen dataclass.

    The schema of every section lives in :data:`benchmark.params.SECTIONS`. The whole file's
    top-level keys are checked too, so a misspelt section (``trian:``) fails here rather than
    silently falling back to defaults.
    """
    from benchmark.params import SECTIONS

    content = read_yaml(path)
    for key in content:
        if key not in SECTIONS:
            raise ParamsError(_unknown_key_message(str(path), "", str(key), list(SECTIONS)))
    if section not in SECTIONS:
        raise ParamsError(_unknown_key_message(str(path), "", section, list(SECTIONS)))
    return SECTIONS[section](content.get(section, {}), str(path))


def _convert(value: Any, hint: Any, location: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (arg for arg in args if arg is not type(None)):
            try:
                return _convert(value, option, location, source)
            except ParamsError as error:
                errors.append(str(error))
        raise ParamsError(
            errors[0] if len(errors) == 1 else f"{source}: '{location}' = {value!r} matches none of {hint}"
        )
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(arg) for arg in args)
            raise ParamsError(f"{source}: '{location}' must be one of {choices}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where=location, source=source)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{source}: '{location}' must be a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(item, args[0], f"{location}[{i}]", source) for i, item in enumerate(value))
        if len(args) != len(value):
            raise ParamsError(f"{source}: '{location}' must have {len(args)} items, got {len(value)}")
        return tuple(_convert(item, arg, f"{location}[{i}]", source) for i, (item, arg) in enumerate(zip(value, args)))
    if origin in (dict, Mapping, typing.Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(f"{source}: '{location}' must be a mapping, got {_describe(value)}")
        key_hint, value_hint = args if args else (Any, Any)
        return {
            _convert(key, key_hint, location, source): _convert(item, value_hint, f"{location}.{key}", source)
            for key, item in value.items()
        }
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{source}: '{location}' must be true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{source}: '{location}' must be an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{source}: '{location}' must be a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{source}: '{location}' must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported field type {hint!r} at '{location}' (extend benchmark.config._convert)")


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _unknown_key_message(source: str, where: str, key: str, known: list[str]) -> str:
    location = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{source}: unknown key '{location}'{hint}. Known keys{' in ' + repr(where) if where else ''}: {', '.join(sorted(known))}"
