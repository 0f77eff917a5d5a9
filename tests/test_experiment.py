import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import alpaca_rows, safe_rows, shared_file, write_jsonl

from sealft.cli import main
from sealft.config import ConfigError, ExperimentRecipeConfig
from sealft.demo.tiny import tiny_pair
from sealft.recipes import finetune
from sealft.recipes.experiment import run_experiment
from sealft.report.tables import markdown_table, summarise
from sealft.scores import n_keep
from sealft.selection import rankers
from sealft.selection.bilevel import BilevelTrainer
from sealft.selection.rankers import DEFAULT_METHODS, methods_of

FAST = {
    "tokenize": {"max_length": 64},
    "selector": {"epochs": 2},
    "selector_train": {"batch_size": 4},
    "sft": {"epochs": 1, "batch_size": 4},
    "runtime": {"precision": "fp32", "device": "cpu"},
    "dsir": {"num_buckets": 256},
    "safeinstr": {"count": 4},
}


def shared_config(model_dir, output_dir, **kw) -> ExperimentRecipeConfig:
    return ExperimentRecipeConfig.model_validate(
        {
            "model": {"name_or_path": str(model_dir)},
            "data": {"path": str(shared_file("benign/alpaca_subset.json")), "limit": 16},
            "safe": {
                "path": str(shared_file("safe/safety_only_data_Instructions.json")),
                "limit": 8,
            },
            "eval": {
                "benign": {"path": str(shared_file("benign/alpaca_en_demo.json")), "limit": 6},
                "safety": {"path": str(shared_file("safe/safety_only_data_Instructions.json"))}
                | {"limit": 6},
            },
            "output_dir": str(output_dir),
            **FAST,
            **kw,
        }
    )


@pytest.fixture(scope="module")
def experiment_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment")
    cfg = shared_config(tiny_model_dir, out, seeds=[0, 1], p=[0.5, 1.0])
    return cfg, run_experiment(cfg, progress=False)


def test_run_writes_one_entry_per_method_p_and_seed(experiment_run):
    cfg, results = experiment_run
    out = cfg.output_dir
    saved = json.loads(Path(f"{out}/results.json").read_text())
    assert saved["runs"] == results["runs"]
    got = sorted((r["method"], r["p"] or 0, r["seed"] or 0) for r in saved["runs"])
    want = [("aligned", 0, 0)]
    for method in DEFAULT_METHODS:
        ps = (
            [0.5, 1.0]
            if method in ("random", "dsir", "seal", "seal+safeinstr", "frozen-loss")
            else [0]
        )
        want += [(method, p, s) for p in ps for s in (0, 1)]
    assert got == sorted(want)
    for run in saved["runs"]:
        assert set(run["metrics"]) == {"benign_loss", "benign_ppl", "safety_loss"}
    by = {(r["method"], r["p"], r["seed"]): r for r in saved["runs"]}
    n = by[("full", None, 0)]["trained"]
    assert by[("random", 0.5, 0)]["trained"] == n_keep(n, 0.5)
    assert by[("safeinstr", None, 0)]["trained"] == n + 4
    summary = {(r["method"], r["p"]): r for r in saved["summary"]}
    assert (
        summary[("seal", 0.5)]["seeds"] == 2
        and "std" in summary[("seal", 0.5)]["metrics"]["benign_loss"]
    )
    table = Path(f"{out}/results.md").read_text()
    assert table.startswith("| method | p | seeds |") and "| seal+safeinstr | 0.5 | 2 |" in table
    # p = 1 keeps everything, so a selection at p = 1 trains on the same samples as full.
    assert by[("seal", 1.0, 0)]["trained"] == n


