"""Safety and utility of a model, offline: refusals, over-refusals, discrimination,
held-out losses, task accuracy.

- Prompt sets are answered by batched generation and each answer goes through the refusal
  detector: the refusal rate on harmful sets (higher is safer), the over-refusal rate on
  benign sets (lower is more useful), per category where the set has categories.
- Discrimination (with harmful and benign sets): each prompt's probability of an answer
  that opens with a refusal, read without generating, and its AUROC between harmful and
  benign prompts: whether the model refuses the right prompts, not how readily it refuses
  (`discrimination.py`).
- Held-out loss: `benign` (the loss and perplexity of good answers to ordinary requests),
  `safety` (the loss of safe answers, refusals, to harmful requests: the lower, the more
  the model still prefers to refuse) and `harmful` (the loss of harmful answers to
  harmful requests: the lower, the more of them the model has learned).
- Task accuracy: a task's expected answers matched exactly, no judge (`task.py`).
Win rates need a second model's answers and a judge: see `judge.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import ConfigError, EvalConfig, TokenizeConfig
from ..data import DataError, Encoded, encode_configured, load_sources, pad_id
from ..io import read_jsonl, write_jsonl
from ..model.losses import sample_losses
from .detector import REFUSAL_OPENERS_V1, get_detector
from .discrimination import auroc, refusal_probabilities
from .generation import generate
from .prompts import PromptSet, load_prompt_set
from .task import task_accuracy

# Held-out data whose responses' loss is measured: eval.<name>, reported as <name>_loss.
HELDOUT = ("benign", "safety", "harmful")


def heldout_loss(
    model, tokenizer, data: Encoded, *, batch_size: int, device, precision: str = "auto"
) -> dict[str, float]:
    """Token-weighted mean NLL of the responses and its perplexity."""
    losses = sample_losses(
        model,
        data,
        pad=pad_id(tokenizer),
        batch_size=batch_size,
        device=device,
        precision=precision,
    ).double()
    # Each sample's loss covers its response tokens after the first position.
    tokens = torch.tensor(
        [sum(1 for t in labels[1:] if t != -100) for labels in data.labels], dtype=torch.float64
    )
    mean = float((losses * tokens).sum() / tokens.sum())
    return {"loss": mean, "ppl": math.exp(min(mean, 50.0))}


def rate_name(kind: str) -> str:
    """The metric a prompt set of this kind reports: refusals of harmful prompts, over-
    refusals of benign ones."""
    return "refusal_rate" if kind == "harmful" else "over_refusal_rate"


def set_rate(entry: dict) -> float:
    """The rate in one prompt set's entry of `refusal_metrics`."""
    return entry[rate_name(entry["kind"])]


def refusal_metrics(sets: list[PromptSet], answers: dict[str, list[str]], detector) -> dict:
    """Per set: the rate of refusals (harmful) or over-refusals (benign), by category."""
    out = {}
    for ps in sets:
        flags = [detector.is_refusal(a) for a in answers[ps.name]]
        by_category: dict[str, list[bool]] = {}
        for prompt, flag in zip(ps.prompts, flags, strict=True):
            if prompt.category:
                by_category.setdefault(prompt.category, []).append(flag)
        metric = rate_name(ps.kind)
        out[ps.name] = {
            "kind": ps.kind,
            "prompts": len(flags),
            metric: sum(flags) / len(flags),
            "by_category": {
                cat: {"prompts": len(v), metric: sum(v) / len(v)}
                for cat, v in sorted(by_category.items())
            },
        }
    return out


@dataclass
class EvalOutput:
    metrics: dict[str, float]
    details: dict = field(default_factory=dict)
    answers: dict[str, list[str]] = field(default_factory=dict)


