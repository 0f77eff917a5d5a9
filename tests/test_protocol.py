"""benchmarks/protocol: the task rows, the mixes and the evaluation config the calibration
runs (no model is trained here)."""

import pytest
from conftest import SHARED

from benchmarks.protocol import calibrate, data
from sealft.config import EvalRecipeConfig


def test_sst2_rows_are_instructions_with_a_one_word_answer():
    if not (SHARED / "task" / "sst2_dev.tsv").exists():
        pytest.skip("../shared/data/task is missing")
    rows = data.sst2("sst2_dev.tsv", "content")
    assert len(rows) == 872
    assert {r["output"] for r in rows} == {"positive", "negative"}
    assert all(r["instruction"] == data.INSTRUCTION and r["input"] for r in rows)


def test_mixes_hold_their_share_and_nest_across_shares():
    task = [{"input": f"t{i}", "harmful": 0} for i in range(100)]
    harmful = [{"input": f"h{i}", "harmful": 1} for i in range(30)]
    by_pct = {pct: data.mix(task, harmful, pct, seed=0, n=40) for pct in (0, 10, 20)}
    for pct, rows in by_pct.items():
        assert len(rows) == 40 and sum(r["harmful"] for r in rows) == 40 * pct // 100
    kept = {pct: {r["input"] for r in rows if r["harmful"]} for pct, rows in by_pct.items()}
    assert kept[10] <= kept[20]
    tasks = {pct: {r["input"] for r in rows if not r["harmful"]} for pct, rows in by_pct.items()}
    assert tasks[20] <= tasks[10] <= tasks[0]
    assert data.mix(task, harmful, 10, seed=1, n=40) != by_pct[10]
    with pytest.raises(SystemExit, match="needs 36 harmful"):
        data.mix(task, harmful, 90, seed=0, n=40)


def test_halves_are_disjoint_and_fixed():
    rows = list(range(11))
    a, b = data.halves(rows, "x"), data.halves(rows, "x")
    assert a == b and sorted(a["dev"] + a["test"]) == rows and not set(a["dev"]) & set(a["test"])


def test_the_calibration_evaluates_with_every_safety_metric():
    cfg = EvalRecipeConfig.model_validate(
        {**calibrate.eval_config("dev", calibrate.QUICK), "model": {"name_or_path": "m"}}
    )
    assert [s.kind for s in cfg.eval.prompt_sets] == ["harmful", "benign"]
    assert cfg.eval.harmful is not None and cfg.eval.task is not None and cfg.eval.discrimination
    assert all(name in calibrate.METRICS for name in ("discrimination_auroc", "task_accuracy"))
