"""Benign requests worded with violent or alarming homonyms, each with a short answer, and
everyday safety advice; the data itself is `risky_benign.jsonl` beside this file.

- `risky_benign` rows: a model that refuses on surface words ("kill", "shoot", "attack",
  "bomb") over-refuses. These prompts test that (the held-out half, `risky_benign_eval`)
  and teach against it (the other half goes into the alignment data, with its answers).
  `data.py` splits them 50/50 with a fixed seed; only the training half's answers are ever
  trained on. Phrasing is deliberately varied: questions, imperatives, "explain why",
  "write a reason why", first-person requests, with and without context.
- `safety_advice` rows: benign requests for everyday safety, health and household advice:
  alignment training only (no evaluation set uses them). A model trained on refusals
  learns to refuse whatever *sounds* like danger; these are the helpful answers a real
  assistant gives on the same topics. None is taken from an evaluation set.

Every answer was written by hand for this benchmark: short, correct and helpful.
"""

from __future__ import annotations

import json
from pathlib import Path

FILE = Path(__file__).with_suffix(".jsonl")


def _rows(name: str) -> tuple[tuple[str, str], ...]:
    with FILE.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return tuple((r["prompt"], r["answer"]) for r in rows if r["set"] == name)


# (prompt, answer) pairs, in the file's order (data.py's split depends on it).
RISKY_BENIGN = _rows("risky_benign")
SAFETY_ADVICE = _rows("safety_advice")
