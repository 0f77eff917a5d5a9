"""`seal select` and `seal score`: the selector (`selector`), its training (`selector_train`)
and the recipes' top-level configs."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .base import ConfigError, NonFinite, Strict
from .migrate import Recipe
from .sections import (
    DataConfig,
    LoraSettings,
    ModelConfig,
    RuntimeConfig,
    Sources,
    TokenizeConfig,
    as_list,
)


class FeatureConfig(Strict):
    """What a feature selector sees of a sample, and how its linear map is regularised."""

    source: Literal["ngrams", "hidden"] = Field(
        "ngrams",
        description="ngrams: hashed word n-grams of the prompt and the start of the "
        "response (tokenizer-free: a selection then transfers across model families); "
        "hidden: the frozen model's hidden states over the prompt and the first "
        "selector.response_tokens response tokens",
    )
    ngram_max: int = Field(2, ge=1, le=4, description="ngrams: word n-grams up to this n")
    buckets: int = Field(2**18, ge=64, description="ngrams: hash buckets")
    response_words: int = Field(
        8, ge=0, description="ngrams: how many words of the response start are features"
    )
    layer: int = Field(-1, description="hidden: which layer's states (-1: the last)")
    pooling: Literal["mean", "last"] = Field(
        "mean", description="hidden: mean over the response positions, or the last one"
    )
    residual: bool = Field(
        False,
        description="add one free logit per sample to w·x + b (it cannot score unseen samples)",
    )
    l2: float = Field(0.0, ge=0, description="weight decay on w")


class ProbeConfig(Strict):
    """The prompt probe (sealft.selection.probe): a linear probe on the aligned model's state
    at the end of each prompt, fitted on the safe set's refused against its answered
    requests; it judges the request, where the learned logits judge the response."""

    weight: float | None = Field(
        None,
        ge=0,
        description="final logit = smoothed logit − weight × (the probe's standardised "
        "score), in units of the logits' standard deviation; 0: no probe. null (auto): "
        "1 for a logits selector, 0 for a feature selector (whose map `seal score` must "
        "reproduce)",
    )
    depth: float = Field(
        0.55,
        gt=0,
        le=1,
        description="which layer, as a fraction of the model's depth (SmolLM2-135M: 0.55 is "
        "layer 16 of 30)",
    )
    layer: int | None = Field(None, ge=0, description="the layer itself (overrides depth)")
    c: float = Field(
        0.1, gt=0, description="inverse L2 strength of the logistic regression (scikit-learn C)"
    )
    detector: str = Field(
        "phrases", description="which refusal detector tells the safe set's refusals apart"
    )


class SelectorConfig(Strict):
    kind: Literal["logits", "features"] = Field(
        "logits",
        description="logits: one free logit per sample (the paper's); features: logit = "
        "w·x + b over the sample's features (selector.features), learned by the same "
        "bilevel objective, so evidence pools across similar samples and `seal score` can "
        "score samples the selector never saw",
    )
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    prompt_probe: ProbeConfig = Field(default_factory=ProbeConfig)
    smoothing: Literal["auto", "none", "crossfit", "blend"] = Field(
        "auto",
        description="crossfit: replace each learned logit by a ridge regression's prediction "
        "from selector.features, fitted on the other folds (5), so that no sample's score "
        "uses its own logit; blend: the standardised learned logit plus the standardised "
        "crossfit prediction (the own measurement kept, its noise pooled with similar "
        "samples'); auto: blend for a logits selector, none for a feature selector (its "
        "map already pools, and `seal score` then reproduces the run's scores)",
    )
    algorithm: Literal[1, 2] = Field(
        1,
        description="1: penalty method with an auxiliary lower-level adapter; 2: the "
        "memory-efficient variant without it (the paper's default)",
    )
    activation: Literal["softmax", "sigmoid"] = Field(
        "softmax", description="weights: N*softmax(logits) (mean 1) or 2*sigmoid(logits)"
    )
    optimizer: Literal["adam", "sgd"] = Field("sgd", description="optimiser of the logits")
    lr: float = Field(1.0, gt=0, description="learning rate of the logits")
    baseline: Literal["none", "batch"] = Field(
        "none",
        description="batch: centre each batch's values on their weighted mean before the "
        "logit step (a lower-variance estimate of the same gradient); none: the paper's",
    )
    response_tokens: int | None = Field(
        4,
        ge=1,
        description="per-sample loss over the first K response tokens only (null: all of them)",
    )
    epochs: int = Field(2, ge=1, description="passes over the fine-tuning data")
    gamma_start: float = Field(0.0, ge=0, lt=1, description="penalty weight γ in the first epoch")
    gamma_step: float = Field(0.05, ge=0, description="increase of γ per epoch")
    gamma_max: float = Field(0.95, ge=0, lt=1, description="cap on γ")
    init: Literal["auto", "zeros", "implicit-reward"] = Field(
        "auto",
        description="starting logits: zeros (the paper's), or the implicit reward log "
        "π_model − log π_reference over the whole response, standardised and times "
        "init_scale (needs reference_model); a feature selector starts from the ridge fit "
        "of its map to them. auto: the implicit reward when reference_model is set, zeros "
        "otherwise",
    )
    init_scale: float = Field(
        1.0, gt=0, description="logit units per standard deviation of the starting reward"
    )
    warmup_epochs: int = Field(
        1,
        ge=0,
        description="first epochs that train the model(s) with the logits frozen, so that the "
        "auxiliary model tracks the lower-level solution before its losses are used "
        "(counted within epochs, and never the last one)",
    )

    def smoothing_method(self) -> Literal["none", "crossfit", "blend"]:
        """selector.smoothing with auto resolved."""
        if self.smoothing == "auto":
            return "blend" if self.kind == "logits" else "none"
        return self.smoothing

    @model_validator(mode="after")
    def _probe_fits_kind(self) -> SelectorConfig:
        if self.kind == "features" and self.prompt_probe.weight:
            raise ValueError(
                "selector.prompt_probe.weight must be 0 for a feature selector: `seal score` "
                "scores unseen samples with the map alone, and would not reproduce the run"
            )
        return self

    def probe_weight(self) -> float:
        """selector.prompt_probe.weight with auto resolved."""
        weight = self.prompt_probe.weight
        if weight is None:
            return 1.0 if self.kind == "logits" else 0.0
        return weight

    def selector_learns(self, epoch: int) -> bool:
        """Warm-up never takes the last epoch: at least one epoch always trains the logits."""
        return epoch >= min(self.warmup_epochs, self.epochs - 1)

    def gamma(self, epoch: int) -> float:
        return min(self.gamma_start + epoch * self.gamma_step, self.gamma_max)


class SelectorTrainConfig(Strict):
    """How the selector's model(s) θ (and θ̂) are trained while the logits learn."""

    lr: float = Field(3e-4, gt=0, description="model learning rate (Adam, betas 0.9/0.95)")
    batch_size: int = Field(8, ge=1, description="fine-tuning samples per optimiser step")
    safe_batch_size: int | None = Field(
        None, ge=1, description="safe samples per optimiser step (null: batch_size)"
    )
    micro_batch_size: int | None = Field(
        None, ge=1, description="samples per forward pass; gradients accumulate (null: no split)"
    )
    checkpoint_every: int | None = Field(
        50,
        ge=1,
        description="save a checkpoint every N optimiser steps, and at each epoch's end, so "
        "that a stopped run resumes from within the epoch with the same scores (null: at "
        "each epoch's end only). Under full fine-tuning each holds the whole model(s) and "
        "their Adam moments: raise it there",
    )
    on_nonfinite: NonFinite = Field(
        "stop",
        description="a NaN or infinite per-sample loss: stop (an error naming the epoch, step "
        "and sample IDs; the last checkpoint stays) or skip (leave those samples out of that "
        "step's model and logit updates, warn, and count them in metrics.jsonl)",
    )


