"""Run folders and cached steps: what makes every sealft run resumable.

A result is reused only when the key it was computed from is unchanged. A run folder's key
is its resolved config (`config.yaml`) plus a fingerprint of exactly which samples went in
(`inputs.sha256`); it is finished when its done-marker file exists, which is always written
last. A step of `seal run` that makes one file keeps its key inside that file (`cached`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError
from .io import atomic_write, read_json, write_json

CONFIG, INPUTS = "config.yaml", "inputs.sha256"


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
        same_config = saved.read_text(encoding="utf-8") == config_text
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
