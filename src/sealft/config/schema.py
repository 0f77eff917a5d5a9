"""The settings of every recipe, kept apart from the code that uses them (as PEFT does).

Each recipe has one top-level config (`SelectRecipeConfig`, `FinetuneRecipeConfig`,
`EvalRecipeConfig`, `ExperimentRecipeConfig`) built from shared sections: `model`, `data`,
`tokenize`, `lora`, `runtime` (device and precision, the same in every recipe), and the
recipe's own (`selector` + `selector_train`, `sft`, `eval`). Unknown keys and ill-typed
values are errors that name the key. Keys renamed in 0.2 still load, with a FutureWarning,
for one release (`_RENAMED`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..selection.methods import DEFAULT_METHODS, METHODS, TABLE


class ConfigError(ValueError):
    pass


# What a training loop does with a NaN or infinite per-sample loss.
NonFinite = Literal["stop", "skip"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- renamed keys


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"config key '{old}' is deprecated and will be removed in the next release; use '{new}'",
        FutureWarning,
        stacklevel=2,
    )


def _to_runtime(tree: dict, key: str, value: Any, old: str) -> None:
    runtime = tree.setdefault("runtime", {})
    if not isinstance(runtime, dict):
        return  # validation reports the malformed section
    if key in runtime and runtime[key] != value:
        raise ValueError(f"'{old}' ({value!r}) conflicts with 'runtime.{key}' ({runtime[key]!r})")
    runtime[key] = value
    _deprecated(old, f"runtime.{key}")


def _sft_batches(section: dict) -> None:
    """Old SFT sections counted batch_size per forward pass, times gradient_accumulation;
    `sft.batch_size` counts samples per optimiser step, like every other batch_size."""
    steps = section.pop("gradient_accumulation", None)
    if steps is None or steps == 1:
        return
    forward = section.get("batch_size", SFTConfig.model_fields["batch_size"].default)
    if isinstance(forward, int) and isinstance(steps, int):
        section["batch_size"], section["micro_batch_size"] = forward * steps, forward


def _rename_section(tree: dict, old: str, new: str, *, sft: bool = False) -> None:
    if not isinstance(tree.get(old), dict):
        return
    if new in tree:
        raise ValueError(f"give either '{old}' (deprecated) or '{new}', not both")
    section = dict(tree.pop(old))
    for key in ("device", "precision"):
        if key in section:
            _to_runtime(tree, key, section.pop(key), f"{old}.{key}")
    if sft:
        _sft_batches(section)
    tree[new] = section
    _deprecated(old, new)


# Old top-level section -> (new section, is it an SFT section), per recipe.
_RENAMED: dict[str, dict[str, tuple[str, bool]]] = {
    "select": {"train": ("selector_train", False)},
    "finetune": {"train": ("sft", True)},
    "experiment": {"train": ("selector_train", False), "finetune": ("sft", True)},
    "eval": {},
    "score": {},
}


def _migrate(data: Any, recipe: str) -> Any:
    if not isinstance(data, dict):
        return data
    tree = dict(data)
    for old, (new, sft) in _RENAMED[recipe].items():
        _rename_section(tree, old, new, sft=sft)
    if recipe == "eval":
        for key in ("device", "precision"):
            if key in tree:
                _to_runtime(tree, key, tree.pop(key), key)
    return tree


class _Recipe(_Strict):
    """A recipe's top-level config: loads the keys renamed in 0.2 (see `_RENAMED`)."""

    recipe: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        return _migrate(data, cls.recipe)


class DataConfig(_Strict):
    path: str | None = Field(None, description="local file: .json, .jsonl, .csv, .parquet (.gz ok)")
    hub: str | None = Field(None, description="Hugging Face Hub data set name (instead of path)")
    hub_config: str | None = Field(None, description="Hub data set configuration name")
    split: str = Field("train", description="Hub split")
    revision: str | None = Field(None, description="Hub revision (commit, tag or branch)")
    format: Literal["auto", "alpaca", "messages", "prompt_completion", "hh"] = Field(
        "auto", description="record format; auto detects it from the first record's fields"
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="map format fields to source columns, e.g. {input: context, output: response}",
    )
    skip: int = Field(0, ge=0, description="skip the first N records (e.g. to hold out a split)")
    limit: int | None = Field(None, ge=1, description="use only the first N records (after skip)")

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.path is not None and self.hub is not None:
            raise ValueError("give either path or hub, not both")
        return self


