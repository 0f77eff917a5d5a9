"""`seal run`: the methods compared, their baselines' settings, the labels a benchmark
knows, and the recipe's top-level config."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .base import ConfigError, Strict
from .evaluate import EvalConfig
from .migrate import Recipe
from .sections import (
    DataConfig,
    LoraSettings,
    ModelConfig,
    RuntimeConfig,
    SFTConfig,
    Sources,
    TokenizeConfig,
)
from .select import SelectorConfig, SelectorTrainConfig, SelectRecipeConfig


class SafeInstrConfig(Strict):
    data: Sources | None = Field(None, description="safety demonstrations (null: the safe set)")
    count: int | None = Field(
        None, ge=1, description="a seeded random subset of this many (null: all of them)"
    )


class DSIRConfig(Strict):
    ngrams: int = Field(2, ge=1, description="hashed n-gram features up to this n")
    num_buckets: int = Field(10000, ge=16, description="hash buckets of the n-gram features")


class ImplicitRewardConfig(Strict):
    response_tokens: int | None = Field(
        None,
        ge=1,
        description="compare the two models over the first K response tokens only (null: "
        "the whole response)",
    )
    smoothing: Literal["none", "blend"] = Field(
        "none",
        description="blend: each sample's standardised reward plus the standardised "
        "cross-fitted ridge prediction from the hashed n-grams of similar samples (the "
        "n-gram settings of selector.features; folds drawn with seed 0), the smoothing SEAL's "
        "defaults apply to their logits. On the real-data benchmark this matched SEAL's "
        "default ranking on two harmful kinds of three in a quarter of the time "
        "(BENCHMARKS.md); none: the raw reward",
    )


class GuardConfig(Strict):
    """A safety classifier whose verdict on (prompt, response) ranks the samples."""

    model: str = Field(description="Hub id or local folder of the guard model")
    kind: Literal["auto", "classifier", "causal"] = Field(
        "auto",
        description="classifier: a sequence-classification model (its unsafe label's "
        "probability); causal: a guard LM used through its chat template, Llama Guard "
        "style (the probability of unsafe_token as the verdict's first token); auto: "
        "classifier when the model's architecture is one",
    )
    unsafe_label: str | int | None = Field(
        None,
        description="classifier: the label (name or index) meaning unsafe (null: the first "
        "label whose name contains unsafe, harm or toxic)",
    )
    unsafe_token: str = Field("unsafe", description="causal: the verdict word for unsafe")
    safe_token: str = Field("safe", description="causal: the verdict word for safe")
    prompt: str | None = Field(
        None,
        description="causal: ask an ordinary chat LM instead of a guard, zero-shot: this "
        "classification prompt, with {conversation} where the User/Agent transcript goes, "
        "is its one user turn and the verdict is its reply's first word; 'llama-guard' "
        "names Llama Guard 3's own wording (null: the guard's chat template does it)",
    )
    batch_size: int = Field(8, ge=1, description="samples per forward pass")
    max_length: int = Field(1024, ge=16, description="longest input, in tokens (cut from the left)")
    trust_remote_code: bool = Field(False, description="allow model code from the Hub")

    @model_validator(mode="after")
    def _prompt_names_the_conversation(self) -> GuardConfig:
        if self.prompt not in (None, "llama-guard") and "{conversation}" not in self.prompt:
            raise ValueError("guard.prompt must hold {conversation}, or be 'llama-guard'")
        if self.prompt is not None and self.kind == "classifier":
            raise ValueError("guard.prompt asks a causal LM; a classifier takes no prompt")
        return self


class LabelConfig(Strict):
    field: str = Field(description="record field that marks harmful samples, e.g. label")
    harmful: list[str | int | bool] = Field(
        default_factory=lambda: [True, 1, "harmful"],
        description="values of that field that mean harmful",
    )

    def harmful_flags(self, records: Iterable[tuple[int, dict]], where: str) -> list[bool]:
        """Whether each (row index, record) is labelled harmful; every record must carry
        the field."""
        flags = []
        for index, record in records:
            if self.field not in record:
                raise ConfigError(
                    f"{where}: row {index} has no `{self.field}` field (labels.field); the "
                    "oracle method needs a label on every row"
                )
            flags.append(record[self.field] in self.harmful)
        return flags


class ExperimentRecipeConfig(Recipe):
    """Everything `seal run` needs: the selector's settings plus methods, seeds and p."""

    recipe: ClassVar[str] = "experiment"

    model: ModelConfig = Field(default_factory=ModelConfig)
    selector_model: ModelConfig | None = Field(
        None,
        description="train the selector with this (smaller) model instead, and transfer "
        "its selection to `model` through sample IDs",
    )
    data: Sources = Field(
        default_factory=DataConfig,
        description="the fine-tuning data; a YAML list of sources is concatenated",
    )
    safe: Sources = Field(default_factory=DataConfig, description="the trusted safe set")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    selector: SelectorConfig = Field(default_factory=SelectorConfig)
    selector_train: SelectorTrainConfig = Field(default_factory=SelectorTrainConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig, description="every method's fine-tune")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    methods: list[str] | None = Field(
        None,
        description="methods to compare, by name (`seal run --help` lists them; "
        "implicit-reward needs reference_model, guard needs guard, oracle needs labels); "
        "null: every method that needs no extra model",
    )
    reference_model: ModelConfig | None = Field(
        None,
        description="the aligned model's pre-alignment base (e.g. Llama-3-8B for "
        "Llama-3-8B-Instruct), for the implicit-reward ranking",
    )
    implicit_reward: ImplicitRewardConfig = Field(default_factory=ImplicitRewardConfig)
    guard: GuardConfig | None = Field(None, description="the safety classifier of `guard`")
    p: float | list[float] = Field(
        0.8, description="fraction kept by the selecting methods; a list sweeps it"
    )
    seeds: list[int] = Field(default_factory=lambda: [0], description="one run per seed")
    safeinstr: SafeInstrConfig = Field(default_factory=SafeInstrConfig)
    dsir: DSIRConfig = Field(default_factory=DSIRConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    labels: LabelConfig | None = Field(
        None,
        description="known harmful samples in the data: for the report's score "
        "distributions and AUROC, and the `oracle` method's perfect ranking; no other "
        "method sees them",
    )
    report: bool = Field(True, description="write report.html at the end")
    output_dir: str = Field("runs/experiment", description="run folder for every output")

    @model_validator(mode="after")
    def _check(self) -> ExperimentRecipeConfig:
        for p in self.p_values():
            if not 0 < p <= 1:
                raise ValueError(f"p must lie in (0, 1], got {p}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if self.methods is not None and not self.methods:
            raise ValueError("methods must name at least one method")
        return self

    def p_values(self) -> list[float]:
        return self.p if isinstance(self.p, list) else [self.p]

    def check_ready(self) -> None:
        """The selector's settings; the methods are checked against the ranker registry
        (`selection.rankers.methods_of`) when `seal run` starts."""
        self.select_config(self.seeds[0]).check_ready()

    def select_config(self, seed: int) -> SelectRecipeConfig:
        """The `seal select` run behind the seal methods for one seed."""
        return SelectRecipeConfig(
            model=self.selector_model or self.model,
            data=self.data,
            safe=self.safe,
            lora=self.lora,
            tokenize=self.tokenize,
            selector=self.selector,
            selector_train=self.selector_train,
            runtime=self.runtime,
            reference_model=self.reference_model if self.selector.init != "zeros" else None,
            # The fine-tunes apply their own p to the scores; leaving the selector's p at its
            # default keeps a change of p (or of the sweep) from re-training the selector.
            seed=seed,
            output_dir=str(Path(self.output_dir) / f"seed{seed}" / "select"),
        )
