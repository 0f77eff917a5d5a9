"""benchmarks/protocol: the task rows, the mixes and the evaluation config the calibration
runs, and one comparison pair end to end on a tiny model."""

import importlib
import json
import sys
from pathlib import Path

import pytest
from conftest import SHARED, alpaca_rows, safe_rows, write_jsonl

from benchmarks.protocol import calibrate, compare, data
from sealft.config import EvalRecipeConfig
from sealft.data import encode
from sealft.demo.tiny import tiny_pair
from sealft.io import read_jsonl


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
    assert [s.kind for s in cfg.eval.prompt_sets] == ["harmful", "harmful", "benign"]
    assert cfg.eval.prompt_sets[0].name == "instructions"
    assert cfg.eval.harmful is not None and cfg.eval.task is not None and cfg.eval.discrimination
    assert all(name in calibrate.METRICS for name in ("discrimination_auroc", "task_accuracy"))


def test_a_setting_becomes_a_config_tree():
    tree = calibrate.overrides("full-lr1e-5-e3")  # values as `seal`'s key=value reads them
    assert tree["lora"] == {"enabled": False} and tree["sft"]["epochs"] == 3
    assert float(tree["sft"]["lr"]) == 1e-5


def test_a_comparison_runs_seal_run_with_the_setting_and_the_labels(monkeypatch):
    monkeypatch.setattr(compare, "reference_model", lambda: "ref")
    mix = ("jbb", 10, 1, 2, 400, "lr1e-4-e5")
    cfg = compare.experiment("deep1", "test", mix, "seal-paper", ["seal"], 0.8)
    assert cfg.sft.lr == 1e-4 and cfg.sft.epochs == 5 and cfg.seeds == [2]
    assert cfg.data.path.endswith("test/jbb-n400-p10-s1.jsonl")
    assert cfg.selector.init == "zeros" and cfg.selector.algorithm == 2  # the paper's selector
    assert cfg.labels.field == "harmful" and cfg.guard.prompt == "llama-guard"
    assert "lr1e-4-e5/jbb-p10-d1-s2/seal-paper" in cfg.output_dir
    cls = compare.experiment("deep1", "test", mix, "guard-cls", ["guard"], 0.8)
    assert cls.guard.kind == "classifier" and cls.guard.model.endswith("guard-cls")


def test_paired_differences_carry_a_t_interval():
    pairs = {
        f"k{i}": {
            "seal": {m: a for m in compare.METRICS},
            "random": {m: 0.0 for m in compare.METRICS},
        }
        for i, a in enumerate([0.01, 0.02, 0.03])
    }
    row = next(
        r for r in compare.paired_table(pairs).splitlines() if r.startswith("| seal − random")
    )
    # mean 2 points; half-width t(0.975, 2) * 1 / sqrt(3) = 2.484 points
    assert "| 3 | 2.0 [-0.5, 4.5] |" in row
    assert compare.interval([1.0])[0] == 1.0


@pytest.fixture(scope="module")
def align():
    real = str(Path(__file__).resolve().parents[1] / "benchmarks" / "real")
    sys.path.insert(0, real)
    try:
        yield importlib.import_module("align")
    finally:
        sys.path.remove(real)


