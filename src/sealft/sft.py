"""Supervised fine-tuning on (a selection of) a data set, through transformers' Trainer.

`apply_selection` turns a scores table into the samples to train on (the top p, or every
sample with its selector weight); `train` runs the Trainer with `WeightedTrainer`'s loss,
so schedules, gradient accumulation, checkpoints and `report_to` logging are the
Trainer's own. Selections are matched to the data by sample ID, a hash of each sample's
content, so a selection made with one model and tokenizer applies to the same data under
another.

Checkpoints and resuming are the Trainer's too. What that loads is not ours to change:
transformers (5.x) reads the weights from safetensors, trainer_state.json as JSON, and
optimizer.pt, scheduler.pt and rng_state.pth with torch.load(weights_only=True) (no
arbitrary code; it refuses to load at all under torch < 2.6, CVE-2025-32434), always:
no setting turns that off; training_args.bin it writes but never reads back. sealft's own
code unpickles nothing.

Under `accelerate launch` the Trainer runs the configured engine itself (DDP, FSDP,
DeepSpeed); sealft splits sft.batch_size across the processes (`per_process_batches`),
so one optimiser step still sees that many samples, and saves the weights gathered from
every process (`save_dir`), which under FSDP or ZeRO-3 no single process holds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from pathlib import Path

import pyarrow as pa
import torch
from transformers import (
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from .config import ConfigError, RuntimeConfig, SFTConfig
from .config.base import NonFinite
from .data import DataError, Encoded, Sample, collate, pad_id
from .distributed import engine, launched_processes
from .io import append_jsonl, trim_jsonl
from .model.load import (
    attention_for,
    compiled_layers,
    device_for,
    frozen_weights_in_bf16,
    use_bf16,
)
from .model.losses import per_sample_loss
from .model.optim import BETAS
from .progress import progress_bar
from .scores import n_keep
from .selection.bilevel import NonFiniteLossError, nonfinite_message

log = logging.getLogger(__name__)


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
            "row": i,
        }


class WeightedTrainer(Trainer):
    """The loss of a batch is (1/|B|) Σ_i w_i ℓ_i, ℓ_i the mean NLL of sample i's
    response: the objective SEAL's lower level weights, and plain SFT when all w_i = 1."""

    def __init__(
        self,
        *args,
        sample_ids: list[str],
        on_nonfinite: NonFinite,
        attention: str = "model",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        # A per-batch mean: the Trainer divides it over gradient-accumulation steps.
        self.loss_is_scaled_for_ga = False
        self.sample_ids, self.on_nonfinite = sample_ids, on_nonfinite
        self.attention = attention

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weight, rows = inputs.pop("weight"), inputs.pop("row")
        with attention_for(model, self.attention, inputs["input_ids"]):
            return self._weighted_loss(model, inputs, weight, rows, return_outputs)

    def _weighted_loss(self, model, inputs, weight, rows, return_outputs: bool):
        losses = per_sample_loss(model, inputs)
        bad = ~torch.isfinite(losses.detach())
        if bad.any():
            self._report_nonfinite(rows[bad].tolist())
            # A NaN reaches every gradient through the backward pass, even times a zero
            # weight: the batch's finite samples go through the model again on their own.
            keep = ~bad
            if keep.any():
                losses = per_sample_loss(model, {k: v[keep] for k, v in inputs.items()})
                weight = weight[keep]
            else:  # a zero gradient: the Trainer's backward pass needs a loss to start from
                losses = sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        loss = (losses * weight).mean()
        return (loss, None) if return_outputs else loss

    def _report_nonfinite(self, rows: list[int]) -> None:
        where = f"fine-tuning step {self.state.global_step + 1}"
        groups = {"sample(s)": [self.sample_ids[i] for i in rows]}
        if self.on_nonfinite == "stop":
            raise NonFiniteLossError(
                nonfinite_message(
                    where,
                    groups,
                    "the last checkpoint (sft.save_steps) is kept; lower sft.lr, use "
                    "runtime.precision=fp32, or set sft.on_nonfinite=skip",
                )
            )
        log.warning(nonfinite_message(where, groups, "left out of this batch"))


class _JsonlLog(TrainerCallback):
    """Appends every logged record to metrics.jsonl as it comes."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            append_jsonl(self.path, {"step": state.global_step, **logs})


class _Progress(TrainerCallback):
    """sealft's progress (a bar on a terminal, plain lines in a log) instead of the
    Trainer's own bar and the dict it prints at every log step: an experiment runs dozens
    of fine-tunes, and the logs go to metrics.jsonl anyway."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = progress_bar(total=state.max_steps, desc="fine-tune", enabled=self.enabled)
        self.bar.update(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}")

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


def per_process_batches(cfg: SFTConfig, processes: int) -> tuple[int, int]:
    """(samples per forward pass, forward passes per optimiser step) of each process, such
    that one optimiser step sees sft.batch_size samples over all of them; the forward pass
    is never larger than sft.micro_batch_size."""
    if processes == 1:
        return cfg.forward_batch_size, cfg.accumulation_steps
    if cfg.batch_size % processes:
        raise ConfigError(
            f"sft.batch_size={cfg.batch_size} does not split evenly across {processes} "
            f"processes: use a multiple of {processes}"
        )
    share = cfg.batch_size // processes
    forward = math.gcd(share, cfg.forward_batch_size)
    return forward, share // forward


def training_arguments(
    cfg: SFTConfig, runtime: RuntimeConfig, output_dir: Path, seed: int
) -> TrainingArguments:
    device = device_for(runtime.device)
    forward, accumulation = per_process_batches(cfg, launched_processes())
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=forward,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        adam_beta1=BETAS[0],
        adam_beta2=BETAS[1],
        optim="adamw_torch",
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        report_to=cfg.report_to,
        seed=seed,
        use_cpu=device.type == "cpu",
        bf16=use_bf16(device, runtime.precision),
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def train(
    model,
    tokenizer,
    data: Encoded,
    cfg: SFTConfig,
    runtime: RuntimeConfig,
    *,
    run_dir: Path,
    weights: list[float] | None = None,
    seed: int = 0,
    progress: bool = True,
    save_dir: Path | None = None,
) -> dict:
    """Fine-tune `model` in place on `data`; resumes from the last checkpoint in `run_dir`.
    With `save_dir`, the trained weights (the adapter under LoRA) and the tokenizer are
    saved there, from the main process, whatever engine ran the training."""
    checkpoints = run_dir / "checkpoints"
    pad = pad_id(tokenizer)

    def collator(rows: list[dict]) -> dict:
        batch = collate([r["input_ids"] for r in rows], [r["labels"] for r in rows], pad)
        batch["weight"] = torch.tensor([r["weight"] for r in rows], dtype=torch.float32)
        batch["row"] = torch.tensor([r["row"] for r in rows])
        return batch

    args = training_arguments(cfg, runtime, checkpoints, seed)
    main = args.process_index == 0
    trainer = WeightedTrainer(
        model=model,
        args=args,
        train_dataset=_Rows(data, weights or [1.0] * len(data)),
        data_collator=collator,
        callbacks=[_JsonlLog(run_dir / "metrics.jsonl"), _Progress(progress and main)],
        sample_ids=[s.sample_id for s in data.samples],
        on_nonfinite=cfg.on_nonfinite,
        attention=runtime.attention,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    saved = sorted(int(c.name.split("-")[1]) for c in checkpoints.glob("checkpoint-*"))
    if saved and main:
        trim_jsonl(run_dir / "metrics.jsonl", lambda r: r["step"] <= saved[-1])
    with _frozen_in_bf16(model, args, runtime), _compiled(model, runtime):
        output = trainer.train(resume_from_checkpoint=True if saved else None)
    if save_dir is not None:
        _save(trainer, model, tokenizer, save_dir)
    return {"train_loss": output.training_loss, "steps": output.global_step}


def _frozen_in_bf16(model, args: TrainingArguments, runtime: RuntimeConfig):
    """`frozen_weights_in_bf16` for the Trainer's autocast passes, unless an engine that
    wraps or shards the parameters itself (FSDP, DeepSpeed) runs them."""
    if not args.bf16 or engine() not in ("none", "ddp"):
        return contextlib.nullcontext()
    return frozen_weights_in_bf16(model, device_for(runtime.device), runtime.precision)


def _compiled(model, runtime: RuntimeConfig):
    """`compiled_layers` under runtime.compile; the engines that wrap or shard the
    parameters themselves (FSDP, DeepSpeed) are not measured with it, so they refuse it."""
    if runtime.compile and engine() not in ("none", "ddp"):
        raise ConfigError(f"runtime.compile is not supported under {engine()}; set it to false")
    return compiled_layers(model, runtime.compile)


def _save(trainer: Trainer, model, tokenizer, folder: Path) -> None:
    """Save from the main process. Under several processes the weights come from the
    engine (`get_state_dict`, which every process joins): FSDP and ZeRO-3 keep only
    shards in `model`, and ZeRO-3 gives 16-bit weights (zero3_save_16bit_model)."""
    state = {}
    if launched_processes() > 1:
        state["state_dict"] = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if trainer.is_world_process_zero():
        model.save_pretrained(folder, **state)
        tokenizer.save_pretrained(folder)


def load_trained(base, run_dir: Path):
    """The fine-tuned model of a finished run: `base` plus its adapter, or its full model."""
    adapter = run_dir / "adapter"
    if adapter.exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(base, adapter)
    full = run_dir / "model"
    base.load_state_dict(type(base).from_pretrained(full).state_dict())
    return base
