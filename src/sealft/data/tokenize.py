"""Render samples as text and tokenize them with the loss on response tokens only.

The prompt's token ids come from one function, `prompt_ids`, which generation uses too:
what the model is trained to continue is exactly what it is asked to continue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from ..config import TokenizeConfig
from .load import DataError, Dropped, Sample

Template = Literal["auto", "chat", "plain"]
Overflow = Literal["truncate", "drop"]
PLAIN_USER, PLAIN_ASSISTANT = "Human: ", "Assistant: "


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
    if uses_chat(tokenizer, template):
        messages = list(sample.prompt)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(
            messages + [{"role": "assistant", "content": sample.response}], tokenize=False
        )
        if not full.startswith(prompt):
            raise DataError(
                "the tokenizer's chat template does not render the prompt as a prefix of the "
                "conversation, so response tokens cannot be masked; use template: plain"
            )
        return prompt, full[len(prompt) :]
    parts = []
    for m in sample.prompt:
        if m["role"] == "system":
            parts.append(m["content"] + "\n")
        elif m["role"] == "user":
            parts.append(f"{PLAIN_USER}{m['content']}\n")
        else:
            parts.append(f"{PLAIN_ASSISTANT}{m['content']}\n")
    eos = tokenizer.eos_token or ""
    return "".join(parts) + PLAIN_ASSISTANT, sample.response + eos


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
    """Token ids of the kept samples; `labels` is -100 on prompt tokens."""

    samples: list[Sample]
    input_ids: list[list[int]]
    labels: list[list[int]]
    dropped: list[Dropped]

    def __len__(self) -> int:
        return len(self.samples)


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
    """
    out = Encoded([], [], [], [])
    for s in samples:
        prompt, response = render(s, tokenizer, template)
        p_ids = prompt_ids(tokenizer, prompt, template)
        r_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        if response_tokens is not None:
            r_ids = r_ids[:response_tokens]
        if not r_ids:
            out.dropped.append(Dropped(s.sample_id, s.index, "empty_response"))
            continue
        if len(p_ids) + len(r_ids) > max_length:
            if overflow == "drop":
                out.dropped.append(Dropped(s.sample_id, s.index, "too_long"))
                continue
            if len(p_ids) >= max_length:
                out.dropped.append(Dropped(s.sample_id, s.index, "prompt_too_long"))
                continue
            r_ids = r_ids[: max_length - len(p_ids)]
        out.samples.append(s)
        out.input_ids.append(list(p_ids) + list(r_ids))
        out.labels.append([-100] * len(p_ids) + list(r_ids))
    return out


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
