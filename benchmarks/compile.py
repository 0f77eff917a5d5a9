"""Does torch.compile pay for sealft's training passes on this CPU?

One training pass (forward, per-sample loss, backward; LoRA r16 on q/v, bf16 autocast,
frozen weights held in bf16, runtime.attention auto) of SmolLM2-135M-Instruct over batches
of 8 Alpaca rows, over the first 4 response tokens (the selector's passes) and the whole
response (SFT's), with the model as it is and with each decoder layer compiled
(`layer.compile(dynamic=True)`, as torchtune does, so that sealft's hooks on the model body
still apply). Each mode runs in a fresh process, the modes alternating over the rounds so
that a host whose speed drifts favours neither. The first passes include the compilation;
the rest show the steady state, and the two give the passes needed to break even. Every
compiling process starts from an empty compile cache, as a user's first run does.

    python benchmarks/compile.py        # ~6 min on 2 cores; writes results/compile.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT = Path(__file__).parent / "results" / "compile.json"
MODES = ("eager", "compiled")
WARM = 4  # the first passes of each shape set: compilation and kernel selection


def child(mode: str, batches: int, threads: int) -> dict:
    import torch
    from perf import SHARED, smollm_gguf

    from sealft.config import DataConfig, LoraSettings, TokenizeConfig
    from sealft.data import encode_configured, load_sources, pad_id
    from sealft.model.load import frozen_weights_in_bf16, load_model_and_tokenizer
    from sealft.model.lora import add_lora
    from sealft.model.losses import losses_and_backward

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, tokenizer = load_model_and_tokenizer(smollm_gguf())
    model = add_lora(model, LoraSettings())
    if mode == "compiled":
        for layer in model.get_base_model().model.layers:
            layer.compile(dynamic=True)
    rows = load_sources(DataConfig(path=str(SHARED / "benign" / "alpaca_subset.json"), limit=240))
    cpu = torch.device("cpu")
    kw = {"pad": pad_id(tokenizer), "device": cpu, "precision": "bf16", "micro": None}
    out = {}
    with frozen_weights_in_bf16(model, cpu, "bf16"):
        for name, k in (("first 4 response tokens", 4), ("whole response", None)):
            enc = encode_configured(rows.samples, tokenizer, TokenizeConfig(max_length=128), k)
            order = torch.randperm(len(enc), generator=torch.Generator().manual_seed(0))
            seconds = []
            for idx in order.split(8)[:batches]:
                start = time.perf_counter()
                coef = torch.full((len(idx),), 1 / len(idx))
                losses_and_backward(model, enc, idx, coef, attention="auto", **kw)
                model.zero_grad(set_to_none=True)
                seconds.append(time.perf_counter() - start)
            out[name] = {
                "first_passes_s": round(sum(seconds[:WARM]), 2),
                "steady_pass_s": round(statistics.median(seconds[WARM:]), 3),
            }
    return out


def summary(runs: list[dict]) -> list[dict]:
    """Per workload: each mode's medians over the rounds, the saving and the break-even."""
    rows = []
    for name in runs[0]["passes"]:
        by = {m: [r["passes"][name] for r in runs if r["mode"] == m] for m in MODES}
        steady = {m: statistics.median(x["steady_pass_s"] for x in by[m]) for m in MODES}
        first = {m: statistics.median(x["first_passes_s"] for x in by[m]) for m in MODES}
        saved = steady["eager"] - steady["compiled"]
        extra = first["compiled"] - first["eager"]
        rows.append(
            {
                "workload": name,
                "steady_pass_s": steady,
                "first_passes_s": first,
                "saved_per_pass_s": round(saved, 3),
                # None: compiling never pays back (no saving) or costs nothing up front.
                "break_even_passes": round(extra / saved) if saved > 0 and extra > 0 else None,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of both modes (default: 2)")
    ap.add_argument("--batches", type=int, default=14, help="passes per workload (default: 14)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batches, args.threads)))
        return
    runs = []
    for r in range(args.rounds):
        for mode in MODES if r % 2 == 0 else MODES[::-1]:
            cmd = [sys.executable, __file__, "--child", mode, "--batches", str(args.batches)]
            cmd += ["--threads", str(args.threads)]
            # A fresh compile cache for every child: a user's first run compiles from cold.
            with tempfile.TemporaryDirectory() as cache:
                env = os.environ | {"TORCHINDUCTOR_CACHE_DIR": cache}
                done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            runs.append({"mode": mode, "passes": json.loads(done.stdout.splitlines()[-1])})
            print(mode, runs[-1]["passes"], flush=True)
    import torch

    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": args.threads,
        "setup": "SmolLM2-135M-Instruct, LoRA r16 q/v, bf16 autocast, batch 8, length ≤ 128, "
        "one forward+backward per pass; compiled: each decoder layer, dynamic shapes",
        "runs": runs,
        "summary": summary(runs),
    }
    RESULT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(record["summary"], indent=1))
    print(f"written: {RESULT}")


if __name__ == "__main__":
    main()
