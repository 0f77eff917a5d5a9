"""The data selector: one logit per fine-tuning sample, turned into weights.

Weights are N·softmax(ω) by default, as in the reference code, so that they average 1
and the penalty constant γ keeps the scale the paper tuned it at; 2·sigmoid(ω) is the
alternative (each weight in (0, 2), independent of the others, 1 at ω = 0).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, save_file

from ..model.optim import adam

Activation = Literal["softmax", "sigmoid"]
SelectorOptimizer = Literal["adam", "sgd"]
Baseline = Literal["none", "batch"]


class Selector(torch.nn.Module):
    def __init__(self, sample_ids: Sequence[str], activation: Activation = "softmax"):
        super().__init__()
        if len(set(sample_ids)) != len(sample_ids):
            raise ValueError("sample IDs must be unique")
        self.sample_ids = list(sample_ids)
        self.activation = activation
        self.logits = torch.nn.Parameter(torch.zeros(len(sample_ids)))

    def __len__(self) -> int:
        return len(self.sample_ids)

    def weights(self) -> torch.Tensor:
        if self.activation == "softmax":
            return len(self) * torch.softmax(self.logits, dim=0)
        if self.activation == "sigmoid":
            return 2 * torch.sigmoid(self.logits)
        raise ValueError(f"unknown activation {self.activation!r}")

    def objective(
        self, batch: torch.Tensor, values: torch.Tensor, baseline: Baseline = "none"
    ) -> torch.Tensor:
        """(1/|B|) Σ_{i∈B} w_i(ω) · values_i: its ω-gradient is the selector's update direction.

        `values` are the per-sample loss (Algorithm 2) or the loss gap between the upper
        and the auxiliary lower-level model (Algorithm 1), detached from the model.

        baseline="batch" subtracts the batch's weight-averaged value first. The exact
        gradient over all N samples is centred the same way (for N·softmax it is
        s_k (v_k − Σ_j s_j v_j)); the plain minibatch estimate delivers that centring only
        as a tiny shift of every logit, so a sample's step depends on how large everyone's
        values were when it happened to be visited. Centring inside the batch cancels
        that shared, time-varying part; under the softmax the cross-term then vanishes
        exactly and logits outside the batch get no gradient at all.
        """
        values = values.detach()
        weights = self.weights()[batch]
        if baseline == "batch":
            w = weights.detach()
            values = values - (w * values).sum() / w.sum()
        elif baseline != "none":
            raise ValueError(f"unknown baseline {baseline!r}")
        return (weights * values).mean()

    def save(self, path: str | Path, extra: dict[str, str] | None = None) -> None:
        meta = {"activation": self.activation, "sample_ids": json.dumps(self.sample_ids)}
        meta.update(extra or {})
        tmp = Path(str(path) + ".tmp")
        save_file({"logits": self.logits.detach().cpu().contiguous()}, str(tmp), metadata=meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Selector:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        sel = cls(json.loads(meta["sample_ids"]), meta["activation"])
        with torch.no_grad():
            sel.logits.copy_(load_file(str(path))["logits"])
        return sel


def make_optimizer(selector: Selector, kind: SelectorOptimizer, lr: float) -> torch.optim.Optimizer:
    if kind == "adam":
        # The paper's setting for both model and selector.
        return adam(selector.parameters(), lr)
    if kind == "sgd":
        return torch.optim.SGD(selector.parameters(), lr=lr)
    raise ValueError(f"unknown selector optimizer {kind!r}")
