"""The feature selector (logit = w·x + b), its features, cross-fitted smoothing, and
`seal score`."""

import json

import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl
from test_pipeline import _cli
from tolerance import FLOOR_UNITS, U32, assert_rounding_close

from sealft.cli import main
from sealft.config import FeatureConfig, SelectRecipeConfig
from sealft.data import Sample, encode, load_samples
from sealft.demo.tiny import tiny_pair
from sealft.model.load import load_model_and_tokenizer
from sealft.selection.features import hidden_features, ngram_features, sample_terms
from sealft.selection.score import Signals, compose, plan_for
from sealft.selection.selector import FeatureSelector, Selector, make_optimizer
from sealft.selection.smoothing import blend, crossfit


def _sample(i, prompt, response):
    return Sample(f"id{i}", i, ({"role": "user", "content": prompt},), response, {})


def test_the_feature_gradient_is_the_chain_rule_through_the_logits():
    torch.manual_seed(0)
    x = torch.randn(10, 4)
    sel = FeatureSelector([str(i) for i in range(10)], x)
    with torch.no_grad():
        sel.w.normal_()
        sel.b.fill_(0.3)
    batch, values = torch.tensor([1, 4, 7]), torch.tensor([0.5, 2.0, -1.0])
    sel.objective(batch, values).backward()
    free = Selector([str(i) for i in range(10)])
    with torch.no_grad():
        free.logits.copy_(sel.logits)
    free.objective(batch, values).backward()
    torch.testing.assert_close(sel.w.grad, x.T @ free.logits.grad)
    torch.testing.assert_close(sel.b.grad, free.logits.grad.sum())


def test_samples_with_the_same_features_move_together_and_residuals_apart():
    x = torch.eye(3)[[0, 0, 1, 2]].to_sparse()
    sel = FeatureSelector(list("abcd"), x, residual=True)
    opt = make_optimizer(sel, "sgd", 1.0)
    sel.objective(torch.tensor([0]), torch.tensor([1.0])).backward()
    opt.step()
    logits = sel.logits.detach()
    shared = sel.score(x).detach()
    assert shared[0] == shared[1] < shared[2]  # sample b moved without being in the batch
    assert logits[0] < logits[1]  # only a's own residual took its own step


def test_weight_decay_applies_to_w_only():
    sel = FeatureSelector(list("ab"), torch.eye(2), residual=True, l2=0.5)
    groups = make_optimizer(sel, "sgd", 0.1).param_groups
    assert groups[0]["params"] == [sel.w] and groups[0]["weight_decay"] == 0.5
    assert groups[1]["weight_decay"] == 0


def test_ngram_features_are_tokenizer_free_and_keep_prompt_and_response_apart():
    cfg = FeatureConfig(response_words=2, buckets=1024)
    a = _sample(0, "kill the process", "Sure thing, here is how to do it")
    terms = sample_terms(a, cfg)
    assert "p:kill the" in terms and "r:sure thing" in terms and "r:here" not in terms
    swapped = _sample(1, "sure thing", "kill the process")
    x = ngram_features([a, swapped, a], cfg).to_dense()
    assert torch.allclose(x.norm(dim=1), torch.ones(3))
    assert torch.equal(x[0], x[2]) and not torch.equal(x[0], x[1])


