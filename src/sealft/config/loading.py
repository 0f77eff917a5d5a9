"""A config is YAML plus `key=value` overrides with dotted keys (`selector.lr=0.5`).

Errors name where a bad setting came from (the config file and the line of the key, or the
command line) and the key, in one line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from .base import ConfigError


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


Key = tuple  # a dotted key split into its parts (ints index lists)


def _read_yaml(path: str | Path) -> tuple[Any, dict[Key, int]]:
    """The YAML tree of a config file, and the line where each of its keys stands."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the file ({e.strerror or e})") from None
    try:
        tree, node = yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None)
        detail = f" ({problem})" if problem else ""
        raise ConfigError(f"{path}{where}: malformed YAML{detail}") from None
    lines: dict[Key, int] = {}
    _key_lines(node, (), lines)
    return tree, lines


def _key_lines(node, key: Key, lines: dict[Key, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            lines[(*key, k.value)] = k.start_mark.line + 1
            _key_lines(v, (*key, k.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            lines[(*key, i)] = v.start_mark.line + 1
            _key_lines(v, (*key, i), lines)


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _keys_of(cls: type[BaseModel], loc: tuple, tree: Any, kind: str) -> tuple[Key, bool]:
    """The config keys in a pydantic error location, and whether the location ends in a
    union branch's tag (`list[...]`, `float`), which pydantic adds for each branch it tried:
    an item is a key when the schema or the input has it."""
    models, node, keys, tagged = [cls], tree, [], False
    for i, item in enumerate(loc):
        last = i == len(loc) - 1
        fields = {name: f for m in models for name, f in m.model_fields.items()}
        given = isinstance(node, dict | list) and _has(node, item)
        if given or item in fields or isinstance(item, int) or (last and kind == "missing"):
            keys.append(item)
            if item in fields:
                models = _models_in(fields[item].annotation)
            elif not isinstance(item, int):  # a list index keeps the element type
                models = []
            node = node[item] if given else None
        else:
            tagged = last
    return tuple(keys), tagged


def _has(node: dict | list, item) -> bool:
    if isinstance(node, dict):
        return item in node
    return isinstance(item, int) and 0 <= item < len(node)


def _errors(cls: type[BaseModel], e: ValidationError, tree: Any) -> list[tuple[Key, dict]]:
    """Each error with its keys, less the union branches that the input plainly is not:
    `data: {bogus: 1}` fails as a list too, which says nothing to the user."""
    found = [(*_keys_of(cls, err["loc"], tree, err["type"]), err) for err in e.errors()]

    def branch_mismatch(tagged: bool, err: dict) -> bool:
        return tagged and err["type"].endswith("_type")

    return [
        (keys, err)
        for keys, tagged, err in found
        if not branch_mismatch(tagged, err)
        or not any(
            k[: len(keys)] == keys and not branch_mismatch(t, other)
            for k, t, other in found
            if other is not err
        )
    ]


def _where(keys: Key, path: str | Path | None, lines: dict[Key, int], overridden: list[Key]) -> str:
    """Where a bad setting came from: the command line, or the config file and its line."""
    if path is None or any(keys[: len(k)] == k for k in overridden):
        return "command line"
    line = next((lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in lines), None)
    where = f"{path}:{line}" if line else str(path)
    # A key above an override (a section) may be wrong because of either.
    return where + (" + command line" if any(k[: len(keys)] == keys for k in overridden) else "")


def _format_error(
    cls: type[BaseModel],
    e: ValidationError,
    tree: Any,
    path: str | Path | None,
    lines: dict[Key, int],
    overridden: list[Key],
) -> str:
    parts = []
    for keys, err in _errors(cls, e, tree):
        key = ".".join(str(k) for k in keys)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        # A whole section as the bad value would swamp the line; the key names it.
        elif err["type"] != "missing" and not isinstance(err["input"], dict | list):
            msg += f" (got {err['input']!r})"
        parts.append(
            f"{_where(keys, path, lines, overridden)}: " + (f"{key}: " if key else "") + msg
        )
    return "; ".join(parts)


def load_config(
    cls: type[BaseModel], path: str | Path | None = None, overrides: Sequence[str] = ()
) -> BaseModel:
    tree: Any = {}
    lines: dict[Key, int] = {}
    if path is not None:
        tree, lines = _read_yaml(path)
        tree = {} if tree is None else tree
        if not isinstance(tree, dict):
            raise ConfigError(
                f"{path}: expected a mapping of settings at the top level, "
                f"got {'a list' if isinstance(tree, list) else type(tree).__name__}"
            )
    overridden: list[Key] = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, value = item.split("=", 1)
        _set_dotted(tree, key.strip(), _parse_value(value))
        overridden.append(tuple(key.strip().split(".")))
    try:
        return cls.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format_error(cls, e, tree, path, lines, overridden)) from None


def dump_config(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def describe(cls: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted key, default, description) for every setting, for `--help`."""
    for name, info in cls.model_fields.items():
        # A section may also accept a list of itself (safe): describe the section's keys.
        options = get_args(info.annotation) or (info.annotation,)
        section = next(
            (t for t in options if isinstance(t, type) and issubclass(t, BaseModel)), None
        )
        if section is not None:
            if info.description:
                yield f"{prefix}{name}", "(section)", info.description
            yield from describe(section, f"{prefix}{name}.")
            continue
        if info.is_required():
            shown = "(required)"
        else:
            default = info.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = default.model_dump(mode="json")
            elif isinstance(default, list):
                default = [
                    d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in default
                ]
            shown = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("\n...")
        yield f"{prefix}{name}", shown, info.description or ""
