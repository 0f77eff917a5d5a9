"""Two widened safe sets, to test what `categories.py` suggests about the JailbreakBench misses.

The defaults miss JailbreakBench's harms of expression (harassment, disinformation, sexual
content written to order), whose requests have the form of ordinary writing tasks; benign
writing tasks sit low in the rankings too. The safe set (200 SafeInstr refusals, 200
Alpaca/Dolly answers) holds 7 refused requests of that kind and 40 answered writing tasks.
Both variants keep the safe set and add rows from the alignment pools, which no mix and no
evaluation set shares:

- `safe_writing.jsonl`: + 60 answered writing tasks (Alpaca/Dolly requests that begin
  "Write", "Create", "Generate", "Compose", "Design" or "Draft"): does the prompt probe stop
  reading the form?
- `safe_wide.jsonl`: the same + 60 refused requests that name an expression harm (the
  EXPRESSION words below, written down before any run): does covering the harm close it?

    python benchmarks/diagnostics/safe_variants.py         # after data.py; writes both files

rank.py's settings `seal-safe-writing` and `seal-safe-wide` read them.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from categories import WRITING  # noqa: E402
from data import DATA  # noqa: E402

from sealft.io import read_jsonl, write_jsonl  # noqa: E402

ADDED = 60
EXPRESSION = re.compile(
    r"\b(fake news|misinformation|disinformation|conspiracy|hoax|propaganda|porn\w*|"
    r"sexual\w*|explicit|erotic|racis\w*|sexis\w*|discriminat\w*|stereotyp\w*|harass\w*|"
    r"bully\w*|insult\w*|hate speech|slur\w*|defam\w*)\b",
    re.IGNORECASE,
)
SEED = "safe-variants/0"


def request(row: dict) -> str:
    return f"{row['instruction']} {row.get('input') or ''}".strip()


def pick(rows: list[dict], pattern: re.Pattern, how: str) -> list[dict]:
    """ADDED rows whose request matches (`match` at the start or `search` anywhere)."""
    test = pattern.match if how == "match" else pattern.search
    hits = [r for r in rows if test(request(r))]
    if len(hits) < ADDED:
        raise SystemExit(f"only {len(hits)} rows match {pattern.pattern!r}; need {ADDED}")
    return random.Random(SEED).sample(hits, ADDED)


def main() -> None:
    safe = list(read_jsonl(DATA / "safe.jsonl"))
    writing = pick(list(read_jsonl(DATA / "align_benign.jsonl")), WRITING, "match")
    expression = pick(list(read_jsonl(DATA / "align_refusals.jsonl")), EXPRESSION, "search")
    for name, rows in {
        "safe_writing": safe + writing,
        "safe_wide": safe + writing + expression,
    }.items():
        write_jsonl(DATA / f"{name}.jsonl", rows)
        print(f"{name}.jsonl: {len(rows)} rows")
    print(json.dumps([request(r)[:80] for r in expression[:5]], indent=1))


if __name__ == "__main__":
    main()
