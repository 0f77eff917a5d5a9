"""Render samples as text and tokenize them with the loss on response tokens only.

The prompt's token ids come from one function, `prompt_ids`, which generation uses too:
what the model is trained to continue is exactly what it is asked to continue.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Literal

import numpy as np
import torch

from ..config import TokenizeConfig
from .readers import DataError
from .samples import Dropped, Sample, sample_values, take_samples

Template = Literal["auto", "chat", "plain"]
Overflow = Literal["truncate", "drop"]
PLAIN_USER, PLAIN_ASSISTANT = "Human: ", "Assistant: "
# Samples rendered and tokenized per call: enough to take the per-call overhead away, few
# enough that the tokenizer's output (Python lists, its own per-text objects) stays small.
BATCH = 512


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def uses_chat(tokenizer, template: Template) -> bool:
    if template == "chat" and not has_chat_template(tokenizer):
        raise DataError("template 'chat' asked for, but the tokenizer has no chat template")
    return template == "chat" or (template == "auto" and has_chat_template(tokenizer))


def render(sample: Sample, tokenizer, template: Template = "auto") -> tuple[str, str]:
    """Return (prompt text, response text) whose concatenation is the training string.

    With a chat template the prompt ends with the generation prompt (e.g.
    "<|im_start|>assistant\\n") and the response carries the template's end-of-turn
    marker. The plain template is the paper's "Human: {prompt}\\nAssistant: ".
    """
    chat = uses_chat(tokenizer, template)
    return _render([sample.prompt], [sample.response], tokenizer, chat)[0]


def _render(
    prompts: Sequence[Sequence[dict[str, str]]], responses: Sequence[str], tokenizer, chat: bool
) -> list[tuple[str, str]]:
    """`render` of several samples; a chat template renders them in one call each for
    the prompts and the conversations (the same texts, with less overhead per sample)."""
    if chat:
        conversations = [list(p) for p in prompts]
        texts = tokenizer.apply_chat_template(
            conversations, add_generation_prompt=True, tokenize=False
        )
        fulls = tokenizer.apply_chat_template(
            [
                c + [{"role": "assistant", "content": r}]
                for c, r in zip(conversations, responses, strict=True)
            ],
            tokenize=False,
        )
        if not all(full.startswith(text) for text, full in zip(texts, fulls, strict=True)):
            raise DataError(
                "the tokenizer's chat template does not render the prompt as a prefix of the "
                "conversation, so response tokens cannot be masked; use template: plain"
            )
        return [(text, full[len(text) :]) for text, full in zip(texts, fulls, strict=True)]
    eos = tokenizer.eos_token or ""
    return [(_plain_prompt(p), r + eos) for p, r in zip(prompts, responses, strict=True)]


def _plain_prompt(prompt: Sequence[dict[str, str]]) -> str:
    parts = []
    for m in prompt:
        if m["role"] == "system":
            parts.append(m["content"] + "\n")
        elif m["role"] == "user":
            parts.append(f"{PLAIN_USER}{m['content']}\n")
        else:
            parts.append(f"{PLAIN_ASSISTANT}{m['content']}\n")
    return "".join(parts) + PLAIN_ASSISTANT


def prompt_ids(tokenizer, prompt: str, template: Template = "auto") -> list[int]:
    """Token ids of a rendered prompt, for training and for generation alike.

    A chat template writes its own BOS text; the plain template relies on the tokenizer's
    special tokens (e.g. Llama's BOS), which only the prompt gets.
    """
    add_special = not uses_chat(tokenizer, template)
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


def user_prompt_text(tokenizer, prompt: str, template: Template = "auto") -> str:
    """One user turn rendered exactly as training renders it, up to where the answer starts."""
    return render(
        Sample("", 0, ({"role": "user", "content": prompt},), "", {}), tokenizer, template
    )[0]


@dataclass
class Encoded:
    """Token ids of the kept samples; `labels` is -100 on prompt tokens.

    All ids are one flat int32 array (`tokens`), sample i's at offsets[i]:offsets[i + 1],
    the first prompt_lengths[i] of them its prompt: a million samples are three arrays,
    not lists of Python ints. `input_ids[i]` and `labels[i]` are sample i's lists, made on
    demand.
    """

    samples: Sequence[Sample]
    tokens: np.ndarray
    offsets: np.ndarray
    prompt_lengths: np.ndarray
    dropped: list[Dropped]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def input_ids(self) -> TokenLists:
        return TokenLists(self, masked=False)

    @property
    def labels(self) -> TokenLists:
        return TokenLists(self, masked=True)


class TokenLists(Sequence[list[int]]):
    """Each sample's token ids as a list; `masked`: -100 in place of its prompt (labels)."""

    def __init__(self, data: Encoded, *, masked: bool) -> None:
        self.data, self.masked = data, masked

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        i = range(len(self))[i]  # negative positions, and IndexError past the end
        start, end = self.data.offsets[i], self.data.offsets[i + 1]
        ids = self.data.tokens[start:end].tolist()
        if self.masked:
            n = int(self.data.prompt_lengths[i])
            ids[:n] = [-100] * n
        return ids


class _TokenBuffer:
    """Kept samples' ids as they are made; array.array grows in place, so the final numpy
    arrays are views of it and never a second copy."""

    def __init__(self) -> None:
        self.tokens, self.offsets, self.prompt_lengths = array("i"), array("q", [0]), array("q")

    def add(self, prompt: list[int], response: list[int]) -> None:
        self.tokens.extend(prompt)
        self.tokens.extend(response)
        self.offsets.append(len(self.tokens))
        self.prompt_lengths.append(len(prompt))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.frombuffer(self.tokens, dtype=np.int32),
            np.frombuffer(self.offsets, dtype=np.int64),
            np.frombuffer(self.prompt_lengths, dtype=np.int64),
        )


