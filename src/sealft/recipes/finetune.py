"""`seal finetune`: supervised fine-tuning on (a selection of) a data set.

load → apply the selection (scores + p, or soft weights) → add the extra data → tokenize →
train (`sealft.sft`) → save the adapter (and, when asked, the merged model).

Under `accelerate launch` every process runs this recipe and the Trainer's engine (DDP,
FSDP, DeepSpeed) trains across them; rank 0 alone writes the run folder's files.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import ConfigError, FinetuneRecipeConfig, dump_config
from ..data import Encoded, LoadedData, Sample, encode_configured, load_sources
from ..distributed import World, world
from ..io import read_dropped_ids, read_json, write_json, write_jsonl
from ..model.load import load_configured
from ..model.lora import add_lora
from ..runs import fingerprint, prepare_on_main
from ..scores import read_scores
from ..sft import apply_selection, load_trained, per_process_batches, subset, train

log = logging.getLogger(__name__)
DONE = "result.json"


@dataclass
class FinetuneResult:
    run_dir: Path
    model: object
    tokenizer: object
    summary: dict = field(default_factory=dict)


@dataclass
class _Plan:
    """What to train on: the selected samples, then the extra ones, and their weights."""

    loaded: LoadedData
    samples: list[Sample]
    weights: list[float] | None
    n_selected: int
    extra: list[Sample]


def _plan(cfg: FinetuneRecipeConfig) -> _Plan:
    loaded = load_sources(cfg.data)
    samples, weights = loaded.samples, None
    if cfg.selection.scores:
        scores_path = Path(cfg.selection.scores)
        samples, weights = apply_selection(
            samples,
            read_scores(scores_path),
            p=cfg.selection.p,
            mode=cfg.selection.mode,
            source=str(scores_path),
            dropped=read_dropped_ids(scores_path.parent / "dropped.jsonl"),
        )
    n_selected = len(samples)
    extra = []
    if cfg.extra is not None:
        extra = subset(load_sources(cfg.extra).samples, cfg.extra_count, cfg.seed)
        chosen = {s.sample_id for s in samples}
        extra = [s for s in extra if s.sample_id not in chosen]
    if weights is not None:
        weights = weights + [1.0] * len(extra)
    if not samples + extra:
        raise ConfigError(f"{loaded.source}: no sample left to fine-tune on")
    return _Plan(loaded, samples + extra, weights, n_selected, extra)


def _encode(plan: _Plan, tokenizer, cfg: FinetuneRecipeConfig) -> tuple[Encoded, list | None]:
    """Tokenized samples and their weights."""
    data = encode_configured(plan.samples, tokenizer, cfg.tokenize)
    if len(data) == 0:
        raise ConfigError(f"{plan.loaded.source}: no sample left after tokenization")
    weights = plan.weights
    if weights is not None:
        by_id = {s.sample_id: w for s, w in zip(plan.samples, weights, strict=True)}
        weights = [by_id[s.sample_id] for s in data.samples]
    return data, weights


def _write_trained(plan: _Plan, data: Encoded, weights: list | None, run_dir: Path) -> None:
    """trained.jsonl: every trained sample, where it came from, and its weight."""
    from_extra = {s.sample_id for s in plan.extra}
    write_jsonl(
        run_dir / "trained.jsonl",
        (
            {
                "sample_id": s.sample_id,
                "index": s.index,
                "source": "extra" if s.sample_id in from_extra else "data",
                "weight": 1.0 if weights is None else weights[j],
            }
            for j, s in enumerate(data.samples)
        ),
    )


def _save_merged(model, tokenizer, cfg: FinetuneRecipeConfig, run_dir: Path, here: World):
    """The adapter merged into the base weights (save_merged), from rank 0."""
    if not (cfg.save_merged and cfg.lora.enabled and here.main):
        return
    if here.size == 1:
        merged = copy.deepcopy(model).merge_and_unload()
    else:
        # The trained module may hold only shards (FSDP, ZeRO-3): the saved adapter on a
        # fresh base is the whole trained model.
        merged = load_trained(load_configured(cfg.model)[0], run_dir).merge_and_unload()
    merged.save_pretrained(run_dir / "merged")
    tokenizer.save_pretrained(run_dir / "merged")


def run_finetune(
    cfg: FinetuneRecipeConfig,
    *,
    overwrite: bool = False,
    replace_stale: bool = False,
    progress: bool = True,
    model=None,
    tokenizer=None,
) -> FinetuneResult:
    """Run `seal finetune`. `model`/`tokenizer` may be passed in (the base to train).

    Under several processes the model returned is the one the engine trained, which under
    FSDP or ZeRO-3 holds only this process's shards: `load_trained` on a fresh base gives
    the whole model from the saved weights."""
    cfg.check_ready()
    here = world(cfg.runtime.device)
    per_process_batches(cfg.sft, here.size)  # a batch that does not split fails here, early
    start = time.time()
    plan = _plan(cfg)
    run_dir = Path(cfg.output_dir)
    inputs = fingerprint([s.sample_id for s in plan.samples], plan.weights)
    # The model and the tokenized data come before the run folder: input that fails there
    # leaves nothing behind.
    if model is None:
        model, tokenizer = load_configured(cfg.model)
    data, weights = _encode(plan, tokenizer, cfg)
    done = prepare_on_main(
        here,
        run_dir,
        dump_config(cfg),
        inputs,
        done_marker=DONE,
        overwrite=overwrite,
        replace_stale=replace_stale,
    )
    if done:
        summary = read_json(run_dir / DONE)
        return FinetuneResult(run_dir, load_trained(model, run_dir), tokenizer, summary)
    if here.main:
        _write_trained(plan, data, weights, run_dir)
    if cfg.lora.enabled:
        # The Trainer seeds itself only once the adapter exists: without this, its starting
        # weights would depend on whatever ran before in the process (the other fine-tunes
        # of `seal run`, say), and one seed would not mean one result.
        torch.manual_seed(cfg.seed)
        model = add_lora(model, cfg.lora)
    log.debug("fine-tuning on %d samples (%s)", len(data), run_dir)
    stats = train(
        model,
        tokenizer,
        data,
        cfg.sft,
        cfg.runtime,
        run_dir=run_dir,
        weights=weights,
        seed=cfg.seed,
        progress=progress,
        save_dir=run_dir / ("adapter" if cfg.lora.enabled else "model"),
    )
    _save_merged(model, tokenizer, cfg, run_dir, here)
    summary = {
        "selected": plan.n_selected,
        "extra": len(plan.extra),
        "trained": len(data),
        "dropped": {"loading": len(plan.loaded.dropped), "tokenization": len(data.dropped)},
        **stats,
        "seconds": round(time.time() - start, 1),
    }
    # result.json is written last: its presence marks a finished run.
    if here.main:
        write_json(run_dir / DONE, summary)
    here.barrier()
    return FinetuneResult(run_dir, model, tokenizer, summary)