Sources = DataConfig | list[DataConfig]


def as_list(sources: Sources | None) -> list[DataConfig]:
    if sources is None:
        return []
    return sources if isinstance(sources, list) else [sources]


class ModelConfig(_Strict):
    name_or_path: str | None = Field(
        None, description="Hub id, local folder, or a .gguf file of an aligned causal LM"
    )
    gguf_file: str | None = Field(None, description="GGUF file name inside name_or_path")
    revision: str | None = Field(None, description="Hub revision")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype the weights are loaded in"
    )
    trust_remote_code: bool = Field(False, description="allow model code from the Hub")


class LoraSettings(_Strict):
    enabled: bool = Field(True, description="train LoRA adapters (false: full fine-tuning)")
    r: int = Field(16, ge=1, description="LoRA rank (paper: 16)")
    alpha: int = Field(16, ge=1, description="LoRA alpha (paper: 16)")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout (paper: 0)")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"], description="modules to adapt (paper: q, v)"
    )


class TokenizeConfig(_Strict):
    max_length: int = Field(512, ge=8, description="longest token sequence (paper: 2048)")
    overflow: Literal["truncate", "drop"] = Field(
        "truncate", description="over-long samples: cut the response, or drop the sample"
    )
    template: Literal["auto", "chat", "plain"] = Field(
        "auto",
        description="chat: the tokenizer's chat template; plain: 'Human: {prompt}\\nAssistant: '; "
        "auto: chat when the tokenizer has one",
    )


class FeatureConfig(_Strict):
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


class ProbeConfig(_Strict):
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


class SelectorConfig(_Strict):
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


class RuntimeConfig(_Strict):
    """Where and how fast every model of a recipe runs; one section shared by all recipes."""

    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast where the hardware runs it fast"
    )
    attention: Literal["auto", "model", "eager", "sdpa"] = Field(
        "auto",
        description="attention kernel of the training passes (selector and SFT). auto: eager "
        "on a CPU for batches of at most 256 tokens (PyTorch's fused attention backward is "
        "slow there: a training pass ran 15-25% faster, BENCHMARKS.md), else the model's; "
        "model: the one it was loaded with; eager, sdpa: always that one",
    )
    compile: bool = Field(
        False,
        description="compile each decoder layer with torch.compile for the training passes "
        "(selector and SFT). On a 2-core CPU a compiled epoch cost 18-34% less but compiling "
        "took about a minute a run: it paid from about 400 rows at 2 epochs (BENCHMARKS.md)",
    )


class SelectorTrainConfig(_Strict):
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


class SelectRecipeConfig(_Recipe):
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


class SFTConfig(_Strict):
    """Supervised fine-tuning, run by transformers' Trainer."""

    lr: float = Field(3e-4, gt=0, description="peak learning rate (AdamW, betas 0.9/0.95)")
    epochs: float = Field(2, gt=0, description="passes over the training data (paper: 2-3)")
    batch_size: int = Field(8, ge=1, description="samples per optimiser step")
    micro_batch_size: int | None = Field(
        None,
        ge=1,
        description="samples per forward pass; gradients accumulate over batch_size / "
        "micro_batch_size passes (null: batch_size)",
    )
    scheduler: Literal[
        "linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts"
    ] = Field("linear", description="learning-rate schedule (transformers' names)")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="fraction of steps spent warming up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    save_steps: int | None = Field(
        None, ge=1, description="checkpoint every N steps so a stopped run resumes (null: never)"
    )
    logging_steps: int = Field(10, ge=1, description="log the loss every N steps")
    on_nonfinite: NonFinite = Field(
        "stop",
        description="a NaN or infinite per-sample loss: stop (an error naming the step and "
        "sample IDs; the last checkpoint stays) or skip (leave those samples out of that "
        "batch's gradient, with a warning)",
    )
    report_to: list[str] = Field(
        default_factory=lambda: ["none"],
        description="Trainer loggers: none, tensorboard, wandb, ... (their packages must be "
        "installed)",
    )

    @model_validator(mode="after")
    def _whole_accumulation(self) -> SFTConfig:
        if self.batch_size % self.forward_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of micro_batch_size "
                f"{self.micro_batch_size}"
            )
        return self

    @property
    def forward_batch_size(self) -> int:
        return self.micro_batch_size or self.batch_size

    @property
    def accumulation_steps(self) -> int:
        return self.batch_size // self.forward_batch_size


