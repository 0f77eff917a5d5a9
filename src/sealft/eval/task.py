"""Task accuracy without a judge: the share of a task's prompts answered with the expected
answer.

Each row's response is the expected answer (SST-2: "positive" or "negative"). The model
answers greedily in a few tokens; an answer counts when its opening words, normalised
(NFKC, lower case, punctuation dropped), are the expected answer's words. A model that
wraps the answer in a sentence ("The sentiment is positive") does not count: the
fine-tuned format is part of the task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..config import ConfigError, GenerationConfig, TaskConfig
from ..data import Sample
from .detector import normalise
from .generation import generate

_WORD = re.compile(r"\w+", re.UNICODE)


def answer_words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def is_match(answer: str, expected: str) -> bool:
    want = answer_words(expected)
    return bool(want) and answer_words(answer)[: len(want)] == want


def task_prompts(samples: Sequence[Sample], source: str) -> list[str]:
    """The single user turn of every task row (generation answers one turn)."""
    several = [s for s in samples if len(s.prompt) != 1]
    if several:
        raise ConfigError(
            f"{source}: eval.task rows must be single-turn; row {several[0].index} has "
            f"{len(several[0].prompt)} turns"
        )
    return [s.prompt[0]["content"] for s in samples]


def task_accuracy(
    model,
    tokenizer,
    samples: Sequence[Sample],
    cfg: TaskConfig,
    generation: GenerationConfig,
    *,
    template: str,
    source: str,
    progress: bool = False,
) -> tuple[float, list[str]]:
    """(accuracy, the answers) of `model` on the task rows, answered greedily."""
    settings = generation.model_copy(
        update={"max_new_tokens": cfg.max_new_tokens, "sampling": False}
    )
    prompts = task_prompts(samples, source)
    answers = generate(model, tokenizer, prompts, settings, template=template, progress=progress)
    hits = [is_match(a, s.response) for a, s in zip(answers, samples, strict=True)]
    return sum(hits) / len(hits), answers
