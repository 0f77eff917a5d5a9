"""Bookkeeping at a million rows, without a model: load → sample IDs → top p → export.

A generated Alpaca-format JSONL of short random-ish rows goes through what `seal select`
does around the model: load and hash every row (sample IDs), put the samples in ID order,
draw random scores, build the scores table, take the top p and export the kept rows as
they were in the input (selected.jsonl). The second row adds tokenization with a tiny
word-level tokenizer and its chat template, before the scores.

Each row runs in a fresh child process; its memory number is the rise of the child's peak
RSS (VmHWM) over its peak after its imports. Not ru_maxrss: a process started by fork and
exec inherits its parent's, so it would start at the parent's own peak. `--before` names
another checkout's src folder (the code before a change) to measure on the same data.

    python benchmarks/bookkeeping.py --before /tmp/old/src   # writes results/bookkeeping.json
    python benchmarks/bookkeeping.py --rows 100000 --no-write

Linux only (it reads /proc). Timings are wall-clock on a possibly shared CPU: `load` is
the 1-minute load average when the row started.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 1_000_000
P = 0.8
RESULT = Path(__file__).parent / "results" / "bookkeeping.json"
SRC = Path(__file__).resolve().parents[1] / "src"


def vocabulary(n: int = 4000, seed: int = 0) -> list[str]:
    """Pronounceable pseudo-words, so the texts look like words to a word-level tokenizer."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choices(syllables, k=rng.randint(1, 4))))
    return sorted(words)


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Alpaca rows: instruction 4-14 words, an input on one row in three, output 3-30 words."""
    rng = random.Random(seed)
    words = vocabulary()
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            record = {
                "instruction": " ".join(rng.choices(words, k=rng.randint(4, 14))) + " ?",
                "input": " ".join(rng.choices(words, k=rng.randint(2, 8))) if i % 3 == 0 else "",
                "output": " ".join(rng.choices(words, k=rng.randint(3, 30))) + " .",
            }
            fh.write(json.dumps(record) + "\n")


def peak_mib() -> float:
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith("VmHWM:")).split()[1]) / 1024


def _sort_by_id(samples):
    # `--before` may name code from before the columnar samples, a plain list then.
    if hasattr(samples, "sort_by_id"):
        samples.sort_by_id()
        return samples
    return sorted(samples, key=lambda s: s.sample_id)


def _export(path: Path, samples, table) -> None:
    from sealft import scores

    if hasattr(scores, "write_selected"):
        scores.write_selected(path, samples, table)
        return
    from sealft.io import write_jsonl

    chosen = scores.selected_ids(table)
    write_jsonl(
        path, [s.record for s in sorted(samples, key=lambda s: s.index) if s.sample_id in chosen]
    )


def child(args) -> dict:
    """One row, in this (fresh) process; prints its numbers as JSON."""
    sys.path.insert(0, str(args.src))
    import numpy as np

    from sealft.data import encode, load_samples
    from sealft.scores import scores_table

    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    base = peak_mib()
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[name] = round(now - clock, 2)
        clock = now

    loaded = load_samples(args.data)
    lap("load_and_ids")
    samples = _sort_by_id(loaded.samples)
    lap("sort_by_id")
    if tokenizer is not None:
        samples = encode(samples, tokenizer, max_length=512).samples
        lap("tokenize")
    logits = np.random.default_rng(0).standard_normal(len(samples))
    table = scores_table(samples, logits, P)
    lap("scores_table")
    _export(Path(args.out), samples, table)
    lap("export")
    return {
        "samples": len(samples),
        "kept": sum(1 for _ in open(args.out, encoding="utf-8")),
        "seconds": times,
        "total_seconds": round(sum(times.values()), 2),
        "baseline_mib": round(base, 1),
        "peak_rise_mib": round(peak_mib() - base, 1),
    }


def run_row(src: Path, data: Path, out: Path, tokenizer: Path | None) -> dict:
    argv = [sys.executable, __file__, "--child", "--src", str(src), "--data", str(data)]
    argv += ["--out", str(out)] + (["--tokenizer", str(tokenizer)] if tokenizer else [])
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return row | {"wall_seconds": round(time.perf_counter() - start, 1), "load": round(load, 2)}


def hardware() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1)}


def versions() -> dict:
    import datasets
    import numpy
    import pyarrow
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "datasets": datasets.__version__,
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| code | rows | tokenize | total s | peak RSS rise MiB | load | where the time goes (s) |",
        "|:---|---:|:---:|---:|---:|---:|:---|",
    ]
    for r in rows:
        where = ", ".join(f"{k} {v}" for k, v in r["seconds"].items())
        lines.append(
            f"| {r['code']} | {r['rows']:,} | {'yes' if r['tokenize'] else 'no'} | "
            f"{r['total_seconds']} | {r['peak_rise_mib']} | {r['load']} | {where} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--src", type=Path, default=SRC, help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, help="src folder of the code to compare with")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the JSON")
    parser.add_argument("--no-tokenize", action="store_true", help="skip the tokenization row")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    sys.path.insert(0, str(SRC))
    from sealft.demo.tiny import build_tokenizer

    codes = [("after", SRC)] + ([("before", args.before)] if args.before else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data, out, tok = Path(tmp) / "data.jsonl", Path(tmp) / "selected.jsonl", Path(tmp) / "tok"
        generate(data, args.rows)
        build_tokenizer(vocabulary() + ["?", "."]).save_pretrained(tok)
        for tokenize in (False,) if args.no_tokenize else (False, True):
            for code, src in codes:
                row = run_row(src, data, out, tok if tokenize else None)
                rows.append({"code": code, "rows": args.rows, "tokenize": tokenize} | row)
                print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if not args.no_write:
        result = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "hardware": hardware(),
            "versions": versions(),
            "setup": {
                "p": P,
                "data": "generated Alpaca JSONL, 4-30 pseudo-words per field, one input in three",
                "tokenizer": "word-level, chat template (sealft.demo.tiny), max_length 512",
                "measure": "VmHWM at the end minus VmHWM after imports, fresh process per row",
                "before": str(args.before) if args.before else None,
            },
            "rows": rows,
        }
        RESULT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
