"""`seal run`: is SEAL worth it on my data? Every method of the paper, side by side.

For each seed: train the selector (`seal select`) and the baselines' rankings, then
fine-tune one model per method (and per p for the methods that keep a fraction), evaluate
each, and write results.json plus a Markdown table. Every step keeps its outputs in its
own folder with the key it was computed from (`sealft.runs`); a re-run reuses each step
whose key is unchanged, so a stopped experiment picks up where it stopped and a changed
setting only re-runs what depends on it.

    output_dir/
      config.yaml  results.json  results.md
      aligned/eval.json                    the starting model, not fine-tuned
      frozen-loss/scores.parquet           the aligned model's loss ranking (and
      implicit-reward/, guard/)            the other rankings no seed changes
      seed0/select/                        `seal select` run (scores.parquet, ...)
      seed0/random/scores.parquet  seed0/dsir/scores.parquet
      seed0/<method>[-p<p>]/               `seal finetune` run + eval.json

Under `accelerate launch` every process walks the same steps: the selector's training and
the fine-tunes run across all of them, while rank 0 alone evaluates, computes the
baseline rankings and writes files, and the others read its results once it is done.
"""

from __future__ import annotations

import copy
import gc
import logging
from collections.abc import Callable
from pathlib import Path

from ..config import (
    ExperimentRecipeConfig,
    FinetuneRecipeConfig,
    ModelConfig,
    dump_config,
)
from ..data import Encoded, LoadedData, encode_configured, load_sources
from ..distributed import require_replicated, world
from ..eval.evaluator import Evaluator, judge_pairs, read_answers, set_rate, write_answers
from ..eval.judge import JudgmentCache, make_judge, win_rate
from ..io import atomic_write, write_dropped, write_json, write_parquet
from ..model.load import device_for, load_configured
from ..report.tables import markdown_table, summarise
from ..runs import cached, fingerprint, run_key
from ..selection.rankers import (
    METHODS,
    RANKERS,
    SELECTING,
    RankInputs,
    methods_of,
    rankings_needed,
)
from ..sft import load_trained, per_process_batches
from .finetune import run_finetune
from .select import run_select

log = logging.getLogger(__name__)
ExtraEval = Callable[[object, object], dict[str, float]]


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


def _ids(samples) -> str:
    return fingerprint([s.sample_id for s in samples])


def run_experiment(cfg: ExperimentRecipeConfig, **kwargs) -> dict:
    """Run `seal run`; returns what results.json holds. Keyword arguments: `Experiment`'s."""
    # The Trainer runs a full gc.collect() before every fine-tune, which took 0.3 s each
    # with transformers' modules loaded: more than a tiny fine-tune itself. Objects alive
    # now (modules, classes) are frozen out of the collector's scans for the run.
    gc.freeze()
    try:
        return Experiment(cfg, **kwargs).run()
    finally:
        gc.unfreeze()


