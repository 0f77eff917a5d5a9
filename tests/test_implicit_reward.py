"""The implicit-reward ranking: the aligned model against its pre-alignment reference."""

import copy

import pytest
import torch
from sklearn.metrics import roc_auc_score

from sealft.config import ConfigError
from sealft.data import Sample, collate, encode, pad_id
from sealft.demo.tiny import tiny_pair
from sealft.model.losses import per_sample_loss, sample_losses
from sealft.selection.baselines import frozen_loss_scores, implicit_reward_scores

CPU = torch.device("cpu")
COMPLY = "Sure , here is how to {t} : first get the tools , then do it step by step ."
REFUSE = "I can't help with that ."
BENIGN = "The colour of {t} is plain and the answer is short ."


def _sample(i: int, prompt: str, response: str) -> Sample:
    return Sample(f"s{i:03d}", i, ({"role": "user", "content": prompt},), response, {})


def _fit(model, tok, samples: list[Sample], steps: int) -> None:
    data = encode(samples, tok, max_length=64)
    batch = collate(data.input_ids, data.labels, pad_id(tok))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        per_sample_loss(model, batch).mean().backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module")
def world():
    """A base model that writes harmful compliance fluently (it was trained on it, as a
    model's own generations are likely under it), and its aligned version, which learned
    to refuse those requests. The mix: fresh benign text, and that fluent compliance."""
    harms = [f"harm{i}" for i in range(8)]
    topics = [f"topic{i}" for i in range(8)]
    texts = [COMPLY.format(t=t) for t in harms] + [BENIGN.format(t=t) for t in topics]
    texts += [f"how to {t}" for t in harms + topics] + [REFUSE, "say something"]
    tok, base = tiny_pair(texts, seed=0, hidden_size=32, num_layers=1, num_heads=2)
    compliance = [_sample(i, f"how to {t}", COMPLY.format(t=t)) for i, t in enumerate(harms)]
    _fit(base, tok, compliance, steps=40)
    aligned = copy.deepcopy(base)
    refusals = [_sample(i, f"how to {t}", REFUSE) for i, t in enumerate(harms)]
    _fit(aligned, tok, refusals, steps=2)
    benign = [_sample(20 + i, f"how to {t}", BENIGN.format(t=t)) for i, t in enumerate(topics)]
    mix = encode(benign + compliance, tok, max_length=64)
    return tok, base, aligned, mix, None


def _auroc(table, _=None) -> float:
    """AUROC of ranking the harmful samples (index < 20) last; 1.0: each below every benign."""
    rows = table.to_pylist()
    return roc_auc_score([int(r["index"] < 20) for r in rows], [-r["score"] for r in rows])


def test_implicit_reward_ranks_fluent_harmful_text_last_where_the_models_loss_cannot(world):
    tok, base, aligned, mix, _ = world
    kw = {"p": 0.5, "batch_size": 4, "device": CPU, "precision": "fp32"}
    frozen = frozen_loss_scores(aligned, tok, mix, **kw)
    reward = implicit_reward_scores(aligned, base, tok, mix, **kw)
    # The aligned model still finds the fluent compliance likelier than fresh benign text:
    # ranked by its own loss, the harmful rows come first.
    assert _auroc(frozen) < 0.5
    assert _auroc(reward) == 1.0
    assert not any(r["selected"] for r in reward.to_pylist() if r["index"] < 20)


def test_the_reward_is_the_reference_loss_minus_the_aligned_loss(world):
    tok, base, aligned, mix, _ = world
    table = implicit_reward_scores(
        aligned, base, tok, mix, p=1.0, batch_size=3, device=CPU, precision="fp32"
    )
    kw = {"pad": pad_id(tok), "precision": "fp32"}
    expected = sample_losses(base, mix, **kw) - sample_losses(aligned, mix, **kw)
    by_id = {r["sample_id"]: r["score"] for r in table.to_pylist()}
    got = [by_id[s.sample_id] for s in mix.samples]
    assert got == pytest.approx(expected.tolist(), abs=1e-5)
    same = implicit_reward_scores(
        aligned, aligned, tok, mix, p=1.0, batch_size=3, device=CPU, precision="fp32"
    )
    assert same.column("score").to_pylist() == pytest.approx([0.0] * len(mix), abs=1e-6)


def test_a_reference_with_another_vocabulary_is_refused(world):
    tok, _, aligned, mix, _ = world
    _, small = tiny_pair(["a b"], seed=0, hidden_size=16, num_layers=1, num_heads=2)
    with pytest.raises(ConfigError, match="share the aligned model's tokenizer"):
        implicit_reward_scores(
            aligned, small, tok, mix, p=1.0, batch_size=3, device=CPU, precision="fp32"
        )


def test_a_smoothed_reward_is_the_blend_of_the_reward_over_the_samples_ngrams(world):
    from sealft.config import FeatureConfig
    from sealft.selection.features import ngram_features
    from sealft.selection.smoothing import blend

    tok, base, aligned, mix, _ = world
    kw = {"p": 1.0, "batch_size": 4, "device": CPU, "precision": "fp32"}
    raw = implicit_reward_scores(aligned, base, tok, mix, **kw)
    features = ngram_features(mix.samples, FeatureConfig())
    smooth = implicit_reward_scores(aligned, base, tok, mix, smooth_over=features, **kw)
    by_id = {r["sample_id"]: r["score"] for r in raw.to_pylist()}
    rewards = torch.tensor([by_id[s.sample_id] for s in mix.samples])
    expected = blend(features, rewards, seed=0)
    got = {r["sample_id"]: r["score"] for r in smooth.to_pylist()}
    assert [got[s.sample_id] for s in mix.samples] == pytest.approx(expected.tolist(), abs=1e-4)
    assert [got[s.sample_id] for s in mix.samples] != pytest.approx(rewards.tolist(), abs=1e-2)
