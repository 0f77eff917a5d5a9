"""The Python API: `seal select`, `score`, `finetune` and `eval` as functions that return
their results in memory, for notebooks and for training with your own trainer (TRL's
`SFTTrainer`, say) on what the selector kept.

Each takes the CLI's settings as keyword arguments, nested as in the YAML config
(`selector={"epochs": 1}`, `p=0.5`), or a config object or YAML file as `config`, and
writes the same run folder as the command: a finished run with the same settings and data
is read back rather than run again. Data may be a file path, a list of records, or a
`datasets.Dataset`; records and datasets are written once, under a name that hashes
their content, to a folder beside the run's (`<output_dir>-inputs`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from .config import (
    EvalRecipeConfig,
    FinetuneRecipeConfig,
    ScoreRecipeConfig,
    SelectRecipeConfig,
    load_config,
)
from .io import read_json, read_jsonl, write_jsonl

if TYPE_CHECKING:
    import datasets
    import pandas

Data: TypeAlias = "str | Path | list[dict] | Mapping | datasets.Dataset"


@dataclass
class Selection:
    """What a ranking kept. `scores`: one row per ranked sample, in input order (sample_id,
    index, score, weight, rank, selected); `kept`: the selected rows with their original
    fields, in input order; `plan`: the score's stages (a `select` run's plan.json)."""

    scores: pandas.DataFrame
    kept: datasets.Dataset
    run_dir: Path
    plan: dict | None = None


@dataclass
class Finetuned:
    """The fine-tuned model (with its LoRA adapter, if any) and tokenizer; `summary` is the
    run's result.json (rows trained on, steps, loss, seconds)."""

    model: Any
    tokenizer: Any
    run_dir: Path
    summary: dict


def select(
    data: Data, safe: Data, model: str, *, config=None, overwrite=False, progress=False, **settings
) -> Selection:
    """Rank `data` by SEAL against the trusted `safe` set and keep the top p (0.8)."""
    from .recipes.select import run_select
    from .selection.score import PLAN

    cfg = _config(SelectRecipeConfig, config, settings, model=model, data=data, safe=safe)
    result = run_select(cfg, overwrite=overwrite, progress=progress)
    plan = read_json(result.run_dir / PLAN) if (result.run_dir / PLAN).exists() else None
    return _selection(result.run_dir, plan)


def score(
    data: Data, selector: str | Path, *, config=None, progress=False, **settings
) -> Selection:
    """Score samples a feature selector (a finished `select` run with
    `selector={"kind": "features"}`) never saw, and keep the top p."""
    from .recipes.score import run_score

    cfg = _config(ScoreRecipeConfig, config, settings, data=data, selector=str(selector))
    return _selection(Path(run_score(cfg, progress=progress)["output_dir"]), None)


def finetune(
    data: Data,
    model: str,
    *,
    scores: Selection | str | Path | None = None,
    config=None,
    overwrite=False,
    progress=False,
    **settings,
) -> Finetuned:
    """Fine-tune `model` on `data`: every row, or the top p of `scores` (a `Selection` or a
    scores.parquet); `selection={"mode": "soft"}` weights every row instead."""
    from .recipes.finetune import run_finetune

    if isinstance(scores, Selection):
        scores = scores.run_dir / "scores.parquet"
    if scores is not None:
        settings = _merge(settings, {"selection": {"scores": str(scores)}})
    cfg = _config(FinetuneRecipeConfig, config, settings, model=model, data=data)
    result = run_finetune(cfg, overwrite=overwrite, progress=progress)
    return Finetuned(result.model, result.tokenizer, result.run_dir, result.summary)


def evaluate(
    model: str, *, adapter: str | Path | None = None, config=None, progress=False, **settings
) -> dict:
    """Evaluate `model` (with a LoRA `adapter` folder, such as a `Finetuned.run_dir /
    "adapter"`): the metrics and per-set refusal rates of `seal eval`'s results.json."""
    from .recipes.evaluate import run_eval

    if adapter is not None:
        settings = _merge(settings, {"adapter": str(adapter)})
    cfg = _config(EvalRecipeConfig, config, settings, model=model)
    return run_eval(cfg, progress=progress)


def _config(cls, config, settings: dict, *, model: str | None = None, **data: Any):
    """`cls` from a config object or YAML file, then `settings` and the given inputs."""
    base: dict = {}
    if isinstance(config, cls):
        base = config.model_dump(mode="json", exclude_unset=True)
    path = None if config is None or isinstance(config, cls) else config
    given = _merge(base, settings)
    out = Path(given.get("output_dir") or cls.model_fields["output_dir"].default)
    if model is not None:
        given = _merge(given, {"model": {"name_or_path": str(model)}})
    for role, value in data.items():
        given[role] = value if role == "selector" else _source(value, out, role)
    return load_config(cls, path, [f"{k}={json.dumps(v)}" for k, v in _dotted(given)])


def _source(data: Data, out: Path, role: str) -> dict | list:
    """A data section for `data`: a path as it is; records written once to a JSONL file
    named by their content; a mapping taken as the section itself (hub, fields, limit)."""
    if isinstance(data, (str, Path)):
        return {"path": str(data)}
    if isinstance(data, Mapping):
        return dict(data)
    rows = data.to_list() if hasattr(data, "to_list") else list(data)
    text = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = out.with_name(out.name + "-inputs") / f"{role}-{digest}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(path, rows)
    return {"path": str(path)}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _dotted(tree: dict, prefix: str = ""):
    """(dotted key, value) of every leaf; a data section stays whole (it may be a list)."""
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("data", "safe", "extra"):
            yield from _dotted(v, key + ".")
        else:
            yield key, v


def _selection(run_dir: Path, plan: dict | None) -> Selection:
    import datasets

    from .scores import read_scores

    table = read_scores(run_dir / "scores.parquet")
    kept = datasets.Dataset.from_list(list(read_jsonl(run_dir / "selected.jsonl")))
    return Selection(table.to_pandas(), kept, run_dir, plan)