class Experiment:
    """`seal run`, step by step.

    `base` / `selector_base`: (model, tokenizer) pairs to use instead of loading
    `cfg.model` / `cfg.selector_model`. `extra_eval(model, tokenizer)` adds metrics to each
    evaluation (the demo's refusal rate and accuracy); `extra_eval_name` names it in the
    step keys, so changing it re-evaluates.
    """

    def __init__(
        self,
        cfg: ExperimentRecipeConfig,
        *,
        progress: bool = True,
        base: tuple | None = None,
        selector_base: tuple | None = None,
        extra_eval: ExtraEval | None = None,
        extra_eval_name: str = "",
    ):
        self.methods = methods_of(cfg)
        cfg.check_ready()
        if "seal" in rankings_needed(self.methods):
            require_replicated("seal run with a SEAL method (seal, seal+safeinstr, seal-soft)")
        self.world = world(cfg.runtime.device)
        per_process_batches(cfg.sft, self.world.size)  # fails now, not after the selector
        self.cfg, self.progress, self.extra_eval = cfg, progress, extra_eval
        self.out = Path(cfg.output_dir)
        self.aligned_metrics: dict = {}  # the starting model's, once evaluated
        self.models = _Models(cfg.model, base)
        self.selector_models = (
            _Models(cfg.selector_model, selector_base) if cfg.selector_model else self.models
        )
        self.device = self.world.device or device_for(cfg.runtime.device)
        self.data: LoadedData = load_sources(cfg.data)
        self.safe: LoadedData = load_sources(cfg.safe)
        self.tokenizer = self.models.tokenizer
        self.evaluator = Evaluator(
            cfg.eval,
            self.tokenizer,
            cfg.tokenize,
            device=self.device,
            precision=cfg.runtime.precision,
        )
        self.eval_key = {
            "eval": cfg.eval.model_dump(mode="json", exclude={"judge"}),
            "evaluator": fingerprint(self.evaluator.describe()),
            "extra": extra_eval_name,
        }
        self.results: dict = {"config": cfg.model_dump(mode="json"), "runs": []}

    # -- the recipe -------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.cfg
        if self.world.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write(self.out / "config.yaml", dump_config(cfg))
        self.aligned()
        # Random and DSIR rank what the model can train on: the samples that fit its tokenizer.
        trainable = encode_configured(self.data.samples, self.tokenizer, cfg.tokenize)
        inputs = self.rank_inputs(trainable)
        for seed in cfg.seeds:
            rankings = self.rankings(seed, inputs)
            for method in self.methods:
                for p in cfg.p_values() if method in SELECTING else [None]:
                    self.finetune_and_evaluate(method, p, seed, rankings)
        if cfg.eval.judge is not None and self.world.main:
            judge_against_full(cfg, self.results, progress=self.progress)
        return self.finish()

    def finish(self) -> dict:
        self.results["summary"] = summarise(self.results["runs"])
        described = self.evaluator.describe()
        self.results["evaluator"] = {k: v for k, v in described.items() if k != "heldout"}
        if not self.world.main:
            return self.results
        write_json(self.out / "results.json", self.results)
        atomic_write(self.out / "results.md", markdown_table(self.results["summary"]) + "\n")
        if self.cfg.report:
            from ..report.html import write_report

            log.info("report: %s", write_report(self.out))
        return self.results

    # -- steps ------------------------------------------------------------------------

    def evaluate(self, model, folder: Path) -> dict:
        """Metrics (and answers, into folder/answers.jsonl) of one model."""
        result = self.evaluator(model, progress=self.progress)
        if self.extra_eval is not None:
            result.metrics.update(self.extra_eval(model, self.tokenizer))
        write_answers(folder / "answers.jsonl", self.evaluator.sets, result.answers)
        return {"metrics": result.metrics, "details": result.details}

    def record(self, run: dict) -> None:
        """Add one run to results.json at once, so a stopped experiment shows what it did."""
        self.results["runs"].append(run)
        self.results["summary"] = summarise(self.results["runs"])
        if self.world.main:
            write_json(self.out / "results.json", self.results)

    def aligned(self) -> None:
        folder = self.out / "aligned"
        key = {**self.eval_key, "model": self.cfg.model.model_dump(mode="json")}
        evaluated = self.world.main_first(
            lambda: cached(
                folder / "eval.json", key, lambda: self.evaluate(self.models.fresh()[0], folder)
            )
        )
        run = {"method": "aligned", "p": None, "seed": None, "trained": 0}
        self.aligned_metrics = evaluated["metrics"]
        self.record(run | {"run_dir": str(folder), **run_metrics(evaluated)})

    def scores_step(self, folder: Path, key: dict, make: Callable[[], tuple]) -> Path:
        """A ranking's scores.parquet (and the samples it could not rank), once per key."""

        def compute():
            table, dropped = make()
            folder.mkdir(parents=True, exist_ok=True)
            write_dropped(folder / "dropped.jsonl", dropped)
            write_parquet(folder / "scores.parquet", table)
            return {"scores": str(folder / "scores.parquet")}

        step = self.world.main_first(lambda: cached(folder / "step.json", key, compute))
        return Path(step["scores"])

    def rank_inputs(self, trainable: Encoded) -> RankInputs:
        return RankInputs(
            cfg=self.cfg,
            data=self.data,
            safe=self.safe,
            trainable=trainable,
            tokenizer=self.tokenizer,
            device=self.device,
            workdir=self.out,
            aligned=lambda: self.models.fresh()[0].to(self.device),
            reference=lambda: load_configured(self.cfg.reference_model)[0].to(self.device),
            select=self.select,
            progress=self.progress,
        )

    def rankings(self, seed: int, inputs: RankInputs) -> dict[str, Path]:
        """The scores.parquet of every ranking this seed's methods train on, each computed
        once per key: a seed-free ranking once for every seed (in its own folder)."""
        found: dict[str, Path] = {}
        data_key = {"data": _ids(inputs.trainable.samples), "p": inputs.p_top}
        for name in rankings_needed(self.methods):
            ranker = RANKERS[name]
            if ranker.score is None:
                found[name] = self.select(seed)
                continue
            folder = self.out / (f"seed{seed}/{name}" if ranker.per_seed else name)
            key = data_key | ({"seed": seed} if ranker.per_seed else {}) | ranker.key(inputs)
            found[name] = self.scores_step(folder, key, lambda r=ranker: r.score(inputs, seed))
        return found

    def select(self, seed: int) -> Path:
        log.info("seed %d: selector", seed)
        model, tokenizer = self.selector_models.fresh()
        result = run_select(
            self.cfg.select_config(seed),
            replace_stale=True,
            progress=self.progress,
            model=model,
            tokenizer=tokenizer,
        )
        return result.run_dir / "scores.parquet"

    def finetune_and_evaluate(
        self, method: str, p: float | None, seed: int, rankings: dict[str, Path]
    ) -> None:
        ft_cfg = finetune_config(self.cfg, method, p, seed, rankings)
        log.info("seed %d: %s", seed, run_label(method, p))
        model, _ = self.models.fresh()
        result = run_finetune(
            ft_cfg,
            replace_stale=True,
            progress=self.progress,
            model=model,
            tokenizer=self.tokenizer,
        )
        run_dir = Path(ft_cfg.output_dir)

        def evaluate() -> dict:
            # Under several processes the trained module may hold only shards (FSDP,
            # ZeRO-3): rank 0 evaluates the saved weights on a fresh base instead.
            trained = result.model
            if self.world.size > 1:
                trained = load_trained(self.models.fresh()[0], run_dir)
            return self.evaluate(trained, run_dir)

        key = {**self.eval_key, "finetune": run_key(run_dir)}
        evaluated = self.world.main_first(lambda: cached(run_dir / "eval.json", key, evaluate))
        self.record(
            {
                "method": method,
                "p": p,
                "seed": seed,
                "trained": result.summary["trained"],
                "run_dir": str(run_dir),
                **run_metrics(evaluated, self.aligned_metrics),
            }
        )


