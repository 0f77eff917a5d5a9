"""The HH ranking scores again, against a hand audit of which "harmful" HH rows are harmful.

The HH kind labels every `rejected` last turn of HH harmless-base harmful, but `rejected`
only means less harmless than the other answer: many are clarifying questions or
politeness. `hh_audit.json` holds one reader's label for each harmful-labelled row of the
quick HH mixes (5, 10 and 20% harmful; seeds 0, 1, 2). This script scores each ranker
three ways on every such mix that `rank.py` has ranked: against the mix's labels (as
`rank.py`), against the audited harmful rows only (the audited-harmless ones left out),
and the audited-harmless rows alone against the benign rows (how a ranker treats text
that is labelled harmful but is not).

    python benchmarks/diagnostics/audit.py        # after rank.py --quick; recomputes missing tables

Results go to `real.json` under `hh_audit` (keys as `rank.py`'s: ranker/hh/pct/seed), and a
Markdown table per harmful share is printed.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import PCTS, hh_pool, mix_path  # noqa: E402
from rank import (
    HERE,
    PS,
    RESULTS,
    SELECTORS,
    Models,
    rank,
    ranked_rows,
    table_path,
    update_results,
)
from sklearn.metrics import roc_auc_score  # noqa: E402

from sealft.scores import n_keep  # noqa: E402

RANKERS = (
    "random",
    "dsir",
    "frozen-loss",
    "implicit-reward",
    "seal-blend",
    "seal-default",
    "seal-1-epoch-probe",
)
SEEDS = (0, 1, 2)


def audited_labels() -> dict[str, int]:
    """The audit's label per HH transcript (its messages as JSON)."""
    rows = json.loads((HERE / "hh_audit.json").read_text())["rows"]
    audit = {r["hh_line"]: r["harmful"] for r in rows}
    pool = hh_pool()
    return {json.dumps(r["messages"]): audit[r["hh_line"]] for r in pool if r["hh_line"] in audit}


def row_class(row: dict, audit: dict[str, int]) -> str:
    """benign, harmful (audited) or harmless (labelled harmful, audited harmless)."""
    if not row["harmful"]:
        return "benign"
    return "harmful" if audit[json.dumps(row["messages"])] else "harmless"


def scored_rows(name: str, mix, seed: int, models) -> list[tuple[dict, dict]]:
    """(mix row, scores row) of a ranker, computing its table first if it is not cached."""
    if not table_path(name, mix).exists():
        rank(name, mix, seed, models)
    return ranked_rows(name, mix)


def measure(pairs: list[tuple[dict, dict]], audit: dict[str, int]) -> dict:
    classes = [row_class(row, audit) for row, _ in pairs]
    logits = [r["score"] for _, r in pairs]

    def auroc(positive: str) -> float:
        idx = [i for i, c in enumerate(classes) if c in ("benign", positive)]
        y = [int(classes[i] == positive) for i in idx]
        return round(float(roc_auc_score(y, [-logits[i] for i in idx])), 4)

    keep = {p: n_keep(len(pairs), p) for p in PS}
    harmful = [r["rank"] for (_, r), c in zip(pairs, classes, strict=True) if c == "harmful"]
    out = {"auroc_audited": auroc("harmful"), "auroc_harmless_rows": auroc("harmless")}
    for p in PS:
        out[f"kept@{p}"] = sum(rank <= keep[p] for rank in harmful)
    out["harmful"] = len(harmful)
    out["harmless"] = classes.count("harmless")
    return out


def main() -> None:
    saved = json.loads(RESULTS.read_text())
    grid = saved["ranking"]["quick"]
    out = saved.setdefault("hh_audit", {})
    models, audit = Models(), audited_labels()
    for pct in PCTS:
        for seed in SEEDS:
            mix = mix_path("hh", pct, seed, quick=True)
            for name in RANKERS:
                key = f"{name}/hh/{pct}/{seed}"
                if key not in grid or (name in SELECTORS and not table_path(name, mix).exists()):
                    continue  # ranking a mix is rank.py's job (minutes for a selector)
                cell = measure(scored_rows(name, mix, seed, models), audit)
                out[key] = cell | {"auroc_labels": grid[key]["auroc"]}
    update_results(lambda s: s.update({"hh_audit": out}))
    for pct in PCTS:
        print(f"\n{pct}% harmful\n\n" + table(out, pct))


def table(out: dict, pct: int) -> str:
    lines = [
        "| ranker | seeds | AUROC, mix labels | AUROC, audited harmful "
        "| AUROC, audited harmless | audited harmful kept@0.8 |",
        "|---|---|---|---|---|---|",
    ]
    for name in RANKERS:
        cells = [v for k, v in out.items() if k.startswith(f"{name}/hh/{pct}/")]
        if not cells:
            continue

        def ms(metric: str, digits: int = 3, cells=cells) -> str:
            xs = [c[metric] for c in cells]
            sd = f" ± {statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else ""
            return f"{statistics.fmean(xs):.{digits}f}{sd}"

        kept = ms("kept@0.8", 1) + " of " + ms("harmful", 1)
        lines.append(
            f"| {name} | {len(cells)} | {ms('auroc_labels')} | {ms('auroc_audited')} | "
            f"{ms('auroc_harmless_rows')} | {kept} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
