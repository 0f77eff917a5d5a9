"""What `seal select` ranks by: the score as named stages, settled once per run.

    start      where the bilevel logits start: zeros (the paper's), or each sample's
               implicit reward against reference_model, standardised, × init_scale
    bilevel    the logits the bilevel steps learn (selection.bilevel): always
    smoothing  none | crossfit | blend: the logits pooled over similar samples'
               n-gram features (selection.smoothing)
    probe      − weight × spread × the prompt probe's standardised score (0: off)

`plan_for` settles every `auto` of the config (and the probe's automatic weight against
the safe set) into a `ScorePlan`, which `seal select` logs and writes to plan.json;
`measure` computes the frozen-model signals the plan needs, before any adapter is
attached; `compose` is the only place the stages meet. The bilevel logits themselves are
kept in selector.safetensors, the composed score in scores.parquet's `score` column.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from ..config import SelectRecipeConfig
from ..data import Encoded, encode
from ..model.load import load_configured
from .baselines import implicit_rewards
from .features import compute_features
from .probe import prompt_probe, refusals
from .smoothing import blend, crossfit, standardised

log = logging.getLogger(__name__)
PLAN = "plan.json"


@dataclass(frozen=True)
class ScorePlan:
    """The stages of one run's score, every `auto` settled."""

    selector: Literal["logits", "features"]
    start: Literal["zeros", "implicit-reward"]
    init_scale: float
    smoothing: Literal["none", "crossfit", "blend"]
    probe_weight: float
    seed: int

    @property
    def needs_features(self) -> bool:
        return self.selector == "features" or self.smoothing != "none"

    def stages(self) -> list[str]:
        """The stages in the order they apply, as a reader would name them."""
        out = [
            f"start: {self.start}" + (f" × {self.init_scale:g}" if self.start != "zeros" else "")
        ]
        out.append(f"bilevel ({self.selector} selector)")
        if self.smoothing != "none":
            out.append(f"smoothing: {self.smoothing}")
        if self.probe_weight:
            out.append(f"prompt probe: − {self.probe_weight:g} × spread × probe")
        return out

    def as_dict(self) -> dict:
        return {**asdict(self), "stages": self.stages()}


def plan_for(cfg: SelectRecipeConfig, safe_samples=None) -> ScorePlan:
    """The plan of `cfg`. With `safe_samples`, a probe left at its automatic weight is off
    when no safe sample is a refusal (it would have nothing to learn from); an explicit
    weight then fails in the probe instead."""
    sel = cfg.selector
    weight = sel.probe_weight()
    auto = sel.prompt_probe.weight is None
    if (
        weight
        and auto
        and safe_samples is not None
        and not any(refusals(sel.prompt_probe, safe_samples))
    ):
        log.warning(
            "selector.prompt_probe: no safe sample is a refusal (detector %r), so the "
            "probe has nothing to learn from and is off for this run; set "
            "selector.prompt_probe.weight=0 to say so",
            sel.prompt_probe.detector,
        )
        weight = 0.0
    return ScorePlan(
        selector=sel.kind,
        start=cfg.selector_start(),
        init_scale=sel.init_scale,
        smoothing=sel.smoothing_method(),
        probe_weight=float(weight),
        seed=cfg.seed,
    )


@dataclass
class Signals:
    """What the frozen model says of each fine-tuning sample, in the samples' order."""

    features: tuple | None = None  # (matrix, stats) of selection.features
    start: torch.Tensor | None = None  # the starting logits; None for zeros
    probe: torch.Tensor | None = None  # the prompt probe's score; None when off


def measure(
    plan: ScorePlan,
    cfg: SelectRecipeConfig,
    model,
    tokenizer,
    ft: Encoded,
    sf: Encoded,
    *,
    device,
    progress: bool = False,
    with_start: bool = True,
) -> Signals:
    """Every signal the plan needs, from the frozen model: call before any adapter is
    attached. `with_start=False` skips the start (a resumed run has its logits)."""
    kw = {"batch_size": cfg.selector_train.batch_size, "device": device}
    features = None
    if plan.needs_features:
        features = compute_features(
            cfg.selector.features,
            ft.samples,
            model=model,
            encoded=ft,
            precision=cfg.runtime.precision,
            progress=progress,
            **kw,
        )
    probe = None
    if plan.probe_weight:
        probe = prompt_probe(
            cfg.selector.prompt_probe,
            model,
            tokenizer,
            ft.samples,
            sf.samples,
            cfg.tokenize,
            seed=cfg.seed,
            precision=cfg.runtime.precision,
            **kw,
        )
    start = None
    if with_start and plan.start == "implicit-reward":
        start = plan.init_scale * standardised(_implicit_reward(cfg, model, tokenizer, ft, device))
    return Signals(features, start, probe)


def _implicit_reward(cfg: SelectRecipeConfig, model, tokenizer, ft: Encoded, device):
    """log π_model − log π_reference of every sample over its whole response, whatever
    selector.response_tokens is: on the real-data benchmark's JailbreakBench mix it ranked
    the harmful rows last at AUROC 0.894 over the whole response and 0.633 over the first
    4 tokens (benchmarks/real)."""
    whole = encode(
        ft.samples,
        tokenizer,
        max_length=cfg.tokenize.max_length,
        overflow="truncate",  # keeps exactly the samples that ft kept
        template=cfg.tokenize.template,
    )
    return implicit_rewards(
        model,
        load_configured(cfg.reference_model)[0].to(device),
        tokenizer,
        whole,
        batch_size=cfg.selector_train.batch_size,
        device=device,
        precision=cfg.runtime.precision,
    ).float()


def compose(plan: ScorePlan, logits: torch.Tensor, signals: Signals) -> torch.Tensor:
    """The score the samples are ranked by: the bilevel logits, smoothed, less the probe
    times its weight in the logits' own spread."""
    score = logits.detach()
    if plan.smoothing == "crossfit":
        score = crossfit(signals.features[0], score, seed=plan.seed)
    elif plan.smoothing == "blend":
        score = blend(signals.features[0], score, seed=plan.seed)
    if signals.probe is not None:
        spread = score.std().clamp(min=1e-6) if len(score) > 1 else 1.0
        score = score - plan.probe_weight * spread * standardised(signals.probe)
    return score
