"""Checkpoints of the selector's training, written so that a crash at any moment leaves one
whole checkpoint to resume from.

A checkpoint is a folder of one safetensors file (every tensor: weights, optimiser
moments, RNG states) and one JSON file (the position in the data, the optimisers' other
state, Python's and NumPy's RNG states): nothing in it is ever unpickled. What goes in is
the trainer's business (`BilevelTrainer._state`); these are the means.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..config import ConfigError

CHECKPOINT = "checkpoint"
STATE, TENSORS = "state.json", "tensors.safetensors"
FORMAT = 1


def write_checkpoint(folder: Path, state: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Write the checkpoint folder atomically: a crash at any moment leaves the previous
    checkpoint or this one, whole (see `find_checkpoint`)."""
    tmp, old = _sibling(folder, ".tmp"), _sibling(folder, ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / TENSORS))
    (tmp / STATE).write_text(json.dumps({"format": FORMAT, **state}), encoding="utf-8")
    for name in (TENSORS, STATE):
        with open(tmp / name, "rb") as fh:
            os.fsync(fh.fileno())
    # A folder cannot be renamed over another one: the previous checkpoint steps aside
    # first, and is what a crash between the two renames leaves to resume from.
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def read_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON state, tensors) of a checkpoint this version wrote."""
    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    if state.get("format") != FORMAT:
        raise ConfigError(f"{folder}: a checkpoint of another format; delete it to restart")
    return state, load_file(str(folder / TENSORS))


def _sibling(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


def find_checkpoint(folder: Path) -> Path | None:
    """The checkpoint to resume from: `folder`, or the previous one that a crash in the
    middle of replacing it left beside it; None when there is none."""
    for candidate in (folder, _sibling(folder, ".old")):
        if (candidate / STATE).is_file():
            return candidate
    return None


def remove_checkpoint(folder: Path) -> None:
    for path in (folder, _sibling(folder, ".tmp"), _sibling(folder, ".old")):
        shutil.rmtree(path, ignore_errors=True)


def trainable(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # PEFT marks only the active adapter as requiring gradients: the others are kept too.
    return {n: p for n, p in module.named_parameters() if p.requires_grad or "lora_" in n}


def put(tensors: dict[str, torch.Tensor], prefix: str, named: dict[str, torch.Tensor]) -> None:
    for name, value in named.items():
        tensors[f"{prefix}/{name}"] = value.detach().cpu().contiguous()


def part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    head = prefix + "/"
    return {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], folder) -> None:
    unexpected = module.load_state_dict(weights, strict=False).unexpected_keys
    if unexpected or not weights:
        raise ConfigError(f"{folder}: the checkpoint does not fit this model; delete it")


def flat_optimizer(state: dict, prefix: str, tensors: dict[str, torch.Tensor]) -> dict:
    """An optimiser's state_dict as JSON, its tensors (moments, step counts) moved into
    `tensors` under `prefix`."""
    flat = {}
    for index, entries in state["state"].items():
        values, names = {}, []
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}/{index}/{key}"] = value.detach().cpu().contiguous()
                names.append(key)
            else:
                values[key] = value
        flat[str(index)] = {"values": values, "tensors": names}
    return {"state": flat, "param_groups": state["param_groups"]}


def optimizer_state(flat: dict, prefix: str, tensors: dict, current: dict) -> dict:
    """The state_dict `flat_optimizer` flattened; `current` (the fresh optimiser's) gives
    back the tuples (Adam's betas) that JSON turned into lists."""
    state = {}
    for index, row in flat["state"].items():
        entry = dict(row["values"])
        entry.update({key: tensors[f"{prefix}/{index}/{key}"] for key in row["tensors"]})
        state[int(index)] = entry
    groups = [
        {k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in saved.items()}
        for saved, now in zip(flat["param_groups"], current["param_groups"], strict=True)
    ]
    return {"state": state, "param_groups": groups}


def rng_state(tensors: dict[str, torch.Tensor]) -> dict:
    tensors["rng/torch"] = torch.get_rng_state()
    # Only a CUDA that has been used has a state worth keeping (asking would start one).
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    for i, s in enumerate(cuda):
        tensors[f"rng/cuda/{i}"] = s
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "cuda_devices": len(cuda),
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def set_rng_state(state: dict, tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for i in range(min(state["cuda_devices"], devices)):
        torch.cuda.set_rng_state(tensors[f"rng/cuda/{i}"], i)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
