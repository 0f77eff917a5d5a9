"""`seal score`: score samples a feature selector never saw, with the map it learned.

A feature selector's logit is w·x + b over the sample's features; the same features of
new samples (hashed n-grams need no model; hidden states need the run's model, and are
standardised with the run's statistics) give their logits. The outputs are a scores table
and selected.jsonl like `seal select`'s, so `seal finetune --scores` keeps the top p of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import (
    ConfigError,
    FeatureConfig,
    ScoreRecipeConfig,
    SelectRecipeConfig,
    dump_config,
    load_config,
)
from ..data import encode_configured, load_sources
from ..io import atomic_write, write_dropped, write_parquet
from ..model.load import device_for, load_configured
from ..scores import scores_table, write_selected
from ..selection.features import compute_features
from ..selection.selector import FeatureSelector, read_selector_file, weights_of

SELECTOR = "selector.safetensors"


def _run_config(run_dir: Path) -> SelectRecipeConfig:
    if not (run_dir / SELECTOR).exists():
        raise ConfigError(f"{run_dir}: no {SELECTOR}; give a finished `seal select` run folder")
    return load_config(SelectRecipeConfig, run_dir / "config.yaml")


def _linear_map(run_dir: Path):
    meta, tensors = read_selector_file(run_dir / SELECTOR)
    if meta.get("kind", "logits") != "features":
        raise ConfigError(
            f"{run_dir / SELECTOR}: a logits selector has one logit per sample it was "
            "trained on and cannot score new samples; train one with selector.kind=features"
        )
    stats = (tensors["mean"], tensors["std"]) if "mean" in tensors else None
    return meta, tensors["w"], tensors["b"], stats


def run_score(cfg: ScoreRecipeConfig, *, progress: bool = True, model=None, tokenizer=None) -> dict:
    """Run `seal score`; returns a summary (scored, dropped, kept)."""
    cfg.check_ready()
    run_dir = Path(cfg.selector)
    run = _run_config(run_dir)
    meta, w, b, stats = _linear_map(run_dir)
    features = FeatureConfig.model_validate(json.loads(meta["features"]))
    loaded = load_sources(cfg.data)
    samples, dropped, encoded = loaded.samples, list(loaded.dropped), None
    runtime = cfg.runtime or run.runtime
    device = device_for(runtime.device)
    if features.source == "hidden":
        if model is None:
            model, tokenizer = load_configured(run.model)
        encoded = encode_configured(samples, tokenizer, run.tokenize, run.selector.response_tokens)
        samples, dropped = encoded.samples, dropped + encoded.dropped
        model.to(device)
    x, _ = compute_features(
        features,
        samples,
        model=model,
        encoded=encoded,
        stats=stats,
        batch_size=run.selector_train.batch_size,
        device=device,
        precision=runtime.precision,
        progress=progress,
    )
    selector = FeatureSelector([s.sample_id for s in samples], x, meta["activation"])
    with torch.no_grad():
        selector.w.copy_(w)
        selector.b.copy_(b)
        logits = selector.score(x)
    table = scores_table(samples, logits, cfg.p, weights_of(logits, meta["activation"]))
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "config.yaml", dump_config(cfg))
    write_dropped(out / "dropped.jsonl", dropped)
    write_selected(out / "selected.jsonl", samples, table)
    write_parquet(out / "scores.parquet", table)
    kept = sum(table.column("selected").to_pylist())
    return {"scored": table.num_rows, "dropped": len(dropped), "kept": kept, "output_dir": out}
