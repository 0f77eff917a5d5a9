"""Settings, kept apart from the code that uses them (as PEFT does), and loading them from
YAML with key=value overrides (`loading`).

Each recipe has one top-level config (`SelectRecipeConfig`, `ScoreRecipeConfig`,
`FinetuneRecipeConfig`, `EvalRecipeConfig`, `ExperimentRecipeConfig`), in the module of
its name, built from the shared `sections` (`model`, `data`, `tokenize`, `lora`, `runtime`,
`sft`) and its own. Unknown keys and ill-typed values are errors that name the key
(`base`); keys renamed in 0.2 still load, with a FutureWarning (`migrate`).
"""

from .base import ConfigError
from .evaluate import (
    EvalConfig,
    EvalRecipeConfig,
    GenerationConfig,
    JudgeConfig,
    PromptSetConfig,
    TaskConfig,
)
from .experiment import (
    DSIRConfig,
    ExperimentRecipeConfig,
    GuardConfig,
    ImplicitRewardConfig,
    LabelConfig,
    SafeInstrConfig,
)
from .finetune import ApplySelectionConfig, FinetuneRecipeConfig
from .loading import describe, dump_config, load_config
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
from .select import (
    FeatureConfig,
    ProbeConfig,
    ScoreRecipeConfig,
    SelectorConfig,
    SelectorTrainConfig,
    SelectRecipeConfig,
)

__all__ = [
    "ApplySelectionConfig",
    "ConfigError",
    "DSIRConfig",
    "DataConfig",
    "EvalConfig",
    "TaskConfig",
    "EvalRecipeConfig",
    "ExperimentRecipeConfig",
    "FeatureConfig",
    "ProbeConfig",
    "FinetuneRecipeConfig",
    "GenerationConfig",
    "GuardConfig",
    "ImplicitRewardConfig",
    "JudgeConfig",
    "LabelConfig",
    "LoraSettings",
    "ModelConfig",
    "PromptSetConfig",
    "RuntimeConfig",
    "SFTConfig",
    "SafeInstrConfig",
    "ScoreRecipeConfig",
    "SelectRecipeConfig",
    "SelectorConfig",
    "SelectorTrainConfig",
    "Sources",
    "TokenizeConfig",
    "as_list",
    "describe",
    "dump_config",
    "load_config",
]
