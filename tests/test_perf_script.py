"""benchmarks/perf.py, piece by piece on the tiny test model: each measurement runs and
returns the numbers the table is built from, and the table judges them against the targets.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import alpaca_rows, safe_rows, write_jsonl

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "perf.py"


@pytest.fixture(scope="module")
def perf():
    spec = importlib.util.spec_from_file_location("perf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def spec(tmp_path, tiny_model_dir) -> dict:
    return {
        "model": str(tiny_model_dir),
        "data": str(write_jsonl(tmp_path / "data.jsonl", alpaca_rows(8))),
        "safe": str(write_jsonl(tmp_path / "safe.jsonl", safe_rows(4))),
        "rows": 8,
        "safe_rows": 4,
        "max_length": 64,
        "batch_size": 4,
        "sft_epochs": 1,
        "precision": "fp32",
        "sft_precision": "fp32",
        "p": 0.75,
        "threads": 1,
        "matmul_size": 32,
        "matmul_reps": 2,
        "profile_rows": 5,
        "profile_out": str(tmp_path / "profile.txt"),
        "workdir": str(tmp_path),
        "device": "cpu",
        "compile": False,
    }


def test_matmul_in_a_child_process(perf, spec):
    out = perf.run_child("matmul", spec)
    assert set(out["bf16"]) == {"n", "best_seconds", "flops_per_s"}
    assert out["fp32"]["n"] == 32 and out["fp32"]["flops_per_s"] > 0
    assert 0 <= out["cpu_busy_at_start"] <= 1 and out["child_wall_seconds"] > 0


def test_finetune_times_the_training_loop_and_counts_flops(perf, spec):
    out = perf.child_finetune(spec)
    assert out["rows"] == 8 and out["tokens_per_epoch"] > 8
    assert 0 < out["train_runtime"] <= out["wall_seconds"]
    assert len(out["epochs_seconds"]) == 1 and out["epochs_seconds"][0] <= out["train_runtime"]
    assert out["tokens_per_s"] == pytest.approx(out["tokens_per_epoch"] / out["train_runtime"])
    assert out["flops"]["counted_flops"] > 0 and out["flops"]["flops_per_s"] > 0
    assert out["memory"]["peak_rss_mib"] >= out["memory"]["rss_before_mib"] > 0


def test_selector_times_each_epoch_then_fine_tunes_the_top_p(perf, spec):
    out = perf.child_select(spec | {"settings": "defaults"})
    assert [e["learning"] for e in out["epochs"]] == [False, True]  # one warm-up epoch
    assert out["epochs"][-1]["gamma"] > 0 and all(e["steps"] == 2 for e in out["epochs"])
    assert out["selector_seconds"] >= sum(e["seconds"] for e in out["epochs"])
    assert out["sft_top_p"]["rows"] == 6  # 75% of 8


def test_fast_settings_are_one_learning_epoch(perf, spec):
    cfg = perf.select_config(spec | {"settings": "fast"})
    assert (cfg.selector.epochs, cfg.selector.warmup_epochs) == (1, 0)
    assert cfg.selector.selector_learns(0) and cfg.selector_train.batch_size == 4


def test_paper_settings_keep_the_run_sizes(perf, spec):
    cfg = perf.select_config(spec | {"settings": "paper"})
    assert (cfg.selector.algorithm, cfg.selector.response_tokens) == (2, None)
    assert cfg.selector_train.batch_size == 4 and cfg.selector_train.micro_batch_size is None
    assert cfg.tokenize.max_length == 64 and cfg.runtime.precision == "fp32"


def test_compile_reaches_the_selector_and_sft_configs(perf, spec, tmp_path):
    on = spec | {"settings": "defaults", "compile": True}
    assert perf.select_config(on).runtime.compile
    assert perf.finetune_config(on, tmp_path / "sft", "fp32").runtime.compile
    assert not perf.select_config(spec | {"settings": "defaults"}).runtime.compile
    assert perf.parse_args(["--compile"]).compile and not perf.parse_args([]).compile


def test_trl_runs_on_the_same_tokens(perf, spec):
    pytest.importorskip("trl")
    out = perf.child_trl(spec)
    seal = perf.encoded_rows(spec, perf.load_model(spec)[1])
    assert out["tokens_per_epoch"] == sum(len(x) for x in seal.input_ids)
    assert out["train_runtime"] > 0 and len(out["epochs_seconds"]) == 1


def test_trl_missing_is_a_note_not_a_failure(perf, spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # what an environment without TRL gives
    assert "not installed" in perf.child_trl(spec)["skipped"]


def test_profile_writes_both_steps(perf, spec):
    out = perf.child_profile(spec)
    text = Path(spec["profile_out"]).read_text()
    assert "selector step" in text and "SFT step" in text
    assert all(len(ops) == 5 for ops in out["top_ops"].values())


def _measurements(trl_skipped: bool) -> dict:
    sft = {"epochs_seconds": [12.0, 10.0], "wall_seconds": 25.0, "tokens_per_s": 300.0}
    sft |= {"memory": {"peak_rss_mib": 900.0}, "flops": {"flops_per_s": 7e11}}

    def select(seconds: float) -> dict:
        epochs = [{"epoch": 1, "gamma": 0.0, "learning": False, "seconds": 8.0}]
        epochs.append({"epoch": 2, "gamma": 0.05, "learning": True, "seconds": seconds})
        top = {"wall_seconds": 20.0}
        return {
            "epochs": epochs,
            "selector_seconds": 30.0,
            "memory": sft["memory"],
            "sft_top_p": top,
        }

    trl = (
        {"skipped": "TRL is not installed"} if trl_skipped else {"tokens_per_s": 100.0, "trl": "1"}
    )
    return {
        "matmul": {"bf16": {"n": 4096, "flops_per_s": 1e12}},
        "finetune-bf16": sft,
        "finetune-fp32": sft,
        "trl-bf16": trl,
        "trl-fp32": trl,
        "select-defaults": select(11.0),
        "select-paper": select(15.0),
        "select-fast": select(12.5),
    }


def test_table_judges_every_target(perf):
    m = _measurements(trl_skipped=False)
    rows = perf.selector_rows(m, 2, "bf16") + perf.hardware_rows(m, "bf16")
    met = {r["id"]: r["met"] for r in rows}
    assert met == {
        "selector_epoch_defaults": "met",  # 1.1 ≤ 1.2
        "selector_epoch_paper": "met",  # 1.5 ≤ 1.6
        "end_to_end_defaults": "missed",  # 50 / 25 = 2
        "end_to_end_paper": "missed",
        "selector_epoch_fast": "missed",  # 1.25 > 1.2
        "end_to_end_fast": "missed",
        "flop_rate": "met",  # 0.7 ≥ 0.6
        "vs_trl_fp32": "met",  # 3 ≥ 2
        "vs_trl_bf16": "met",
    }
    # The selector's last epoch against the SFT's last: both past their first steps.
    assert rows[0]["detail"].startswith("epoch 2 (γ=0.05) 11.0 s ÷ SFT epoch 2 10.0 s")
    assert "epoch 1 (warm-up, γ=0) 8.0 s" in rows[0]["detail"]
    table = perf.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "| 1.10× | ≤ 1.2× | met |" in table


def test_missing_trl_is_a_skipped_row(perf):
    rows = perf.hardware_rows(_measurements(trl_skipped=True), "bf16")
    trl = [r for r in rows if r["id"].startswith("vs_trl")]
    assert [r["met"] for r in trl] == ["skipped", "skipped"]
    assert all("not installed" in r["detail"] for r in trl)


def test_bookkeeping_rows_come_from_its_output(perf):
    row = {"rows": 1_000_000, "tokenize": True, "total_seconds": 12.5, "peak_rise_mib": 800}
    stdout = "generating\n" + json.dumps(row) + "\n| a table |\n{not json\n"
    rows = perf.bookkeeping_rows({"rows": perf.parse_bookkeeping(stdout)})
    assert len(rows) == 1 and "1,000,000 rows, with tokenization" in rows[0]["measurement"]
    skipped = perf.bookkeeping_rows({"skipped": "benchmarks/bookkeeping.py not found"})
    assert skipped[0]["result"] == "skipped"


def test_smoke_sizes_and_outputs(perf):
    args = perf.parse_args(["--smoke"])
    assert (args.rows, args.batch_size) == (perf.SMOKE["rows"], perf.SMOKE["batch_size"])
    assert args.jobs == 2 and args.threads == max(1, len(os.sched_getaffinity(0)) // 2)
    assert args.out.name == "perf-smoke.json" and args.profile_out is None
    full = perf.parse_args([])
    assert (full.rows, full.max_length, full.batch_size) == (240, 128, 8)
    assert full.out.name == "perf.json" and full.profile_out.name == "perf-profile.txt"
    assert full.jobs == 1


def test_random_shape_model_runs_a_selector(perf, spec, tiny_model_dir):
    """--shape: a random Llama of a named shape (here Llama-3's vocabulary and head layout at
    a tiny size) in bf16 with a tokenizer of another model, through the selector."""
    shaped = spec | {"shape": "llama3-tiny", "tokenizer": str(tiny_model_dir), "precision": "bf16"}
    model, tokenizer = perf.load_model(shaped)
    assert model.config.vocab_size == 128_256 and model.config.num_key_value_heads == 1
    assert str(model.dtype) == "torch.bfloat16" and len(tokenizer) <= 128_256
    out = perf.child_select(shaped | {"settings": "defaults"})
    assert out["epochs"][-1]["learning"] and out["sft_top_p"]["rows"] == 6


def test_failed_child_is_a_failed_row_and_the_rest_are_kept(perf, spec, tmp_path):
    out = perf.run_child("select", spec | {"settings": "defaults", "model": "/no/such/model"})
    assert "failed" in out and "no such model folder" in out["failed"]
    m = _measurements(trl_skipped=False) | {"select-paper": out}
    rows = {r["id"]: r for r in perf.selector_rows(m, 2, "bf16")}
    assert rows["selector_epoch_paper"]["met"] == "failed"
    assert rows["selector_epoch_defaults"]["met"] == "met"


def test_measure_writes_each_result_as_it_comes(perf, spec, tmp_path, monkeypatch):
    seen = []

    def fake_child(name: str, s: dict) -> dict:
        seen.append(name)
        return {"name": name}

    monkeypatch.setattr(perf, "run_child", fake_child)
    partial = tmp_path / "perf.partial.json"
    m = perf.measure(spec | {"sft_precisions": ["bf16"]}, 1, partial)
    assert list(m) == [
        "matmul",
        "finetune-bf16",
        "trl-bf16",
        "select-defaults",
        "select-paper",
        "select-fast",
        "profile",
    ]
    assert json.loads(partial.read_text()) == m
