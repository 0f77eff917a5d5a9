"""A config is YAML plus `key=value` overrides with dotted keys (`selector.lr=0.5`).

Errors name the file (and line, for malformed YAML) and the key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from .schema import ConfigError


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


def _format_error(e: ValidationError, source: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        got = "" if err["type"] == "extra_forbidden" else f" (got {err.get('input')!r})"
        lines.append(f"{source}: {key}: {msg}{got}")
    return "; ".join(lines)


def _origin(path, overrides) -> str:
    if path is None:
        return "command line"
    return f"{path} + command line" if overrides else str(path)


def load_config(
    cls: type[BaseModel], path: str | Path | None = None, overrides: Sequence[str] = ()
) -> BaseModel:
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                tree = yaml.safe_load(fh) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: malformed YAML") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, value = item.split("=", 1)
        _set_dotted(tree, key.strip(), _parse_value(value))
    try:
        return cls.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format_error(e, _origin(path, overrides))) from None


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
