"""Peak memory of one selector-like step with the full-logits loss and with the lean loss.

A randomly initialised Llama with Llama-3's vocabulary (128,256 tokens) but a small body
(hidden 256, 2 layers, 4 heads), LoRA r16 on q/v, sequences of 2048 tokens whose response is
the last half. One step is what the selector does per batch: forward, per-sample loss,
Σ coef·loss backward, under bf16 autocast (the "auto" precision on a CPU with bf16). The loss
reads either the first K=4 response tokens of each sample or all of them.

Each variant runs in a fresh child process; its number is the rise of the process's peak
RSS (VmHWM, reset through /proc/self/clear_refs after a small warm-up step) over its RSS
just before the step. The old path is `full_logits_loss` below, a copy of the loss as it
was, so before and after are measured in the same run.

    python benchmarks/lean_loss.py            # writes benchmarks/results/lean_loss.json

Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

VOCAB = 128_256
LENGTH = 2048
# Full logits at batch 8 would be 8 × 2047 × 128,256 float32 values, 8.4 GB, and the step
# holds several such tensors (bf16 logits, their float32 copy, log-softmax, its gradient):
# more than this 24 GB machine has. The before/after pair is measured at batch 2; the lean
# path is also measured at batch 8.
VARIANTS = [("full", 2), ("lean", 2), ("lean", 8)]
K_SETTINGS = [4, None]  # None: every response token
RESULT = Path(__file__).parent / "results" / "lean_loss.json"


def full_logits_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The per-sample loss before the lean path: float32 logits at every position."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    nll = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), labels.clamp(min=0), reduction="none"
    )
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)


def build_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    from sealft.config import LoraSettings
    from sealft.model.lora import add_lora

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=LENGTH,
        tie_word_embeddings=False,
    )
    settings = LoraSettings(r=16, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"])
    return add_lora(LlamaForCausalLM(config), settings)


def make_batch(batch_size: int, length: int, k: int | None) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(batch_size * 1000 + length)
    ids = torch.randint(0, VOCAB, (batch_size, length), generator=gen)
    labels = torch.full_like(ids, -100)
    start = length // 2
    stop = length if k is None else start + k
    labels[:, start:stop] = ids[:, start:stop]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def step(model, loss_fn, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(model, batch)
    coef = torch.linspace(0.5, 1.5, len(loss))
    (loss * coef).sum().backward()
    return loss.detach()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(path: str, batch_size: int, k: int | None) -> dict:
    """One measurement, run in its own process so that peaks do not mix."""
    from sealft.model.losses import lean_parts, per_sample_loss

    model = build_model()
    loss_fn = full_logits_loss if path == "full" else per_sample_loss
    if path == "lean" and lean_parts(model) is None:
        raise RuntimeError("the lean path does not apply to the benchmark model")
    step(model, loss_fn, make_batch(1, 64, 4))  # warm-up: kernels and allocator pools
    batch = make_batch(batch_size, LENGTH, k)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    loss = step(model, loss_fn, batch)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return {
        "path": path,
        "batch": batch_size,
        "k": k,
        "rss_before_mib": round(before / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "step_peak_rise_mib": round((peak - before) / 1024, 1),
        "seconds": round(seconds, 1),
        "losses": [round(x, 6) for x in loss.tolist()],
    }


def run_child(path: str, batch_size: int, k: int | None) -> dict:
    args = json.dumps({"path": path, "batch_size": batch_size, "k": k})
    proc = subprocess.run(
        [sys.executable, __file__, "--child", args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{path} batch {batch_size} k {k} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def hardware() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = _meminfo_kib("MemTotal")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1)}


def _meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def table(rows: list[dict]) -> str:
    lines = [
        "| path | batch | response tokens read | step peak rise (MiB) | peak RSS (MiB) | s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        read = f"first {r['k']}" if r["k"] else f"all ({LENGTH // 2})"
        lines.append(
            f"| {r['path']} | {r['batch']} | {read} | {r['step_peak_rise_mib']} "
            f"| {r['peak_rss_mib']} | {r['seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    import peft
    import transformers

    rows = [run_child(p, b, k) for k in K_SETTINGS for p, b in VARIANTS]
    for k in K_SETTINGS:
        full, lean = (
            next(r for r in rows if (r["path"], r["batch"], r["k"]) == (p, 2, k))
            for p in ("full", "lean")
        )
        diff = max(abs(a - b) for a, b in zip(full["losses"], lean["losses"], strict=True))
        print(f"k={k}: largest per-sample loss difference, full vs lean at batch 2: {diff:.2e}")
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "hardware": hardware(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "setup": {
            "model": "LlamaForCausalLM, random init, untied head",
            "vocab": VOCAB,
            "hidden": 256,
            "layers": 2,
            "heads": 4,
            "length": LENGTH,
            "lora": "r16 on q_proj, v_proj",
            "precision": "bf16 autocast",
            "response": "last half of each sequence",
            "measure": "VmHWM after the step minus VmRSS before it, fresh process per row",
            "note": "full path not run at batch 8: it needs more than the machine's memory",
        },
        "rows": rows,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.child:
        print(json.dumps(child(**json.loads(cli.child))))
    else:
        main()
