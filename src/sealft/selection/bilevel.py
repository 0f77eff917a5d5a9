"""Selector training by the penalty method (SEAL's Algorithms 1 and 2).

Each step draws a fine-tuning batch B (every sample exactly once per epoch) and a safe
batch B' (the safe set cycles, however short it is), then

1. θ  ← θ  − β ∇[(1−γ) f_B'(θ) + γ g_B(θ, ω)]        the upper model
2. θ̂ ← θ̂ − β ∇ g_B(θ̂, ω)                            Algorithm 1 only: the auxiliary
                                                       lower-level model tracking v(ω)
3. ω  ← ω  − α ∇_ω (1/|B|) Σ_{i∈B} w_i(ω) (ℓ(θ; z_i) − ℓ(θ̂; z_i))   (Algorithm 2: no θ̂ term)

with the per-sample losses taken from the forward passes of steps 1 and 2. Under LoRA, θ
and θ̂ are two adapters ("upper", "lower") over one frozen base model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import RuntimeConfig, SelectorConfig, SelectorTrainConfig
from ..data.tokenize import Encoded
from ..model.lora import adapter_parameters
from ..model.losses import losses_and_backward
from ..model.optim import adam
from ..progress import progress_bar
from .schedule import cycled_batches, fine_tune_batches
from .selector import Selector, make_optimizer


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
    ):
        if len(finetune) == 0 or len(safe) == 0:
            raise ValueError("both the fine-tuning and the safe set need at least one sample")
        self.cfg, self.train_cfg, self.precision = selector_cfg, train_cfg, runtime.precision
        self.finetune, self.safe, self.pad, self.seed = finetune, safe, pad, seed
        self.device, self.progress = device, progress
        self.selector = selector or Selector(
            [s.sample_id for s in finetune.samples], selector_cfg.activation
        )
        if self.selector.sample_ids != [s.sample_id for s in finetune.samples]:
            raise ValueError("the selector must score exactly the fine-tuning samples, in order")
        self.selector_opt = make_optimizer(self.selector, selector_cfg.optimizer, selector_cfg.lr)
        self.upper, self.lower = _branches(model, selector_cfg.algorithm, train_cfg.lr, lora)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.epochs_done = 0

    # -- one step ---------------------------------------------------------------------

    def _kw(self):
        return {
            "pad": self.pad,
            "device": self.device,
            "precision": self.precision,
            "micro": self.train_cfg.micro_batch_size,
        }

    def upper_step(
        self, ft_idx: torch.Tensor, safe_idx: torch.Tensor, gamma: float, need_losses: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.upper.activate()
        self.upper.optimizer.zero_grad(set_to_none=True)
        safe_losses = torch.zeros(0)
        if gamma < 1:
            safe_losses = losses_and_backward(
                model, self.safe, safe_idx, (1 - gamma) / len(safe_idx), **self._kw()
            )
        weights = self.selector.weights().detach()[ft_idx]
        # With γ = 0 the model gets no gradient from this batch: a forward pass is enough,
        # and none at all when the selector does not need the losses either (warm-up).
        ft_losses = torch.zeros(0)
        if gamma > 0 or need_losses:
            coef = gamma * weights / len(ft_idx) if gamma > 0 else None
            ft_losses = losses_and_backward(model, self.finetune, ft_idx, coef, **self._kw())
        self.upper.optimizer.step()
        return safe_losses, ft_losses

    def lower_step(self, ft_idx: torch.Tensor) -> torch.Tensor:
        model = self.lower.activate()
        self.lower.optimizer.zero_grad(set_to_none=True)
        weights = self.selector.weights().detach()[ft_idx]
        losses = losses_and_backward(
            model, self.finetune, ft_idx, weights / len(ft_idx), **self._kw()
        )
        self.lower.optimizer.step()
        return losses

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
        for epoch in range(self.epochs_done, self.cfg.epochs):
            self._epoch(epoch, log)
            self.epochs_done = epoch + 1
            if self.run_dir is not None:
                self.save_checkpoint(self.run_dir / "checkpoint.pt")
            if on_epoch is not None:
                on_epoch(epoch, self.selector)
        return self.selector

    def _epoch(self, epoch: int, log: Callable[[dict], None] | None) -> None:
        bs = self.train_cfg.batch_size
        gamma, learning = self.cfg.gamma(epoch), self.cfg.selector_learns(epoch)
        ft_batches = fine_tune_batches(len(self.finetune), bs, self.seed, epoch)
        safe_batches = cycled_batches(
            len(self.safe), self.train_cfg.safe_batch_size or bs, len(ft_batches), self.seed, epoch
        )
        bar = progress_bar(
            zip(ft_batches, safe_batches, strict=True),
            total=len(ft_batches),
            desc=f"selector epoch {epoch + 1}/{self.cfg.epochs} (γ={gamma:g}"
            + ("" if learning else ", warm-up")
            + ")",
            enabled=self.progress,
        )
        for step, (ft_idx, safe_idx) in enumerate(bar):
            record = {"epoch": epoch, "step": step, "gamma": gamma}
            record.update(self.step(ft_idx, safe_idx, gamma, learning))
            shown = (
                record["finetune_loss"] if learning or gamma > 0 else record["aux_finetune_loss"]
            )
            bar.set_postfix(safe=f"{record['safe_loss']:.3f}", ft=f"{shown:.3f}")
            if log is not None:
                log(record)

    def step(
        self, ft_idx: torch.Tensor, safe_idx: torch.Tensor, gamma: float, learning: bool
    ) -> dict[str, float]:
        """One step of θ, θ̂ (Algorithm 1) and, when `learning`, the logits; its metrics.

        `safe_loss` and `finetune_loss` are the upper model θ's losses on the safe and the
        fine-tuning batch; `aux_finetune_loss` is the auxiliary model θ̂'s on the latter.
        """
        safe_losses, ft_losses = self.upper_step(ft_idx, safe_idx, gamma, learning)
        aux_losses = self.lower_step(ft_idx) if self.lower is not None else None
        objective = math.nan
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
        }

    # -- checkpoints ------------------------------------------------------------------

    def _state(self) -> dict:
        def trainable(module):
            return {
                n: p.detach().cpu()
                for n, p in module.named_parameters()
                if p.requires_grad or "lora_" in n
            }

        state = {
            "epochs_done": self.epochs_done,
            "selector": {k: v.detach().cpu() for k, v in self.selector.state_dict().items()},
            "selector_opt": self.selector_opt.state_dict(),
            "upper_model": trainable(self.upper.module),
            "upper_opt": self.upper.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
        }
        if self.lower is not None:
            state["lower_opt"] = self.lower.optimizer.state_dict()
            if self.lower.module is not self.upper.module:
                state["lower_model"] = trainable(self.lower.module)
        return state

    def save_checkpoint(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(self._state(), tmp)
        tmp.replace(path)

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, weights_only=False)
        self.epochs_done = state["epochs_done"]
        with torch.no_grad():
            self.selector.load_state_dict(state["selector"])
        self.selector_opt.load_state_dict(state["selector_opt"])
        self.upper.module.load_state_dict(state["upper_model"], strict=False)
        self.upper.optimizer.load_state_dict(state["upper_opt"])
        if self.lower is not None:
            if "lower_model" in state:
                self.lower.module.load_state_dict(state["lower_model"], strict=False)
            self.lower.optimizer.load_state_dict(state["lower_opt"])
        torch.set_rng_state(state["rng"])


def _mean(x: torch.Tensor | None) -> float:
    if x is None or x.numel() == 0:
        return math.nan
    return float(x.mean())
