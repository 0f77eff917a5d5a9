"""Per-sample losses: the mean next-token NLL over each sample's response tokens.

One definition serves the selector's bilevel steps, the weighted SFT loss, the frozen-loss
ranking and held-out evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data.tokenize import Encoded, collate
from ..progress import progress_bar
from .load import autocast


def per_sample_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token NLL over each sample's response tokens (labels != -100)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    nll = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), labels.clamp(min=0), reduction="none"
    )
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)


def _micro(idx: torch.Tensor, size: int | None) -> Iterator[torch.Tensor]:
    yield from (idx.split(size) if size else (idx,))


def losses_and_backward(
    model,
    data: Encoded,
    idx: torch.Tensor,
    coef: torch.Tensor | float | None,
    *,
    pad: int,
    device,
    precision: str,
    micro: int | None,
) -> torch.Tensor:
    """Per-sample losses of `idx`; backpropagates Σ_i coef_i·ℓ_i unless `coef` is None.

    The batch is cut into micro-batches with gradients accumulated, so a large batch fits
    in memory; the result is the same as one pass over the whole batch.
    """
    chunks = []
    offset = 0
    for part in _micro(idx, micro):
        batch = collate([data.input_ids[i] for i in part], [data.labels[i] for i in part], pad)
        batch = {k: v.to(device) for k, v in batch.items()}
        if coef is None:
            with torch.no_grad(), autocast(device, precision):
                loss = per_sample_loss(model, batch)
        else:
            with autocast(device, precision):
                loss = per_sample_loss(model, batch)
            c = coef if isinstance(coef, float) else coef[offset : offset + len(part)].to(device)
            (loss * c).sum().backward()
        chunks.append(loss.detach().float().cpu())
        offset += len(part)
    return torch.cat(chunks)


def sample_losses(
    model,
    data: Encoded,
    *,
    pad: int,
    batch_size: int = 8,
    device=None,
    precision: str = "auto",
    progress: bool = False,
) -> torch.Tensor:
    """Per-sample losses of a frozen model over a whole set, in order."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    batches = torch.arange(len(data)).split(batch_size)
    for idx in progress_bar(batches, desc="losses", enabled=progress):
        out.append(
            losses_and_backward(
                model, data, idx, None, pad=pad, device=device, precision=precision, micro=None
            )
        )
    return torch.cat(out) if out else torch.empty(0)
