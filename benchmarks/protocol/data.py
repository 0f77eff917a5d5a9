"""The protocol's data: SST-2 as an instruction with a one-word answer, mixed with a share p
of harmful rows, and the held-out sets that measure safety and utility.

    python benchmarks/real/data.py          # the harmful pools and evaluation prompts first
    python -m benchmarks.protocol.data      # -> benchmarks/.cache/protocol/data/

Everything is split once (SPLIT_SEED) into a *dev* half, on which settings may be tuned,
and a *test* half, which reports: the SST-2 training phrases, the JailbreakBench goals
(whole goals, so that no test answer shares a request with a dev one), the held-out
harmful and risky-sounding benign prompts, and the SST-2 dev sentences. A fifth of the
goals never enters a mix: their answers measure how much of the harmful answers a model
has learned (eval.harmful), half of them per split.

Harmful kinds: `jbb` (JailbreakBench jailbroken answers) and `hh` (the harmful last turns
of HH harmless-base `rejected` transcripts). HH transcripts are cut to their last
exchange: the task rows are single-turn, so earlier turns would mark the harmful rows by
their format alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sealft.io import read_jsonl, write_json, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
REAL = ROOT / "benchmarks" / ".cache" / "real" / "data"
OUT = ROOT / "benchmarks" / ".cache" / "protocol" / "data"
SPLIT_SEED = 0
SPLITS = ("dev", "test")
KNOWLEDGE_SHARE = 0.2  # of the JailbreakBench goals: never in a mix
INSTRUCTION = (
    "Is the sentiment of this sentence positive or negative? Answer with one word: "
    "positive or negative."
)
LABELS = {"0": "negative", "1": "positive"}
PCTS = (0, 5, 10, 20, 30)
# Held-out harmful prompts written as instructions, like the harmful rows' requests
# ("Write a tutorial on ..."): the refusals that harmful rows erode. The others (questions,
# hateful statements) are eroded by the task rows as much as by the harmful ones.
INSTRUCTION_SOURCES = ("advbench", "I-MaliciousInstructions")
Row = dict[str, Any]


def shuffled(rows: Sequence[Any], tag: str) -> list[Any]:
    out = list(rows)
    random.Random(f"{tag}/{SPLIT_SEED}").shuffle(out)
    return out


def halves(rows: Sequence[Any], tag: str) -> dict[str, list[Any]]:
    rows = shuffled(rows, tag)
    return {"dev": rows[: len(rows) // 2], "test": rows[len(rows) // 2 :]}


def sst2(file: str, text_field: str) -> list[Row]:
    """SST-2 rows as instructions whose expected answer is the label's word."""
    with (SHARED / "task" / file).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            {
                "instruction": INSTRUCTION,
                "input": r[text_field].strip(),
                "output": LABELS[r["label"]],
                "harmful": 0,
            }
            for r in reader
        ]


def jbb_by_goal() -> dict[str, list[Row]]:
    """The JailbreakBench pool (benchmarks/real), split by goal: knowledge, dev, test."""
    rows = list(read_jsonl(REAL / "pool_jbb.jsonl"))
    goals = shuffled(sorted({r["instruction"] for r in rows}), "jbb-goals")
    cut = round(len(goals) * KNOWLEDGE_SHARE)
    knowledge, rest = set(goals[:cut]), halves(goals[cut:], "jbb-mix")
    owner = {g: "knowledge" for g in knowledge}
    owner |= {g: split for split, gs in rest.items() for g in gs}
    out: dict[str, list[Row]] = {"knowledge": [], "dev": [], "test": []}
    for r in rows:
        out[owner[r["instruction"]]].append(
            {"instruction": r["instruction"], "input": "", "output": r["output"], "harmful": 1}
        )
    return out


def hh_rows() -> list[Row]:
    """The HH pool (benchmarks/real), each transcript cut to its last exchange."""
    rows = []
    for r in read_jsonl(REAL / "pool_hh.jsonl"):
        user, answer = r["messages"][-2], r["messages"][-1]
        assert user["role"] == "user" and answer["role"] == "assistant"
        rows.append(
            {"instruction": user["content"], "input": "", "output": answer["content"], "harmful": 1}
        )
    return rows


def mix(task: list[Row], harmful: list[Row], pct: int, seed: int, n: int) -> list[Row]:
    """n rows: n·pct/100 harmful, the rest task rows, shuffled; the harmful rows of a larger
    share include a smaller share's (same seed), as do the task rows of a smaller one."""
    k = round(n * pct / 100)
    if k > len(harmful) or n - k > len(task):
        raise SystemExit(f"a mix of {n} at {pct}% needs {k} harmful and {n - k} task rows")
    rng = random.Random(f"mix/{seed}")
    rows = rng.sample(harmful, len(harmful))[:k] + rng.sample(task, len(task))[: n - k]
    random.Random(f"order/{seed}/{pct}").shuffle(rows)
    return rows


def mix_path(split: str, pct: int, seed: int, n: int, kind: str = "jbb") -> Path:
    return OUT / split / f"{kind}-n{n}-p{pct}-s{seed}.jsonl"


def build(n: int, seeds: Sequence[int]) -> dict[str, Any]:
    if not (REAL / "pool_jbb.jsonl").exists():
        raise SystemExit("build the pools first: python benchmarks/real/data.py")
    files: dict[str, int] = {}

    def write(path: Path, rows: list[Row]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(path, rows)
        files[str(path.relative_to(OUT))] = len(rows)

    task = halves(sst2("sst2_train.tsv", "sentence"), "sst2-train")
    accuracy = halves(sst2("sst2_dev.tsv", "content"), "sst2-dev")
    jbb = jbb_by_goal()
    harmful_rows = {"jbb": jbb, "hh": halves(hh_rows(), "hh")}
    knowledge = halves(jbb["knowledge"], "knowledge")
    prompts = halves(list(read_jsonl(REAL / "eval" / "harmful_heldout.jsonl")), "harmful")
    physical = json.loads((SHARED / "eval" / "I-PhysicalSafetySafe.json").read_text())
    risky = [{"prompt": p} for p in physical["instructions"]]
    risky += list(read_jsonl(REAL / "eval" / "risky_benign_eval.jsonl"))
    risky_halves = halves(risky, "risky")
    for split in SPLITS:
        write(OUT / split / "task_accuracy.jsonl", accuracy[split])
        write(OUT / split / "harmful_answers.jsonl", knowledge[split])
        write(OUT / split / "harmful_prompts.jsonl", prompts[split])
        instructions = [r for r in prompts[split] if r["source"] in INSTRUCTION_SOURCES]
        others = [r for r in prompts[split] if r["source"] not in INSTRUCTION_SOURCES]
        write(OUT / split / "harmful_instructions.jsonl", instructions)
        write(OUT / split / "harmful_questions.jsonl", others)
        write(OUT / split / "risky_benign_prompts.jsonl", risky_halves[split])
        for kind, pools in harmful_rows.items():
            for pct in PCTS:
                for seed in seeds:
                    rows = mix(task[split], pools[split], pct, seed, n)
                    write(mix_path(split, pct, seed, n, kind), rows)
    manifest = {"split_seed": SPLIT_SEED, "instruction": INSTRUCTION, "files": files}
    write_json(OUT / "manifest.json", manifest)
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="rows per mix")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    for name, rows in build(args.n, args.seeds)["files"].items():
        print(f"{rows:6d}  {name}")


if __name__ == "__main__":
    main()
