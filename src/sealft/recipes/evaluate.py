"""`seal eval`: answer the prompt sets, detect refusals, measure held-out loss, and judge
the answers against a reference run's.

results.json holds the metrics, per-set (and per-category) refusal rates and everything
that decides them (detector, generation settings, prompt sources); answers.jsonl every
answer; judgments.detail.jsonl every verdict when a judge ran.
"""

from __future__ import annotations

from pathlib import Path

from ..config import EvalRecipeConfig
from ..data import DataError
from ..eval.evaluator import Evaluator, judge_pairs, read_answers, write_answers
from ..eval.judge import JudgmentCache, make_judge, win_rate
from ..io import write_json, write_jsonl
from ..model.load import device_for, load_configured


def _with_adapter(model, adapter: str | None):
    if not adapter:
        return model
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").exists():
        raise DataError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    return PeftModel.from_pretrained(model, adapter)


def _judge(
    cfg: EvalRecipeConfig, out: Path, reference: list[dict], report: dict, progress: bool
) -> None:
    """The win rate of this run's answers over the reference's, into `report`."""
    prompts, ours, theirs = judge_pairs(
        read_answers(out / "answers.jsonl"), reference, cfg.reference
    )
    cache = JudgmentCache(cfg.eval.judge.cache or out / "judgments.jsonl")
    outcome = win_rate(make_judge(cfg.eval.judge), prompts, ours, theirs, cache, progress=progress)
    report["win_rate"] = outcome.summary() | {"reference": cfg.reference}
    if outcome.rate is not None:
        report["metrics"]["win_rate"] = outcome.rate / 100
    write_jsonl(out / "judgments.detail.jsonl", outcome.judgments)


def run_eval(cfg: EvalRecipeConfig, *, progress: bool = True, model=None, tokenizer=None) -> dict:
    """Run `seal eval`; returns what results.json holds."""
    cfg.check_ready()
    # Bad input should stop the run before the slow part, loading the model, starts.
    reference = read_answers(cfg.reference) if cfg.reference else None
    if model is None:
        model, tokenizer = load_configured(cfg.model)
    model = _with_adapter(model, cfg.adapter)
    evaluator = Evaluator(
        cfg.eval,
        tokenizer,
        cfg.tokenize,
        device=device_for(cfg.runtime.device),
        precision=cfg.runtime.precision,
    )
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = evaluator(model, progress=progress)
    write_answers(out / "answers.jsonl", evaluator.sets, result.answers)
    described = evaluator.describe()
    described.pop("heldout")
    report = {
        "model": cfg.model.model_dump(mode="json"),
        "adapter": cfg.adapter,
        "metrics": result.metrics,
        **result.details,
        **described,
    }
    if reference is not None:
        _judge(cfg, out, reference, report, progress)
    write_json(out / "results.json", report)
    return report