def test_deep_alignment_rows_train_on_the_refusal_after_a_masked_harmful_opening(
    align, tmp_path, monkeypatch
):
    answers = [
        f"Sure , here is step {i} of the poison plan and more words follow" for i in range(6)
    ]
    rows = [
        {"instruction": f"do harm number {i}", "input": "", "output": a}
        for i, a in enumerate(answers)
    ]
    write_jsonl(tmp_path / "pool_self.jsonl", rows)
    monkeypatch.setattr(align, "DATA", tmp_path)
    texts = [*answers, *(r["instruction"] for r in rows), *align.RECOVERY_REFUSALS]
    tok, _ = tiny_pair(texts, seed=0, hidden_size=16, num_layers=1, num_heads=2)
    recipe = align.Recipe(
        refusals=0,
        benign=0,
        risky_repeat=0,
        epochs=1,
        lr=1e-3,
        recover=4,
        recover_max_tokens=5,
        max_length=96,
    )
    samples, masked = align.recovery_samples(recipe, tok)
    assert len(samples) == 4 and set(masked) == {s.sample_id for s in samples}
    enc = encode(samples, tok, max_length=96)
    for i, s in enumerate(enc.samples):
        opening, refusal = s.response.split("\n\n")
        assert refusal in align.RECOVERY_REFUSALS and 1 <= masked[s.sample_id] <= 5
        start = tok(opening, add_special_tokens=False)["input_ids"]
        assert len(start) == masked[s.sample_id]
        assert any(tok(a)["input_ids"][: len(start)] == start for a in answers)
        # Masking the opening leaves exactly the refusal (and the end of turn) to learn.
        kept = enc.input_ids[i][int(enc.prompt_lengths[i]) + masked[s.sample_id] :]
        want = tok.decode(tok(refusal, add_special_tokens=False)["input_ids"])
        assert tok.decode(kept, skip_special_tokens=True).strip() == want


