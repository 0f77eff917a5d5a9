"""The sections every recipe shares: `model`, `data`, `tokenize`, `lora`, `runtime`
(device and precision, the same in every recipe) and `sft`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import NonFinite, Strict


class DataConfig(Strict):
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


class ModelConfig(Strict):
    name_or_path: str | None = Field(
        None, description="Hub id, local folder, or a .gguf file of an aligned causal LM"
    )
    gguf_file: str | None = Field(None, description="GGUF file name inside name_or_path")
    revision: str | None = Field(None, description="Hub revision")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype the weights are loaded in"
    )
    trust_remote_code: bool = Field(False, description="allow model code from the Hub")


class LoraSettings(Strict):
    enabled: bool = Field(True, description="train LoRA adapters (false: full fine-tuning)")
    r: int = Field(16, ge=1, description="LoRA rank (paper: 16)")
    alpha: int = Field(16, ge=1, description="LoRA alpha (paper: 16)")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout (paper: 0)")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"], description="modules to adapt (paper: q, v)"
    )


class TokenizeConfig(Strict):
    max_length: int = Field(512, ge=8, description="longest token sequence (paper: 2048)")
    overflow: Literal["truncate", "drop"] = Field(
        "truncate", description="over-long samples: cut the response, or drop the sample"
    )
    template: Literal["auto", "chat", "plain"] = Field(
        "auto",
        description="chat: the tokenizer's chat template; plain: 'Human: {prompt}\\nAssistant: '; "
        "auto: chat when the tokenizer has one",
    )


class RuntimeConfig(Strict):
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


class SFTConfig(Strict):
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
