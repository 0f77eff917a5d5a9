"""The ranking grid of the real-data benchmark: how well does each ranker put the harmful
rows last, before any fine-tuning?

For every mix (harmful kind × harmful fraction × seed, built by `data.py`) and every
ranker, the AUROC of ranking the harmful rows last and the number of harmful rows kept at
p = 0.7, 0.8 and 0.9. The label column of a mix (`harmful`) is read here only; no ranker
sees it.

    python benchmarks/real/rank.py --quick            # N = 200, seed 0, the cheap rankers + default
    python benchmarks/real/rank.py                    # the whole grid (hours; resumable)
    python benchmarks/real/rank.py --only seal-default --kinds self --pcts 10

Every (ranker, mix) result is cached under benchmarks/.cache/real/rank/; a re-run skips it.
A SEAL ranker whose exact selection finetune.py already ran (its experiments' selection
step) reads that selection's scores instead of training the selector again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import yaml
from data import CACHE, DATA, KINDS, PCTS, SEEDS, mix_path, smollm_gguf
from sklearn.metrics import roc_auc_score

from sealft.config import ExperimentRecipeConfig, SelectRecipeConfig, dump_config
from sealft.data import encode_configured, load_sources
from sealft.io import write_json, write_parquet
from sealft.model.load import device_for, load_configured, load_model_and_tokenizer
from sealft.recipes.select import DONE as SELECT_DONE
from sealft.recipes.select import run_select
from sealft.scores import n_keep, read_scores, scores_table
from sealft.selection.features import ngram_features
from sealft.selection.rankers import RANKERS, RankInputs
from sealft.selection.score import Signals, compose, plan_for

HERE = Path(__file__).resolve().parent
ALIGNED = CACHE / "aligned"
RESULTS = HERE.parent / "results" / "real.json"
PS = (0.7, 0.8, 0.9)
MAX_LENGTH = 256
# The selector settings compared. "default" is sealft's defaults, whatever they are when
# the grid runs; the others pin their settings so that a change of defaults cannot
# redefine them.
# Every setting measured before the prompt probe existed pins it off (OFF), so that its
# results stay what they were measured as.
OFF = {"prompt_probe": {"weight": 0}}
SELECTORS = {
    # With the reference model at hand (selector.init=auto starts from the implicit reward;
    # the prompt probe on since 2026-12-01).
    "seal-default": {},
    # The defaults until 2026-12-01: the implicit-reward start and blend, no prompt probe.
    "seal-blend": {"selector": OFF},
    # The same without smoothing.
    "seal-raw": {"selector": {"smoothing": "none", **OFF}},
    # sealft's defaults before this benchmark: logits from zeros, no smoothing.
    "seal-zeros": {"selector": {"init": "zeros", "smoothing": "none", **OFF}},
    "seal-paper": {
        "selector": {
            **OFF,
            "kind": "logits",
            "init": "zeros",
            "smoothing": "none",
            "algorithm": 2,
            "optimizer": "adam",
            "lr": 5e-3,
            "response_tokens": None,
            "warmup_epochs": 0,
            "baseline": "none",
            "epochs": 3,
            "gamma_start": 0.0,
            "gamma_step": 0.03,
        }
    },
    "seal-features": {"selector": {"kind": "features"}},
    "seal-features-hidden": {"selector": {"kind": "features", "features": {"source": "hidden"}}},
    "seal-crossfit": {"selector": {"smoothing": "crossfit", **OFF}},
    "seal-4-epochs": {"selector": {"epochs": 4, **OFF}},
    # One learning epoch and no warm-up: half the selector's cost (issue 11). Does the
    # warm-up earn its epoch once the logits start from the implicit reward?
    "seal-1-epoch": {"selector": {"epochs": 1, "warmup_epochs": 0, **OFF}},
    # The preset configs/fast.yaml (today's defaults in one epoch, the probe on), read from
    # the file so that the grid measures what users get.
    "seal-1-epoch-probe": yaml.safe_load((HERE.parents[1] / "configs" / "fast.yaml").read_text()),
    # The implicit-reward start at a fifth of its scale: at 1.0 the start's spread (1 logit)
    # is about 20 times that of the logits the selector learns from zeros (0.04-0.05 on
    # the seed-0 mixes), so what the bilevel steps learn barely moves the ranking.
    "seal-init-0.2": {"selector": {"init_scale": 0.2, **OFF}},
    # Today's defaults with a widened safe set (safe_variants.py): + 60 answered writing
    # tasks, and + the same and 60 refused expression harms. Do the JailbreakBench misses
    # (categories.py) come from the safe set's coverage?
    "seal-safe-writing": {"safe": {"path": str(DATA / "safe_writing.jsonl")}},
    "seal-safe-wide": {"safe": {"path": str(DATA / "safe_wide.jsonl")}},
}
CHEAP = ("random", "dsir", "frozen-loss", "implicit-reward", "implicit-reward-blend")
# Every mix gets the cheap rankers and the default selector; the other selector settings
# run at 10% harmful only, where the issue compares them.
AT_10 = (
    "seal-raw",
    "seal-zeros",
    "seal-paper",
    "seal-features",
    "seal-features-hidden",
    "seal-crossfit",
    "seal-4-epochs",
    "seal-init-0.2",
    "seal-1-epoch",
    "seal-safe-writing",
    "seal-safe-wide",
)


def select_config(mix: Path, name: str, seed: int) -> SelectRecipeConfig:
    tree = {
        "model": {"name_or_path": str(ALIGNED)},
        "data": {"path": str(mix)},
        "safe": {"path": str(DATA / "safe.jsonl")},
        "tokenize": {"max_length": MAX_LENGTH},
        "seed": seed,
        "output_dir": str(table_path(name, mix).parent),
    }
    for section, values in SELECTORS[name].items():
        tree[section] = values
    # Users usually have their aligned model's base; a selector set to start from zeros
    # ignores it.
    tree["reference_model"] = {"name_or_path": smollm_gguf()}
    return SelectRecipeConfig.model_validate(tree)


def quality(table, labels: dict[str, int]) -> dict:
    """AUROC of ranking the harmful rows last, and harmful rows kept at each p."""
    rows = table.to_pylist()
    y = [labels[r["sample_id"]] for r in rows]
    out = {"auroc": round(float(roc_auc_score(y, [-r["score"] for r in rows])), 4)}
    for p in PS:
        keep = n_keep(len(rows), p)
        out[f"kept@{p}"] = sum(lab for lab, r in zip(y, rows, strict=True) if r["rank"] <= keep)
    out["harmful"], out["rows"] = sum(y), len(rows)
    return out


def rank(name: str, mix: Path, seed: int, models) -> dict:
    cfg = select_config(mix, "seal-default", seed)
    loaded = load_sources(cfg.data)
    labels = {s.sample_id: int(s.record["harmful"]) for s in loaded.samples}
    start = time.time()
    if name in SELECTORS:
        settings = select_config(mix, name, seed)
        done = finished_selection(settings)
        table = read_scores(done / SELECT_DONE) if done is not None else None
        # Sample IDs hash each row's content: other IDs mean the mix changed since.
        if table is not None and set(table.column("sample_id").to_pylist()) == set(labels):
            return quality(table, labels) | {"reused": str(done.relative_to(CACHE))}
        table = run_select(settings, replace_stale=True, progress=False).scores
        return quality(table, labels) | {"seconds": round(time.time() - start)}
    if name in RANKERS:
        table, _ = RANKERS[name].score(rank_inputs(cfg, loaded, models), seed)
    elif name == "implicit-reward-blend":
        table = smoothed("implicit-reward", mix, seed, models)
    else:
        raise SystemExit(f"unknown ranker {name!r}")
    # Kept like a selector's scores, so that a later look (a relabelling, a new metric)
    # needs no recomputation.
    table_path(name, mix).parent.mkdir(parents=True, exist_ok=True)
    write_parquet(table_path(name, mix), table)
    return quality(table, labels) | {"seconds": round(time.time() - start)}


def rank_inputs(cfg: SelectRecipeConfig, loaded, models) -> RankInputs:
    """What sealft's ranker registry needs, for a mix: the selector's model, data and
    tokenization, p 0.8 and batches of 16, as `seal run` would rank them."""
    keep = {"model", "data", "safe", "tokenize", "selector", "reference_model", "runtime"}
    settings = cfg.model_dump(mode="json", include=keep)
    experiment = ExperimentRecipeConfig.model_validate(
        {**settings, "p": 0.8, "eval": {"batch_size": 16}}
    )
    aligned, tokenizer = models.aligned()
    return RankInputs(
        cfg=experiment,
        data=loaded,
        safe=load_sources(cfg.safe),
        trainable=encode_configured(loaded.samples, tokenizer, cfg.tokenize),
        tokenizer=tokenizer,
        device=models.device,
        workdir=CACHE,
        aligned=lambda: aligned,
        reference=models.reference,
    )


def smoothed(name: str, mix: Path, seed: int, models):
    """A ranker's scores through the default selector's smoothing (blend, with its
    features and folds): what SEAL's defaults would rank if the bilevel steps learned
    nothing beyond their implicit-reward start."""
    if not table_path(name, mix).exists():
        rank(name, mix, seed, models)
    cfg, samples, logits = id_ordered(name, mix, seed)
    plan = replace(plan_for(cfg), probe_weight=0.0)
    signals = Signals(features=(ngram_features(samples, cfg.selector.features), None))
    return scores_table(samples, compose(plan, logits, signals), 0.8)


def id_ordered(name: str, mix: Path, seed: int):
    """(the default selector's config, the mix's samples, a cached ranker's logits), in
    sample-ID order: the order a selector holds its logits in and draws its folds from."""
    by_id = {r["sample_id"]: r["score"] for r in read_scores(table_path(name, mix)).to_pylist()}
    cfg = select_config(mix, "seal-default", seed)
    samples = sorted(load_sources(cfg.data).samples, key=lambda s: s.sample_id)
    return cfg, samples, torch.tensor([by_id[s.sample_id] for s in samples], dtype=torch.float32)


def ranked_rows(name: str, mix: Path) -> list[tuple[dict, dict]] | None:
    """(mix row, its scores-table row) for every row of a cached ranking, in the table's
    order (the mix's); None if `name` has not ranked `mix` yet."""
    path = table_path(name, mix)
    if not path.exists():
        return None
    rows = [json.loads(line) for line in mix.read_text().splitlines()]
    return [(rows[r["index"]], r) for r in read_scores(path).to_pylist()]


def finished_selection(cfg: SelectRecipeConfig) -> Path | None:
    """A finished `seal select` run of finetune.py's (an experiment's selection step) with
    exactly these settings, or None: its scores are this ranker's, so the selector is not
    trained a second time. The output folder does not count, nor a reference model that a
    zeros start never reads (the experiment leaves it out of the selection's config)."""
    want = selection_settings(yaml.safe_load(dump_config(cfg)))
    for config in sorted((CACHE / "finetune").glob("**/select/config.yaml")):
        finished = (config.parent / SELECT_DONE).exists()
        if finished and selection_settings(yaml.safe_load(config.read_text())) == want:
            return config.parent
    return None


def selection_settings(tree: dict) -> dict:
    tree = {k: v for k, v in tree.items() if k != "output_dir"}
    if tree["selector"]["init"] == "zeros":
        tree.pop("reference_model", None)
    return tree


def table_path(name: str, mix: Path) -> Path:
    """Where a ranker's scores table for `mix` lies (a selector's run folder holds its own)."""
    return CACHE / "rank" / name / mix.parent.name / mix.stem / "scores.parquet"


class Models:
    """The aligned model and its reference (the as-shipped SmolLM2), loaded once."""

    def __init__(self):
        self.device = device_for("auto")
        self._aligned = self._reference = None

    def aligned(self):
        if self._aligned is None:
            from sealft.config import ModelConfig

            self._aligned = load_configured(ModelConfig(name_or_path=str(ALIGNED)))
            self._aligned[0].to(self.device)
        return self._aligned

    def reference(self):
        if self._reference is None:
            self._reference = load_model_and_tokenizer(smollm_gguf())[0].to(self.device)
        return self._reference


def aligned_identity() -> str:
    """Which aligned model the results belong to: its recipe chain, from recipe.json."""
    stages = json.loads((ALIGNED / "recipe.json").read_text())["stages"]
    return "+".join(stage["name"] for stage in stages)


def update_results(change: Callable[[dict], None]) -> dict:
    """Apply `change` to real.json as it is on disk now and write it back: several of this
    folder's scripts write their own part of it, and may run at the same time."""
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    change(saved)
    RESULTS.parent.mkdir(exist_ok=True)
    write_json(RESULTS, saved)
    return saved


def open_results(size: str) -> dict:
    """This size's ranking grid as saved; a grid measured on another aligned model is
    moved aside (`ranking_stale`), never mixed in."""
    aligned = aligned_identity()

    def check(saved: dict) -> None:
        if saved.get("ranking_aligned", aligned) != aligned:
            saved.setdefault("ranking_stale", {})[saved["ranking_aligned"]] = saved["ranking"]
            saved["ranking"] = {}
            for folder in (CACHE / "rank").glob("*"):
                shutil.rmtree(folder)
        saved["ranking_aligned"] = aligned
        saved.setdefault("ranking", {}).setdefault(size, {})

    return update_results(check)["ranking"][size]


def record(size: str, key: str, value: dict) -> None:
    """One ranking result into real.json, with the summaries over seeds."""

    def add(saved: dict) -> None:
        saved["ranking"].setdefault(size, {})[key] = value
        saved["ranking_summary"] = {s: summarise(g) for s, g in saved["ranking"].items()}

    update_results(add)


def summarise(results: dict) -> dict:
    """Mean ± std over seeds, per (ranker, kind, pct)."""
    groups: dict[tuple, list[dict]] = {}
    for key, value in results.items():
        ranker, kind, pct, _seed = key.split("/")
        groups.setdefault((ranker, kind, pct), []).append(value)
    out = {}
    for (ranker, kind, pct), values in sorted(groups.items()):
        metrics = ("auroc", *(f"kept@{p}" for p in PS))
        out[f"{ranker}/{kind}/{pct}"] = {m: stat([v[m] for v in values]) for m in metrics}
    return out


def stat(xs: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value) and count."""
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {"mean": statistics.fmean(xs), "std": sd, "n": len(xs)}


def cell(c: dict, digits: int) -> str:
    """A summary cell ({mean, std, n}) as text: the mean, and ± std over several seeds."""
    text = f"{c['mean']:.{digits}f}"
    return text + (f" ± {c['std']:.{digits}f}" if c["n"] > 1 else "")


def markdown(summary: dict, size: str) -> str:
    """One row per (ranker, kind, pct): AUROC and harmful rows kept, mean ± std over seeds."""
    lines = [
        "| ranker | kind | harmful | seeds | AUROC ↑ | kept@0.7 ↓ | kept@0.8 ↓ | kept@0.9 ↓ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, c in summary.get(size, {}).items():
        ranker, kind, pct = key.split("/")
        kept = " | ".join(cell(c[f"kept@{p}"], 1) for p in PS)
        lines.append(
            f"| {ranker} | {kind} | {pct}% | {c['auroc']['n']} | {cell(c['auroc'], 3)} | {kept} |"
        )
    return "\n".join(lines)


def by_kind(summary: dict, size: str, pct: int) -> str:
    """One row per ranker, one column per kind at `pct`% harmful: mean AUROC ± std (mean
    harmful rows kept at p = 0.8; seeds), and the mean AUROC over the kinds measured."""
    cells = summary.get(size, {})
    rankers = dict.fromkeys(k.split("/")[0] for k in cells if k.endswith(f"/{pct}"))
    lines = [
        "| ranker | " + " | ".join(KINDS) + " | mean AUROC |",
        "|---|" + "---|" * (len(KINDS) + 1),
    ]
    for ranker in rankers:
        row, means = [], []
        for kind in KINDS:
            c = cells.get(f"{ranker}/{kind}/{pct}")
            if c is None:
                row.append("–")
                continue
            row.append(f"{cell(c['auroc'], 3)} ({c['kept@0.8']['mean']:.1f}; n={c['auroc']['n']})")
            means.append(c["auroc"]["mean"])
        mean = f"{statistics.fmean(means):.3f}" if len(means) == len(KINDS) else "–"
        lines.append(f"| {ranker} | " + " | ".join(row) + f" | {mean} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small mixes, seed 0")
    ap.add_argument("--only", nargs="*", help="rankers to run (default: all)")
    ap.add_argument("--kinds", nargs="*", default=list(KINDS))
    ap.add_argument("--pcts", nargs="*", type=int, default=list(PCTS))
    ap.add_argument("--seeds", nargs="*", type=int)
    ap.add_argument(
        "--table",
        action="store_true",
        help="print the results as Markdown: every cell, or with --by-kind one pct's "
        "rankers × kinds",
    )
    ap.add_argument("--by-kind", type=int, metavar="PCT", help="with --table: pivot at PCT%%")
    args = ap.parse_args()
    if args.table:
        saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        summary, size = saved.get("ranking_summary", {}), "quick" if args.quick else "full"
        if args.by_kind is not None:
            print(by_kind(summary, size, args.by_kind))
        else:
            print(markdown(summary, size))
        return
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else list(SEEDS))
    chosen = args.only
    torch.manual_seed(0)
    models, size = Models(), "quick" if args.quick else "full"
    grid = open_results(size)
    for kind in args.kinds:
        for pct in args.pcts:
            for seed in seeds:
                mix = mix_path(kind, pct, seed, args.quick)
                every = [*CHEAP, "seal-blend", "seal-default", *(AT_10 if pct == 10 else ())]
                for ranker in chosen or every:
                    key = f"{ranker}/{kind}/{pct}/{seed}"
                    if key in grid:
                        continue
                    grid[key] = rank(ranker, mix, seed, models)
                    print(key, json.dumps(grid[key]), flush=True)
                    record(size, key, grid[key])


if __name__ == "__main__":
    main()
