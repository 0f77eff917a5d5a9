"""The fine-tune grid of the real-data benchmark, run through `seal run`.

At 10% harmful and p = 0.8, on every harmful kind and seed: full, random, frozen-loss,
implicit-reward, seal (sealft's defaults), seal+safeinstr, and seal with the paper's
settings; each fine-tuned model is evaluated on the held-out prompt sets built by
`data.py` (refusal on harmful prompts, over-refusal on benign ones, held-out loss). A
p sweep (0.7, 0.8, 0.9) runs on the self-generated kind.

    python benchmarks/real/finetune.py --quick     # self-generated kind, N = 200, seed 0:
                                                   # full, seal, seal+safeinstr
    python benchmarks/real/finetune.py --quick --kinds self jbb --seeds 0 1 2 \
        --methods full frozen-loss implicit-reward seal safeinstr seal+safeinstr
    python benchmarks/real/finetune.py             # the whole grid (many hours; resumable)
    python benchmarks/real/finetune.py --quick --summary   # mean ± std over the seeds
    python benchmarks/real/finetune.py --quick --paired    # SEAL − random, ... by seed

`seal run` caches every step, so a stopped grid resumes where it stopped; runs that
real.json already holds are skipped even where their folders are gone (a new machine),
unless --redo.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import NamedTuple

from data import CACHE, DATA, KINDS, PCTS, SEEDS, eval_sets, mix_path, smollm_gguf
from rank import ALIGNED, RESULTS, SELECTORS, cell, stat, update_results

from sealft.config import ExperimentRecipeConfig
from sealft.io import read_jsonl
from sealft.recipes.experiment import run_experiment
from sealft.selection.rankers import SELECTING

# `safeinstr` (every row plus the demonstrations) is seal+safeinstr's control: what the
# demonstrations do without the selection. `oracle` (a random 80% of the benign rows, from
# the labels) is the ceiling of any selection: what the benign rows alone cost in safety.
METHODS = [
    "full",
    "random",
    "frozen-loss",
    "implicit-reward",
    "seal",
    "safeinstr",
    "seal+safeinstr",
    "oracle",
]
# --quick's headline: does the selection protect, alone and with demonstrations? The
# controls (frozen-loss, implicit-reward, safeinstr) join with --methods; their steps are
# cached like the rest, so adding them later redoes nothing.
QUICK_METHODS = ["full", "seal", "seal+safeinstr"]
# Each experiment's SEAL settings (a key of rank.SELECTORS), one folder per experiment.
# "seal-default" is the grid's first SEAL, the defaults its cells were measured with (the
# implicit-reward start and blend, before the prompt probe), pinned so that re-running a cell
# cannot mix two settings in one cell; "seal-probe" is today's defaults, the probe on.
EXPERIMENTS = {
    "seal-default": "seal-blend",
    "seal-probe": "seal-default",
    "seal-paper": "seal-paper",
}
# The order runs are listed in: the aligned model before fine-tuning first.
ORDER = ["aligned", *METHODS]
# The grid's share of harmful rows; --pcts adds 5% or 20% cells, where a perfect ranking's
# advantage over a random p = 0.8 (which keeps 80% of the harmful rows) is smaller or larger.
PCT = 10
# The held-out harmful prompts (1,140, shuffled across their sources) cost most of an
# evaluation: the full grid answers 400 of them (plus 100 physical-unsafe ones), --quick
# the first prompts of each set only.
LIMIT = {"harmful_heldout": 400}
QUICK_LIMIT = {"harmful": 100, "benign": 40}


def prompt_sets(quick: bool) -> list[dict]:
    sets = []
    for name, (path, kind) in eval_sets().items():
        limit = QUICK_LIMIT[kind] if quick else LIMIT.get(name)
        sets.append({"path": str(path), "kind": kind, "name": name, "limit": limit})
    return sets


def experiment(
    kind: str, pct: int, seed: int, quick: bool, name: str, methods, p
) -> ExperimentRecipeConfig:
    size = "quick" if quick else "full"
    tree = {
        "model": {"name_or_path": str(ALIGNED)},
        "reference_model": {"name_or_path": smollm_gguf()},
        "data": {"path": str(mix_path(kind, pct, seed, quick))},
        "safe": {"path": str(DATA / "safe.jsonl")},
        "tokenize": {"max_length": 256},
        "sft": {"lr": 3e-4, "epochs": 2, "batch_size": 8},
        "methods": methods,
        "p": p,
        "seeds": [seed],
        "safeinstr": {"data": {"path": str(DATA / "align_refusals.jsonl")}, "count": 50},
        "eval": {
            "prompt_sets": prompt_sets(quick),
            "benign": {"path": str(DATA / "heldout_benign.jsonl"), "limit": 100},
            # The refusal verdicts are settled by the first tokens: cut to 8-32 tokens, at
            # most 1 of 320 verdicts of any model changed (answer_length.py), so 32 new
            # tokens measure what 64 did at about half the generation time.
            "generation": {"max_new_tokens": 32, "batch_size": 32},
        },
        "labels": {"field": "harmful", "harmful": [1]},
        "output_dir": str(CACHE / "finetune" / size / f"{kind}-{pct:02d}-s{seed}" / name),
        **SELECTORS[EXPERIMENTS[name]],
    }
    return ExperimentRecipeConfig.model_validate(tree)


def runs(
    quick: bool,
    kinds: list[str] | None = None,
    seeds: list[int] | None = None,
    methods: list[str] | None = None,
    pcts: list[int] | None = None,
    name: str = "seal-default",
    ps: list[float] | None = None,
) -> list[tuple[str, int, int, str, list[str], list[float]]]:
    """(kind, pct, seed, name, methods, p) of every experiment in the grid.

    --quick is one cell (the self-generated kind, 10%, seed 0) at p = 0.8 unless kinds,
    seeds, pcts or ps widen it; `name` picks the SEAL settings (EXPERIMENTS)."""
    if quick:
        return [
            (kind, pct, seed, name, methods or QUICK_METHODS, ps or [0.8])
            for kind in kinds or ["self"]
            for pct in pcts or [PCT]
            for seed in seeds or [0]
        ]
    out = []
    for kind in kinds or KINDS:
        for pct in pcts or [PCT]:
            for seed in seeds or SEEDS:
                p = ps or ([0.7, 0.8, 0.9] if kind == "self" and pct == PCT else [0.8])
                out.append((kind, pct, seed, name, methods or METHODS, p))
                if name != "seal-paper" and (methods is None or "seal" in methods):
                    out.append((kind, pct, seed, "seal-paper", ["seal"], [0.8]))
    return out


def missing(entry: dict, methods: list[str], ps: list[float]) -> list[str]:
    """The methods of one cell that real.json does not hold at every p yet.

    The run folders are a cache that a new machine does not have; the results are not, so
    a grid that goes on across sittings skips what an earlier sitting measured instead of
    fine-tuning it again."""
    done = {(r["method"], r["p"]) for r in entry.get("runs", [])}
    wanted = {m: [p if m in SELECTING else None for p in ps] for m in methods}
    return [m for m, want in wanted.items() if any((m, p) not in done for p in want)]


def run_rows(results: dict, mix: Path) -> list[dict]:
    """Each run of one experiment: its metrics, the refusal rate on each prompt set and
    how many harmful rows it trained on (the mix's label, which no method sees)."""
    harmful = [json.loads(line)["harmful"] for line in mix.read_text().splitlines()]
    rows = []
    for run in results["runs"]:
        trained = Path(run["run_dir"]) / "trained.jsonl"
        # The mix's rows only: `extra` rows (safety demonstrations) index their own file.
        rows_trained = read_jsonl(trained) if trained.exists() else []
        indices = [r["index"] for r in rows_trained if r["source"] == "data"]
        rows.append(
            {
                "method": run["method"],
                "p": run["p"],
                "seed": run["seed"],
                "metrics": run["metrics"],
                "sets": run["prompt_sets"],
                "harmful_trained": sum(harmful[i] for i in indices),
            }
        )
    return rows


def table(grid: dict) -> str:
    """One row per (experiment, method, p): refusal, over-refusal (and per set), benign loss."""
    sets = list(eval_sets())
    lines = [
        "| mix | method | p | harmful trained | refusal ↑ | over-refusal ↓ | "
        + " | ".join(sets)
        + " | benign loss |",
        "|---|---|---|---|---|---|" + "---|" * len(sets) + "---|",
    ]
    for key, entry in grid.items():
        for r in entry.get("runs", []):
            m = r["metrics"]
            per_set = " | ".join(f"{100 * r['sets'][s]:.0f}" for s in sets)
            lines.append(
                f"| {key} | {r['method']} | {r['p'] or '–'} | {r['harmful_trained']} | "
                f"{100 * m['refusal_rate']:.1f} | {100 * m['over_refusal_rate']:.1f} | "
                f"{per_set} | {m['benign_loss']:.3f} |"
            )
    return "\n".join(lines)


def merged(old: list[dict], new: list[dict]) -> list[dict]:
    """One experiment's runs: the new ones, and the old ones of methods not run this time."""
    done = {(r["method"], r["p"], r["seed"]) for r in new}
    runs = [r for r in old if (r["method"], r["p"], r["seed"]) not in done] + new
    return sorted(runs, key=lambda r: (ORDER.index(r["method"]), r["p"] or 0))


def group_order(item: tuple) -> tuple:
    """Kinds in the order first measured, then pct, the experiment and the method order."""
    (kind, pct, name, method, p), _ = item
    return (KINDS.index(kind), int(pct), name, ORDER.index(method), p or 0)


def summary_table(grid: dict) -> str:
    """Mean ± std over the seeds, per (kind, experiment, method, p)."""
    groups: dict[tuple, list[dict]] = {}
    for key, entry in grid.items():
        kind, pct, _, name = key.split("/")
        for r in entry.get("runs", []):
            # a1 is evaluated again in each experiment's folder, to the same numbers.
            if r["method"] == "aligned" and name != "seal-default":
                continue
            groups.setdefault((kind, pct, name, r["method"], r["p"]), []).append(r)
    lines = [
        "| mix | harmful | method | p | seeds | harmful trained | refusal ↑ | over-refusal ↓ "
        "| benign loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (kind, pct, name, method, p), rs in sorted(groups.items(), key=group_order):
        cols = [
            [r["harmful_trained"] for r in rs],
            [100 * r["metrics"]["refusal_rate"] for r in rs],
            [100 * r["metrics"]["over_refusal_rate"] for r in rs],
        ]
        cells = " | ".join(cell(stat(v), 1) for v in cols)
        loss = cell(stat([r["metrics"]["benign_loss"] for r in rs]), 3)
        label = method if name == "seal-default" else f"{method} ({name})"
        lines.append(f"| {kind} | {pct}% | {label} | {p or '–'} | {len(rs)} | {cells} | {loss} |")
    return "\n".join(lines)


# The methods whose runs depend on an experiment's SEAL settings.
SETTING_DEPENDENT = ("seal", "seal+safeinstr")


class Arm(NamedTuple):
    """One side of a comparison: a method, and for SETTING_DEPENDENT methods the experiment
    (SEAL settings) that ran it; the other methods do not depend on the settings."""

    method: str
    settings: str | None = None

    def __str__(self) -> str:
        return f"{self.method} ({self.settings})" if self.settings else self.method


# The comparisons of --paired (A minus B in refusal points, the same mix and seed; A is a
# method under each settings it ran with): what SEAL buys over keeping rows at random and
# over training on all, how far it is from the ceiling, and what other settings buy over
# the paper's; the ceiling's own margin over random bounds what any selection can buy.
COMPARISONS = [
    ("seal", Arm("random")),
    ("seal", Arm("full")),
    ("seal", Arm("oracle")),
    ("seal", Arm("seal", "seal-paper")),
    ("oracle", Arm("random")),
]


def runs_by_seed(grid: dict, p: float = 0.8) -> dict[tuple, dict[Arm, dict]]:
    """(kind, pct, seed) → each arm's run at p (every p for the methods that keep all
    rows). A control that two experiments both ran counts once, whichever ran it."""
    out: dict[tuple, dict[Arm, dict]] = {}
    for key, entry in grid.items():
        kind, pct, seed, name = key.split("/")
        here = out.setdefault((kind, int(pct), int(seed)), {})
        for r in entry.get("runs", []):
            if r["p"] not in (None, p) or r["method"] == "aligned":
                continue
            settings = name if r["method"] in SETTING_DEPENDENT else None
            here.setdefault(Arm(r["method"], settings), r)
    return out


def refusals_by_seed(grid: dict, p: float = 0.8) -> dict[tuple, dict[Arm, float]]:
    """`runs_by_seed`'s refusal rates, in %."""
    return {
        cell: {arm: 100 * r["metrics"]["refusal_rate"] for arm, r in runs.items()}
        for cell, runs in runs_by_seed(grid, p).items()
    }


def mean_interval(xs: list[float]) -> tuple[float, tuple[float, float] | None]:
    """The mean and its 95% t-interval (None under three values: too few to say)."""
    from scipy import stats

    s = stat(xs)
    if s["n"] < 3:
        return s["mean"], None
    half = stats.t.ppf(0.975, s["n"] - 1) * s["std"] / s["n"] ** 0.5
    return s["mean"], (s["mean"] - half, s["mean"] + half)


def paired(grid: dict) -> list[dict]:
    """Each comparison of COMPARISONS, A − B in refusal points paired by seed: per mix
    ("kind" one of KINDS) and pooled over every mix of a harmful share ("kind" "all")."""
    by_seed = refusals_by_seed(grid)
    rows, pooled = [], {}
    mixes = sorted({(k, pct) for k, pct, _ in by_seed}, key=lambda m: (KINDS.index(m[0]), m[1]))
    for kind, pct in mixes:
        found = [by_seed[c] for c in sorted(by_seed) if c[:2] == (kind, pct)]
        arms = {arm for r in found for arm in r}
        for order, (a, b) in enumerate(COMPARISONS):
            for arm in sorted(x for x in arms if x.method == a and x != b):
                diffs = [r[arm] - r[b] for r in found if arm in r and b in r]
                if diffs:
                    row = {"kind": kind, "pct": pct, "a": arm, "b": b, "diffs": diffs}
                    rows.append(row)
                    pooled.setdefault((pct, order, arm, b), []).extend(diffs)
    for (pct, _, arm, b), diffs in sorted(pooled.items()):
        rows.append({"kind": "all", "pct": pct, "a": arm, "b": b, "diffs": diffs})
    return rows


def paired_table(grid: dict) -> str:
    """`paired` as Markdown: the differences, their mean, its 95% t-interval and how many
    are above zero."""
    lines = [
        "| mix | harmful | A − B (refusal points) | pairs | per seed | mean | 95% CI | A ahead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in paired(grid):
        diffs = row["diffs"]
        mean, ci = mean_interval(diffs)
        shown = f"[{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "–"
        each = ", ".join(f"{d:+.1f}" for d in diffs)
        lines.append(
            f"| {row['kind']} | {row['pct']}% | {row['a']} − {row['b']} | {len(diffs)} | {each} | "
            f"{mean:+.1f} | {shown} | {sum(d > 0 for d in diffs)} |"
        )
    return "\n".join(lines)


def record(size: str, key: str, entry: dict) -> None:
    def add(saved: dict) -> None:
        grid = saved.setdefault("finetune", {}).setdefault(size, {})
        # A cell's other fields (a `note` on its timing) outlive a run that adds methods.
        old = grid.get(key, {})
        grid[key] = old | entry | {"runs": merged(old.get("runs", []), entry["runs"])}

    update_results(add)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one small experiment (about 30 min)")
    ap.add_argument("--table", action="store_true", help="print the measured runs as Markdown")
    ap.add_argument(
        "--summary", action="store_true", help="print mean ± std over the seeds as Markdown"
    )
    ap.add_argument(
        "--paired",
        action="store_true",
        help="print SEAL against random, full and the oracle (and the oracle against random), "
        "paired by seed, per mix and pooled, as Markdown",
    )
    ap.add_argument("--methods", nargs="+", choices=METHODS, help="methods (default: the size's)")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, help="harmful kinds (default: all)")
    ap.add_argument("--seeds", nargs="+", type=int, choices=SEEDS, help="seeds (default: all)")
    ap.add_argument(
        "--pcts", nargs="+", type=int, choices=PCTS, help=f"harmful share in %% (default: {PCT})"
    )
    ap.add_argument(
        "--experiment",
        choices=EXPERIMENTS,
        default="seal-default",
        help="the SEAL settings of seal and seal+safeinstr: seal-default (pinned before the "
        "prompt probe), seal-probe (today's defaults), seal-paper",
    )
    ap.add_argument(
        "--ps",
        nargs="+",
        type=float,
        choices=(0.7, 0.8, 0.9),
        help="kept shares (default: 0.8; the full grid sweeps 0.7, 0.8, 0.9 on the self kind)",
    )
    ap.add_argument(
        "--redo",
        action="store_true",
        help=f"run every method again, even those whose results {RESULTS.name} holds",
    )
    args = ap.parse_args()
    size = "quick" if args.quick else "full"
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    grid = saved.setdefault("finetune", {}).setdefault(size, {})
    if args.table or args.summary or args.paired:
        shown = table if args.table else summary_table if args.summary else paired_table
        print(shown(grid))
        return
    cells = runs(
        args.quick, args.kinds, args.seeds, args.methods, args.pcts, args.experiment, args.ps
    )
    for kind, pct, seed, name, methods, p in cells:
        key = f"{kind}/{pct}/{seed}/{name}"
        if not args.redo:
            methods = missing(grid.get(key, {}), methods, p)
            if not methods:
                print(f"{key}: every run already in {RESULTS.name}", flush=True)
                continue
        start = time.time()
        results = run_experiment(experiment(kind, pct, seed, args.quick, name, methods, p))
        # A re-run takes the finished steps from the cache: the seconds spent on them
        # were counted by the run that did them.
        spent = grid.get(key, {}).get("seconds", 0) + round(time.time() - start)
        grid[key] = {
            "runs": run_rows(results, mix_path(kind, pct, seed, args.quick)),
            "seconds": spent,
        }
        record(size, key, grid[key])
        print(f"{kind} {pct}% seed {seed} {name}: {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
