"""Batched answer generation: left padding, greedy by default, the paper's sampling on request."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..config import GenerationConfig
from ..data.tokenize import prompt_ids, user_prompt_text
from ..progress import progress_bar


def _left_padded(ids: list[list[int]], pad: int, device) -> dict[str, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, width - len(x) :] = torch.tensor(x)
        mask[i, width - len(x) :] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def _generate_kwargs(settings: GenerationConfig, tokenizer) -> dict:
    kwargs = {"max_new_tokens": settings.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    if not settings.sampling:
        return kwargs | {"do_sample": False}
    torch.manual_seed(settings.seed)
    return kwargs | {
        "do_sample": True,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "repetition_penalty": settings.repetition_penalty,
    }


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    settings: GenerationConfig | None = None,
    *,
    template: str = "auto",
    progress: bool = False,
) -> list[str]:
    """One answer per prompt, in order.

    Each prompt is tokenized by `prompt_ids`, exactly as training tokenizes it (BOS
    included where the tokenizer adds one), then left-padded.
    """
    settings = settings or GenerationConfig()
    ids = [
        prompt_ids(tokenizer, user_prompt_text(tokenizer, p, template), template) for p in prompts
    ]
    # Longest prompts first: batches of similar length waste less compute on padding.
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    answers: list[str] = [""] * len(ids)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    kwargs = _generate_kwargs(settings, tokenizer)
    model.eval()
    batches = range(0, len(order), settings.batch_size)
    for start in progress_bar(batches, desc="generate", enabled=progress):
        idx = order[start : start + settings.batch_size]
        enc = _left_padded([ids[i] for i in idx], pad, device)
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        decoded = tokenizer.batch_decode(
            out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
        )
        for i, text in zip(idx, decoded, strict=True):
            answers[i] = text.strip()
    return answers