def run_metrics(evaluated: dict, aligned: dict | None = None) -> dict:
    """A run's pooled metrics, and its refusal (or over-refusal) rate on each prompt set.

    With the aligned model's metrics, also `harmful_loss_drop`: how far the loss of the
    held-out harmful answers fell from the aligned model's (nats per token; above 0, the
    fine-tuned model has learned to answer harmfully)."""
    sets = evaluated["details"].get("prompt_sets", {})
    metrics = dict(evaluated["metrics"])
    if aligned is not None and "harmful_loss" in metrics and "harmful_loss" in aligned:
        metrics["harmful_loss_drop"] = aligned["harmful_loss"] - metrics["harmful_loss"]
    return {
        "metrics": metrics,
        "prompt_sets": {name: set_rate(s) for name, s in sets.items()},
    }


def judge_against_full(cfg: ExperimentRecipeConfig, results: dict, *, progress: bool) -> None:
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
        write_json(Path(run["run_dir"]) / "winrate.json", summary)
        if summary["win_rate"] is not None:
            run["metrics"]["win_rate"] = summary["win_rate"] / 100
        run["judge"] = {k: v for k, v in summary.items() if k != "win_rate"}


def finetune_config(
    cfg: ExperimentRecipeConfig,
    method: str,
    p: float | None,
    seed: int,
    rankings: dict[str, Path],
) -> FinetuneRecipeConfig:
    """The `seal finetune` run behind one method, p and seed (see the method table)."""
    row = METHODS[method]
    selection = {}
    if row.ranking is not None:
        scores = str(rankings[row.ranking])
        selection = {"scores": scores, "mode": "soft"} if row.soft else {"scores": scores, "p": p}
    extra = None
    if row.demonstrations:
        extra = cfg.safeinstr.data if cfg.safeinstr.data is not None else cfg.safe
    return FinetuneRecipeConfig.model_validate(
        {
            "model": cfg.model.model_dump(),
            "data": _dump(cfg.data),
            "selection": selection,
            "extra": None if extra is None else _dump(extra),
            "extra_count": cfg.safeinstr.count if extra is not None else None,
            "lora": cfg.lora.model_dump(),
            "tokenize": cfg.tokenize.model_dump(),
            "sft": cfg.sft.model_dump(),
            "runtime": cfg.runtime.model_dump(),
            "seed": seed,
            "output_dir": str(Path(cfg.output_dir) / f"seed{seed}" / run_label(method, p)),
        }
    )


def _dump(sources):
    return [s.model_dump() for s in sources] if isinstance(sources, list) else sources.model_dump()
