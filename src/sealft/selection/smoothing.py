"""Cross-fitted smoothing of learned logits: each sample's score is what similar samples'
logits say about it, never its own.

A learned logit is one noisy measurement. A ridge regression from the samples' features
onto the logits pools the measurements of similar samples; fitting it on the other folds
keeps a sample's own (noisy) logit out of its score.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

FOLDS = 5


def _matrix(features: torch.Tensor):
    if features.is_sparse:
        x = features.coalesce()
        rows, cols = x.indices().numpy()
        return sp.csr_matrix((x.values().numpy(), (rows, cols)), shape=tuple(x.shape))
    return features.numpy()


def crossfit(
    features: torch.Tensor, logits: torch.Tensor, *, seed: int, alpha: float = 1.0
) -> torch.Tensor:
    """Out-of-fold ridge predictions of `logits` from `features` (FOLDS folds, seeded)."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    x, y = _matrix(features), logits.detach().double().numpy()
    folds = min(FOLDS, len(y))
    if folds < 2:
        return logits.detach().clone()
    out = np.empty_like(y)
    for fit, held in KFold(folds, shuffle=True, random_state=seed).split(y):
        out[held] = Ridge(alpha=alpha).fit(x[fit], y[fit]).predict(x[held])
    return torch.from_numpy(out).to(logits.dtype)


def standardised(v: torch.Tensor) -> torch.Tensor:
    return (v - v.mean()) / v.std().clamp(min=1e-6) if len(v) > 1 else v - v.mean()


def blend(features: torch.Tensor, logits: torch.Tensor, *, seed: int) -> torch.Tensor:
    """A sample's own logit and what similar samples' logits say about it, each
    standardised, added: the own measurement is kept, its noise averaged with the pool's."""
    pooled = crossfit(features, logits, seed=seed)
    return standardised(logits.detach()) + standardised(pooled)


def ridge_fit(features: torch.Tensor, logits: torch.Tensor, *, alpha: float = 1.0):
    """(w, b) of a ridge regression of `logits` on `features`, as float32 tensors."""
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha).fit(_matrix(features), logits.detach().double().numpy())
    w = torch.from_numpy(np.asarray(model.coef_, dtype=np.float32))
    return w, torch.tensor(float(model.intercept_))
