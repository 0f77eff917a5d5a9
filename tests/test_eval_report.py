import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import alpaca_rows, safe_rows, shared_file, write_jsonl
from judge_server import serve

from sealft.cli import main
from sealft.config import ExperimentRecipeConfig
from sealft.recipes.experiment import run_experiment
from sealft.report.html import write_report

SHARED_EVAL = [
    ("I-CoNa.json", "harmful"),
    ("I-Controversial.json", "harmful"),
    ("I-MaliciousInstructions.json", "harmful"),
    ("I-PhysicalSafetyUnsafe.json", "harmful"),
    ("Q-Harm.json", "harmful"),
    ("advbench_behaviors.csv", "harmful"),
    ("donotanswer", "harmful"),
    ("I-Alpaca.json", "benign"),
    ("I-PhysicalSafetySafe.json", "benign"),
]


def eval_config(tmp_path: Path, model_dir, out: str, limit: int = 3, **extra) -> Path:
    cfg = {
        "model": {"name_or_path": str(model_dir)},
        "eval": {
            "prompt_sets": [
                {"path": str(shared_file(f"eval/{name}")), "kind": kind, "limit": limit}
                for name, kind in SHARED_EVAL
            ],
            "generation": {"max_new_tokens": 4, "batch_size": 8},
            "benign": {"path": str(write_jsonl(tmp_path / "heldout.jsonl", alpaca_rows(6)))},
        },
        "tokenize": {"max_length": 64},
        "runtime": {"device": "cpu"},
        "output_dir": str(tmp_path / out),
        **extra,
    }
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_seal_eval_on_every_shared_eval_file(tmp_path, tiny_model_dir, capsys):
    # Three prompts of every set keep it fast; donotanswer's come from its first risk area.
    cfg = eval_config(tmp_path, tiny_model_dir, "eval")
    assert main(["eval", "--config", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "advbench_behaviors" in out and "over_refusal_rate" in out and "phrases v1" in out
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(result["metrics"]) == {
        "refusal_rate",
        "over_refusal_rate",
        "benign_loss",
        "benign_ppl",
        "refusal_probability",
        "over_refusal_probability",
        "discrimination_auroc",
    }
    assert result["detector"]["version"] == "1" and result["detector"]["phrases"]
    assert result["generation"]["sampling"] is False
    assert len(result["prompt_sets"]) == len(SHARED_EVAL)
    assert result["prompt_sets"]["I-Alpaca"]["kind"] == "benign"
    assert "over_refusal_rate" in result["prompt_sets"]["I-Alpaca"]
    assert result["prompt_sets"]["donotanswer"]["by_category"]
    answers = [
        json.loads(x) for x in (tmp_path / "eval" / "answers.jsonl").read_text().splitlines()
    ]
    assert len(answers) == 3 * len(SHARED_EVAL)
    assert {a["set"] for a in answers} == {n.split(".")[0] for n, _ in SHARED_EVAL}


def test_win_rate_end_to_end_through_a_local_judge(tmp_path, tiny_model_dir, capsys):
    first = eval_config(tmp_path, tiny_model_dir, "reference", limit=2)
    assert main(["eval", "--config", str(first), "--no-progress"]) == 0
    # Rewrite the reference answers: better (GOOD) on half the benign prompts, merely
    # different on the rest, so that every pair is a distinct question in either order.
    ref = tmp_path / "reference" / "answers.jsonl"
    rows = [json.loads(x) for x in ref.read_text().splitlines()]
    benign_rows = [r for r in rows if r["kind"] == "benign"]
    for i, r in enumerate(benign_rows):
        r["answer"] += " GOOD" if i % 2 == 0 else " other"
    ref.write_text("".join(json.dumps(r) + "\n" for r in rows))
    second = eval_config(tmp_path, tiny_model_dir, "candidate", limit=2)
    with serve("good") as (url, requests):
        argv = ["eval", "--config", str(second), "--no-progress", "--judge-model", "j"]
        argv += ["--judge-url", url, "--reference", str(tmp_path / "reference" / "answers.jsonl")]
        assert main(argv) == 0
    benign = 2 * 2  # two benign sets, two prompts each
    assert len(requests) == 2 * benign  # every pair judged in both orders
    result = json.loads((tmp_path / "candidate" / "results.json").read_text())
    w = result["win_rate"]
    # Half the pairs lost in both orders, half tied in both: (0 + 0.5 * 4) / 8.
    assert (w["wins"], w["ties"], w["losses"]) == (0, benign, benign)
    assert w["win_rate"] == pytest.approx(25.0) and w["unparseable"] == w["errors"] == 0
    assert result["metrics"]["win_rate"] == pytest.approx(0.25)
    assert "win rate vs reference: 25.0%" in capsys.readouterr().out
    details = (tmp_path / "candidate" / "judgments.detail.jsonl").read_text().splitlines()
    assert sorted(json.loads(d)["ours_is"] for d in details) == ["A"] * benign + ["B"] * benign


def test_eval_refuses_a_reference_without_a_judge(tmp_path, tiny_model_dir, capsys):
    cfg = eval_config(tmp_path, tiny_model_dir, "x", reference="answers.jsonl")
    assert main(["eval", "--config", str(cfg), "--no-progress"]) == 2
    assert "no eval.judge" in capsys.readouterr().err


@pytest.fixture(scope="module")
def labelled_experiment(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labelled")
    rows = [{**r, "label": 0} for r in alpaca_rows(18)]
    rows += [{**r, "output": "Sure . The word is w1 .", "label": 1} for r in safe_rows(6)]
    prompts = tmp / "harmful.jsonl"
    write_jsonl(
        prompts,
        [
            {"prompt": r["instruction"], "category": "c" + str(i % 2)}
            for i, r in enumerate(safe_rows(4))
        ],
    )
    benign = write_jsonl(
        tmp / "benign.jsonl", [{"prompt": r["instruction"]} for r in alpaca_rows(3)]
    )
    with serve("good") as (url, requests):
        cfg = ExperimentRecipeConfig.model_validate(
            {
                "model": {"name_or_path": str(tiny_model_dir)},
                "data": {"path": str(write_jsonl(tmp / "data.jsonl", rows))},
                "safe": {"path": str(write_jsonl(tmp / "safe.jsonl", safe_rows(6)))},
                "methods": ["full", "random", "seal"],
                "p": [0.5, 1.0],
                "seeds": [0, 1],
                "labels": {"field": "label", "harmful": [1]},
                "tokenize": {"max_length": 64},
                "selector": {"epochs": 2},
                "selector_train": {"batch_size": 4},
                "sft": {"epochs": 1, "batch_size": 4},
                "runtime": {"precision": "fp32", "device": "cpu"},
                "eval": {
                    "prompt_sets": [
                        {"path": str(prompts), "kind": "harmful"},
                        {"path": str(benign), "kind": "benign"},
                    ],
                    "generation": {"max_new_tokens": 3},
                    "judge": {"model": "j", "base_url": url},
                    "harmful": {"path": str(write_jsonl(tmp / "answered.jsonl", rows[-3:]))},
                    "task": {"data": {"path": str(write_jsonl(tmp / "task.jsonl", rows[:3]))}},
                },
                "output_dir": str(tmp / "run"),
            }
        )
        results = run_experiment(cfg, progress=False)
        n_requests = len(requests)
    return tmp / "run", results, n_requests


def test_run_judges_every_method_against_full(labelled_experiment):
    run_dir, results, n_requests = labelled_experiment
    judged = [r for r in results["runs"] if "judge" in r]
    # random and seal at two p each, two seeds; never full against itself.
    assert {r["method"] for r in judged} == {"random", "seal"} and len(judged) == 8
    # Three benign prompts, both orders; identical questions come from the cache.
    assert all(r["judge"]["pairs"] == 3 and r["judge"]["judgments"] == 6 for r in judged)
    assert 0 < n_requests <= len(judged) * 3 * 2
    assert all("win_rate" in r["metrics"] for r in judged)
    assert all("win_rate" not in r["metrics"] for r in results["runs"] if r["method"] == "full")
    assert all("refusal_rate" in r["metrics"] for r in results["runs"])
    assert (run_dir / "seed0" / "seal-p0.5" / "winrate.json").exists()


def test_each_run_carries_its_rate_on_every_prompt_set(labelled_experiment):
    _, results, _ = labelled_experiment
    for run in results["runs"]:
        sets = run["prompt_sets"]
        assert set(sets) == {"harmful", "benign"}
        # One set of each kind, so each pooled rate is that set's rate.
        assert sets["harmful"] == run["metrics"]["refusal_rate"]
        assert sets["benign"] == run["metrics"]["over_refusal_rate"]
        # The metrics that see safety beyond the refusal rate, and utility, on every model.
        for name in ("discrimination_auroc", "refusal_probability", "harmful_loss"):
            assert name in run["metrics"], (run["method"], name)
        assert 0 <= run["metrics"]["task_accuracy"] <= 1
    aligned = results["runs"][0]["metrics"]
    assert results["runs"][0]["method"] == "aligned" and "harmful_loss_drop" not in aligned
    for run in results["runs"][1:]:
        drop = aligned["harmful_loss"] - run["metrics"]["harmful_loss"]
        assert run["metrics"]["harmful_loss_drop"] == drop


def test_report_renders_every_section(labelled_experiment):
    run_dir, _, _ = labelled_experiment
    html = (run_dir / "report.html").read_text()  # seal run wrote it
    for title in (
        "Results",
        "Selector weights",
        "Scores by label",
        "Selection sweep",
        "Training curves",
        "Samples at both ends of the ranking",
    ):
        assert f"<h2>{title}</h2>" in html, title
    assert "Content warning" in html and "AUROC" in html and "win rate (%)" in html
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    pngs = sorted(p.name for p in (run_dir / "report").iterdir())
    assert (
        pngs == ["scores_by_label.png", "sweep.png", "training.png", "weights.png"]
        or len(pngs) == 5
    )
    assert "± " in html  # two seeds: spread shown


def test_report_of_a_select_folder_and_of_nothing(tmp_path, labelled_experiment, capsys):
    run_dir, _, _ = labelled_experiment
    html = write_report(run_dir / "seed0" / "select").read_text()
    assert "<h2>Selector weights</h2>" in html and "<h2>Results</h2>" not in html
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a `seal run` folder" in capsys.readouterr().err


def test_eval_loads_a_lora_adapter_and_samples_on_request(tmp_path, tiny_model_dir, capsys):
    from sealft.config import FinetuneRecipeConfig
    from sealft.recipes.finetune import run_finetune

    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(8))
    ft = FinetuneRecipeConfig.model_validate(
        {
            "model": {"name_or_path": str(tiny_model_dir)},
            "data": {"path": str(data)},
            "tokenize": {"max_length": 64},
            "sft": {"epochs": 1, "batch_size": 4},
            "runtime": {"precision": "fp32", "device": "cpu"},
            "output_dir": str(tmp_path / "ft"),
        }
    )
    run_finetune(ft, progress=False)
    cfg = eval_config(tmp_path, tiny_model_dir, "adapted", limit=2)
    argv = ["eval", "--config", str(cfg), "--no-progress", "--sampling"]
    assert main(argv + ["--adapter", str(tmp_path / "ft" / "adapter")]) == 0
    result = json.loads((tmp_path / "adapted" / "results.json").read_text())
    assert result["adapter"].endswith("adapter") and result["generation"]["sampling"] is True
    assert main(argv + ["--adapter", str(tmp_path)]) == 2
    assert "not a LoRA adapter folder" in capsys.readouterr().err
