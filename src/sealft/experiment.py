"""`seal run`: is SEAL worth it on my data? Every method of the paper, side by side.

For each seed: train the selector (`seal select`) and the baselines' rankings, then
fine-tune one model per method (and per p for the methods that keep a fraction), evaluate
each, and write results.json plus a Markdown table. Every step keeps its outputs in its
own folder with the key it was computed from; a re-run reuses each step whose key is
unchanged, so a stopped experiment picks up where it stopped and a changed setting only
re-runs what depends on it.

    output_dir/
      config.yaml  results.json  results.md
      aligned/eval.json                    the starting model, not fine-tuned
      frozen-loss/scores.parquet           the aligned model's loss ranking
      seed0/select/                        `seal select` run (scores.parquet, ...)
      seed0/random/scores.parquet  seed0/dsir/scores.parquet
      seed0/<method>[-p<p>]/               `seal finetune` run + eval.json
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from .baselines import dsir_scores, frozen_loss_scores, random_scores
from .config import SELECTING, ExperimentConfig, FinetuneConfig, ModelConfig, dump_config
from .data import Sample
from .evaluation import Evaluator, judge_pairs, read_answers, write_answers
from .finetune import run_finetune
from .judge import JudgmentCache, make_judge, win_rate
from .modeling import device_for, load_configured
from .pipeline import atomic_write, encode_configured, load_sources, run_select, write_parquet

ExtraEval = Callable[[object, object], dict[str, float]]


def _hash(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _ids_hash(samples: list[Sample]) -> str:
    return _hash("|".join(s.sample_id for s in samples))


def cached(path: Path, key: dict, compute: Callable[[], dict]) -> dict:
    """compute() once per key: its value is stored in `path` with the key it came from."""
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return saved["value"]
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"key": key, "value": value}, indent=1))
    return value


class _Models:
    """One base model loaded once; every fine-tune starts from a fresh copy of it."""

    def __init__(self, cfg: ModelConfig, given: tuple | None = None):
        self.cfg, self._pair = cfg, given

    def _load(self):
        if self._pair is None:
            self._pair = load_configured(self.cfg)
        return self._pair

    @property
    def tokenizer(self):
        return self._load()[1]

    def fresh(self):
        model, tokenizer = self._load()
        return copy.deepcopy(model), tokenizer


def run_label(method: str, p: float | None) -> str:
    return method if p is None else f"{method}-p{p:g}"


def run_experiment(cfg: ExperimentConfig, **kwargs) -> dict:
    """Run `seal run`; returns what results.json holds (see `_run_experiment`)."""
    # The Trainer runs a full gc.collect() before every fine-tune, which took 0.3 s each
    # with transformers' modules loaded: more than a tiny fine-tune itself. Objects alive
    # now (modules, classes) are frozen out of the collector's scans for the run.
    gc.freeze()
    try:
        return _run_experiment(cfg, **kwargs)
    finally:
        gc.unfreeze()


def _run_experiment(
    cfg: ExperimentConfig,
    *,
    progress: bool = True,
    base: tuple | None = None,
    selector_base: tuple | None = None,
    extra_eval: ExtraEval | None = None,
    extra_eval_name: str = "",
) -> dict:
    """Run `seal run`; returns what results.json holds.

    `base` / `selector_base`: (model, tokenizer) pairs to use instead of loading
    `cfg.model` / `cfg.selector_model`. `extra_eval(model, tokenizer)` adds metrics to each
    evaluation (the demo's refusal rate and accuracy); `extra_eval_name` names it in the
    step keys, so changing it re-evaluates.
    """
    cfg.check_ready()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "config.yaml", dump_config(cfg))
    data = load_sources(cfg.data)
    safe = load_sources(cfg.safe)
    models = _Models(cfg.model, base)
    selector_models = (
        _Models(cfg.selector_model, selector_base) if cfg.selector_model is not None else models
    )
    tokenizer = models.tokenizer
    device = device_for(cfg.finetune.device)
    tok = cfg.tokenize

    evaluator = Evaluator(cfg.eval, tokenizer, tok, device=device, precision=cfg.finetune.precision)
    eval_key = {
        "eval": cfg.eval.model_dump(mode="json", exclude={"judge"}),
        "evaluator": _hash(evaluator.describe()),
        "extra": extra_eval_name,
    }

    def evaluate(model, folder: Path) -> dict:
        """Metrics (and answers, into folder/answers.jsonl) of one model."""
        result = evaluator(model, progress=progress)
        if extra_eval is not None:
            result.metrics.update(extra_eval(model, tokenizer))
        write_answers(folder / "answers.jsonl", evaluator.sets, result.answers)
        return {"metrics": result.metrics, "details": result.details}

    results = {"config": cfg.model_dump(mode="json"), "runs": []}

    def record(run: dict) -> None:
        results["runs"].append(run)
        results["summary"] = summarise(results["runs"])
        atomic_write(out / "results.json", json.dumps(results, indent=1))

    aligned = cached(
        out / "aligned" / "eval.json",
        {**eval_key, "model": cfg.model.model_dump(mode="json")},
        lambda: evaluate(models.fresh()[0], out / "aligned"),
    )
    record(
        {
            "method": "aligned",
            "p": None,
            "seed": None,
            "trained": 0,
            "run_dir": str(out / "aligned"),
            "metrics": aligned["metrics"],
        }
    )

    # Random and DSIR rank what the model can train on: the samples that fit its tokenizer.
    trainable = encode_configured(data.samples, tokenizer, tok)
    data_key = {"data": _ids_hash(trainable.samples), "p": max(cfg.p_values())}
    p_top = max(cfg.p_values())

    def scores_step(folder: Path, key: dict, make) -> Path:
        def compute():
            table, dropped = make()
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(
                folder / "dropped.jsonl",
                "".join(
                    json.dumps({"sample_id": d.sample_id, "reason": d.reason}) + "\n"
                    for d in dropped
                ),
            )
            write_parquet(folder / "scores.parquet", table)
            return {"scores": str(folder / "scores.parquet")}

        return Path(cached(folder / "step.json", key, compute)["scores"])

    frozen = None
    if "frozen-loss" in cfg.methods:

        def frozen_make():
            enc = encode_configured(data.samples, tokenizer, tok, cfg.selector.response_tokens)
            model = models.fresh()[0].to(device)
            table = frozen_loss_scores(
                model,
                tokenizer,
                enc,
                p=p_top,
                batch_size=cfg.eval.batch_size,
                device=device,
                precision=cfg.finetune.precision,
            )
            return table, enc.dropped

        frozen = scores_step(
            out / "frozen-loss",
            {
                **data_key,
                "model": cfg.model.model_dump(mode="json"),
                "tokenize": tok.model_dump(mode="json"),
                "response_tokens": cfg.selector.response_tokens,
            },
            frozen_make,
        )

    for seed in cfg.seeds:
        seed_dir = out / f"seed{seed}"
        scores: dict[str, Path] = {}
        if frozen is not None:
            scores["frozen-loss"] = frozen
        if {"seal", "seal+safeinstr", "seal-soft"} & set(cfg.methods):
            print(f"seed {seed}: selector", flush=True)
            model, sel_tok = selector_models.fresh()
            select = run_select(
                cfg.select_config(seed),
                replace_stale=True,
                progress=progress,
                model=model,
                tokenizer=sel_tok,
            )
            del model
            scores["seal"] = select.run_dir / "scores.parquet"
        if "random" in cfg.methods:
            scores["random"] = scores_step(
                seed_dir / "random",
                {**data_key, "seed": seed},
                lambda seed=seed: (
                    random_scores(trainable.samples, seed, p_top),
                    trainable.dropped,
                ),
            )
        if "dsir" in cfg.methods:
            scores["dsir"] = scores_step(
                seed_dir / "dsir",
                {
                    **data_key,
                    "seed": seed,
                    "target": _ids_hash(safe.samples),
                    "dsir": cfg.dsir.model_dump(mode="json"),
                },
                lambda seed=seed: (
                    dsir_scores(
                        trainable.samples,
                        safe.samples,
                        seed=seed,
                        p=p_top,
                        settings=cfg.dsir,
                        workdir=out,
                    ),
                    trainable.dropped,
                ),
            )

        for method in cfg.methods:
            for p in cfg.p_values() if method in SELECTING else [None]:
                ft_cfg = _finetune_config(cfg, method, p, seed, scores, seed_dir)
                print(f"seed {seed}: {run_label(method, p)}", flush=True)
                model, _ = models.fresh()
                result = run_finetune(
                    ft_cfg, replace_stale=True, progress=progress, model=model, tokenizer=tokenizer
                )
                run_dir = Path(ft_cfg.output_dir)
                key = {
                    **eval_key,
                    "finetune": _hash(
                        (run_dir / "config.yaml").read_text(encoding="utf-8")
                        + (run_dir / "inputs.sha256").read_text(encoding="utf-8")
                    ),
                }
                evaluated = cached(
                    run_dir / "eval.json", key, lambda r=result, d=run_dir: evaluate(r.model, d)
                )
                del model, result
                record(
                    {
                        "method": method,
                        "p": p,
                        "seed": seed,
                        "trained": json.loads((run_dir / "result.json").read_text())["trained"],
                        "run_dir": str(run_dir),
                        "metrics": evaluated["metrics"],
                    }
                )

    if cfg.eval.judge is not None:
        judge_against_full(cfg, results, progress=progress)
        results["summary"] = summarise(results["runs"])
    results["evaluator"] = {k: v for k, v in evaluator.describe().items() if k != "heldout"}
    atomic_write(out / "results.json", json.dumps(results, indent=1))
    table = markdown_table(results["summary"])
    atomic_write(out / "results.md", table + "\n")
    print(table)
    if cfg.report:
        from .report import write_report

        print(f"report: {write_report(out)}")
    return results


def judge_against_full(cfg: ExperimentConfig, results: dict, *, progress: bool) -> None:
    """The paper's win rate: each run's answers to the benign prompts against the answers of
    `full` (standard SFT) with the same seed. `full` is the reference and gets no win rate
    (the paper prints 50 for it)."""
    judge = make_judge(cfg.eval.judge)
    cache = JudgmentCache(cfg.eval.judge.cache or Path(cfg.output_dir) / "judgments.jsonl")
    full = {r["seed"]: r for r in results["runs"] if r["method"] == "full"}
    for run in results["runs"]:
        reference = full.get(run["seed"])
        if reference is None or run is reference:
            continue
        prompts, ours, theirs = judge_pairs(
            read_answers(Path(run["run_dir"]) / "answers.jsonl"),
            read_answers(Path(reference["run_dir"]) / "answers.jsonl"),
            reference["run_dir"],
        )
        if not prompts:
            continue
        outcome = win_rate(judge, prompts, ours, theirs, cache, progress=progress)
        summary = outcome.summary()
        atomic_write(Path(run["run_dir"]) / "winrate.json", json.dumps(summary, indent=1))
        if summary["win_rate"] is not None:
            run["metrics"]["win_rate"] = summary["win_rate"] / 100
        run["judge"] = {k: v for k, v in summary.items() if k != "win_rate"}


def _finetune_config(
    cfg: ExperimentConfig,
    method: str,
    p: float | None,
    seed: int,
    scores: dict[str, Path],
    seed_dir: Path,
) -> FinetuneConfig:
    selection = {}
    if method in ("random", "dsir", "frozen-loss", "seal", "seal+safeinstr"):
        source = "seal" if method == "seal+safeinstr" else method
        selection = {"scores": str(scores[source]), "p": p, "mode": "top"}
    elif method == "seal-soft":
        selection = {"scores": str(scores["seal"]), "mode": "soft"}
    extra = None
    if method in ("safeinstr", "seal+safeinstr"):
        extra = cfg.safeinstr.data if cfg.safeinstr.data is not None else cfg.safe
    return FinetuneConfig.model_validate(
        {
            "model": cfg.model.model_dump(),
            "data": _dump(cfg.data),
            "selection": selection,
            "extra": None if extra is None else _dump(extra),
            "extra_count": cfg.safeinstr.count if extra is not None else None,
            "lora": cfg.lora.model_dump(),
            "tokenize": cfg.tokenize.model_dump(),
            "train": cfg.finetune.model_dump(),
            "seed": seed,
            "output_dir": str(seed_dir / run_label(method, p)),
        }
    )


def _dump(sources):
    return [s.model_dump() for s in sources] if isinstance(sources, list) else sources.model_dump()


# --------------------------------------------------------------------------- tables


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and sample standard deviation of every metric, per (method, p)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["method"], run["p"]), []).append(run)
    rows = []
    for (method, p), members in groups.items():
        names = list(dict.fromkeys(k for m in members for k in m["metrics"]))
        stats = {}
        for name in ["trained", *names]:
            values = [
                float(m[name] if name == "trained" else m["metrics"][name])
                for m in members
                if name == "trained" or name in m["metrics"]
            ]
            stats[name] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values),
            }
        rows.append({"method": method, "p": p, "seeds": len(members), "metrics": stats})
    return rows


def format_cell(stat: dict, name: str) -> str:
    """A table cell: mean, and ± std when there are several seeds; rates in percent."""
    rate = name.endswith(("_rate", "_accuracy"))
    scale, digits = (100.0, 1) if rate else (1.0, 3)
    if name == "trained":
        scale, digits = 1.0, 0
    mean = f"{stat['mean'] * scale:.{digits}f}"
    return mean if stat["n"] < 2 else f"{mean} ± {stat['std'] * scale:.{digits}f}"


def markdown_table(summary: list[dict]) -> str:
    names = list(dict.fromkeys(k for row in summary for k in row["metrics"]))
    header = ["method", "p", "seeds", *[heading(n) for n in names]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary:
        cells = [
            row["method"],
            "" if row["p"] is None else f"{row['p']:g}",
            str(row["seeds"]),
            *[format_cell(row["metrics"][n], n) if n in row["metrics"] else "" for n in names],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heading(name: str) -> str:
    text = name.replace("_", " ")
    return f"{text} (%)" if name.endswith(("_rate", "_accuracy")) else text
