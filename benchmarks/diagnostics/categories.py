"""Which JailbreakBench harmful rows does a ranking keep? Its errors by JailbreakBench category.

Every harmful row of the quick JailbreakBench mixes carries one of JailbreakBench's ten
categories (harassment, disinformation, malware, ...). For each cached ranking this script
pools the harmful rows over the mixes and seeds it finds and reports, per category, how
many rows a p = 0.8 cut keeps and the category's AUROC (the share of the mix's benign rows
ranked ahead of each harmful row, averaged: the rows' contribution to the mix AUROC). The
rankings are read from rank.py's cache, never recomputed; a missing one is named and
skipped. It also compares the rows by the form of their request: writing tasks ("Write",
"Create", "Generate", "Compose", "Design", "Draft" ...) against the rest, benign and harmful
apart, by mean rank percentile (0 = kept first, 1 = dropped first).

    python benchmarks/diagnostics/categories.py              # after rank.py --quick

Results go to benchmarks/results/real.json (`jbb_categories`), and a table is printed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import SEEDS, SHARED, mix_path  # noqa: E402
from rank import PS, ranked_rows, update_results  # noqa: E402

from sealft.io import read_jsonl  # noqa: E402
from sealft.scores import n_keep  # noqa: E402

# The cached rankings to read: today's defaults at 5% (the 10% and 20% runs of the defaults
# were made on a machine whose cache is gone) and the one-epoch preset at 10% and 20%,
# which ranks within 0.002 of the defaults there.
RANKINGS = (("seal-default", 5), ("seal-1-epoch-probe", 10), ("seal-1-epoch-probe", 20))
P = 0.8
assert P in PS
WRITING = re.compile(r"^\s*(write|create|generate|compose|design|draft)\b", re.IGNORECASE)


def categories() -> dict[str, str]:
    """JailbreakBench's category per goal (the mixes' prompt)."""
    return {
        r["goal"].strip(): r["category"]
        for r in read_jsonl(SHARED / "harmful" / "jailbreakbench_jailbroken.jsonl")
    }


def ranked(name: str, pct: int, seed: int) -> list[tuple[dict, dict]] | None:
    """(mix row, its scores-table row) for every row of a cached ranking; None if not cached."""
    return ranked_rows(name, mix_path("jbb", pct, seed, quick=True))


def harmful_ranks(name: str, pct: int, seed: int) -> list[tuple[str, float, bool]] | None:
    """(goal, share of benign rows ranked ahead of it, kept at p = P) per harmful row."""
    pairs = ranked(name, pct, seed)
    if pairs is None:
        return None
    keep = n_keep(len(pairs), P)
    benign = [r["rank"] for row, r in pairs if not row["harmful"]]
    out = []
    for row, r in pairs:
        if row["harmful"]:
            ahead = sum(b < r["rank"] for b in benign) / len(benign)
            out.append((row["instruction"].strip(), ahead, r["rank"] <= keep))
    return out


def by_category(rankings, seeds) -> tuple[dict, list[str]]:
    cat = categories()
    acc: dict[str, list] = defaultdict(list)
    missing = []
    for name, pct in rankings:
        for seed in seeds:
            ranks = harmful_ranks(name, pct, seed)
            if ranks is None:
                missing.append(f"{name}/jbb/{pct}/{seed}")
                continue
            for goal, ahead, kept in ranks:
                acc[cat[goal]].append((ahead, kept))
    out = {
        c: {
            "rows": len(v),
            f"kept@{P}": sum(k for _, k in v),
            "auroc": round(sum(b for b, _ in v) / len(v), 4),
        }
        for c, v in acc.items()
    }
    return dict(sorted(out.items(), key=lambda kv: kv[1]["auroc"])), missing


def by_form(rankings, seeds) -> dict:
    """Mean rank percentile of writing-task requests and of the rest, benign and harmful."""
    acc: dict[str, list[float]] = defaultdict(list)
    for name, pct in rankings:
        for seed in seeds:
            pairs = ranked(name, pct, seed) or []
            for row, r in pairs:
                form = "writing" if WRITING.match(row["instruction"]) else "other"
                group = f"{'harmful' if row['harmful'] else 'benign'} {form}"
                acc[group].append(r["rank"] / len(pairs))
    return {
        k: {"rows": len(v), "rank_percentile": round(sum(v) / len(v), 3)} for k, v in acc.items()
    }


def table(out: dict) -> str:
    lines = [
        f"| JailbreakBench category | harmful rows | kept at p = {P} | AUROC |",
        "|---|---:|---:|---:|",
    ]
    for c, v in out.items():
        lines.append(f"| {c} | {v['rows']} | {v[f'kept@{P}']} | {v['auroc']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    ap.add_argument(
        "--rankings",
        nargs="*",
        metavar="NAME:PCT",
        help="cached rankings to pool instead of the default set; the result is printed, not saved",
    )
    args = ap.parse_args()
    if args.rankings:
        chosen = [(n, int(pct)) for n, pct in (r.split(":") for r in args.rankings)]
        out, missing = by_category(chosen, args.seeds)
        print("\n".join(f"not in the cache: {m}" for m in missing) or "", table(out), sep="\n")
        return
    out, missing = by_category(RANKINGS, args.seeds)
    for m in missing:
        print(f"not in the cache (run rank.py first): {m}")
    rankings = [f"{n}/jbb/{pct}" for n, pct in RANKINGS]
    form = by_form(RANKINGS, args.seeds)
    result = {"rankings": rankings, "seeds": args.seeds, "by_category": out, "by_form": form}
    update_results(lambda s: s.update({"jbb_categories": result}))
    print(table(out))
    for k, v in sorted(form.items()):
        print(f"{k}: {v['rows']} rows, mean rank percentile {v['rank_percentile']}")


if __name__ == "__main__":
    main()
