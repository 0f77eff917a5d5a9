"""Keys renamed in 0.2 still load, with a FutureWarning, for one release (`_RENAMED`);
every recipe's top-level config (`Recipe`) migrates them before validation."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from pydantic import model_validator

from .base import Strict
from .sections import SFTConfig


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"config key '{old}' is deprecated and will be removed in the next release; use '{new}'",
        FutureWarning,
        stacklevel=2,
    )


def _to_runtime(tree: dict, key: str, value: Any, old: str) -> None:
    runtime = tree.setdefault("runtime", {})
    if not isinstance(runtime, dict):
        return  # validation reports the malformed section
    if key in runtime and runtime[key] != value:
        raise ValueError(f"'{old}' ({value!r}) conflicts with 'runtime.{key}' ({runtime[key]!r})")
    runtime[key] = value
    _deprecated(old, f"runtime.{key}")


def _sft_batches(section: dict) -> None:
    """Old SFT sections counted batch_size per forward pass, times gradient_accumulation;
    `sft.batch_size` counts samples per optimiser step, like every other batch_size."""
    steps = section.pop("gradient_accumulation", None)
    if steps is None or steps == 1:
        return
    forward = section.get("batch_size", SFTConfig.model_fields["batch_size"].default)
    if isinstance(forward, int) and isinstance(steps, int):
        section["batch_size"], section["micro_batch_size"] = forward * steps, forward


def _rename_section(tree: dict, old: str, new: str, *, sft: bool = False) -> None:
    if not isinstance(tree.get(old), dict):
        return
    if new in tree:
        raise ValueError(f"give either '{old}' (deprecated) or '{new}', not both")
    section = dict(tree.pop(old))
    for key in ("device", "precision"):
        if key in section:
            _to_runtime(tree, key, section.pop(key), f"{old}.{key}")
    if sft:
        _sft_batches(section)
    tree[new] = section
    _deprecated(old, new)


# Old top-level section -> (new section, is it an SFT section), per recipe.
_RENAMED: dict[str, dict[str, tuple[str, bool]]] = {
    "select": {"train": ("selector_train", False)},
    "finetune": {"train": ("sft", True)},
    "experiment": {"train": ("selector_train", False), "finetune": ("sft", True)},
    "eval": {},
    "score": {},
}


def _migrate(data: Any, recipe: str) -> Any:
    if not isinstance(data, dict):
        return data
    tree = dict(data)
    for old, (new, sft) in _RENAMED[recipe].items():
        _rename_section(tree, old, new, sft=sft)
    if recipe == "eval":
        for key in ("device", "precision"):
            if key in tree:
                _to_runtime(tree, key, tree.pop(key), key)
    return tree


class Recipe(Strict):
    """A recipe's top-level config: loads the keys renamed in 0.2 (see `_RENAMED`)."""

    recipe: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        return _migrate(data, cls.recipe)
