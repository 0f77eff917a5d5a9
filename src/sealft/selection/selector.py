"""The data selector: a logit per fine-tuning sample, turned into weights.

`Selector` is the paper's: one free logit per sample. `FeatureSelector` computes each
logit as w·x + b from the sample's features (optionally plus a free residual), so that the
evidence of similar samples pools and unseen samples can be scored.

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

from ..config import ConfigError
from ..model.optim import adam

Activation = Literal["softmax", "sigmoid"]
SelectorOptimizer = Literal["adam", "sgd"]
Baseline = Literal["none", "batch"]


def weights_of(logits: torch.Tensor, activation: Activation) -> torch.Tensor:
    if activation == "softmax":
        return len(logits) * torch.softmax(logits, dim=0)
    if activation == "sigmoid":
        return 2 * torch.sigmoid(logits)
    raise ValueError(f"unknown activation {activation!r}")


class Selector(torch.nn.Module):
    """One free logit per sample (the paper's selector)."""

    kind = "logits"

    def __init__(self, sample_ids: Sequence[str], activation: Activation = "softmax"):
        super().__init__()
        self._ids(sample_ids, activation)
        self.logits = torch.nn.Parameter(torch.zeros(len(sample_ids)))

    def _ids(self, sample_ids: Sequence[str], activation: Activation) -> None:
        if len(set(sample_ids)) != len(sample_ids):
            raise ValueError("sample IDs must be unique")
        self.sample_ids = list(sample_ids)
        self.activation = activation

    def __len__(self) -> int:
        return len(self.sample_ids)

    def weights(self) -> torch.Tensor:
        return weights_of(self.logits, self.activation)

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.parameters())}]

    @torch.no_grad()
    def start_from(self, logits: torch.Tensor) -> None:
        """Begin at these logits instead of zeros (a prior, such as the implicit reward)."""
        self.logits.copy_(logits)

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

    def tensors(self) -> dict[str, torch.Tensor]:
        """What selector.safetensors keeps: the logits, and whatever scores new samples."""
        return {"logits": self.logits}

    def save(self, path: str | Path, extra: dict[str, str] | None = None) -> None:
        meta = {
            "kind": self.kind,
            "activation": self.activation,
            "sample_ids": json.dumps(self.sample_ids),
        }
        meta.update(extra or {})
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.tensors().items()}
        tmp = Path(str(path) + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Selector:
        meta, tensors = read_selector_file(path)
        sel = cls(json.loads(meta["sample_ids"]), meta["activation"])
        with torch.no_grad():
            sel.logits.copy_(tensors["logits"])
        return sel


class FeatureSelector(Selector):
    """logit_i = w·x_i + b (+ a free residual r_i): trained by the same objective, through
    the chain rule, so one batch's evidence moves every sample that shares its features."""

    kind = "features"

    def __init__(
        self,
        sample_ids: Sequence[str],
        features: torch.Tensor,
        activation: Activation = "softmax",
        *,
        residual: bool = False,
        l2: float = 0.0,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
        spec: str = "{}",
    ):
        torch.nn.Module.__init__(self)
        self._ids(sample_ids, activation)
        if features.shape[0] != len(sample_ids):
            raise ValueError(f"{features.shape[0]} feature rows for {len(sample_ids)} samples")
        # The features are recomputed from the data, never saved: they can be large.
        self.register_buffer("features", features, persistent=False)
        self.w = torch.nn.Parameter(torch.zeros(features.shape[1]))
        self.b = torch.nn.Parameter(torch.zeros(()))
        self.residual = torch.nn.Parameter(torch.zeros(len(sample_ids))) if residual else None
        self.l2, self.stats, self.spec = l2, stats, spec

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """w·x + b for any samples' features (no residual: it exists for the seen ones only)."""
        if features.is_sparse:
            return torch.sparse.mm(features, self.w[:, None]).squeeze(1) + self.b
        return features @ self.w + self.b

    @property
    def logits(self) -> torch.Tensor:
        out = self.score(self.features)
        return out if self.residual is None else out + self.residual

    @torch.no_grad()
    def start_from(self, logits: torch.Tensor) -> None:
        """Begin at the map whose logits best fit these (ridge), so that unseen samples
        are scored from the same start; the residual, if any, starts at zero."""
        from .smoothing import ridge_fit

        w, b = ridge_fit(self.features, logits)
        self.w.copy_(w)
        self.b.copy_(b)

    def param_groups(self) -> list[dict]:
        others = [self.b] + ([self.residual] if self.residual is not None else [])
        return [{"params": [self.w], "weight_decay": self.l2}, {"params": others}]

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"logits": self.logits, "w": self.w, "b": self.b}
        if self.residual is not None:
            out["residual"] = self.residual
        if self.stats is not None:
            out["mean"], out["std"] = self.stats
        return out

    def save(self, path: str | Path, extra: dict[str, str] | None = None) -> None:
        super().save(path, {"features": self.spec, **(extra or {})})


def read_selector_file(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        return meta, load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ConfigError(f"{path}: not a readable selector file ({e})") from e


def make_optimizer(selector: Selector, kind: SelectorOptimizer, lr: float) -> torch.optim.Optimizer:
    if kind == "adam":
        # The paper's setting for both model and selector.
        return adam(selector.param_groups(), lr)
    if kind == "sgd":
        return torch.optim.SGD(selector.param_groups(), lr=lr)
    raise ValueError(f"unknown selector optimizer {kind!r}")
