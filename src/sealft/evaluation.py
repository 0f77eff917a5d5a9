"""Offline evaluation of a fine-tuned model: held-out loss on a benign and a safety split.

benign: the loss (and perplexity) of good answers to ordinary requests; utility.
safety: the loss of safe answers (refusals) to harmful requests; the lower, the more the
model still prefers to refuse.
"""

from __future__ import annotations

import math

import torch

from .bilevel import sample_losses
from .data import Encoded, pad_id


def heldout_loss(
    model, tokenizer, data: Encoded, *, batch_size: int, device, precision: str = "auto"
) -> dict[str, float]:
    """Token-weighted mean NLL of the responses and its perplexity."""
    losses = sample_losses(
        model,
        data,
        pad=pad_id(tokenizer),
        batch_size=batch_size,
        device=device,
        precision=precision,
    ).double()
    # Each sample's loss covers its response tokens after the first position.
    tokens = torch.tensor(
        [sum(1 for t in labels[1:] if t != -100) for labels in data.labels], dtype=torch.float64
    )
    mean = float((losses * tokens).sum() / tokens.sum())
    return {"loss": mean, "ppl": math.exp(min(mean, 50.0))}