def test_seal_methods_use_the_selector_and_safeinstr_adds_the_demonstrations(experiment_run):
    cfg, _ = experiment_run
    seed_dir = f"{cfg.output_dir}/seed0"
    scores = pq.read_table(f"{seed_dir}/select/scores.parquet").to_pylist()
    best = {r["sample_id"] for r in scores if r["rank"] <= n_keep(len(scores), 0.5)}

    def trained(run):
        rows = [
            json.loads(x) for x in Path(f"{seed_dir}/{run}/trained.jsonl").read_text().splitlines()
        ]
        return {r["sample_id"] for r in rows if r["source"] == "data"}, rows

    assert trained("seal-p0.5")[0] == best
    ids, rows = trained("seal+safeinstr-p0.5")
    assert ids == best and sum(r["source"] == "extra" for r in rows) == 4
    _, soft = trained("seal-soft")
    weights = {r["sample_id"]: r["weight"] for r in scores}
    assert {r["sample_id"]: r["weight"] for r in soft} == pytest.approx(weights)
    # Seeds differ where they should: random choices, the selector's batches.
    assert trained("random-p0.5")[0] != {
        json.loads(x)["sample_id"]
        for x in Path(f"{cfg.output_dir}/seed1/random-p0.5/trained.jsonl").read_text().splitlines()
    }


def test_rerun_skips_finished_steps_and_redoes_only_what_changed(experiment_run, monkeypatch):
    cfg, first = experiment_run

    def forbidden(*a, **k):
        raise AssertionError("a finished step ran again")

    monkeypatch.setattr(BilevelTrainer, "train", forbidden)
    monkeypatch.setattr(finetune, "train", forbidden)
    monkeypatch.setattr(rankers, "dsir_scores", forbidden)
    monkeypatch.setattr(rankers, "frozen_loss_scores", forbidden)
    again = run_experiment(cfg, progress=False)
    assert again["runs"] == first["runs"]

    # A fine-tuning setting changes the fine-tunes, never the selector or the rankings.
    calls = []
    monkeypatch.setattr(
        finetune, "train", lambda *a, **k: calls.append(1) or {"train_loss": 0.0, "steps": 0}
    )
    changed = cfg.model_copy(
        update={
            "sft": cfg.sft.model_copy(update={"lr": 1e-3}),
            "seeds": [0],
            "methods": ["seal", "random"],
            "p": 0.5,
        }
    )
    run_experiment(changed, progress=False)
    assert len(calls) == 2


def test_transfer_a_selection_across_tokenizers(tmp_path, tiny_model_dir):
    rows = alpaca_rows(16)
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(6))
    texts = [r[k] for r in rows + safe_rows(6) for k in ("instruction", "output")]
    # Another vocabulary (extra words shift every id) and another architecture size.
    tok_b, model_b = tiny_pair(
        ["zebra yak xylophone " * 3] + texts, seed=1, hidden_size=24, num_layers=1, num_heads=2
    )
    tok_a = __import__("transformers").AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok_a.get_vocab() != tok_b.get_vocab()
    cfg = ExperimentRecipeConfig.model_validate(
        {
            "model": {"name_or_path": "(model B, in memory)"},
            "selector_model": {"name_or_path": str(tiny_model_dir)},
            "data": {"path": str(data)},
            "safe": {"path": str(safe)},
            "methods": ["seal"],
            "p": 0.5,
            "output_dir": str(tmp_path / "run"),
            **FAST,
        }
    )
    run_experiment(cfg, progress=False, base=(model_b, tok_b))
    run = tmp_path / "run" / "seed0"
    assert "name_or_path: " + str(tiny_model_dir) in (run / "select" / "config.yaml").read_text()
    scores = pq.read_table(run / "select" / "scores.parquet").to_pylist()
    best = {r["sample_id"] for r in scores if r["rank"] <= n_keep(len(scores), 0.5)}
    trained = [
        json.loads(x)["sample_id"]
        for x in (run / "seal-p0.5" / "trained.jsonl").read_text().splitlines()
    ]
    assert set(trained) == best and len(trained) == 8
    assert (run / "seal-p0.5" / "adapter" / "tokenizer.json").exists()
    saved = json.loads((run / "seal-p0.5" / "adapter" / "tokenizer.json").read_text())
    assert "zebra" in saved["model"]["vocab"]  # trained with model B's own tokenizer


def test_summary_and_table_show_mean_and_std():
    runs = [
        {"method": "seal", "p": 0.8, "seed": s, "trained": 10, "metrics": {"refusal_rate": r}}
        for s, r in ((0, 0.5), (1, 0.7))
    ]
    summary = summarise(runs)
    assert summary[0]["metrics"]["refusal_rate"]["mean"] == pytest.approx(0.6)
    assert summary[0]["metrics"]["refusal_rate"]["std"] == pytest.approx(0.14142, abs=1e-4)
    table = markdown_table(summary)
    assert "| seal | 0.8 | 2 | 10 ± 0 | 60.0 ± 14.1 |" in table
    assert "refusal rate (%)" in table


