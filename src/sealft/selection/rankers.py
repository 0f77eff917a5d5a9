"""The rankers of `seal run`, and the methods that train on them: one registry.

A ranker turns the fine-tuning data into a scores table. Its entry says what it needs
(a config section that must be set), whether the seed changes it, what its cached table
depends on (`key`: beyond the data, p and seed, which every ranking depends on) and how
it scores (`score`). Every ranker is also a method (train on its top p); the methods
that combine a ranking with something else (the selector's soft weights, the safety
demonstrations) are listed below it. Adding a ranker is one entry here: `seal run`, its
config check and `--help`, and the benchmarks read this table.

Rankers see one experiment through a `RankInputs`; `seal` is the selector itself,
trained by `seal select` through the `select` hook the recipe hands in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..config import ConfigError, ExperimentRecipeConfig, as_list
from ..data import Encoded, LoadedData, encode_configured
from ..runs import fingerprint
from .baselines import (
    dsir_scores,
    frozen_loss_scores,
    implicit_reward_scores,
    oracle_scores,
    random_scores,
)
from .features import ngram_features

Scored = tuple[pa.Table, list]  # the table and the samples it could not rank


@dataclass
class RankInputs:
    """What a ranker may use. `aligned()` / `reference()` load their model on first use;
    `select(seed)` runs the selector and returns its scores.parquet."""

    cfg: ExperimentRecipeConfig
    data: LoadedData
    safe: LoadedData
    trainable: Encoded  # the samples that fit the tokenizer
    tokenizer: Any
    device: Any
    workdir: Path
    aligned: Callable[[], Any]
    reference: Callable[[], Any]
    select: Callable[[int], Path] | None = None
    progress: bool = False

    @property
    def p_top(self) -> float:
        return max(self.cfg.p_values())

    def model_kw(self) -> dict:
        cfg = self.cfg
        return {
            "p": self.p_top,
            "batch_size": cfg.eval.batch_size,
            "device": self.device,
            "precision": cfg.runtime.precision,
        }

    def encoded(self, response_tokens: int | None) -> Encoded:
        return encode_configured(
            self.data.samples, self.tokenizer, self.cfg.tokenize, response_tokens
        )

    def model_key(self, response_tokens: int | None) -> dict:
        return {
            "model": self.cfg.model.model_dump(mode="json"),
            "tokenize": self.cfg.tokenize.model_dump(mode="json"),
            "response_tokens": response_tokens,
        }


@dataclass(frozen=True)
class Ranker:
    name: str
    summary: str
    score: Callable[[RankInputs, int], Scored] | None  # None: the selector (`select`)
    key: Callable[[RankInputs], dict] = lambda inputs: {}
    needs: str | None = None  # the config section that must be set to run it
    per_seed: bool = True


def _random(i: RankInputs, seed: int) -> Scored:
    return random_scores(i.trainable.samples, seed, i.p_top), i.trainable.dropped


def _dsir(i: RankInputs, seed: int) -> Scored:
    table = dsir_scores(
        i.trainable.samples,
        i.safe.samples,
        seed=seed,
        p=i.p_top,
        settings=i.cfg.dsir,
        workdir=i.workdir,
    )
    return table, i.trainable.dropped


def _dsir_key(i: RankInputs) -> dict:
    target = fingerprint([s.sample_id for s in i.safe.samples])
    return {"target": target, "dsir": i.cfg.dsir.model_dump()}


def _frozen_loss(i: RankInputs, seed: int) -> Scored:
    enc = i.encoded(i.cfg.selector.response_tokens)
    return frozen_loss_scores(i.aligned(), i.tokenizer, enc, **i.model_kw()), enc.dropped


def _implicit_reward(i: RankInputs, seed: int) -> Scored:
    settings = i.cfg.implicit_reward
    enc = i.encoded(settings.response_tokens)
    features = None
    if settings.smoothing != "none":
        features = ngram_features(enc.samples, i.cfg.selector.features)
    table = implicit_reward_scores(
        i.aligned(), i.reference(), i.tokenizer, enc, smooth_over=features, **i.model_kw()
    )
    return table, enc.dropped


def _implicit_reward_key(i: RankInputs) -> dict:
    cfg = i.cfg
    # Nothing for the smoothing when it is off, so rankings cached before it existed hold.
    blend = (
        {}
        if cfg.implicit_reward.smoothing == "none"
        else {"blend": cfg.selector.features.model_dump(mode="json")}
    )
    reference = {"reference_model": cfg.reference_model.model_dump(mode="json")}
    return reference | blend | i.model_key(cfg.implicit_reward.response_tokens)


def _guard(i: RankInputs, seed: int) -> Scored:
    from .guard import guard_scores  # its model-loading code is needed only here

    table = guard_scores(
        i.trainable.samples,
        i.cfg.guard,
        p=i.p_top,
        device=i.device,
        precision=i.cfg.runtime.precision,
        progress=i.progress,
    )
    return table, i.trainable.dropped


def _oracle(i: RankInputs, seed: int) -> Scored:
    labels = i.cfg.labels
    where = ", ".join(str(d.path) for d in as_list(i.cfg.data))
    records = ((s.index, s.record) for s in i.trainable.samples)
    harmful = labels.harmful_flags(records, where)
    return oracle_scores(i.trainable.samples, harmful, seed, i.p_top), i.trainable.dropped


RANKERS: dict[str, Ranker] = {
    r.name: r
    for r in (
        Ranker("seal", "the selector's top p", score=None),
        Ranker("random", "a uniformly random p", _random),
        Ranker(
            "dsir",
            "the top p by DSIR importance weights, the safe set as the target",
            _dsir,
            key=_dsir_key,
        ),
        Ranker(
            "frozen-loss",
            "the top p by the aligned model's loss",
            _frozen_loss,
            key=lambda i: i.model_key(i.cfg.selector.response_tokens),
            per_seed=False,
        ),
        Ranker(
            "implicit-reward",
            "the top p by log π_aligned(y|x) − log π_reference(y|x)",
            _implicit_reward,
            key=_implicit_reward_key,
            needs="reference_model",
            per_seed=False,
        ),
        Ranker(
            "oracle",
            "a random p of the samples not labelled harmful: a benchmark's upper bound",
            _oracle,
            key=lambda i: {"labels": i.cfg.labels.model_dump(mode="json")},
            needs="labels",
        ),
        Ranker(
            "guard",
            "the top p by a safety classifier's probability of safe",
            _guard,
            key=lambda i: {"guard": i.cfg.guard.model_dump(mode="json")},
            needs="guard",
            per_seed=False,
        ),
    )
}


@dataclass(frozen=True)
class Method:
    """One row of the comparison. `ranking`: the ranker whose top p (or soft weights) it
    trains on; None trains on every sample. `soft`: weight every sample's loss instead of
    keeping a top p. `demonstrations`: add the SafeInstr safety demonstrations, never
    filtered."""

    name: str
    summary: str
    ranking: str | None = None
    soft: bool = False
    demonstrations: bool = False

    @property
    def keeps_fraction(self) -> bool:
        """Keeps a fraction p of the data, so it gets one run per p."""
        return self.ranking is not None and not self.soft

    @property
    def needs(self) -> str | None:
        return RANKERS[self.ranking].needs if self.ranking else None


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("full", "every sample (the paper's Standard SFT)"),
        *(Method(r.name, r.summary, r.name) for r in RANKERS.values()),
        Method("safeinstr", "every sample plus demonstrations", demonstrations=True),
        Method("seal+safeinstr", "top p plus demonstrations", "seal", demonstrations=True),
        Method("seal-soft", "every sample, weighted by the selector", "seal", soft=True),
    )
}
# What `seal run` compares when `methods` is not set: every method that needs no extra model.
DEFAULT_METHODS = tuple(name for name, m in METHODS.items() if m.needs is None)
# Methods that keep a fraction p of the data, and so get one row per p.
SELECTING = tuple(name for name, m in METHODS.items() if m.keeps_fraction)


def methods_of(cfg: ExperimentRecipeConfig) -> list[str]:
    """cfg.methods (null: DEFAULT_METHODS), checked: known, and given what they need."""
    names = list(DEFAULT_METHODS) if cfg.methods is None else cfg.methods
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ConfigError(
            f"methods: unknown method(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(METHODS)}"
        )
    missing = [
        f"method {m} needs `{METHODS[m].needs}`"
        for m in names
        if METHODS[m].needs and getattr(cfg, METHODS[m].needs) is None
    ]
    if missing:
        raise ConfigError("; ".join(missing))
    return names


def rankings_needed(methods: list[str]) -> list[str]:
    """The rankers `methods` train on, in the registry's order."""
    wanted = {METHODS[m].ranking for m in methods}
    return [name for name in RANKERS if name in wanted]
