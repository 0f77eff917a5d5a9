"""Supervised fine-tuning on response tokens, optionally with per-sample weights."""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .bilevel import epoch_order, losses_and_backward
from .data import Encoded


def train_sft(
    model,
    data: Encoded,
    *,
    lr: float,
    epochs: int = 1,
    batch_size: int = 8,
    pad: int,
    device,
    precision: str = "auto",
    micro_batch_size: int | None = None,
    weights: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
    desc: str = "fine-tune",
) -> None:
    """Minimise (1/|B|) Σ_i w_i ℓ_i over `data` with Adam (betas 0.9/0.95), in place.

    Trains every parameter that requires a gradient (the LoRA adapter when there is one).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.95))
    model.train()
    w = torch.ones(len(data)) if weights is None else weights.detach().float().cpu()
    for epoch in range(epochs):
        batches = epoch_order(len(data), seed, epoch, 2).split(batch_size)
        bar = tqdm(
            batches, desc=f"{desc} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False
        )
        for step, idx in enumerate(bar):
            opt.zero_grad(set_to_none=True)
            losses = losses_and_backward(
                model,
                data,
                idx,
                w[idx] / len(idx),
                pad=pad,
                device=device,
                precision=precision,
                micro=micro_batch_size,
            )
            opt.step()
            bar.set_postfix(loss=f"{float(losses.mean()):.3f}")
            if log is not None:
                log({"epoch": epoch, "step": step, "loss": float(losses.mean())})