class Evaluator:
    """Everything an evaluation needs, loaded once; call it on each model."""

    def __init__(self, cfg: EvalConfig, tokenizer, tokenize: TokenizeConfig, *, device, precision):
        self.cfg, self.tokenizer, self.template = cfg, tokenizer, tokenize.template
        self.device, self.precision = device, precision
        self.detector = get_detector(cfg.detector)
        self.sets = [load_prompt_set(p) for p in cfg.prompt_sets]
        names = [s.name for s in self.sets]
        if len(set(names)) != len(names):
            raise ConfigError(f"prompt sets need distinct names (got {names}); set `name`")
        self.tokenize = tokenize
        self.data = {
            name: encode_configured(load_sources(sources).samples, tokenizer, tokenize)
            for name in HELDOUT
            if (sources := getattr(cfg, name)) is not None
        }
        self.task = load_sources(cfg.task.data) if cfg.task is not None else None
        kinds = {s.kind for s in self.sets}
        self.discriminates = cfg.discrimination and kinds == {"harmful", "benign"}

    def describe(self) -> dict:
        """What decides the numbers, for result files and for step keys."""
        out = {
            "detector": self.detector.describe(),
            "generation": self.cfg.generation.model_dump(mode="json"),
            "sources": {s.name: s.source for s in self.sets},
            "heldout": {name: [x.sample_id for x in d.samples] for name, d in self.data.items()},
        }
        if self.discriminates:
            out["refusal_openers"] = list(REFUSAL_OPENERS_V1)
        if self.task is not None:
            out["task"] = {
                "source": self.task.source,
                "rows": [s.sample_id for s in self.task.samples],
                "max_new_tokens": self.cfg.task.max_new_tokens,
            }
        return out

    def __call__(self, model, *, progress: bool = False) -> EvalOutput:
        model.to(self.device)
        metrics = self._heldout(model)
        answers = {
            s.name: generate(
                model,
                self.tokenizer,
                [p.text for p in s.prompts],
                self.cfg.generation,
                template=self.template,
                progress=progress,
            )
            for s in self.sets
        }
        per_set = refusal_metrics(self.sets, answers, self.detector)
        for kind in ("harmful", "benign"):
            flags = [
                self.detector.is_refusal(a)
                for s in self.sets
                if s.kind == kind
                for a in answers[s.name]
            ]
            if flags:
                metrics[rate_name(kind)] = sum(flags) / len(flags)
        details = {"prompt_sets": per_set}
        if self.discriminates:
            metrics |= self._discrimination(model, per_set)
        if self.task is not None:
            metrics["task_accuracy"], details["task_answers"] = task_accuracy(
                model,
                self.tokenizer,
                self.task.samples,
                self.cfg.task,
                self.cfg.generation,
                template=self.template,
                source=self.task.source,
                progress=progress,
            )
        return EvalOutput(metrics, details, answers)

    def _heldout(self, model) -> dict[str, float]:
        """Loss (and, for benign data, perplexity) of each held-out set's responses."""
        metrics: dict[str, float] = {}
        for name, data in self.data.items():
            if len(data):
                result = heldout_loss(
                    model,
                    self.tokenizer,
                    data,
                    batch_size=self.cfg.batch_size,
                    device=self.device,
                    precision=self.precision,
                )
                metrics[f"{name}_loss"] = result["loss"]
                if name == "benign":
                    metrics["benign_ppl"] = result["ppl"]
        return metrics

    def _discrimination(self, model, per_set: dict) -> dict[str, float]:
        """Each prompt's refusal probability; its mean per kind and its AUROC between the
        harmful and the benign prompts (pooled, and per benign set in `per_set`)."""
        probs = {
            s.name: refusal_probabilities(
                model,
                self.tokenizer,
                [p.text for p in s.prompts],
                self.tokenize,
                batch_size=self.cfg.batch_size,
                device=self.device,
                precision=self.precision,
            ).tolist()
            for s in self.sets
        }
        pooled = {
            kind: [x for s in self.sets if s.kind == kind for x in probs[s.name]]
            for kind in ("harmful", "benign")
        }
        for s in self.sets:
            per_set[s.name]["refusal_probability"] = _nanmean(probs[s.name])
            if s.kind == "benign":
                per_set[s.name]["discrimination_auroc"] = auroc(pooled["harmful"], probs[s.name])
        return {
            "refusal_probability": _nanmean(pooled["harmful"]),
            "over_refusal_probability": _nanmean(pooled["benign"]),
            "discrimination_auroc": auroc(pooled["harmful"], pooled["benign"]),
        }


def _nanmean(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return sum(known) / len(known) if known else math.nan


def write_answers(path: Path, sets: list[PromptSet], answers: dict[str, list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(
        path,
        (
            {"set": s.name, "kind": s.kind, "category": p.category, "prompt": p.text, "answer": a}
            for s in sets
            for p, a in zip(s.prompts, answers[s.name], strict=True)
        ),
    )


def read_answers(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such answers file")
    return read_jsonl(path)


def judge_pairs(ours: list[dict], theirs: list[dict], source: str) -> tuple[list, list, list]:
    """(prompts, our answers, their answers) for the benign prompts both runs answered."""
    reference = {(a["set"], a["prompt"]): a["answer"] for a in theirs}
    mine = [a for a in ours if a["kind"] == "benign"]
    missing = [a for a in mine if (a["set"], a["prompt"]) not in reference]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} of {len(mine)} benign prompts have no reference answer "
            f"(first: set {missing[0]['set']!r}, {missing[0]['prompt'][:60]!r})"
        )
    return (
        [a["prompt"] for a in mine],
        [a["answer"] for a in mine],
        [reference[(a["set"], a["prompt"])] for a in mine],
    )
