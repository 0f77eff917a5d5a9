"""`seal finetune`: supervised fine-tuning on (a selection of) a data set.

load → apply the selection (scores + p, or soft weights) → add the extra data → tokenize →
train with transformers' Trainer (schedules, gradient accumulation, checkpoints and
`report_to` logging come from it) → save the adapter (and, when asked, the merged model).

Selections are matched to the data by sample ID, a hash of each sample's content, so a
selection made with one model and tokenizer applies to the same data under another.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .bilevel import per_sample_loss
from .config import ConfigError, FinetuneConfig, FinetuneTrainConfig, dump_config
from .data import DataError, Encoded, Sample, collate, pad_id
from .modeling import add_lora, bf16_supported, device_for, load_configured
from .pipeline import atomic_write, encode_configured, jsonl_text, load_sources, prepare_run_dir
from .selector import n_keep

REQUIRED_SCORE_COLUMNS = ("sample_id", "rank", "weight")
DONE = "result.json"


# --------------------------------------------------------------------------- selection


def read_scores(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such scores file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a Parquet scores file ({e})") from None
    missing = [c for c in REQUIRED_SCORE_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: scores file lacks column(s) {', '.join(missing)}")
    return table


def _dropped_ids(scores_path: Path) -> set[str]:
    """IDs the scoring run dropped before ranking (too long for its tokenizer, ...)."""
    dropped = scores_path.parent / "dropped.jsonl"
    if not dropped.exists():
        return set()
    return {
        json.loads(line)["sample_id"]
        for line in dropped.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


def apply_selection(
    samples: list[Sample], scores: pa.Table, *, p: float, mode: str, source: str, dropped=()
) -> tuple[list[Sample], list[float] | None]:
    """The samples to train on (in data order) and their loss weights (None: all 1).

    The scores must cover exactly the data, except for samples the scoring run itself
    dropped (`dropped`): anything else means the scores belong to other data, and training
    on a silently different subset is worse than stopping.
    """
    ids = scores.column("sample_id").to_pylist()
    by_id = {s.sample_id: s for s in samples}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise DataError(
            f"{source}: {len(unknown)} of {len(ids)} scored samples are not in the data "
            f"(first: {unknown[0]}); these scores were computed on other data"
        )
    unscored = [s.sample_id for s in samples if s.sample_id not in set(ids) | set(dropped)]
    if unscored:
        raise DataError(
            f"{source}: {len(unscored)} of {len(samples)} data samples have no score "
            f"(first: {unscored[0]}); these scores were computed on other data"
        )
    order = {sid: i for i, sid in enumerate(by_id)}
    if mode == "soft":
        weights = dict(zip(ids, scores.column("weight").to_pylist(), strict=True))
        chosen = sorted(ids, key=order.__getitem__)
        return [by_id[i] for i in chosen], [float(weights[i]) for i in chosen]
    keep = n_keep(len(ids), p)
    ranks = scores.column("rank").to_pylist()
    chosen = sorted(
        (i for i, r in zip(ids, ranks, strict=True) if r <= keep), key=order.__getitem__
    )
    return [by_id[i] for i in chosen], None


def subset(samples: list[Sample], count: int | None, seed: int) -> list[Sample]:
    """A seeded random subset of `count` samples in their original order (None: all)."""
    if count is None or count >= len(samples):
        return list(samples)
    picked = sorted(random.Random(seed).sample(range(len(samples)), count))
    return [samples[i] for i in picked]


# --------------------------------------------------------------------------- training


class _Rows(torch.utils.data.Dataset):
    def __init__(self, data: Encoded, weights: list[float]):
        self.data, self.weights = data, weights

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        return {
            "input_ids": self.data.input_ids[i],
            "labels": self.data.labels[i],
            "weight": self.weights[i],
        }


def _weighted_trainer_class():
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """The loss of a batch is (1/|B|) Σ_i w_i ℓ_i, ℓ_i the mean NLL of sample i's
        response: the objective SEAL's lower level weights, and plain SFT when all w_i = 1."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # A per-batch mean: the Trainer divides it over gradient-accumulation steps.
            self.loss_is_scaled_for_ga = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weight = inputs.pop("weight")
            loss = (per_sample_loss(model, inputs) * weight).mean()
            return (loss, None) if return_outputs else loss

    return WeightedTrainer


def _quiet_logs(trainer) -> None:
    """Keep the progress bar but not the dict the Trainer prints at every log step: an
    experiment runs dozens of fine-tunes, and the logs go to metrics.jsonl anyway."""
    from transformers import PrinterCallback, ProgressCallback

    class Bar(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(Bar())


class _JsonlLog:
    """A Trainer callback appending every logged record to metrics.jsonl as it comes."""

    def __new__(cls, path: Path):
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and state.is_world_process_zero:
                    with path.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps({"step": state.global_step, **logs}) + "\n")

        return Callback()