def test_hidden_features_pool_the_positions_that_predict_the_response(tiny_model_dir):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    rows = alpaca_rows(3)
    samples = [_sample(i, r["instruction"], r["output"]) for i, r in enumerate(rows)]
    data = encode(samples, tok, max_length=48, response_tokens=2)
    kw = {"batch_size": 2, "device": torch.device("cpu"), "precision": "fp32"}
    mean = hidden_features(model, data, FeatureConfig(source="hidden"), **kw)
    last = hidden_features(model, data, FeatureConfig(source="hidden", pooling="last"), **kw)
    ids = torch.tensor([data.input_ids[0]])
    states = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
    first = data.labels[0].index(next(t for t in data.labels[0] if t != -100))
    torch.testing.assert_close(mean[0], states[first - 1 : first + 1].mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(last[0], states[first], atol=1e-5, rtol=0)


def test_crossfit_never_uses_a_samples_own_logit():
    torch.manual_seed(0)
    x = torch.randn(20, 3)
    logits = x @ torch.tensor([1.0, -2.0, 0.5])
    smooth = crossfit(x, logits, seed=0)
    moved = logits.clone()
    moved[0] += 100.0
    again = crossfit(x, moved, seed=0)
    assert again[0] == pytest.approx(smooth[0].item())
    assert torch.corrcoef(torch.stack([smooth, logits]))[0, 1] > 0.95


def test_blend_keeps_the_own_logit_and_pools_the_rest():
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    truth = x @ torch.tensor([1.0, -2.0, 0.5])
    noisy = truth + 0.8 * torch.randn(40)
    mixed = blend(x, noisy, seed=0)
    assert mixed.mean().abs() < 1e-5
    moved = noisy.clone()
    moved[0] += 5.0  # the own logit counts, unlike under crossfit ...
    assert blend(x, moved, seed=0)[0] > mixed[0] + 0.5

    # ... and pooling over similar samples removes noise the own logit carries
    def corr(v):
        return torch.corrcoef(torch.stack([v, truth]))[0, 1]

    assert corr(mixed) > corr(noisy)


def test_the_default_score_sees_the_learned_logits_relative_to_their_spread():
    """The default score (blend, then the prompt probe in the blend's own spread) is the
    same for the learned logits under any scale and shift: standardising removes both. So
    the rounding by which two runs' logits differ (tests/test_distributed.py) reaches the
    score divided by the logits' spread, whatever that spread is."""
    torch.manual_seed(0)
    n = 30
    x, probe = torch.randn(n, 4), torch.randn(n)
    learned = x @ torch.randn(4) + 0.3 * torch.randn(n)
    cfg = SelectRecipeConfig.model_validate(
        {"model": {"name_or_path": "m"}, "data": {"path": "d"}, "safe": {"path": "s"}}
    )
    assert cfg.selector.smoothing_method() == "blend" and cfg.selector.probe_weight() == 1.0

    def score(logits: torch.Tensor) -> torch.Tensor:
        return compose(plan_for(cfg), logits, Signals(features=(x, None), probe=probe))

    moved = 0.01 * learned + 0.5
    # Storing `moved` in float32 rounds each entry by up to U32·max|moved|, which is
    # U32·max|moved| / std(moved) of the spread the score is measured in; each of the score's
    # standardisations and the ridge fit (in float64) adds rounding far below that.
    rtol = FLOOR_UNITS * U32 * (moved.abs().max() / moved.std()).item()
    assert_rounding_close(score(moved), score(learned), rtol)
    assert not torch.allclose(score(-learned), score(learned))  # a sign flip is no rescaling


def test_blend_runs_from_the_cli(tmp_path, tiny_model_dir, files):
    assert _cli(tmp_path, tiny_model_dir, *files, extra=["selector.smoothing=blend"]) == 0
    logits = pq.read_table(tmp_path / "run" / "scores.parquet").column("score").to_pylist()
    assert abs(sum(logits)) < 1e-3 and len(set(logits)) > 1


@pytest.fixture
def files(tmp_path):
    return (
        write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(16)),
        write_jsonl(tmp_path / "safe.jsonl", safe_rows(6)),
    )


@pytest.mark.parametrize("source", ["ngrams", "hidden"])
def test_seal_score_on_the_training_data_reproduces_the_run(
    tmp_path, tiny_model_dir, files, source
):
    kind = ["selector.kind=features", f"selector.features.source={source}"]
    assert _cli(tmp_path, tiny_model_dir, *files, extra=kind) == 0
    argv = ["score", "--selector", str(tmp_path / "run"), "--data", str(files[0])]
    assert main([*argv, "--output-dir", str(tmp_path / "scored"), "--no-progress"]) == 0
    run = pq.read_table(tmp_path / "run" / "scores.parquet").to_pylist()
    scored = pq.read_table(tmp_path / "scored" / "scores.parquet").to_pylist()
    assert [r["sample_id"] for r in scored] == [r["sample_id"] for r in run]
    assert [r["score"] for r in scored] == pytest.approx([r["score"] for r in run], abs=1e-5)
    assert [r["rank"] for r in scored] == [r["rank"] for r in run]
    assert len({round(r["score"], 6) for r in run}) > 1  # the selector learned something


def test_seal_score_refuses_a_logits_selector(tmp_path, tiny_model_dir, files, capsys):
    assert _cli(tmp_path, tiny_model_dir, *files) == 0
    argv = ["score", "--selector", str(tmp_path / "run"), "--data", str(files[0])]
    assert main([*argv, "--output-dir", str(tmp_path / "s")]) == 2
    assert "cannot score new samples" in capsys.readouterr().err


