"""Which attention kernel trains faster on this CPU: eager or PyTorch's fused SDPA?

One training pass (forward, per-sample loss, backward; LoRA r16 on q/v, bf16 autocast) of
SmolLM2-135M-Instruct over batches of real rows and of random tokens at growing lengths,
the two kernels interleaved (sdpa, eager, sdpa, eager, …) so that a machine whose speed
drifts during the run (a shared host) favours neither. The source of runtime.attention's
auto rule (eager for training passes on a CPU up to EAGER_CPU_MAX_TOKENS tokens).

    python benchmarks/attention.py       # ~6 min on 2 cores; writes results/attention.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import torch
from perf import SHARED, cpu_busy, smollm_gguf

from sealft.config import DataConfig, LoraSettings, TokenizeConfig
from sealft.data import collate, encode_configured, load_sources, pad_id
from sealft.model.load import autocast, load_model_and_tokenizer
from sealft.model.lora import add_lora
from sealft.model.losses import per_sample_loss

RESULT = Path(__file__).parent / "results" / "attention.json"
KERNELS = ("sdpa", "eager")


def real_batches(tokenizer, response_tokens: int | None, n: int) -> list[dict]:
    """Batches of 8 Alpaca rows at length ≤ 128, the whole response or its first tokens."""
    rows = load_sources(DataConfig(path=str(SHARED / "benign" / "alpaca_subset.json"), limit=200))
    enc = encode_configured(
        rows.samples, tokenizer, TokenizeConfig(max_length=128), response_tokens
    )
    pad = pad_id(tokenizer)
    starts = range(0, 8 * n, 8)
    return [collate(enc.input_ids[s : s + 8], enc.labels[s : s + 8], pad) for s in starts]


def random_batch(length: int, batch: int) -> dict:
    """Random tokens, the second half the response, one row padded by an eighth."""
    gen = torch.Generator().manual_seed(length)
    ids = torch.randint(0, 49_000, (batch, length), generator=gen)
    labels = ids.clone()
    labels[:, : length // 2] = -100
    mask = torch.ones_like(ids)
    mask[0, -length // 8 :] = 0
    labels[0, -length // 8 :] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def seconds_per_pass(model, batches: list[dict], kernel: str) -> float:
    model.get_base_model().set_attn_implementation(kernel)

    def one(batch: dict) -> None:
        with autocast(torch.device("cpu"), "bf16"):
            loss = per_sample_loss(model, batch).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    one(batches[0])  # kernel selection, allocator pools
    start = time.perf_counter()
    for batch in batches[1:]:
        one(batch)
    return (time.perf_counter() - start) / (len(batches) - 1)


def compare(model, name: str, batches: list[dict], rounds: int) -> dict:
    times: dict[str, list[float]] = {k: [] for k in KERNELS}
    for _ in range(rounds):
        for kernel in KERNELS:
            times[kernel].append(seconds_per_pass(model, batches, kernel))
    sdpa, eager = (statistics.median(times[k]) for k in KERNELS)
    row = {
        "workload": name,
        "tokens": int(batches[0]["input_ids"].shape[1]),
        "rows": int(batches[0]["input_ids"].shape[0]),
        "seconds": times,
        "eager_over_sdpa": round(eager / sdpa, 3),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default: 2)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    busy = cpu_busy()
    model, tokenizer = load_model_and_tokenizer(smollm_gguf())
    model = add_lora(model, LoraSettings())
    rows = [
        compare(model, f"Alpaca, {what}", real_batches(tokenizer, k, 6), args.rounds)
        for what, k in (("whole response", None), ("first 4 response tokens", 4))
    ]
    for length, batch in ((256, 4), (512, 2), (1024, 1)):
        batches = [random_batch(length, batch)] * 3
        rows.append(compare(model, f"random tokens, {length}", batches, args.rounds))
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu_busy_at_start": round(busy, 3),
        "setup": "SmolLM2-135M-Instruct, LoRA r16 q/v, bf16 autocast, one forward+backward",
        "rows": rows,
    }
    RESULT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"written: {RESULT}")


if __name__ == "__main__":
    main()
