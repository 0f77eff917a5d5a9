"""What a feature selector sees of each sample: hashed word n-grams, or the frozen model's
hidden states.

n-grams come from the text alone (the prompt, and the first words of the response, where
its stance shows), so the same features exist under any tokenizer. Hidden states come
from the aligned model before any adapter is attached, over the prompt and the first K
response tokens, standardised with statistics that are kept with the selector so that
unseen samples are scored on the same scale.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from ..config import FeatureConfig
from ..data import Encoded, Sample, collate
from ..model.load import autocast
from ..progress import progress_bar

_WORD = re.compile(r"\w+", re.UNICODE)


def _grams(words: list[str], n_max: int, field: str) -> list[str]:
    return [
        f"{field}:{' '.join(words[i : i + n])}"
        for n in range(1, n_max + 1)
        for i in range(len(words) - n + 1)
    ]


def sample_terms(sample: Sample, cfg: FeatureConfig) -> list[str]:
    """The n-grams of every prompt turn and of the response's first words, by field."""
    prompt = _WORD.findall(" ".join(m["content"] for m in sample.prompt).lower())
    response = _WORD.findall(sample.response.lower())[: cfg.response_words]
    return _grams(prompt, cfg.ngram_max, "p") + _grams(response, cfg.ngram_max, "r")


def ngram_features(samples: Sequence[Sample], cfg: FeatureConfig) -> torch.Tensor:
    """A sparse (samples × buckets) matrix of hashed n-gram counts, each row of norm 1."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(
        analyzer=lambda s: sample_terms(s, cfg),
        n_features=cfg.buckets,
        alternate_sign=False,
        norm="l2",
    )
    coo = vectorizer.transform(list(samples)).tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=True).coalesce()


@torch.no_grad()
def hidden_state_batches(
    model, data: Encoded, *, batch_size: int, device, precision: str, progress: bool = False
):
    """(batch, every layer's hidden states) of `data` in order, the model in eval mode."""
    model.eval()
    batches = torch.arange(len(data)).split(batch_size)
    for idx in progress_bar(batches, desc="features", enabled=progress):
        batch = collate([data.input_ids[i] for i in idx], [data.labels[i] for i in idx], 0)
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, precision):
            states = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                output_hidden_states=True,
            ).hidden_states
        yield batch, states


@torch.no_grad()
def hidden_features(
    model,
    data: Encoded,
    cfg: FeatureConfig,
    *,
    batch_size: int,
    device,
    precision: str,
    progress: bool = False,
) -> torch.Tensor:
    """(samples × hidden) states of `cfg.layer`, pooled over each sample's response positions
    (labels != -100: the first K response tokens when the data were encoded with K)."""
    out = []
    kw = {"batch_size": batch_size, "device": device, "precision": precision}
    for batch, layers in hidden_state_batches(model, data, progress=progress, **kw):
        states = layers[cfg.layer]
        # A response token is predicted from the position before it: those positions hold
        # what the model thinks as it writes the response.
        where = torch.zeros_like(batch["labels"], dtype=torch.bool)
        where[:, :-1] = batch["labels"][:, 1:] != -100
        if cfg.pooling == "last":
            last = where.long().cumsum(1).argmax(1)
            where = torch.zeros_like(where).scatter_(1, last[:, None], True)
        pooled = (states.float() * where[..., None]).sum(1) / where.sum(1, keepdim=True)
        out.append(pooled.cpu())
    return torch.cat(out)


def standardise(x: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Columns centred and scaled (by the given statistics, or by x's own), divided by
    √dim so that a row's norm is about 1, as the n-gram rows' is. Returns (x, stats)."""
    if stats is None:
        stats = (x.mean(0), x.std(0, unbiased=False).clamp(min=1e-6))
    mean, std = stats
    return (x - mean) / std / x.shape[1] ** 0.5, stats


def compute_features(
    cfg: FeatureConfig,
    samples: Sequence[Sample],
    *,
    model=None,
    encoded: Encoded | None = None,
    stats=None,
    batch_size: int = 8,
    device=None,
    precision: str = "auto",
    progress: bool = False,
):
    """The features of `samples` (in order) and the standardising statistics (or None).

    `hidden` needs the frozen model and the samples encoded as the selector sees them.
    """
    if cfg.source == "ngrams":
        return ngram_features(samples, cfg), None
    if model is None or encoded is None:
        raise ValueError("hidden-state features need the model and the encoded samples")
    if [s.sample_id for s in encoded.samples] != [s.sample_id for s in samples]:
        raise ValueError("encoded samples must be the samples, in the same order")
    raw = hidden_features(
        model,
        encoded,
        cfg,
        batch_size=batch_size,
        device=device,
        precision=precision,
        progress=progress,
    )
    return standardise(raw, stats)