def test_cli_run_and_its_help(tmp_path, tiny_model_dir, capsys):
    data = write_jsonl(tmp_path / "data.jsonl", alpaca_rows(10))
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(4))
    argv = ["run", "--model", str(tiny_model_dir), "--data", str(data), "--safe", str(safe)]
    argv += ["--output-dir", str(tmp_path / "run"), "--no-progress", "methods=[full,random]"]
    argv += [f"{k}.{n}={v}" for k, sec in FAST.items() for n, v in sec.items()]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| random | 0.8 | 1 |" in out and "results in" in out
    assert main(["run", "methods=[nope]"]) == 2
    assert "methods: unknown method(s) 'nope'; choose from full" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "seal+safeinstr" in capsys.readouterr().out


def test_methods_that_need_a_model_say_so_and_implicit_reward_runs(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="implicit-reward needs `reference_model`"):
        methods_of(shared_config(tiny_model_dir, tmp_path / "a", methods=["implicit-reward"]))
    with pytest.raises(ConfigError, match="guard needs `guard`"):
        run_experiment(shared_config(tiny_model_dir, tmp_path / "a", methods=["guard"]))
    assert not (tmp_path / "a").exists()  # refused before anything ran
    cfg = shared_config(
        tiny_model_dir,
        tmp_path / "b",
        methods=["implicit-reward"],
        reference_model={"name_or_path": str(tiny_model_dir)},
        implicit_reward={"response_tokens": 2},
        p=0.5,
    )
    results = run_experiment(cfg, progress=False)
    scores = pq.read_table(tmp_path / "b" / "implicit-reward" / "scores.parquet").to_pylist()
    # The reference is the aligned model itself: every reward is zero.
    assert {round(r["score"], 6) for r in scores} == {0.0}
    assert [r["method"] for r in results["runs"]] == ["aligned", "implicit-reward"]
    assert results["runs"][1]["trained"] == n_keep(len(scores), 0.5)
    # Smoothing is part of the ranking's cache key: switching it on ranks anew (a blend of
    # the all-zero rewards with their n-gram prediction, still all zero); the same setting
    # again is read from the cache.
    table = tmp_path / "b" / "implicit-reward" / "scores.parquet"
    before = table.stat().st_mtime_ns
    reward_cfg = cfg.implicit_reward.model_copy(update={"smoothing": "blend"})
    smoothed = cfg.model_copy(update={"implicit_reward": reward_cfg})
    run_experiment(smoothed, progress=False)
    after = table.stat().st_mtime_ns
    assert after != before
    assert {round(r["score"], 6) for r in pq.read_table(table).to_pylist()} == {0.0}
    run_experiment(smoothed, progress=False)
    assert table.stat().st_mtime_ns == after


def test_oracle_needs_labels_trains_on_no_harmful_row_and_names_an_unlabelled_row(
    tmp_path, tiny_model_dir
):
    with pytest.raises(ConfigError, match="oracle needs `labels`"):
        methods_of(shared_config(tiny_model_dir, tmp_path / "a", methods=["oracle"]))
    rows = [r | {"label": int(i % 4 == 0)} for i, r in enumerate(alpaca_rows(16))]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    cfg = shared_config(
        tiny_model_dir,
        tmp_path / "b",
        methods=["oracle"],
        data={"path": str(data)},
        labels={"field": "label", "harmful": [1]},
        p=0.75,
    )
    results = run_experiment(cfg, progress=False)
    run = results["runs"][1]
    trained = [
        json.loads(line)["index"]
        for line in (Path(run["run_dir"]) / "trained.jsonl").read_text().splitlines()
    ]
    assert run["method"] == "oracle" and len(trained) == 12
    assert not any(rows[i]["label"] for i in trained)
    del rows[5]["label"]
    write_jsonl(data, rows)
    unlabelled = cfg.model_copy(update={"output_dir": str(tmp_path / "c")})
    with pytest.raises(ConfigError, match=r"data\.jsonl: row 5 has no `label` field"):
        run_experiment(unlabelled, progress=False)
