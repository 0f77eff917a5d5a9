"""The prompt probe: how much a sample's prompt looks like a request the safe set refuses.

A linear probe on the aligned model's hidden state at the end of the prompt (where the
model is about to choose between answering and refusing) is fitted to tell the safe set's
refused prompts from its answered ones, and scores every fine-tuning prompt. Harmful and
harmless requests are linearly separable in the middle layers of aligned models (Arditi et
al. 2024, "Refusal in language models is mediated by a single direction"). The loss-based
signals the selector learns from judge the response; this one judges the request, and on
the real-data benchmark it found the harmful rows that they miss (BENCHMARKS.md).

Which safe rows are refusals is read by the refusal detector, so any safe set works: one
that holds refusals and answered requests gives both classes; one of refusals only is
contrasted with the fine-tuning prompts themselves (mostly harmless), cross-fitted so that
no prompt's score comes from a fit that saw it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from ..config import ConfigError, ProbeConfig, TokenizeConfig
from ..data import Sample, encode_configured
from ..eval.detector import get_detector
from .features import hidden_state_batches

log = logging.getLogger(__name__)
FOLDS = 5


def probe_layer(cfg: ProbeConfig, model) -> int:
    """The hidden-states index of the probed layer (0 is the embeddings)."""
    layers = model.config.num_hidden_layers
    layer = cfg.layer if cfg.layer is not None else max(1, round(cfg.depth * layers))
    if layer > layers:
        raise ConfigError(
            f"selector.prompt_probe.layer={layer}: the model has {layers} layers (0 is the "
            "embeddings)"
        )
    return layer


def prompt_states(
    model,
    tokenizer,
    samples: Sequence[Sample],
    tokenize: TokenizeConfig,
    layers: Sequence[int],
    *,
    batch_size: int,
    device,
    precision: str,
) -> torch.Tensor:
    """(samples × layers × hidden) states at the last prompt position, the one that predicts
    the first response token (hidden-states index 0 is the embeddings)."""
    enc = encode_configured(samples, tokenizer, tokenize, 1)
    if len(enc) != len(samples):
        raise ConfigError(
            f"the prompt probe could not encode {len(samples) - len(enc)} samples within "
            f"tokenize.max_length={tokenize.max_length}"
        )
    out = []
    kw = {"batch_size": batch_size, "device": device, "precision": precision}
    for batch, states in hidden_state_batches(model, enc, **kw):
        at = (batch["labels"] != -100).long().argmax(1) - 1
        rows = torch.arange(len(at), device=at.device)
        out.append(torch.stack([states[i][rows, at].float() for i in layers], 1).cpu())
    return torch.cat(out)


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000).fit(x, y)


def probe_scores(
    safe_x: torch.Tensor, refused: Sequence[bool], data_x: torch.Tensor, c: float, seed: int
) -> torch.Tensor:
    """The probe's log-odds that each fine-tuning prompt is one the safe set refuses.

    Both are standardised by the safe set's statistics. Without answered rows in the safe
    set, the fine-tuning prompts are the other class, in FOLDS cross-fitted folds."""
    y = np.asarray(refused, dtype=np.int64)
    if not y.any():
        raise ConfigError(
            "selector.prompt_probe: no safe sample is a refusal (by the refusal detector), so "
            "there is nothing to tell requests apart by; set selector.prompt_probe.weight=0"
        )
    # A non-finite state (a broken sample, which the selector's on_nonfinite then reports
    # or skips) is left out of the fit and gets the neutral score 0.
    safe_ok, data_ok = torch.isfinite(safe_x).all(1), torch.isfinite(data_x).all(1)
    y, safe_x = y[safe_ok.numpy()], safe_x[safe_ok]
    mean, std = safe_x.mean(0), safe_x.std(0, unbiased=False).clamp(min=1e-6)
    sx = ((safe_x - mean) / std).numpy()
    dx = ((data_x[data_ok] - mean) / std).numpy()
    out = torch.zeros(len(data_x))
    if data_ok.any():
        out[data_ok] = _scores(sx, y, dx, c, seed)
    return out


def _scores(sx: np.ndarray, y: np.ndarray, dx: np.ndarray, c: float, seed: int) -> torch.Tensor:
    """The fitted probe's decision function on the (standardised) fine-tuning states."""
    if not y.all():
        return torch.from_numpy(_fit(sx, y, c).decision_function(dx)).float()
    log.info("prompt probe: the safe set holds refusals only; contrasting the data's prompts")
    folds = np.random.default_rng(seed).permutation(len(dx)) % FOLDS
    out = np.empty(len(dx))
    for k in range(FOLDS):
        held = folds == k
        x = np.concatenate([sx, dx[~held]])
        labels = np.concatenate([y, np.zeros(int((~held).sum()), dtype=np.int64)])
        out[held] = _fit(x, labels, c).decision_function(dx[held])
    return torch.from_numpy(out).float()


def refusals(cfg: ProbeConfig, safe: Sequence[Sample]) -> list[bool]:
    """Which safe samples answer with a refusal, by the probe's refusal detector."""
    detector = get_detector(cfg.detector)
    return [detector.is_refusal(s.response) for s in safe]


def prompt_probe(
    cfg: ProbeConfig,
    model,
    tokenizer,
    data: Sequence[Sample],
    safe: Sequence[Sample],
    tokenize: TokenizeConfig,
    *,
    seed: int,
    batch_size: int,
    device,
    precision: str,
) -> torch.Tensor:
    """The probe's score of every sample of `data` (higher: more like a refused request)."""
    layer = probe_layer(cfg, model)
    kw = {"batch_size": batch_size, "device": device, "precision": precision}
    refused = refusals(cfg, safe)
    safe_x = prompt_states(model, tokenizer, safe, tokenize, [layer], **kw)[:, 0]
    data_x = prompt_states(model, tokenizer, data, tokenize, [layer], **kw)[:, 0]
    for name, samples, x in (("safe", safe, safe_x), ("fine-tuning", data, data_x)):
        finite = torch.isfinite(x).all(1).tolist()
        bad = [s.sample_id for s, ok in zip(samples, finite, strict=True) if not ok]
        if bad:
            log.warning(
                "prompt probe: non-finite hidden states for %s sample(s) %s; left out of the "
                "probe (scored neutral)",
                name,
                ", ".join(bad[:5]),
            )
    return probe_scores(safe_x, refused, data_x, cfg.c, seed)
