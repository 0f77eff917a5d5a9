"""`seal finetune`: which rows a selection keeps (`selection`) and the recipe's top-level
config; the fine-tune itself is the shared `sft` section."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import ConfigError, Strict
from .migrate import Recipe
from .sections import (
    DataConfig,
    LoraSettings,
    ModelConfig,
    RuntimeConfig,
    SFTConfig,
    Sources,
    TokenizeConfig,
    as_list,
)


class ApplySelectionConfig(Strict):
    """Which scores `seal finetune` trains on, and how it applies them."""

    scores: str | None = Field(
        None,
        description="scores.parquet from `seal select` (or any file with sample_id, "
        "rank, weight); null: train on every sample",
    )
    p: float = Field(0.8, gt=0, le=1, description="fraction of scored samples kept (mode top)")
    mode: Literal["top", "soft"] = Field(
        "top",
        description="top: keep the p highest-ranked samples; soft: keep all, each sample's "
        "loss weighted by its score's weight",
    )


class FinetuneRecipeConfig(Recipe):
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
