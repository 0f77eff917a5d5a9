"""The score as named stages (selection/score.py): the plan each run settles and writes,
and the one place the stages meet."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl
from sklearn.model_selection import KFold
from test_pipeline import _cli

from sealft.config import SelectRecipeConfig, load_config
from sealft.scores import read_scores
from sealft.selection.score import PLAN, ScorePlan, Signals, compose, plan_for
from sealft.selection.selector import Selector

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"
REQUIRED = {"model": {"name_or_path": "m"}, "data": {"path": "d"}, "safe": {"path": "s"}}


@pytest.fixture
def files(tmp_path):
    return (
        write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(16)),
        write_jsonl(tmp_path / "safe.jsonl", safe_rows(6)),
    )


def _plan(tmp_path, out="run") -> dict:
    return json.loads((tmp_path / out / PLAN).read_text())


def test_the_defaults_plan_is_written_with_every_auto_settled(tmp_path, tiny_model_dir, files):
    assert _cli(tmp_path, tiny_model_dir, *files) == 0
    plan = _plan(tmp_path)
    assert plan["selector"] == "logits" and plan["smoothing"] == "blend"
    assert plan["start"] == "zeros"  # no reference_model
    assert plan["probe_weight"] == 1.0  # the safe set holds refusals to learn from
    assert plan["stages"][-1].startswith("prompt probe")
    # With a reference model the logits start from the implicit reward.
    ref = [f"reference_model.name_or_path={tiny_model_dir}"]
    assert _cli(tmp_path, tiny_model_dir, *files, out="ref", extra=ref) == 0
    assert _plan(tmp_path, "ref")["start"] == "implicit-reward"


def test_the_probe_without_refusals_to_learn_from_is_off_in_the_plan(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(16))
    safe = write_jsonl(tmp_path / "safe.jsonl", alpaca_rows(6, prefix="job"))
    assert _cli(tmp_path, tiny_model_dir, data, safe) == 0
    plan = _plan(tmp_path)
    assert plan["probe_weight"] == 0.0
    assert not any(s.startswith("prompt probe") for s in plan["stages"])


def test_the_paper_config_plans_the_bilevel_logits_alone(tmp_path, tiny_model_dir, files):
    paper = ["tokenize.max_length=48", "selector_train.batch_size=4", "runtime.precision=fp32"]
    paper += ["selector_train.micro_batch_size=null", "selector.epochs=1"]
    argv = ["--config", str(PAPER), *paper]
    assert _cli(tmp_path, tiny_model_dir, *files, extra=argv) == 0
    plan = _plan(tmp_path)
    assert (plan["start"], plan["smoothing"], plan["probe_weight"]) == ("zeros", "none", 0.0)
    assert plan["stages"] == ["start: zeros", "bilevel (logits selector)"]
    # Nothing composed: the scores are the bilevel logits the selector file keeps.
    scores = read_scores(tmp_path / "run" / "scores.parquet").sort_by("sample_id")
    learned = Selector.load(tmp_path / "run" / "selector.safetensors").logits
    assert scores.column("score").to_pylist() == pytest.approx(learned.tolist(), abs=1e-6)


def test_a_feature_selector_plans_its_map_alone(tmp_path, tiny_model_dir, files):
    assert _cli(tmp_path, tiny_model_dir, *files, extra=["selector.kind=features"]) == 0
    plan = _plan(tmp_path)
    assert (plan["selector"], plan["smoothing"], plan["probe_weight"]) == ("features", "none", 0)


def test_paper_yaml_names_the_stages_it_wants():
    cfg = load_config(SelectRecipeConfig, PAPER, [f"{k}.path=x" for k in ("data", "safe")])
    assert plan_for(cfg) == ScorePlan("logits", "zeros", 1.0, "none", 0.0, 0)


def test_compose_pins_the_default_score_on_a_toy_case():
    """blend (the standardised logits plus the standardised out-of-fold ridge prediction;
    with all-zero features the ridge predicts its training folds' mean), then minus the
    probe's standardised score times the blend's spread."""
    n, seed = 10, 3
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5, -0.5, 0.25, -2.0, 1.0, 0.75])
    probe = torch.arange(n, dtype=torch.float32)
    plan = plan_for(SelectRecipeConfig.model_validate({**REQUIRED, "seed": seed}))
    got = compose(plan, logits, Signals(features=(torch.zeros(n, 3), None), probe=probe))

    y = logits.double().numpy()
    pooled = np.empty(n)
    for fit, held in KFold(5, shuffle=True, random_state=seed).split(y):
        pooled[held] = y[fit].mean()

    def z(v):
        return (v - v.mean()) / v.std(ddof=1)

    blended = z(y) + z(pooled)
    expected = blended - 1.0 * blended.std(ddof=1) * z(probe.double().numpy())
    assert got.double().numpy() == pytest.approx(expected, abs=1e-5)


def test_a_scores_table_of_an_older_sealft_reads_with_its_score_renamed(tmp_path):
    path = tmp_path / "old.parquet"
    old = {"sample_id": ["a", "b"], "logit": [1.0, 0.0], "weight": [1.0, 1.0], "rank": [1, 2]}
    pq.write_table(pa.table(old), path)
    assert read_scores(path).column("score").to_pylist() == [1.0, 0.0]