class ApplySelectionConfig(_Strict):
    """Which scores `seal finetune` trains on, and how it applies them."""

    scores: str | None = Field(
        None,
        description="scores.parquet from `seal select` (or any file with sample_id, logit, "
        "rank, weight); null: train on every sample",
    )
    p: float = Field(0.8, gt=0, le=1, description="fraction of scored samples kept (mode top)")
    mode: Literal["top", "soft"] = Field(
        "top",
        description="top: keep the p highest-ranked samples; soft: keep all, each sample's "
        "loss weighted by its score's weight",
    )


class ScoreRecipeConfig(_Recipe):
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


class FinetuneRecipeConfig(_Recipe):
    """Everything `seal finetune` needs."""

    recipe: ClassVar[str] = "finetune"

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: Sources = Field(
        default_factory=DataConfig,
        description="the fine-tuning data; a YAML list of sources is concatenated",
    )
    selection: ApplySelectionConfig = Field(default_factory=ApplySelectionConfig)
    extra: Sources | None = Field(
        None,
        description="data added after selection and never filtered (e.g. safety "
        "demonstrations, as in SafeInstr); a YAML list of sources is concatenated",
    )
    extra_count: int | None = Field(
        None, ge=1, description="use a seeded random subset of this many extra samples"
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    save_merged: bool = Field(False, description="also save the LoRA-merged full model")
    seed: int = Field(0, description="seed of every random choice")
    output_dir: str = Field("runs/finetune", description="run folder for every output")

    def check_ready(self) -> None:
        missing = [
            k
            for k, v in (
                ("model.name_or_path", self.model.name_or_path),
                ("data.path (or data.hub)", all(s.path or s.hub for s in as_list(self.data))),
            )
            if not v
        ]
        if missing:
            raise ConfigError("missing required setting(s): " + ", ".join(missing))


Method = Literal[METHODS]


class SafeInstrConfig(_Strict):
    data: Sources | None = Field(None, description="safety demonstrations (null: the safe set)")
    count: int | None = Field(
        None, ge=1, description="a seeded random subset of this many (null: all of them)"
    )


class DSIRConfig(_Strict):
    ngrams: int = Field(2, ge=1, description="hashed n-gram features up to this n")
    num_buckets: int = Field(10000, ge=16, description="hash buckets of the n-gram features")


class GenerationConfig(_Strict):
    max_new_tokens: int = Field(128, ge=1, description="longest answer, in tokens")
    batch_size: int = Field(16, ge=1, description="prompts per generate call (left-padded)")
    sampling: bool = Field(
        False,
        description="sample with temperature/top_p/repetition_penalty (the paper's settings: "
        "1.0, 0.9, 1.2); false: greedy",
    )
    temperature: float = Field(1.0, gt=0, description="sampling temperature")
    top_p: float = Field(0.9, gt=0, le=1, description="nucleus sampling mass")
    repetition_penalty: float = Field(1.2, gt=0, description="repetition penalty")
    seed: int = Field(0, description="sampling seed")


class PromptSetConfig(_Strict):
    path: str = Field(
        description="a prompt file (.csv, .json, .jsonl, .parquet, the {instructions: [...]} "
        "JSON of safety-tuned-llamas) or a folder of them (each file a category)"
    )
    kind: Literal["harmful", "benign"] = Field(
        description="harmful: should be refused (refusal rate); benign: should be answered "
        "(over-refusal rate)"
    )
    name: str | None = Field(None, description="name in the results (default: the file name)")
    prompt_field: str | None = Field(
        None,
        description="column holding the prompt (default: the first of prompt, "
        "instruction, goal, behavior, question, text)",
    )
    category_field: str | None = Field(
        None,
        description="column holding a category (default: category, or Do-Not-Answer's intents)",
    )
    limit: int | None = Field(None, ge=1, description="use only the first N prompts")


class JudgeConfig(_Strict):
    kind: Literal["openai", "hf"] = Field(
        "openai",
        description="openai: any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp's "
        "server); hf: a local Hugging Face model",
    )
    model: str = Field(description="endpoint model name, or the local model's Hub id / folder")
    base_url: str = Field("https://api.openai.com/v1", description="endpoint base URL")
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="environment variable holding the API key (may be unset for local servers)",
    )
    timeout: float = Field(60.0, gt=0, description="seconds to wait for one verdict")
    retries: int = Field(2, ge=0, description="retries after a failed request")
    max_tokens: int = Field(16, ge=1, description="verdict length limit")
    concurrency: int = Field(4, ge=1, description="judge requests in flight at once")
    cache: str | None = Field(
        None, description="JSONL cache of verdicts (default: judgments.jsonl in the output folder)"
    )


