"""The paper's baseline selections, each written as a scores table like `seal select`'s.

Every ranking method (random, DSIR, the frozen model's loss, the labels' oracle) yields
one logit per sample; the higher the logit the earlier the sample is kept. `seal finetune`
then keeps the top p of any of them the same way, so a sweep over p keeps nested subsets.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from ..config import ConfigError, DSIRConfig
from ..data import Encoded, Sample, pad_id
from ..io import write_jsonl
from ..model.losses import sample_losses
from ..progress import without_bars
from ..scores import scores_table
from .smoothing import blend


def random_scores(samples: Sequence[Sample], seed: int, p: float) -> pa.Table:
    """A uniformly random order: the top p of it is a uniformly random p of the data."""
    gen = torch.Generator().manual_seed(seed)
    return scores_table(samples, torch.rand(len(samples), generator=gen).tolist(), p)


def oracle_scores(
    samples: Sequence[Sample], harmful: Sequence[bool], seed: int, p: float
) -> pa.Table:
    """A perfect ranking: every harmful sample below every other, each group in a uniformly
    random order, so a top p within the benign share is a random p of the benign samples."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(len(samples), generator=gen)
    return scores_table(samples, (noise - torch.tensor(harmful, dtype=torch.float32)).tolist(), p)


def text_of(sample: Sample) -> str:
    """What DSIR's n-gram features see: every prompt turn and the response, as plain text."""
    return "\n".join([m["content"] for m in sample.prompt] + [sample.response])


def dsir_scores(
    samples: Sequence[Sample],
    target: Sequence[Sample],
    *,
    seed: int,
    p: float,
    settings: DSIRConfig,
    workdir: str | Path | None = None,
) -> pa.Table:
    """DSIR (Xie et al. 2023) with the safe set as the target distribution.

    The `data-selection` package fits the hashed n-gram models and computes each sample's
    log importance weight. Its `resample` keeps the top k of log-weight + Gumbel noise
    (sampling without replacement); the same rule is applied here with a seeded generator
    instead of NumPy's global state, so the choice is reproducible and nested across p.
    """
    from data_selection import HashedNgramDSIR, base, hashed_ngram_dsir

    # data-selection draws bars on every pass, even where sealft's progress is off.
    quiet = without_bars(base, hashed_ngram_dsir)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, quiet:
        raw, tgt = Path(tmp) / "raw.jsonl", Path(tmp) / "target.jsonl"
        for path, rows in ((raw, samples), (tgt, target)):
            write_jsonl(path, ({"text": text_of(s)} for s in rows))
        dsir = HashedNgramDSIR(
            [str(raw)],
            [str(tgt)],
            cache_dir=str(Path(tmp) / "cache"),
            num_proc=1,
            ngrams=settings.ngrams,
            num_buckets=settings.num_buckets,
            # The package skips examples under 100 words by default: instruction data is
            # mostly shorter than that, and every sample must get a weight.
            min_example_length=0,
        )
        dsir.fit_importance_estimator(num_tokens_to_fit="all")
        dsir.compute_importance_weights()
        log_w = np.load(dsir.log_importance_weights_dir / "0.npy")
    if len(log_w) != len(samples):
        raise RuntimeError(f"DSIR returned {len(log_w)} weights for {len(samples)} samples")
    gumbel = np.random.default_rng(seed).gumbel(size=len(log_w))
    return scores_table(samples, (log_w + gumbel).tolist(), p)


def frozen_loss_scores(
    model, tokenizer, data: Encoded, *, p: float, batch_size: int, device, precision: str
) -> pa.Table:
    """Rank by the aligned model's own loss on each sample, lowest loss first.

    The ablation the paper's reviewers asked for: is a learned selector any better than
    asking the aligned model how surprising each answer is?
    """
    losses = sample_losses(
        model,
        data,
        pad=pad_id(tokenizer),
        batch_size=batch_size,
        device=device,
        precision=precision,
    )
    return scores_table(data.samples, (-losses.double()).tolist(), p)


def implicit_rewards(
    model, reference, tokenizer, data: Encoded, *, batch_size: int, device, precision: str
) -> torch.Tensor:
    """log π_model(y|x) − log π_reference(y|x) per response token, for every sample in order.

    `reference` is the aligned model's pre-alignment base. How natural a text is for the
    model family cancels between the two, and what alignment changed remains: an answer
    the aligned model learned to avoid scores low even when the family finds it likely,
    which is exactly where the aligned model's own loss (frozen-loss) turns around.
    """
    needed = 1 + max((max(ids) for ids in data.input_ids), default=-1)
    rows = reference.get_input_embeddings().num_embeddings
    if rows < needed:
        raise ConfigError(
            f"reference model has {rows} token embeddings, but the data uses token id "
            f"{needed - 1}: the reference must share the aligned model's tokenizer"
        )
    kw = {"pad": pad_id(tokenizer), "batch_size": batch_size, "device": device}
    aligned = sample_losses(model, data, precision=precision, **kw)
    return sample_losses(reference, data, precision=precision, **kw) - aligned


def implicit_reward_scores(
    model,
    reference,
    tokenizer,
    data: Encoded,
    *,
    p: float,
    batch_size: int,
    device,
    precision: str,
    smooth_over: torch.Tensor | None = None,
) -> pa.Table:
    """Rank by the implicit reward (`implicit_rewards`, DPO's reward up to its β), lowest
    last; with `smooth_over` (features, one row per sample) the rewards are blended with
    what similar samples' rewards predict (`smoothing.blend`, folds of seed 0)."""
    kw = {"batch_size": batch_size, "device": device, "precision": precision}
    rewards = implicit_rewards(model, reference, tokenizer, data, **kw)
    if smooth_over is not None:
        rewards = blend(smooth_over, rewards.float(), seed=0)
    return scores_table(data.samples, rewards.double().tolist(), p)
