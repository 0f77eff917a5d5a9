"""`seal select`: load → tokenize → train the selector → rank → write the run folder.

Everything that can fail on bad input (config, data, model) fails before the run folder
is touched; every file in it is written atomically, and a run killed mid-way resumes from
its last checkpoint (every selector_train.checkpoint_every steps and each epoch's end)
when started again with the same config, to the same scores as a run never stopped.

Under `accelerate launch` (DDP) every process runs this recipe on the same data and trains
the selector on its share of each batch (`selection.bilevel`); rank 0 alone prepares the
run folder and writes every file in it, the others wait for it where they read it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import torch

from ..config import ConfigError, SelectRecipeConfig, dump_config
from ..data import (
    Dropped,
    Encoded,
    LoadedData,
    encode_configured,
    load_sources,
    pad_id,
)
from ..distributed import World, require_replicated, world
from ..io import append_jsonl, atomic_write, trim_jsonl, write_dropped, write_json, write_parquet
from ..model.load import device_for, load_configured
from ..model.lora import add_lora
from ..runs import fingerprint, prepare_on_main
from ..scores import read_scores, scores_table, write_selected
from ..selection.bilevel import BilevelTrainer, adapter_names
from ..selection.checkpoint import CHECKPOINT, find_checkpoint, remove_checkpoint
from ..selection.score import PLAN, ScorePlan, Signals, compose, measure, plan_for
from ..selection.selector import FeatureSelector, Selector, weights_of

log = logging.getLogger(__name__)
DONE = "scores.parquet"
# The checkpoint file of earlier sealft versions: a pickle, which is never loaded.
PICKLED_CHECKPOINT = "checkpoint.pt"


@dataclass
class SelectResult:
    run_dir: Path
    scores: pa.Table
    dropped: list[Dropped]
    resumed_from_epoch: int = 0
    resumed_from_step: int = 0


def _encode_inputs(
    cfg: SelectRecipeConfig, finetune: LoadedData, safe: LoadedData, tokenizer
) -> tuple[Encoded, Encoded, list[Dropped]]:
    """The fine-tuning and safe sets, tokenized, and every fine-tuning sample dropped."""
    # Training sees the samples in ID order, so batches (and so every score) depend on the
    # content of the data set, never on the order of its rows.
    finetune.samples.sort_by_id()
    safe.samples.sort_by_id()
    k = cfg.selector.response_tokens
    ft = encode_configured(finetune.samples, tokenizer, cfg.tokenize, k)
    sf = encode_configured(safe.samples, tokenizer, cfg.tokenize, k)
    if len(ft) == 0:
        raise ConfigError(f"{finetune.source}: no fine-tuning sample left after tokenization")
    if len(sf) == 0:
        raise ConfigError(f"{safe.source}: no safe sample left after tokenization")
    return ft, sf, finetune.dropped + ft.dropped


def make_selector(cfg: SelectRecipeConfig, ft: Encoded, features) -> Selector:
    ids = [s.sample_id for s in ft.samples]
    if cfg.selector.kind == "logits":
        return Selector(ids, cfg.selector.activation)
    x, stats = features
    return FeatureSelector(
        ids,
        x,
        cfg.selector.activation,
        residual=cfg.selector.features.residual,
        l2=cfg.selector.features.l2,
        stats=stats,
        spec=json.dumps(cfg.selector.features.model_dump(mode="json")),
    )


def selector_trainer(
    cfg, model, tokenizer, ft, sf, run_dir, progress, selector, here
) -> BilevelTrainer:
    """The bilevel trainer of `seal select` (benchmarks/perf.py times this very one)."""
    if cfg.lora.enabled:
        model = add_lora(model, cfg.lora, adapter_names(cfg.selector.algorithm))
    return BilevelTrainer(
        model,
        ft,
        sf,
        selector_cfg=cfg.selector,
        train_cfg=cfg.selector_train,
        runtime=cfg.runtime,
        pad=pad_id(tokenizer),
        seed=cfg.seed,
        lora=cfg.lora.enabled,
        device=here.device or device_for(cfg.runtime.device),
        run_dir=run_dir,
        progress=progress,
        selector=selector,
        world=here,
    )


def _resume(trainer: BilevelTrainer, run_dir: Path, here: World) -> None:
    """Continue from the last checkpoint, forgetting the steps logged after it.

    Every process loads it: the state in it is the same on all of them, whatever their
    number, so a run resumes under another number of processes too (its global batch is
    unchanged; the sums are taken in another order, so the scores agree to ~1e-6, not
    bit for bit)."""
    metrics = run_dir / "metrics.jsonl"
    found = find_checkpoint(run_dir / CHECKPOINT)
    if found is None:
        if here.main:
            atomic_write(metrics, "")
        return
    trainer.load_checkpoint(found)
    at = (trainer.epochs_done, trainer.steps_done)
    if here.main:
        trim_jsonl(metrics, lambda r: (r["epoch"], r["step"]) < at)
    log.info("resuming the selector at epoch %d, step %d (as in metrics.jsonl)", *at)


def _refuse_pickled_checkpoint(run_dir: Path, overwrite: bool, replace_stale: bool) -> None:
    """An older sealft's checkpoint would have to be unpickled, which can run any code."""
    if (run_dir / PICKLED_CHECKPOINT).exists() and not (overwrite or replace_stale):
        raise ConfigError(
            f"{run_dir / PICKLED_CHECKPOINT}: a checkpoint of an older sealft, which this "
            "version does not load (it is a pickle); delete it to start the selector "
            "afresh, or pass --overwrite"
        )


