"""The order in which the selector sees the data: every fine-tuning sample once per epoch,
the safe set cycled as often as it takes; each permutation is fixed by (seed, epoch,
stream), so a resumed run sees the same batches, and every process of a distributed run
the same global batches, of which each takes its share (`sealft.distributed.World.share`)."""

from __future__ import annotations

import torch


def epoch_order(n: int, seed: int, epoch: int, stream: int) -> torch.Tensor:
    """A permutation fixed by (seed, epoch, stream): a resumed run sees the same batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 7919 + stream)
    return torch.randperm(n, generator=g)


def fine_tune_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Every fine-tuning sample exactly once per epoch (the last batch may be smaller)."""
    return list(epoch_order(n, seed, epoch, 0).split(batch_size))


def cycled_batches(
    n: int, batch_size: int, steps: int, seed: int, epoch: int
) -> list[torch.Tensor]:
    """`steps` safe batches: reshuffled passes over the safe set, as many as it takes."""
    stream, pool = 1, []
    while len(pool) < steps * batch_size:
        pool.extend(epoch_order(n, seed, epoch, stream).tolist())
        stream += 1
    return [torch.tensor(pool[s * batch_size : (s + 1) * batch_size]) for s in range(steps)]
