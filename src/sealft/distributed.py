"""Several processes (`accelerate launch`, torchrun): who is who, and the few collectives
sealft's own training loop needs.

One process is the default and needs none of this: `world()` then returns `SINGLE`, whose
collectives do nothing, and no process group is ever created. Under a launcher (the
WORLD_SIZE environment variable above 1) it joins the process group through accelerate,
so that accelerate's and the Trainer's later set-up find it made.

The selector's loop (`selection.bilevel`) splits each global batch across the processes
(`World.share`), gathers the per-sample losses back in the global order (`World.gather`)
and sums the gradients of the adapter that was just trained (`World.sum_grads`) itself,
rather than wrapping the model in DistributedDataParallel: one PEFT model carries both
adapters and `set_adapter` switches which one is trainable from pass to pass, which DDP,
fixed at wrapping time to one set of parameters, does not follow. Summing exactly the
gradients one backward touched is small for LoRA and leaves nothing to guess.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch

from .config import ConfigError

T = TypeVar("T")
# Rank 0 alone evaluates each model and computes the baseline rankings of `seal run` while
# the others wait at a barrier: a collective's default timeout (10 to 30 minutes) would
# end a run whose evaluation is merely long.
TIMEOUT = timedelta(hours=6)
# Gradients are summed in flat buckets of at most this many elements (64 MiB in float32):
# one collective per bucket, not per tensor, without doubling the memory of a full model.
BUCKET_ELEMENTS = 1 << 24
SELECTOR_ENGINES = "one process, DDP (accelerate's MULTI_GPU, or MULTI_CPU) or DeepSpeed ZeRO 0-2"


@dataclass(frozen=True)
class World:
    """This process's place among `size` processes, and the device collectives use."""

    rank: int = 0
    size: int = 1
    device: torch.device | None = None

    @property
    def main(self) -> bool:
        """The process that writes files and reports progress."""
        return self.rank == 0

    def share(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's contiguous share of a global batch: the shares of ranks 0, 1, ...
        concatenated are exactly `batch`, and differ in size by at most one."""
        return batch if self.size == 1 else torch.tensor_split(batch, self.size)[self.rank]

    def share_sizes(self, n: int) -> list[int]:
        return [n // self.size + (r < n % self.size) for r in range(self.size)]

    def gather(self, mine: torch.Tensor, n: int) -> torch.Tensor:
        """Every process's `share` of a batch of n per-sample values, put back in the batch's
        order on every process (padded to the largest share for the collective)."""
        if self.size == 1 or n == 0:
            return mine
        sizes = self.share_sizes(n)
        padded = torch.zeros(max(sizes), dtype=mine.dtype, device=self.device)
        padded[: len(mine)] = mine.to(self.device)
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        torch.distributed.all_gather(parts, padded)
        return torch.cat([p[:k] for p, k in zip(parts, sizes, strict=True)]).to(mine.device)

    def sum_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum each parameter's gradient over the processes. A parameter with a gradient on
        no process keeps none (Adam skips it, as it would in one process); one with a
        gradient on some processes only (an empty share) counts zeros for the others."""
        if self.size == 1:
            return
        params = list(params)
        has = torch.tensor([p.grad is not None for p in params], device=self.device).int()
        torch.distributed.all_reduce(has, op=torch.distributed.ReduceOp.MAX)
        live = [p for p, h in zip(params, has.tolist(), strict=True) if h]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets(live):
            flat = torch.cat([p.grad.reshape(-1) for p in bucket]).to(self.device)
            torch.distributed.all_reduce(flat)
            for p, g in zip(bucket, flat.split([p.numel() for p in bucket]), strict=True):
                p.grad.copy_(g.view_as(p.grad))

    def broadcast(self, tensors: Iterable[torch.Tensor]) -> None:
        """Rank 0's values of these (dense) tensors, in place on every process."""
        if self.size == 1:
            return
        for t in tensors:
            moved = t.detach().to(self.device)
            torch.distributed.broadcast(moved, src=0)
            with torch.no_grad():
                t.copy_(moved)

    def barrier(self) -> None:
        if self.size > 1:
            torch.distributed.barrier()

    def main_first(self, fn: Callable[[], T]) -> T:
        """fn() on the main process, then on the others once it has returned: a step cached
        on disk is computed once, and the others read it."""
        if self.main:
            value = fn()
        self.barrier()
        if not self.main:
            value = fn()
        return value


SINGLE = World()


def _buckets(params: list[torch.nn.Parameter]) -> Iterator[list[torch.nn.Parameter]]:
    bucket: list[torch.nn.Parameter] = []
    for p in params:
        full = sum(q.numel() for q in bucket) + p.numel() > BUCKET_ELEMENTS
        if bucket and (full or p.grad.dtype != bucket[0].grad.dtype):
            yield bucket
            bucket = []
        bucket.append(p)
    if bucket:
        yield bucket


def launched_processes() -> int:
    """How many processes the launcher started (1 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def world(requested_device: str = "auto") -> World:
    """This process's `World`; under a launcher, joins the process group on first use.

    `requested_device` is runtime.device: under several processes each one takes the GPU
    of its local rank, so only auto, cuda and cpu make sense there.
    """
    size = launched_processes()
    if size <= 1:
        return SINGLE
    if requested_device not in ("auto", "cuda", "cpu"):
        raise ConfigError(
            f"runtime.device={requested_device} under {size} processes: use auto, cuda or "
            "cpu; each process takes the GPU of its local rank"
        )
    from accelerate import PartialState

    cpu = requested_device == "cpu" or not torch.cuda.is_available()
    state = PartialState(cpu=cpu, timeout=TIMEOUT)
    if not state.is_main_process:
        # Every process runs the same steps on the same global numbers: rank 0's log
        # speaks for all, and the others would only repeat it.
        logging.getLogger("sealft").setLevel(logging.ERROR)
    return World(state.process_index, state.num_processes, torch.device(state.device))


def engine() -> str:
    """The engine `accelerate launch` configured: "fsdp", "deepspeed-zero<stage>", "ddp"
    (several processes otherwise, torchrun's too) or "none" (one process)."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return f"deepspeed-zero{_zero_stage()}"
    return "ddp" if launched_processes() > 1 else "none"


def _zero_stage() -> int:
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE")
    if stage is None and os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE"):
        with open(os.environ["ACCELERATE_DEEPSPEED_CONFIG_FILE"], encoding="utf-8") as fh:
            stage = json.load(fh).get("zero_optimization", {}).get("stage", 0)
    return int(stage or 0)


def shards_parameters() -> bool:
    """Whether the configured engine keeps only a shard of each parameter per process."""
    return engine() in ("fsdp", "deepspeed-zero3")


def require_replicated(what: str) -> None:
    """Refuse an engine that shards the parameters for `what` (the selector's training,
    which needs the whole model on every process)."""
    if shards_parameters():
        raise ConfigError(
            f"{what} does not run under {engine()}: the selector needs the whole model on "
            f"every process; supported: {SELECTOR_ENGINES} (seal finetune runs under all "
            "of them, FSDP and ZeRO-3 included)"
        )