class SelectRecipeConfig(Recipe):
    """Everything `seal select` needs."""

    recipe: ClassVar[str] = "select"

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: Sources = Field(
        default_factory=DataConfig,
        description="the fine-tuning data; a YAML list of sources is concatenated",
    )
    safe: Sources = Field(
        default_factory=DataConfig,
        description="the trusted safe set; a YAML list of sources is concatenated. Mix "
        "refusals with good answers to ordinary requests: on the section-6 mixture that took "
        "the AUROC from 0.815 to 0.908 (docs/selector.md)",
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    selector: SelectorConfig = Field(default_factory=SelectorConfig)
    selector_train: SelectorTrainConfig = Field(default_factory=SelectorTrainConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    reference_model: ModelConfig | None = Field(
        None,
        description="the model's pre-alignment base, for selector.init=implicit-reward",
    )
    p: float = Field(0.8, gt=0, le=1, description="fraction of samples kept (paper: 0.8)")
    seed: int = Field(0, description="seed of every random choice")
    output_dir: str = Field("runs/select", description="run folder for every output")

    def check_ready(self) -> None:
        missing = [
            k
            for k, v in (
                ("model.name_or_path", self.model.name_or_path),
                ("data", all(s.path or s.hub for s in as_list(self.data))),
                ("safe", all(s.path or s.hub for s in as_list(self.safe))),
            )
            if not v
        ]
        if missing:
            raise ConfigError(
                "missing required setting(s): "
                + ", ".join(
                    m if m.startswith("model") else f"{m}.path (or {m}.hub)" for m in missing
                )
            )
        if self.selector.init == "implicit-reward" and self.reference_model is None:
            raise ConfigError("selector.init=implicit-reward needs reference_model")

    def selector_start(self) -> Literal["zeros", "implicit-reward"]:
        """Where the logits start, with selector.init=auto resolved."""
        if self.selector.init == "auto":
            return "zeros" if self.reference_model is None else "implicit-reward"
        return self.selector.init


class ScoreRecipeConfig(Recipe):
    """Everything `seal score` needs: a finished feature-selector run and new data."""

    recipe: ClassVar[str] = "score"
    selector: str | None = Field(
        None, description="a `seal select` run folder whose selector has selector.kind=features"
    )
    data: Sources = Field(
        default_factory=DataConfig,
        description="the samples to score; a YAML list of sources is concatenated",
    )
    p: float = Field(0.8, gt=0, le=1, description="fraction of samples marked selected")
    runtime: RuntimeConfig | None = Field(
        None,
        description="device and precision of hidden-state features (null: the selector "
        "run's, so that its own samples score exactly as they did there)",
    )
    output_dir: str = Field("runs/score", description="folder for scores.parquet")

    def check_ready(self) -> None:
        missing = [
            k
            for k, v in (
                ("selector", self.selector),
                ("data.path (or data.hub)", all(s.path or s.hub for s in as_list(self.data))),
            )
            if not v
        ]
        if missing:
            raise ConfigError("missing required setting(s): " + ", ".join(missing))
