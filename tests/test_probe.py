import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft.config import ConfigError, ProbeConfig, SelectorConfig, SelectRecipeConfig
from sealft.data import load_samples
from sealft.recipes.select import run_select
from sealft.selection.probe import probe_layer, probe_scores, prompt_states


def clusters(n: int, shift: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    x[:, 0] += shift
    return x


def auroc_of(scores: torch.Tensor, harmful: list[bool]) -> float:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(harmful, scores.numpy())


def test_the_probe_scores_requests_like_the_refused_ones_higher():
    safe = torch.cat([clusters(30, 3.0, 0), clusters(30, -3.0, 1)])
    refused = [True] * 30 + [False] * 30
    data = torch.cat([clusters(10, 3.0, 2), clusters(40, -3.0, 3)])
    harmful = [True] * 10 + [False] * 40
    assert auroc_of(probe_scores(safe, refused, data, 0.1, seed=0), harmful) > 0.95
    # A safe set of refusals only: the data's own prompts are the other class, cross-fitted.
    only = probe_scores(safe[:30], refused[:30], data, 0.1, seed=0)
    assert auroc_of(only, harmful) > 0.9
    # A broken sample's state (NaN) is left out and scored neutral.
    broken = data.clone()
    broken[3] = float("nan")
    scores = probe_scores(safe, refused, broken, 0.1, seed=0)
    assert scores[3] == 0 and torch.isfinite(scores).all()
    with pytest.raises(ConfigError, match="no safe sample is a refusal"):
        probe_scores(safe[30:], refused[30:], data, 0.1, seed=0)


def test_prompt_states_are_the_state_at_the_last_prompt_position(tmp_path, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    samples = list(load_samples(write_jsonl(tmp_path / "d.jsonl", alpaca_rows(3))).samples)
    cfg = SelectRecipeConfig.model_validate({"tokenize": {"max_length": 64}})
    states = prompt_states(
        model, tok, samples, cfg.tokenize, [0, 1], batch_size=2, device="cpu", precision="fp32"
    )
    from sealft.data import encode_configured

    enc = encode_configured(samples, tok, cfg.tokenize, 1)
    for i in range(3):
        labels = enc.labels[i]
        first = next(j for j, t in enumerate(labels) if t != -100)
        ids = torch.tensor([enc.input_ids[i][:first]])
        with torch.no_grad():
            want = model(input_ids=ids, output_hidden_states=True).hidden_states
        for j, layer in enumerate((0, 1)):
            assert torch.allclose(states[i, j], want[layer][0, -1], atol=1e-5)
    assert probe_layer(ProbeConfig(), model) == 1
    with pytest.raises(ConfigError, match="has 1 layers"):
        probe_layer(ProbeConfig(layer=3), model)


def probe_run(tmp_path, model_dir, safe_rows_: list[dict], name: str, **probe) -> list[float]:
    """A one-epoch selector run's final logits, in row order."""
    data = write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(12))
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows_)
    cfg = SelectRecipeConfig.model_validate(
        {
            "model": {"name_or_path": str(model_dir)},
            "data": {"path": str(data)},
            "safe": {"path": str(safe)},
            "tokenize": {"max_length": 64},
            "selector": {"epochs": 1, "prompt_probe": probe},
            "selector_train": {"batch_size": 4},
            "runtime": {"precision": "fp32", "device": "cpu"},
            "output_dir": str(tmp_path / name),
        }
    )
    run_select(cfg, progress=False)
    rows = pq.read_table(tmp_path / name / "scores.parquet").to_pylist()
    return [r["score"] for r in sorted(rows, key=lambda r: r["index"])]


def test_select_subtracts_the_probe_and_weight_zero_is_the_plain_selector(tmp_path, tiny_model_dir):
    safe = safe_rows(6) + alpaca_rows(6, prefix="other")

    def run(name: str, **probe) -> list[float]:
        return probe_run(tmp_path, tiny_model_dir, safe, name, **probe)

    plain, probed, default = run("plain", weight=0), run("probed", weight=2.0), run("auto")
    assert plain != probed and default not in (plain, probed)
    # weight w moves each logit by w × spread × z(probe): doubling w doubles the move.
    heavier = run("heavier", weight=4.0)
    moved = torch.tensor(probed) - torch.tensor(plain)
    assert torch.allclose(torch.tensor(heavier) - torch.tensor(plain), 2 * moved, atol=1e-4)


def test_without_refusals_in_the_safe_set_the_automatic_probe_steps_aside(
    tmp_path, tiny_model_dir, caplog
):
    answers = alpaca_rows(8, prefix="other")
    plain = probe_run(tmp_path, tiny_model_dir, answers, "plain", weight=0)
    with caplog.at_level("WARNING"):
        auto = probe_run(tmp_path, tiny_model_dir, answers, "auto")
    assert auto == plain
    assert "no safe sample is a refusal" in caplog.text and "off for this run" in caplog.text
    with pytest.raises(ConfigError, match="no safe sample is a refusal"):
        probe_run(tmp_path, tiny_model_dir, answers, "explicit", weight=1.0)


def test_a_feature_selector_refuses_the_probe():
    with pytest.raises(ValueError, match="must be 0 for a feature selector"):
        SelectorConfig(kind="features", prompt_probe={"weight": 1.0})
    assert SelectorConfig(kind="features").probe_weight() == 0
    assert SelectorConfig().probe_weight() == 1.0