def train(
    model,
    tokenizer,
    data: Encoded,
    cfg: FinetuneTrainConfig,
    *,
    run_dir: Path,
    weights: list[float] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fine-tune `model` in place on `data`; resumes from the last checkpoint in `run_dir`."""
    from transformers import TrainingArguments

    device = device_for(cfg.device)
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and bf16_supported(device))
    checkpoints = run_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        adam_beta2=0.95,
        optim="adamw_torch",
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        report_to=cfg.report_to,
        seed=seed,
        use_cpu=device.type == "cpu",
        bf16=use_bf16,
        disable_tqdm=not progress,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    pad = pad_id(tokenizer)

    def collator(rows: list[dict]) -> dict:
        batch = collate([r["input_ids"] for r in rows], [r["labels"] for r in rows], pad)
        batch["weight"] = torch.tensor([r["weight"] for r in rows], dtype=torch.float32)
        return batch

    trainer = _weighted_trainer_class()(
        model=model,
        args=args,
        train_dataset=_Rows(data, weights or [1.0] * len(data)),
        data_collator=collator,
        callbacks=[_JsonlLog(run_dir / "metrics.jsonl")],
    )
    _quiet_logs(trainer)
    saved = sorted(int(c.name.split("-")[1]) for c in checkpoints.glob("checkpoint-*"))
    metrics = run_dir / "metrics.jsonl"
    if saved and metrics.exists():
        # Resuming at the last checkpoint: forget what was logged after it.
        lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
        atomic_write(metrics, "".join(x for x in lines if json.loads(x)["step"] <= saved[-1]))
    output = trainer.train(resume_from_checkpoint=True if saved else None)
    return {"train_loss": output.training_loss, "steps": output.global_step}


# --------------------------------------------------------------------------- `seal finetune`


@dataclass
class FinetuneResult:
    run_dir: Path
    model: object
    tokenizer: object
    summary: dict = field(default_factory=dict)


def _fingerprint(samples: list[Sample], weights: list[float] | None) -> str:
    digest = hashlib.sha256()
    for i, s in enumerate(samples):
        digest.update(s.sample_id.encode())
        if weights is not None:
            digest.update(f":{weights[i]:.9g}".encode())
        digest.update(b"|")
    return digest.hexdigest()


def run_finetune(
    cfg: FinetuneConfig,
    *,
    overwrite: bool = False,
    replace_stale: bool = False,
    progress: bool = True,
    model=None,
    tokenizer=None,
) -> FinetuneResult:
    """Run `seal finetune`. `model`/`tokenizer` may be passed in (the base to train)."""
    cfg.check_ready()
    start = time.time()
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
            dropped=_dropped_ids(scores_path),
        )
    n_selected = len(samples)
    extra = []
    if cfg.extra is not None:
        extra = subset(load_sources(cfg.extra).samples, cfg.extra_count, cfg.seed)
        chosen = {s.sample_id for s in samples}
        extra = [s for s in extra if s.sample_id not in chosen]
    samples = samples + extra
    if weights is not None:
        weights = weights + [1.0] * len(extra)
    if not samples:
        raise ConfigError(f"{loaded.source}: no sample left to fine-tune on")

    run_dir = Path(cfg.output_dir)
    done = prepare_run_dir(
        run_dir,
        dump_config(cfg),
        _fingerprint(samples, weights),
        done_marker=DONE,
        overwrite=overwrite,
        replace_stale=replace_stale,
    )
    if model is None:
        model, tokenizer = load_configured(cfg.model)
    if done:
        return FinetuneResult(
            run_dir,
            load_trained(model, run_dir),
            tokenizer,
            json.loads((run_dir / DONE).read_text(encoding="utf-8")),
        )

    data = encode_configured(samples, tokenizer, cfg.tokenize)
    if len(data) == 0:
        raise ConfigError(f"{loaded.source}: no sample left after tokenization")
    if weights is not None:
        by_id = {s.sample_id: w for s, w in zip(samples, weights, strict=True)}
        weights = [by_id[s.sample_id] for s in data.samples]
    from_extra = {s.sample_id for s in extra}
    atomic_write(
        run_dir / "trained.jsonl",
        jsonl_text(
            {
                "sample_id": s.sample_id,
                "index": s.index,
                "source": "extra" if s.sample_id in from_extra else "data",
                "weight": 1.0 if weights is None else weights[j],
            }
            for j, s in enumerate(data.samples)
        ),
    )
    if cfg.lora.enabled:
        model = add_lora(
            model,
            r=cfg.lora.r,
            alpha=cfg.lora.alpha,
            dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules,
        )
    stats = train(
        model,
        tokenizer,
        data,
        cfg.train,
        run_dir=run_dir,
        weights=weights,
        seed=cfg.seed,
        progress=progress,
    )
    model.save_pretrained(run_dir / ("adapter" if cfg.lora.enabled else "model"))
    tokenizer.save_pretrained(run_dir / ("adapter" if cfg.lora.enabled else "model"))
    if cfg.save_merged and cfg.lora.enabled:
        merged = copy.deepcopy(model).merge_and_unload()
        merged.save_pretrained(run_dir / "merged")
        tokenizer.save_pretrained(run_dir / "merged")
    summary = {
        "selected": n_selected,
        "extra": len(extra),
        "trained": len(data),
        "dropped": {"loading": len(loaded.dropped), "tokenization": len(data.dropped)},
        **stats,
        "seconds": round(time.time() - start, 1),
    }
    # result.json is written last: its presence marks a finished run.
    atomic_write(run_dir / DONE, json.dumps(summary, indent=1))
    return FinetuneResult(run_dir, model, tokenizer, summary)


def load_trained(base, run_dir: Path):
    """The fine-tuned model of a finished run: `base` plus its adapter, or its full model."""
    adapter = run_dir / "adapter"
    if adapter.exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(base, adapter)
    full = run_dir / "model"
    base.load_state_dict(type(base).from_pretrained(full).state_dict())
    return base
