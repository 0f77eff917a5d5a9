"""The evaluator's metrics that see safety beyond the refusal rate: the refusal probability
and its discrimination between harmful and benign prompts, the loss of held-out harmful
answers, and task accuracy by exact match."""

import copy
import json
import math

import pytest
import torch
import yaml
from conftest import alpaca_rows, safe_rows, write_jsonl
from tolerance import assert_rounding_close, network_rtol

from sealft.cli import main
from sealft.config import ConfigError, GenerationConfig, TaskConfig, TokenizeConfig
from sealft.data import Sample, collate, encode, load_samples, pad_id
from sealft.demo.tiny import tiny_pair
from sealft.eval import task
from sealft.eval.detector import REFUSAL_OPENERS_V1, PhraseDetector
from sealft.eval.discrimination import auroc, opener_ids, refusal_probabilities
from sealft.eval.task import is_match, task_accuracy

CPU = torch.device("cpu")


def test_every_refusal_opener_is_a_refusal_by_the_phrase_list():
    detector = PhraseDetector()
    assert all(detector.is_refusal(o + " help with that.") for o in REFUSAL_OPENERS_V1)


@pytest.fixture(scope="module")
def opener_pair():
    """A tiny model whose word-level vocabulary holds every opener's words."""
    texts = [*REFUSAL_OPENERS_V1, *(r["instruction"] for r in alpaca_rows(8) + safe_rows(8))]
    return tiny_pair(texts, seed=0, hidden_size=16, num_layers=1, num_heads=2)


def test_an_opener_that_a_shorter_one_begins_is_counted_once(opener_pair):
    tok, _ = opener_pair
    ids = opener_ids(tok, ["Sorry, I", "Sorry, I can't", "As an AI", "Sorry, but"])
    assert len(ids) == 3 and tok("Sorry, I", add_special_tokens=False)["input_ids"] in ids
    assert all(a[: len(b)] != b for a in ids for b in ids if a is not b)
    assert len(opener_ids(tok)) <= len(REFUSAL_OPENERS_V1)


def test_refusal_probability_is_the_openers_probability_after_the_prompt(opener_pair):
    tok, model = opener_pair
    prompts = [r["instruction"] for r in safe_rows(3)]
    cfg = TokenizeConfig(max_length=64)
    kw = {"batch_size": 2, "device": CPU, "precision": "fp32"}
    got = refusal_probabilities(model, tok, prompts, cfg, **kw)
    # By hand: teacher-force each opener after each prompt, multiply its token probabilities.
    want = torch.zeros(len(prompts), dtype=torch.float64)
    longest = 0
    for ids in opener_ids(tok):
        for i, p in enumerate(prompts):
            sample = Sample("s", 0, ({"role": "user", "content": p},), "x", {})
            enc = encode([sample], tok, max_length=64, response_tokens=1)
            prefix = enc.input_ids[0][: int(enc.prompt_lengths[0])]
            longest = max(longest, len(prefix) + len(ids))
            with torch.no_grad():
                logp = model(torch.tensor([prefix + ids])).logits[0].double().log_softmax(-1)
            at = range(len(prefix) - 1, len(prefix) - 1 + len(ids))
            want[i] += math.exp(sum(logp[j, t].item() for j, t in zip(at, ids, strict=True)))
    assert got.dtype == torch.float64 and (got > 0).all() and (got < 1).all()
    # The same forward passes, padded into batches: rounding through the network's depth,
    # on the log-probabilities (a probability's relative error is its log's absolute error).
    rtol = network_rtol(model.config, 2 * longest)
    assert_rounding_close(got.log(), want.log(), rtol)


def test_a_prompt_with_no_room_for_an_opener_has_no_probability(opener_pair):
    tok, model = opener_pair
    long = " ".join(["do harm number 1"] * 30)
    got = refusal_probabilities(
        model,
        tok,
        ["do harm number 2", long],
        TokenizeConfig(max_length=40),
        batch_size=2,
        device=CPU,
    )
    assert not math.isnan(got[0]) and math.isnan(got[1])


def test_auroc_counts_ties_half_and_leaves_nan_out():
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.5, 0.5], [0.5, 0.5]) == 0.5  # refuses everything alike: no discrimination
    assert auroc([0.1, math.nan], [0.9]) == 0.0
    assert math.isnan(auroc([math.nan], [0.3]))


def test_task_answers_match_on_their_opening_words():
    assert is_match("Positive.", "positive")
    assert is_match("  positive, clearly", "positive")
    assert not is_match("The sentiment is positive", "positive")
    assert not is_match("negative", "positive")
    assert not is_match("", "positive") and not is_match("positive", "")


