"""Batched answer generation: left padding, greedy by default, the paper's sampling on request."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from .config import GenerationConfig
from .data import Sample, render


def prompt_text(tokenizer, prompt: str, template: str = "auto") -> str:
    """The prompt exactly as training renders it, up to where the answer starts."""
    return render(
        Sample("", 0, ({"role": "user", "content": prompt},), "", {}), tokenizer, template
    )[0]


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    settings: GenerationConfig | None = None,
    *,
    template: str = "auto",
    progress: bool = False,
) -> list[str]:
    """One answer per prompt, in order."""
    settings = settings or GenerationConfig()
    texts = [prompt_text(tokenizer, p, template) for p in prompts]
    # Longest prompts first: batches of similar length waste less compute on padding.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    answers: list[str] = [""] * len(texts)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    kwargs = {"max_new_tokens": settings.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    if settings.sampling:
        kwargs.update(
            do_sample=True,
            temperature=settings.temperature,
            top_p=settings.top_p,
            repetition_penalty=settings.repetition_penalty,
        )
        torch.manual_seed(settings.seed)
    else:
        kwargs["do_sample"] = False
    model.eval()
    try:
        batches = range(0, len(order), settings.batch_size)
        for start in tqdm(batches, desc="generate", disable=not progress, leave=False):
            idx = order[start : start + settings.batch_size]
            enc = tokenizer(
                [texts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            with torch.no_grad():
                out = model.generate(**enc, **kwargs)
            decoded = tokenizer.batch_decode(
                out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
            )
            for i, text in zip(idx, decoded, strict=True):
                answers[i] = text.strip()
    finally:
        tokenizer.padding_side = side
    return answers
