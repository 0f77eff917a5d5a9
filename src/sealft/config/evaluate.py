"""`seal eval`: what a model is measured on (`eval`) and the recipe's top-level config."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import ConfigError, Strict
from .migrate import Recipe
from .sections import DataConfig, ModelConfig, RuntimeConfig, Sources, TokenizeConfig


class GenerationConfig(Strict):
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


class PromptSetConfig(Strict):
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


class JudgeConfig(Strict):
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


class TaskConfig(Strict):
    """A task scored without a judge: each row's response is the expected answer."""

    data: Sources = Field(
        default_factory=DataConfig,
        description="labelled task rows (single-turn prompt, expected answer, e.g. SST-2 "
        "'positive'): accuracy is the share answered with the expected answer's words first",
    )
    max_new_tokens: int = Field(8, ge=1, description="longest answer, in tokens (greedy)")


class EvalConfig(Strict):
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


class EvalRecipeConfig(Recipe):
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
