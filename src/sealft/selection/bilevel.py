"""Selector training by the penalty method (SEAL's Algorithms 1 and 2).

Each step draws a fine-tuning batch B (every sample exactly once per epoch) and a safe
batch B' (the safe set cycles, however short it is), then

1. θ  ← θ  − β ∇[(1−γ) f_B'(θ) + γ g_B(θ, ω)]        the upper model
2. θ̂ ← θ̂ − β ∇ g_B(θ̂, ω)                            Algorithm 1 only: the auxiliary
                                                       lower-level model tracking v(ω)
3. ω  ← ω  − α ∇_ω (1/|B|) Σ_{i∈B} w_i(ω) (ℓ(θ; z_i) − ℓ(θ̂; z_i))   (Algorithm 2: no θ̂ term)

with the per-sample losses taken from the forward passes of steps 1 and 2. Under LoRA, θ
and θ̂ are two adapters ("upper", "lower") over one frozen base model. No parameter moves
before every pass of a step is done, so a sample whose loss is not finite can be left out
of all of them (or the run stopped) with nothing half-applied.

Under several processes (`sealft.distributed`) every process holds the same selector and
models and walks the same global batches; each runs the passes over its share of a batch
only, with the coefficients of the whole batch (1/|B| per sample), so that the gradients
summed over the processes are the one-process gradients, and the per-sample losses are
gathered back in the batch's order: every process takes the same steps, and rank 0 alone
writes the checkpoints.
What a checkpoint holds is the trainer's (`_state`); how it is written is
`selection.checkpoint`'s.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ConfigError, RuntimeConfig, SelectorConfig, SelectorTrainConfig
from ..data.tokenize import Encoded
from ..distributed import SINGLE, World
from ..model.load import compiled_layers, frozen_weights_in_bf16
from ..model.lora import adapter_parameters
from ..model.losses import losses_and_backward
from ..model.optim import adam
from ..progress import progress_bar
from .checkpoint import (
    CHECKPOINT,
    flat_optimizer,
    load_weights,
    optimizer_state,
    part,
    put,
    read_checkpoint,
    rng_state,
    set_rng_state,
    trainable,
    write_checkpoint,
)
from .schedule import cycled_batches, fine_tune_batches
from .selector import Selector, make_optimizer

log = logging.getLogger(__name__)


class NonFiniteLossError(ConfigError):
    """A loss that is NaN or infinite, under on_nonfinite=stop. A ConfigError: the way out
    is a setting (a lower learning rate, fp32, or on_nonfinite=skip), and the command line
    reports ConfigErrors in one line."""


def nonfinite_message(where: str, groups: dict[str, list[str]], remedy: str) -> str:
    """One line naming where and which samples (the first ten of each group) went bad."""
    named = []
    for what, ids in groups.items():
        if ids:
            more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
            named.append(f"{what} {', '.join(ids[:10])}{more}")
    return f"loss not finite at {where} for {'; '.join(named)}; {remedy}"


def adapter_names(algorithm: int) -> tuple[str, ...]:
    """The LoRA adapters an algorithm trains: θ ("upper"), and θ̂ ("lower") for Algorithm 1."""
    return ("upper", "lower") if algorithm == 1 else ("upper",)


@dataclass
class _Branch:
    """One trainable model: an adapter of a shared PEFT model, or a whole module."""

    module: torch.nn.Module
    adapter: str | None
    optimizer: torch.optim.Optimizer

    def activate(self) -> torch.nn.Module:
        if self.adapter is not None:
            self.module.set_adapter(self.adapter)
        self.module.train()
        return self.module


def _branches(model, algorithm: int, lr: float, lora: bool) -> tuple[_Branch, _Branch | None]:
    if lora:
        upper = _Branch(model, "upper", adam(adapter_parameters(model, "upper"), lr))
        lower = (
            _Branch(model, "lower", adam(adapter_parameters(model, "lower"), lr))
            if algorithm == 1
            else None
        )
        return upper, lower
    upper = _Branch(model, None, adam([p for p in model.parameters() if p.requires_grad], lr))
    if algorithm == 2:
        return upper, None
    twin = copy.deepcopy(model)
    return upper, _Branch(twin, None, adam([p for p in twin.parameters() if p.requires_grad], lr))


class BilevelTrainer:
    """Trains the selector's logits together with the model (and, for Algorithm 1, θ̂).

    `model` is a PEFT model carrying the adapters "upper" and (Algorithm 1) "lower"
    when `lora` is true, else a plain model trained in full.
    """

    def __init__(
        self,
        model,
        finetune: Encoded,
        safe: Encoded,
        *,
        selector_cfg: SelectorConfig,
        train_cfg: SelectorTrainConfig,
        runtime: RuntimeConfig,
        pad: int,
        seed: int,
        lora: bool,
        device,
        run_dir: str | Path | None = None,
        progress: bool = True,
        selector: Selector | None = None,
        world: World = SINGLE,
    ):
        if len(finetune) == 0 or len(safe) == 0:
            raise ValueError("both the fine-tuning and the safe set need at least one sample")
        self.cfg, self.train_cfg, self.precision = selector_cfg, train_cfg, runtime.precision
        self.attention, self.compile = runtime.attention, runtime.compile
        self.finetune, self.safe, self.pad, self.seed = finetune, safe, pad, seed
        self.device, self.progress, self.world = device, progress, world
        self.selector = selector or Selector(
            [s.sample_id for s in finetune.samples], selector_cfg.activation
        )
        if self.selector.sample_ids != [s.sample_id for s in finetune.samples]:
            raise ValueError("the selector must score exactly the fine-tuning samples, in order")
        self.selector_opt = make_optimizer(self.selector, selector_cfg.optimizer, selector_cfg.lr)
        self.upper, self.lower = _branches(model, selector_cfg.algorithm, train_cfg.lr, lora)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        # The position in the data: the next step is step `steps_done` of that epoch.
        self.epochs_done, self.steps_done = 0, 0

    # -- one step ---------------------------------------------------------------------

    def _kw(self):
        return {
            "pad": self.pad,
            "device": self.device,
            "precision": self.precision,
            "micro": self.train_cfg.micro_batch_size,
            "attention": self.attention,
        }

    def upper_backward(
        self, ft_idx: torch.Tensor, safe_idx: torch.Tensor, gamma: float, need_losses: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """θ's gradient on the batch and its per-sample losses (safe, fine-tuning)."""
        model = self.upper.activate()
        self.upper.optimizer.zero_grad(set_to_none=True)
        safe_losses = torch.zeros(0)
        if gamma < 1:
            safe_losses = self._losses(model, self.safe, safe_idx, (1 - gamma) / len(safe_idx))
        weights = self.selector.weights().detach()[ft_idx]
        # With γ = 0 the model gets no gradient from this batch: a forward pass is enough,
        # and none at all when the selector does not need the losses either (warm-up).
        ft_losses = torch.zeros(0)
        if gamma > 0 or need_losses:
            coef = gamma * weights / len(ft_idx) if gamma > 0 else None
            ft_losses = self._losses(model, self.finetune, ft_idx, coef)
        return safe_losses, ft_losses

    def lower_backward(self, ft_idx: torch.Tensor) -> torch.Tensor:
        """θ̂'s gradient on the fine-tuning batch and its per-sample losses."""
        model = self.lower.activate()
        self.lower.optimizer.zero_grad(set_to_none=True)
        weights = self.selector.weights().detach()[ft_idx]
        return self._losses(model, self.finetune, ft_idx, weights / len(ft_idx))

    def _losses(
        self, model, data: Encoded, idx: torch.Tensor, coef: torch.Tensor | float | None
    ) -> torch.Tensor:
        """Per-sample losses of the global batch `idx`, in its order; backpropagates
        Σ coef_i·ℓ_i over this process's share of it (all of it in one process)."""
        mine = self.world.share(idx)
        if isinstance(coef, torch.Tensor):
            coef = self.world.share(coef)
        losses = torch.zeros(0)
        if len(mine):
            losses = losses_and_backward(model, data, mine, coef, **self._kw())
        return self.world.gather(losses, len(idx))

    def selector_step(self, ft_idx: torch.Tensor, values: torch.Tensor) -> float:
        self.selector_opt.zero_grad(set_to_none=True)
        objective = self.selector.objective(ft_idx, values, self.cfg.baseline)
        objective.backward()
        self.selector_opt.step()
        return objective.item()

    # -- epochs -----------------------------------------------------------------------

    def train(
        self,
        log: Callable[[dict], None] | None = None,
        on_epoch: Callable[[int, Selector], None] | None = None,
    ) -> Selector:
        self._synchronise()
        with contextlib.ExitStack() as stack:
            for module in self._modules():
                stack.enter_context(frozen_weights_in_bf16(module, self.device, self.precision))
                stack.enter_context(compiled_layers(module, self.compile))
            while self.epochs_done < self.cfg.epochs:
                epoch = self.epochs_done
                self._epoch(epoch, log)
                self.epochs_done, self.steps_done = epoch + 1, 0
                self._checkpoint()
                if on_epoch is not None:
                    on_epoch(epoch, self.selector)
        return self.selector

    def _synchronise(self) -> None:
        """Start every process from rank 0's selector and models, as DDP does: the starting
        logits and features come from passes that each process ran on its own."""
        tensors = list(self.selector.parameters())
        tensors += [b for b in self.selector.buffers() if not b.is_sparse]
        for module in self._modules():
            tensors += trainable(module).values()
        self.world.broadcast(tensors)

    def _checkpoint(self) -> None:
        if self.run_dir is not None and self.world.main:
            self.save_checkpoint(self.run_dir / CHECKPOINT)

    def _epoch(self, epoch: int, log: Callable[[dict], None] | None) -> None:
        bs, every = self.train_cfg.batch_size, self.train_cfg.checkpoint_every
        gamma, learning = self.cfg.gamma(epoch), self.cfg.selector_learns(epoch)
        # Both orders are fixed by (seed, epoch) alone: a run resumed at step k of this
        # epoch skips the first k batches and sees exactly the rest.
        ft_batches = fine_tune_batches(len(self.finetune), bs, self.seed, epoch)
        safe_batches = cycled_batches(
            len(self.safe), self.train_cfg.safe_batch_size or bs, len(ft_batches), self.seed, epoch
        )
        first = self.steps_done
        bar = progress_bar(
            zip(ft_batches[first:], safe_batches[first:], strict=True),
            total=len(ft_batches),
            desc=f"selector epoch {epoch + 1}/{self.cfg.epochs} (γ={gamma:g}"
            + ("" if learning else ", warm-up")
            + ")",
            enabled=self.progress and self.world.main,
        )
        bar.update(first)
        for step, (ft_idx, safe_idx) in enumerate(bar, start=first):
            record = {"epoch": epoch, "step": step, "gamma": gamma}
            record.update(self.step(ft_idx, safe_idx, gamma, learning))
            shown = (
                record["finetune_loss"] if learning or gamma > 0 else record["aux_finetune_loss"]
            )
            bar.set_postfix(safe=f"{record['safe_loss']:.3f}", ft=f"{shown:.3f}")
            if log is not None:
                log(record)
            self.steps_done = step + 1
            # The epoch's end has its own checkpoint (in `train`).
            steps = epoch * len(ft_batches) + step + 1
            if every and steps % every == 0 and step + 1 < len(ft_batches):
                self._checkpoint()

    def step(
        self, ft_idx: torch.Tensor, safe_idx: torch.Tensor, gamma: float, learning: bool
    ) -> dict[str, float]:
        """One step of θ, θ̂ (Algorithm 1) and, when `learning`, the logits; its metrics.

        `safe_loss` and `finetune_loss` are the upper model θ's losses on the safe and the
        fine-tuning batch; `aux_finetune_loss` is the auxiliary model θ̂'s on the latter;
        `skipped_samples` and `skipped_safe_samples` count the samples left out for a loss
        that was not finite (on_nonfinite=skip).
        """
        n_ft, n_safe = len(ft_idx), len(safe_idx)
        ft_idx, safe_idx, (safe_losses, ft_losses, aux_losses) = self._backward(
            ft_idx, safe_idx, gamma, learning
        )
        objective = math.nan
        if len(ft_idx) and len(safe_idx):
            for branch in self._named_branches().values():
                self.world.sum_grads(_parameters(branch.optimizer))
                branch.optimizer.step()
            if learning:
                values = ft_losses if aux_losses is None else ft_losses - aux_losses
                objective = self.selector_step(ft_idx, values)
        return {
            "safe_loss": _mean(safe_losses),
            "finetune_loss": _mean(ft_losses),
            "aux_finetune_loss": _mean(aux_losses),
            "selector_objective": objective,
            "lr_model": self.upper.optimizer.param_groups[0]["lr"],
            "lr_selector": self.selector_opt.param_groups[0]["lr"],
            "skipped_samples": n_ft - len(ft_idx),
            "skipped_safe_samples": n_safe - len(safe_idx),
        }

    def _backward(self, ft_idx: torch.Tensor, safe_idx: torch.Tensor, gamma: float, learning):
        """The gradients and losses of every model on the batch, with the samples whose loss
        is not finite reported (on_nonfinite=stop) or left out of every pass (skip): their
        NaN would have reached the shared gradient, so the passes run again without them.

        Returns the batch as kept and the (safe, fine-tuning, auxiliary) losses; an empty
        batch (every sample left out) means no update at all."""
        while True:
            safe_losses, ft_losses = self.upper_backward(ft_idx, safe_idx, gamma, learning)
            aux_losses = self.lower_backward(ft_idx) if self.lower is not None else None
            losses = (safe_losses, ft_losses, aux_losses)
            bad_ft = _nonfinite(ft_losses, len(ft_idx)) | _nonfinite(aux_losses, len(ft_idx))
            bad_safe = _nonfinite(safe_losses, len(safe_idx))
            if not (bad_ft.any() or bad_safe.any()):
                return ft_idx, safe_idx, losses
            self._report_nonfinite(ft_idx[bad_ft], safe_idx[bad_safe])
            ft_idx, safe_idx = ft_idx[~bad_ft], safe_idx[~bad_safe]
            if not (len(ft_idx) and len(safe_idx)):
                return ft_idx, safe_idx, losses

    def _report_nonfinite(self, ft_bad: torch.Tensor, safe_bad: torch.Tensor) -> None:
        groups = {
            "fine-tuning sample(s)": [self.finetune.samples[i].sample_id for i in ft_bad],
            "safe sample(s)": [self.safe.samples[i].sample_id for i in safe_bad],
        }
        where = f"selector epoch {self.epochs_done}, step {self.steps_done} (as in metrics.jsonl)"
        if self.train_cfg.on_nonfinite == "stop":
            raise NonFiniteLossError(
                nonfinite_message(
                    where,
                    groups,
                    "nothing of this step was applied and the last checkpoint is kept; lower "
                    "selector_train.lr, use runtime.precision=fp32, or set "
                    "selector_train.on_nonfinite=skip",
                )
            )
        log.warning(nonfinite_message(where, groups, "left out of this step"))

    # -- checkpoints ------------------------------------------------------------------

    def _modules(self) -> list[torch.nn.Module]:
        """The distinct modules the branches train: under LoRA both branches are adapters
        of one module."""
        return list({id(b.module): b.module for b in self._named_branches().values()}.values())

    def _named_branches(self) -> dict[str, _Branch]:
        return {"upper": self.upper} | ({"lower": self.lower} if self.lower else {})

    def _state(self, tensors: dict[str, torch.Tensor]) -> dict:
        """Everything a resumed run needs: tensors go into `tensors`, the rest is returned
        as JSON-able values."""
        put(tensors, "selector", self.selector.state_dict())
        optimizers = {"selector": self.selector_opt}
        for name, branch in self._named_branches().items():
            optimizers[name] = branch.optimizer
            # Under LoRA both adapters live in the upper branch's module.
            if name == "upper" or branch.module is not self.upper.module:
                put(tensors, f"{name}_model", trainable(branch.module))
        return {
            "epoch": self.epochs_done,
            "step": self.steps_done,
            "optimizers": {
                name: flat_optimizer(opt.state_dict(), f"{name}_opt", tensors)
                for name, opt in optimizers.items()
            },
            "rng": rng_state(tensors),
        }

    def save_checkpoint(self, folder: Path) -> None:
        tensors: dict[str, torch.Tensor] = {}
        write_checkpoint(folder, self._state(tensors), tensors)

    def load_checkpoint(self, folder: Path) -> None:
        state, tensors = read_checkpoint(folder)
        with torch.no_grad():
            self.selector.load_state_dict(part(tensors, "selector"))
        optimizers = {"selector": self.selector_opt}
        for name, branch in self._named_branches().items():
            optimizers[name] = branch.optimizer
            if name == "upper" or branch.module is not self.upper.module:
                load_weights(branch.module, part(tensors, f"{name}_model"), folder)
        for name, opt in optimizers.items():
            saved = state["optimizers"][name]
            opt.load_state_dict(optimizer_state(saved, f"{name}_opt", tensors, opt.state_dict()))
        set_rng_state(state["rng"], tensors)
        self.epochs_done, self.steps_done = state["epoch"], state["step"]


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _nonfinite(losses: torch.Tensor | None, n: int) -> torch.Tensor:
    """Which of n samples' losses are NaN or infinite (none where no loss was computed)."""
    if losses is None or losses.numel() == 0:
        return torch.zeros(n, dtype=torch.bool)
    return ~torch.isfinite(losses)


def _mean(x: torch.Tensor | None) -> float:
    if x is None or x.numel() == 0:
        return math.nan
    return float(x.mean())
