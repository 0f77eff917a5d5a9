"""Run folders and cached steps: what makes every sealft run resumable.

A result is reused only when the key it was computed from is unchanged. A run folder's key
is its resolved config (`config.yaml`) plus a fingerprint of exactly which samples went in
(`inputs.sha256`); it is finished when its done-marker file exists, which is always written
last. A step of `seal run` that makes one file keeps its key inside that file (`cached`).

Settings that do not change a run's results (how often it checkpoints, where its logs go)
are left out of the comparison: a stopped run resumes with them changed. How many
processes ran it is not a setting at all (it is the launcher's), so it never counts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from .config import ConfigError
from .distributed import World
from .io import atomic_write, read_json, write_json

CONFIG, INPUTS = "config.yaml", "inputs.sha256"
# Dotted keys of settings that only decide when checkpoints are written and where logs go:
# a run checkpointed more or less often, or logged elsewhere, trains to the same result.
RESULT_NEUTRAL = ("selector_train.checkpoint_every", "sft.save_steps", "sft.report_to")


def _results_part(config_text: str) -> dict:
    """A config with the result-neutral settings left out."""
    try:
        tree = yaml.safe_load(config_text)
    except yaml.YAMLError:
        tree = None
    if not isinstance(tree, dict):
        return {"text": config_text}
    for key in RESULT_NEUTRAL:
        *path, last = key.split(".")
        section = tree
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(last, None)
    return tree


def fingerprint(*parts) -> str:
    """A stable hash of JSON-able parts (sample IDs, weights, settings)."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_key(run_dir: str | Path) -> str:
    """The key of a prepared run folder, for steps that build on it."""
    run_dir = Path(run_dir)
    return fingerprint(*((run_dir / f).read_text(encoding="utf-8") for f in (CONFIG, INPUTS)))


def prepare_run_dir(
    run_dir: str | Path,
    config_text: str,
    inputs: str,
    *,
    done_marker: str,
    overwrite: bool = False,
    replace_stale: bool = False,
) -> bool:
    """Create or reuse a run folder; True when it already holds this exact finished run.

    A folder with another config or other input data is an error, unless `overwrite` (always
    start afresh) or `replace_stale` (start afresh only when the config or data differ, as
    `seal run` does for each of its steps). A matching unfinished run is kept for resuming.
    """
    run_dir = Path(run_dir)
    saved, saved_inputs = run_dir / CONFIG, run_dir / INPUTS
    if saved.exists() and not overwrite:
        # The folder keeps the config.yaml it was started with: the settings a resumed run
        # changed do not change its results, nor the key that later steps take from it.
        same_config = _results_part(saved.read_text(encoding="utf-8")) == _results_part(config_text)
        same_inputs = saved_inputs.exists() and saved_inputs.read_text(encoding="utf-8") == inputs
        if same_config and same_inputs:
            return (run_dir / done_marker).exists()
        if not replace_stale:
            what = (
                "a different config"
                if not same_config
                else "different data (same config, other samples)"
            )
            raise ConfigError(
                f"{run_dir} holds a run with {what}; choose another output_dir or pass --overwrite"
            )
        overwrite = True
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(saved_inputs, inputs)
    atomic_write(saved, config_text)
    return False


def prepare_on_main(here: World, run_dir: str | Path, config_text: str, inputs: str, **kw) -> bool:
    """`prepare_run_dir` on rank 0 only, its answer on every process: the others wait for
    it, since it may clear the folder they are about to read."""
    done = torch.zeros(1)
    if here.main:
        done[0] = prepare_run_dir(run_dir, config_text, inputs, **kw)
    here.broadcast([done])
    return bool(done)


def cached(path: str | Path, key: dict, compute: Callable[[], dict]) -> dict:
    """compute() once per key: its value is stored in `path` with the key it came from."""
    path = Path(path)
    if path.exists():
        saved = read_json(path)
        if saved.get("key") == key:
            return saved["value"]
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"key": key, "value": value})
    return value