def test_task_accuracy_scores_the_generated_answers(monkeypatch, tiny_model_dir, tmp_path):
    rows = [
        {"instruction": f"review {i}", "input": "", "output": "positive" if i % 2 else "negative"}
        for i in range(4)
    ]
    samples = load_samples(write_jsonl(tmp_path / "task.jsonl", rows)).samples
    seen = {}

    def fake_generate(model, tok, prompts, settings, *, template, progress):
        seen["settings"], seen["prompts"] = settings, prompts
        return ["Negative", "positive!", "positive", "I cannot"]

    monkeypatch.setattr(task, "generate", fake_generate)
    accuracy, answers = task_accuracy(
        None,
        None,
        samples,
        TaskConfig(max_new_tokens=3),
        GenerationConfig(sampling=True),
        template="auto",
        source="task.jsonl",
    )
    assert accuracy == 0.5 and answers[3] == "I cannot"
    assert seen["settings"].max_new_tokens == 3 and seen["settings"].sampling is False
    assert seen["prompts"] == [f"review {i}" for i in range(4)]


def test_task_rows_must_be_single_turn(tmp_path):
    turns = [
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"},
            ]
        }
    ]
    samples = load_samples(write_jsonl(tmp_path / "t.jsonl", turns)).samples
    with pytest.raises(ConfigError, match="single-turn; row 0 has 3 turns"):
        task.task_prompts(samples, "t.jsonl")


def test_seal_eval_reports_every_safety_metric(tmp_path, tiny_model_dir, capsys):
    harmful = write_jsonl(
        tmp_path / "h.jsonl", [{"prompt": r["instruction"]} for r in safe_rows(4)]
    )
    benign = write_jsonl(
        tmp_path / "b.jsonl", [{"prompt": r["instruction"]} for r in alpaca_rows(3)]
    )
    answers = [{**r, "output": "Sure . The word is w1 ."} for r in safe_rows(3)]
    sst = [{"instruction": f"task number {i} : say", "input": "", "output": "w1"} for i in range(3)]
    cfg = {
        "model": {"name_or_path": str(tiny_model_dir)},
        "eval": {
            "prompt_sets": [
                {"path": str(harmful), "kind": "harmful"},
                {"path": str(benign), "kind": "benign", "name": "risky"},
            ],
            "generation": {"max_new_tokens": 3},
            "harmful": {"path": str(write_jsonl(tmp_path / "ha.jsonl", answers))},
            "task": {"data": {"path": str(write_jsonl(tmp_path / "sst.jsonl", sst))}},
        },
        "tokenize": {"max_length": 64},
        "runtime": {"device": "cpu", "precision": "fp32"},
        "output_dir": str(tmp_path / "eval"),
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(path), "--no-progress"]) == 0
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    metrics = result["metrics"]
    for name in ("refusal_probability", "over_refusal_probability"):
        assert 0 < metrics[name] < 1
    assert 0 <= metrics["discrimination_auroc"] <= 1
    assert metrics["harmful_loss"] > 0 and 0 <= metrics["task_accuracy"] <= 1
    assert len(result["task_answers"]) == 3
    assert result["prompt_sets"]["risky"]["discrimination_auroc"] == metrics["discrimination_auroc"]
    assert result["refusal_openers"] == list(REFUSAL_OPENERS_V1)
    # Off: no refusal probabilities are computed or reported; --task names the task rows.
    cfg["eval"]["discrimination"] = False
    task_file = cfg["eval"].pop("task")["data"]["path"]
    cfg["output_dir"] = str(tmp_path / "off")
    path.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(path), "--task", task_file, "--no-progress"]) == 0
    assert "task_accuracy" in capsys.readouterr().out
    off = json.loads((tmp_path / "off" / "results.json").read_text())["metrics"]
    assert "discrimination_auroc" not in off and "refusal_probability" not in off
    assert off["task_accuracy"] == metrics["task_accuracy"]


def test_the_discrimination_ranks_a_model_that_refuses_harmful_prompts_only(opener_pair):
    """A model trained to open harmful prompts with a refusal and benign ones with an
    answer discriminates (AUROC 1); the untrained one does not know which is which."""
    tok, model = opener_pair[0], copy.deepcopy(opener_pair[1])
    torch.manual_seed(0)
    harmful = [r["instruction"] for r in safe_rows(6)]
    benign = [r["instruction"] for r in alpaca_rows(6)]
    rows = [
        Sample(str(i), i, ({"role": "user", "content": p},), "I cannot help", {})
        for i, p in enumerate(harmful)
    ]
    rows += [
        Sample(str(10 + i), 10 + i, ({"role": "user", "content": p},), "The word is w1", {})
        for i, p in enumerate(benign)
    ]
    data = encode(rows, tok, max_length=64)
    batch = collate(data.input_ids, data.labels, pad_id(tok))
    before = refusal_probabilities(
        model, tok, harmful + benign, TokenizeConfig(max_length=64), batch_size=4, device=CPU
    )
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optim.zero_grad()
        model(**batch).loss.backward()
        optim.step()
    trained = model
    cfg = TokenizeConfig(max_length=64)
    kw = {"batch_size": 4, "device": CPU}
    ph = refusal_probabilities(trained, tok, harmful, cfg, **kw)
    pb = refusal_probabilities(trained, tok, benign, cfg, **kw)
    assert auroc(ph.tolist(), pb.tolist()) == 1.0
    assert ph.mean() > 0.5 > pb.mean()
    assert auroc(before[:6].tolist(), before[6:].tolist()) < 1.0