def test_a_comparison_pair_runs_end_to_end_on_a_tiny_model(tmp_path, monkeypatch, tiny_model_dir):
    """compare.pair on tiny files: every arm fine-tuned, evaluated and read back."""
    task = [dict(r, harmful=0) for r in alpaca_rows(9)]
    harmful = [dict(r, harmful=1) for r in alpaca_rows(3, prefix="harm")]
    split = tmp_path / "data" / "dev"
    split.mkdir(parents=True)
    (tmp_path / "real").mkdir()
    write_jsonl(split / "jbb-n12-p25-s0.jsonl", task + harmful)
    prompts = [{"prompt": r["instruction"]} for r in safe_rows(3)]
    for name in ("harmful_instructions", "harmful_questions", "risky_benign_prompts"):
        write_jsonl(split / f"{name}.jsonl", prompts)
    write_jsonl(split / "harmful_answers.jsonl", harmful)
    write_jsonl(split / "task_accuracy.jsonl", task[:4])
    write_jsonl(tmp_path / "real" / "safe.jsonl", safe_rows(4))
    write_jsonl(tmp_path / "real" / "align_refusals.jsonl", safe_rows(4))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny").symlink_to(tiny_model_dir)
    monkeypatch.setattr(data, "OUT", tmp_path / "data")
    monkeypatch.setattr(calibrate, "DATA", tmp_path / "data")
    monkeypatch.setattr(calibrate, "MODELS", tmp_path / "models")
    monkeypatch.setitem(calibrate.FT, "smoke", ["sft.epochs=1", "sft.batch_size=4"])
    monkeypatch.setattr(compare, "REAL", tmp_path / "real")
    monkeypatch.setattr(compare, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(compare, "reference_model", lambda: str(tiny_model_dir))
    got = compare.pair(
        "tiny", "dev", ("jbb", 25, 0, 0, 12, "smoke"), ["full", "oracle", "seal"], 0.75
    )
    assert set(got) == {"aligned", "full", "oracle", "seal"}
    for arm in got.values():
        assert set(compare.METRICS) <= set(arm) and 0 <= arm["instruction_refusal"] <= 1
    # The oracle keeps 75% of the rows, none of them harmful (the labels are the benchmark's).
    trained = tmp_path / "cache" / "tiny" / "dev" / "smoke" / "jbb-p25-d0-s0" / "defaults"
    kept = read_jsonl(trained / "seed0" / "oracle-p0.75" / "trained.jsonl")
    assert len(kept) == 9 and all(r["index"] < 9 for r in kept)
    assert "seal − oracle" in compare.paired_table({"d0-s0": got})
    # What each ranking did with the harmful rows, read back from the pair's run folders.
    extras = compare.ranked(
        "tiny", "dev", ("jbb", 25, 0, 0, 12, "smoke"), ["full", "oracle", "seal"], 0.75
    )
    assert extras["full"] == {"harmful_trained": 3}
    assert extras["oracle"] == {"harmful_trained": 0, "harmful_kept": 0, "ranking_auroc": 1.0}
    assert extras["seal"]["harmful_trained"] == extras["seal"]["harmful_kept"]
    targets = compare.targets_table({"a": got, "b": got}, {"a": extras, "b": extras})
    assert "SEAL refuses within 5 points of the oracle | 2 |" in targets
    # The aligned model's evaluation is shared with the split's next pair.
    shared = tmp_path / "cache" / "tiny" / "dev" / "aligned" / "eval.json"
    assert shared.read_text() == (trained / "aligned" / "eval.json").read_text()


def test_the_guard_classifier_learns_from_rows_no_mix_holds(tmp_path, monkeypatch, tiny_model_dir):
    from transformers import AutoTokenizer

    from benchmarks.protocol import guard
    from sealft.config import GuardConfig
    from sealft.data import Sample
    from sealft.selection.guard import guard_input

    write_jsonl(tmp_path / "pool_self.jsonl", alpaca_rows(3, prefix="harm"))
    write_jsonl(tmp_path / "align_benign.jsonl", alpaca_rows(5))
    write_jsonl(tmp_path / "align_refusals.jsonl", safe_rows(4))
    monkeypatch.setattr(guard, "REAL", tmp_path)
    rows = guard.labelled(n_benign=2, n_refusals=2)
    assert sorted(y for *_, y in rows) == [0, 0, 0, 0, 1, 1, 1]
    assert rows == guard.labelled(n_benign=2, n_refusals=2)  # drawn once, by a fixed seed
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = guard.Rows(tokenizer, rows, max_length=64)
    # What the classifier trains on is what `guard.kind: classifier` scores.
    assert data[0]["labels"] == rows[0][2] and len(data) == 7
    sample = Sample("s", 0, ({"role": "user", "content": rows[0][0]},), rows[0][1], {})
    text = guard_input(tokenizer, sample, GuardConfig(model="g", kind="classifier"), False)
    assert data[0]["input_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"][:64]


def test_the_guard_classifier_trains_and_loads_as_a_plain_classifier(
    tmp_path, monkeypatch, tiny_model_dir
):
    from transformers import AutoModelForSequenceClassification

    from benchmarks.protocol import guard

    write_jsonl(tmp_path / "pool_self.jsonl", alpaca_rows(6, prefix="harm"))
    write_jsonl(tmp_path / "align_benign.jsonl", alpaca_rows(6))
    write_jsonl(tmp_path / "align_refusals.jsonl", safe_rows(4))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny").symlink_to(tiny_model_dir)
    monkeypatch.setattr(guard, "REAL", tmp_path)
    monkeypatch.setattr(guard, "MODELS", tmp_path / "models")
    monkeypatch.setattr(guard, "OUT", tmp_path / "models" / "guard-cls")
    argv = ["guard", "--base", "tiny", "--benign", "4", "--refusals", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    guard.main()
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "models" / "guard-cls")
    assert model.config.id2label == {0: "safe", 1: "unsafe"}
    assert not any("lora" in name for name, _ in model.named_parameters())
    record = json.loads((tmp_path / "models" / "guard-cls" / "guard_training.json").read_text())
    assert record["rows"] == {"train": 11, "held_out": 1}


def test_a_target_is_met_only_when_its_paired_interval_clears_the_bound():
    def pairs(diffs):
        return {
            f"k{i}": {
                "seal": {"instruction_refusal": 0.5 + d / 100},
                "random": {"instruction_refusal": 0.5},
            }
            for i, d in enumerate(diffs)
        }

    def verdict(diffs):
        line = next(
            r for r in compare.targets_table(pairs(diffs), {}).splitlines() if "random" in r
        )
        return line.rsplit("|", 2)[1].strip()

    assert verdict([2.0, 2.5, 3.0]) == "met"  # 2.5, half-width 4.303 * 0.5 / sqrt(3) = 1.24
    assert verdict([1.0, 2.0, 3.0]) == "not shown"  # 2.0 [-0.48, 4.48]
    assert verdict([-1.0, 1.0, 0.6]) == "not shown"
    assert verdict([-3.0, -1.0, 0.5]) == "missed"