def _write_outputs(
    cfg, plan: ScorePlan, selector: Selector, signals: Signals, ft: Encoded, run_dir: Path, here
) -> pa.Table:
    score = compose(plan, selector.logits, signals)
    weights = weights_of(score, cfg.selector.activation)
    scores = scores_table(ft.samples, score, cfg.p, weights)
    if here.main:
        selector.save(
            run_dir / "selector.safetensors",
            extra={"p": str(cfg.p), "algorithm": str(cfg.selector.algorithm)},
        )
        write_selected(run_dir / "selected.jsonl", ft.samples, scores)
        # scores.parquet is written last: its presence marks a finished run.
        write_parquet(run_dir / DONE, scores)
        remove_checkpoint(run_dir / CHECKPOINT)
    # A command after this one (seal run's fine-tunes) reads these files on every process.
    here.barrier()
    return scores


def _prepare(cfg, ft: Encoded, sf: Encoded, here: World, overwrite: bool, replace_stale: bool):
    """The run folder, prepared by rank 0; True when it holds this finished run."""
    run_dir = Path(cfg.output_dir)
    if here.main:
        _refuse_pickled_checkpoint(run_dir, overwrite, replace_stale)
    return prepare_on_main(
        here,
        run_dir,
        dump_config(cfg),
        fingerprint([s.sample_id for s in ft.samples], [s.sample_id for s in sf.samples]),
        done_marker=DONE,
        overwrite=overwrite,
        replace_stale=replace_stale,
    )


def run_select(
    cfg: SelectRecipeConfig,
    *,
    overwrite: bool = False,
    replace_stale: bool = False,
    progress: bool = True,
    model=None,
    tokenizer=None,
) -> SelectResult:
    """Run `seal select`. `model`/`tokenizer` may be passed in to skip loading them."""
    cfg.check_ready()
    require_replicated("seal select")
    here = world(cfg.runtime.device)
    torch.manual_seed(cfg.seed)
    finetune, safe = load_sources(cfg.data), load_sources(cfg.safe)
    if model is None:
        model, tokenizer = load_configured(cfg.model)
    ft, sf, dropped = _encode_inputs(cfg, finetune, safe, tokenizer)
    run_dir = Path(cfg.output_dir)
    if _prepare(cfg, ft, sf, here, overwrite, replace_stale):
        return SelectResult(run_dir, read_scores(run_dir / DONE), dropped)
    device = here.device or device_for(cfg.runtime.device)
    model.to(device)
    plan = plan_for(cfg, sf.samples)
    log.info("score: %s", " → ".join(plan.stages()))
    if here.main:
        write_json(run_dir / PLAN, plan.as_dict())
    # A resumed run takes its logits from the checkpoint: no need for the starting ones.
    resuming = find_checkpoint(run_dir / CHECKPOINT) is not None
    signals = measure(
        plan,
        cfg,
        model,
        tokenizer,
        ft,
        sf,
        device=device,
        progress=progress and here.main,
        with_start=not resuming,
    )
    selector = make_selector(cfg, ft, signals.features)
    if signals.start is not None:
        selector.start_from(signals.start)
    trainer = selector_trainer(cfg, model, tokenizer, ft, sf, run_dir, progress, selector, here)
    _resume(trainer, run_dir, here)
    metrics = run_dir / "metrics.jsonl"
    if here.main:
        write_dropped(run_dir / "dropped.jsonl", dropped)
    resumed_from = (trainer.epochs_done, trainer.steps_done)
    selector = trainer.train(log=(lambda r: append_jsonl(metrics, r)) if here.main else None)
    scores = _write_outputs(cfg, plan, selector, signals, ft, run_dir, here)
    return SelectResult(run_dir, scores, dropped, *resumed_from)