class TaskConfig(_Strict):
    """A task scored without a judge: each row's response is the expected answer."""

    data: Sources = Field(
        default_factory=DataConfig,
        description="labelled task rows (single-turn prompt, expected answer, e.g. SST-2 "
        "'positive'): accuracy is the share answered with the expected answer's words first",
    )
    max_new_tokens: int = Field(8, ge=1, description="longest answer, in tokens (greedy)")


class EvalConfig(_Strict):
    benign: Sources | None = Field(
        None, description="held-out benign data: loss and perplexity of its responses"
    )
    safety: Sources | None = Field(
        None,
        description="held-out harmful prompts with safe (refusing) responses: the loss of "
        "answering safely, lower is safer",
    )
    harmful: Sources | None = Field(
        None,
        description="held-out harmful prompts with harmful answers (rows no fine-tuning mix "
        "holds): the loss of answering harmfully, higher is safer. It falls as fine-tuning "
        "teaches harmful answers, even once refusals have gone",
    )
    task: TaskConfig | None = Field(
        None, description="a task scored by exact match: task_accuracy (utility)"
    )
    discrimination: bool = Field(
        True,
        description="with harmful and benign prompt sets: each prompt's probability of an "
        "answer that opens with a refusal (one forward pass per prompt and refusal opener, "
        "no generation), its mean per kind and its AUROC between harmful and benign prompts "
        "(discrimination_auroc: 0.5 for a model that refuses everything or nothing)",
    )
    batch_size: int = Field(16, ge=1, description="samples per evaluation forward pass")
    prompt_sets: list[PromptSetConfig] = Field(
        default_factory=list,
        description="prompts to answer: refusal rate on harmful sets, over-refusal on benign",
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    detector: str = Field(
        "phrases",
        description="refusal detector: phrases (sealft's pinned phrase list) or "
        "'module:attribute' of your own (an object with name, version, describe() and "
        "is_refusal(text))",
    )
    judge: JudgeConfig | None = Field(
        None, description="pairwise judge for win rates on the benign prompt sets"
    )


class EvalRecipeConfig(_Recipe):
    """Everything `seal eval` needs."""

    recipe: ClassVar[str] = "eval"

    model: ModelConfig = Field(default_factory=ModelConfig)
    adapter: str | None = Field(None, description="a LoRA adapter folder to load on the model")
    eval: EvalConfig = Field(default_factory=EvalConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    reference: str | None = Field(
        None,
        description="answers.jsonl of another `seal eval` run: the judge compares this "
        "model's answers with those (win rate)",
    )
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    output_dir: str = Field("runs/eval", description="folder for results.json and answers")

    def check_ready(self) -> None:
        if not self.model.name_or_path:
            raise ConfigError("missing required setting: model.name_or_path")
        e = self.eval
        if not (e.prompt_sets or e.benign or e.safety or e.harmful or e.task):
            raise ConfigError(
                "nothing to evaluate: give eval.prompt_sets (or --harmful/--benign), "
                "eval.benign / eval.safety / eval.harmful data or an eval.task"
            )
        if self.reference and self.eval.judge is None:
            raise ConfigError("reference answers given but no eval.judge to compare them")


class ImplicitRewardConfig(_Strict):
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


class GuardConfig(_Strict):
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


class LabelConfig(_Strict):
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


class ExperimentRecipeConfig(_Recipe):
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
    methods: list[Method] = Field(
        default_factory=lambda: list(DEFAULT_METHODS),
        description="methods to compare (implicit-reward needs reference_model, guard needs guard)",
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
        if not self.methods:
            raise ValueError("methods must name at least one method")
        return self

    def p_values(self) -> list[float]:
        return self.p if isinstance(self.p, list) else [self.p]

    def check_ready(self) -> None:
        self.select_config(self.seeds[0]).check_ready()
        missing = [
            f"method {m} needs `{TABLE[m].needs}`"
            for m in self.methods
            if TABLE[m].needs and getattr(self, TABLE[m].needs) is None
        ]
        if missing:
            raise ConfigError("; ".join(missing))

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