def test_ngram_scores_of_unseen_data_train_a_model_of_another_tokenizer(
    tmp_path, tiny_model_dir, files
):
    kind = ["selector.kind=features", "selector.smoothing=crossfit"]
    assert _cli(tmp_path, tiny_model_dir, *files, extra=kind) == 0
    unseen = write_jsonl(tmp_path / "unseen.jsonl", alpaca_rows(10, prefix="job"))
    argv = ["score", "--selector", str(tmp_path / "run"), "--data", str(unseen), "--p", "0.5"]
    assert main([*argv, "--output-dir", str(tmp_path / "scored"), "--no-progress"]) == 0
    texts = [r[k] for r in alpaca_rows(10, prefix="job") for k in ("instruction", "output")]
    tok, model = tiny_pair(["zebra yak"] + texts, seed=1, hidden_size=16, num_layers=1)
    other = tmp_path / "other-model"
    tok.save_pretrained(other)
    model.save_pretrained(other)
    argv = ["finetune", "--model", str(other), "--data", str(unseen), "--p", "0.5"]
    argv += ["--scores", str(tmp_path / "scored" / "scores.parquet"), "--no-progress"]
    argv += ["--output-dir", str(tmp_path / "ft"), "sft.epochs=1", "runtime.precision=fp32"]
    assert main(argv) == 0
    scores = pq.read_table(tmp_path / "scored" / "scores.parquet").to_pylist()
    best = {r["sample_id"] for r in scores if r["selected"]}
    trained = [json.loads(x) for x in (tmp_path / "ft" / "trained.jsonl").read_text().splitlines()]
    assert {r["sample_id"] for r in trained} == best and len(best) == 5


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    """Another tiny model over the same vocabulary: a stand-in pre-alignment base."""
    texts = [r[k] for r in alpaca_rows(40) + safe_rows(20) for k in ("instruction", "output")]
    tok, model = tiny_pair(texts, seed=1, hidden_size=16, num_layers=1, num_heads=2)
    folder = tmp_path_factory.mktemp("reference")
    tok.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("kind", "init"), [("logits", "implicit-reward"), ("features", "auto")])
def test_the_selector_can_start_from_the_implicit_reward(
    tmp_path, tiny_model_dir, files, reference_dir, kind, init
):
    """Over the whole response, whatever selector.response_tokens (4 by default) says."""
    from sealft.selection.baselines import implicit_rewards

    start = [f"selector.kind={kind}", f"selector.init={init}", "selector.init_scale=2"]
    start += [f"reference_model.name_or_path={reference_dir}", "selector.lr=1e-12"]
    # The start itself: unsmoothed, and no prompt probe subtracted.
    start += ["selector.smoothing=none", "selector.prompt_probe.weight=0"]
    assert _cli(tmp_path, tiny_model_dir, *files, extra=start) == 0
    scores = pq.read_table(tmp_path / "run" / "scores.parquet").to_pylist()
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    reference, _ = load_model_and_tokenizer(str(reference_dir))
    data = encode(load_samples(files[0]).samples, tok, max_length=48)
    assert int(max(data.offsets[1:] - data.offsets[:-1] - data.prompt_lengths)) > 4
    kw = {"batch_size": 4, "device": torch.device("cpu"), "precision": "fp32"}
    reward = implicit_rewards(model, reference, tok, data, **kw)
    want = dict(
        zip(
            [s.sample_id for s in data.samples],
            (2 * (reward - reward.mean()) / reward.std()).tolist(),
            strict=True,
        )
    )
    got = {r["sample_id"]: r["score"] for r in scores}
    if kind == "logits":
        assert [got[k] for k in want] == pytest.approx(list(want.values()), abs=1e-4)
    else:  # the ridge fit of the map: close to the reward, and ordered like it
        corr = torch.corrcoef(torch.tensor([[got[k] for k in want], list(want.values())]))
        assert corr[0, 1] > 0.9


def test_starting_from_the_implicit_reward_needs_a_reference(
    tmp_path, tiny_model_dir, files, capsys
):
    assert _cli(tmp_path, tiny_model_dir, *files, extra=["selector.init=implicit-reward"]) == 2
    assert "needs reference_model" in capsys.readouterr().err


def test_auto_starts_from_zeros_without_a_reference(tmp_path, tiny_model_dir, files):
    runs = {}
    for init in ("auto", "zeros"):
        out = tmp_path / init
        assert _cli(out, tiny_model_dir, *files, extra=[f"selector.init={init}"]) == 0
        runs[init] = pq.read_table(out / "run" / "scores.parquet").column("score").to_pylist()
    assert runs["auto"] == runs["zeros"]


def test_smoothing_auto_blends_free_logits_only():
    from sealft.config import SelectorConfig

    assert SelectorConfig().smoothing_method() == "blend"
    assert SelectorConfig(kind="features").smoothing_method() == "none"
    assert SelectorConfig(kind="features", smoothing="blend").smoothing_method() == "blend"
