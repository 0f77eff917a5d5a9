import data_selection
import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows

from sealft.config import DSIRConfig
from sealft.data import Sample, encode, pad_id
from sealft.model.load import load_model_and_tokenizer
from sealft.model.losses import sample_losses
from sealft.scores import SCHEMA, n_keep, scores_table
from sealft.selection.baselines import (
    dsir_scores,
    frozen_loss_scores,
    oracle_scores,
    random_scores,
)


def samples(texts: list[tuple[str, str]]) -> list[Sample]:
    return [
        Sample(f"id{i:03d}", i, ({"role": "user", "content": p},), r, {})
        for i, (p, r) in enumerate(texts)
    ]


def kept(table, p: float) -> set[int]:
    rows = table.to_pylist()
    return {r["index"] for r in rows if r["rank"] <= n_keep(len(rows), p)}


def test_score_tables_have_the_schema_of_seal_select():
    table = scores_table(samples([("a", "b"), ("c", "d")]), [0.5, 1.5], p=0.5)
    assert table.schema == SCHEMA
    assert table.column("rank").to_pylist() == [2, 1]
    assert table.column("selected").to_pylist() == [False, True]


def test_random_keeps_p_seeded_and_nested():
    data = samples([(f"q{i}", f"a{i}") for i in range(50)])
    a, b, c = random_scores(data, 0, 0.4), random_scores(data, 0, 0.4), random_scores(data, 1, 0.4)
    assert len(kept(a, 0.4)) == 20 and sum(a.column("selected").to_pylist()) == 20
    assert kept(a, 0.4) == kept(b, 0.4) and kept(a, 0.4) != kept(c, 0.4)
    assert kept(a, 0.2) < kept(a, 0.4) < kept(a, 0.8)


def test_oracle_ranks_every_harmful_sample_last_and_draws_the_rest_by_seed():
    data = samples([(f"q{i}", f"a{i}") for i in range(40)])
    harmful = [i % 5 == 0 for i in range(40)]  # 8 harmful
    a, b = oracle_scores(data, harmful, 0, 0.5), oracle_scores(data, harmful, 1, 0.5)
    for table in (a, b):
        rows = sorted(table.to_pylist(), key=lambda r: r["rank"])
        assert [harmful[r["index"]] for r in rows] == [False] * 32 + [True] * 8
    assert not any(harmful[i] for i in kept(a, 0.8))
    # Within the benign samples, the order is a seeded draw, not the input order.
    first_benign = {i for i in range(40) if not harmful[i]}
    first_benign = set(sorted(first_benign)[:20])
    assert kept(a, 0.5) != kept(b, 0.5) and kept(a, 0.5) != first_benign


def test_dsir_calls_the_package_and_prefers_samples_like_the_target(monkeypatch):
    calls = []
    original = data_selection.HashedNgramDSIR.compute_importance_weights

    def spy(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(data_selection.HashedNgramDSIR, "compute_importance_weights", spy)
    like = [(f"how do I bake bread number {i}", "knead the dough and bake it") for i in range(10)]
    unlike = [(f"list prime numbers below {i}", "two three five seven") for i in range(10)]
    data = samples([x for pair in zip(like, unlike, strict=True) for x in pair])
    target = samples([("how should I bake bread", "knead the dough , then bake")] * 3)
    table = dsir_scores(data, target, seed=0, p=0.5, settings=DSIRConfig(num_buckets=256))
    assert len(calls) == 1
    assert calls[0].min_example_length == 0  # short samples must be scored too
    assert kept(table, 0.5) == set(range(0, 20, 2))
    again = dsir_scores(data, target, seed=0, p=0.5, settings=DSIRConfig(num_buckets=256))
    assert table.equals(again)


def test_frozen_loss_ranks_the_lowest_loss_first(tiny_model_dir):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    data = encode(
        [
            Sample(str(i), i, ({"role": "user", "content": r["instruction"]},), r["output"], r)
            for i, r in enumerate(alpaca_rows(12))
        ],
        tok,
        max_length=64,
    )
    table = frozen_loss_scores(
        model, tok, data, p=0.5, batch_size=5, device=torch.device("cpu"), precision="fp32"
    )
    losses = sample_losses(model, data, pad=pad_id(tok), precision="fp32")
    order = sorted(range(12), key=lambda i: (losses[i].item(), i))
    ranks = table.column("rank").to_pylist()
    assert [ranks[i] for i in order] == pytest.approx(list(range(1, 13)))
    assert table.column("score").to_pylist() == pytest.approx((-losses).tolist(), abs=1e-5)


def test_scores_round_trip_through_parquet(tmp_path):
    table = random_scores(samples([("a", "b"), ("c", "d"), ("e", "f")]), 3, 0.5)
    pq.write_table(table, tmp_path / "s.parquet")
    assert pq.read_table(tmp_path / "s.parquet").equals(table)
