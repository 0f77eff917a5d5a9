"""The model optimiser of every training loop: the paper's Adam with betas (0.9, 0.95)."""

from __future__ import annotations

import torch

BETAS = (0.9, 0.95)


def adam(params, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=BETAS)