def _ids(tokenizer, texts: list[str], *, special: bool) -> list[list[int]]:
    # What `prompt_ids` computes for one prompt (special tokens only where the template
    # writes none), for a batch.
    return tokenizer(
        texts, add_special_tokens=special, return_attention_mask=False, return_token_type_ids=False
    )["input_ids"]


def _fit(
    p_ids: list[int],
    r_ids: list[int],
    max_length: int,
    overflow: Overflow,
    response_tokens: int | None,
) -> tuple[list[int], str | None]:
    """The response ids kept for one sample, or the reason it is dropped."""
    if response_tokens is not None:
        r_ids = r_ids[:response_tokens]
    if not r_ids:
        return r_ids, "empty_response"
    if len(p_ids) + len(r_ids) > max_length:
        if overflow == "drop":
            return r_ids, "too_long"
        if len(p_ids) >= max_length:
            return r_ids, "prompt_too_long"
        r_ids = r_ids[: max_length - len(p_ids)]
    return r_ids, None


def encode(
    samples: Sequence[Sample],
    tokenizer,
    *,
    max_length: int = 512,
    overflow: Overflow = "truncate",
    template: Template = "auto",
    response_tokens: int | None = None,
) -> Encoded:
    """Tokenize samples with the loss on response tokens only.

    `response_tokens` keeps only the first K response tokens (the rest cannot change the
    loss, so they are not computed at all). A sample that keeps no response token inside
    `max_length` is dropped and reported: a mean over zero tokens is no loss at all, and
    scoring it 0 would rank it best.

    Samples are rendered and tokenized a batch at a time: one tokenizer call per batch
    gives the ids of one call per text, several times faster.
    """
    kept, dropped, buffer = array("q"), [], _TokenBuffer()
    rows = sample_values(samples, "sample_id", "index", "prompt", "response")
    position = 0
    while batch := list(islice(rows, BATCH)):
        chat = uses_chat(tokenizer, template)
        texts = _render([b[2] for b in batch], [b[3] for b in batch], tokenizer, chat)
        p_ids = _ids(tokenizer, [p for p, _ in texts], special=not chat)
        r_ids = _ids(tokenizer, [r for _, r in texts], special=False)
        for (sid, index, _, _), p, r in zip(batch, p_ids, r_ids, strict=True):
            r, reason = _fit(p, r, max_length, overflow, response_tokens)
            if reason is None:
                kept.append(position)
                buffer.add(p, r)
            else:
                dropped.append(Dropped(sid, index, reason))
            position += 1
    return Encoded(take_samples(samples, kept), *buffer.arrays(), dropped)


def pad_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    return 0


def collate(input_ids: Sequence[list[int]], labels: Sequence[list[int]], pad: int):
    """Right-pad a batch; returns input_ids, attention_mask and labels tensors."""
    width = max(len(x) for x in input_ids)
    ids = torch.full((len(input_ids), width), pad, dtype=torch.long)
    lab = torch.full((len(input_ids), width), -100, dtype=torch.long)
    mask = torch.zeros((len(input_ids), width), dtype=torch.long)
    for i, (x, y) in enumerate(zip(input_ids, labels, strict=True)):
        ids[i, : len(x)] = torch.tensor(x)
        lab[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


def encode_configured(
    samples: Sequence[Sample],
    tokenizer,
    cfg: TokenizeConfig,
    response_tokens: int | None = None,
) -> Encoded:
    """`encode` with a config's length, overflow rule and template."""
    return encode(
        samples,
        tokenizer,
        max_length=cfg.max_length,
        overflow=cfg.overflow,
        template=cfg.template,
        response_tokens=response_tokens,
    )
