import json
import random

import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows, safe_rows, shared_file, write_jsonl

from sealft.cli import main
from sealft.config import SelectRecipeConfig, load_config
from sealft.recipes.select import run_select
from sealft.selection import bilevel

COLUMNS = ["sample_id", "index", "score", "weight", "rank", "selected"]
FAST = [
    "lora.r=2",
    "lora.alpha=4",
    "tokenize.max_length=48",
    "selector_train.batch_size=4",
    "runtime.precision=fp32",
    "selector_train.lr=0.01",
    "selector.epochs=2",
    "selector.gamma_step=0.5",
    "--no-progress",
]


def _cli(tmp_path, tiny_model_dir, data, safe, out="run", extra=()):
    return main(
        [
            "select",
            "--model",
            str(tiny_model_dir),
            "--data",
            str(data),
            "--safe",
            str(safe),
            "--output-dir",
            str(tmp_path / out),
            *FAST,
            *extra,
        ]
    )


@pytest.fixture
def files(tmp_path):
    return (
        write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(16)),
        write_jsonl(tmp_path / "safe.jsonl", safe_rows(6)),
    )


def test_select_end_to_end(tmp_path, tiny_model_dir, files, capsys):
    assert _cli(tmp_path, tiny_model_dir, *files) == 0
    run = tmp_path / "run"
    table = pq.read_table(run / "scores.parquet")
    assert table.column_names == COLUMNS
    assert [str(t) for t in table.schema.types] == [
        "string",
        "int64",
        "double",
        "double",
        "int64",
        "bool",
    ]
    rows = table.to_pylist()
    assert [r["index"] for r in rows] == list(range(16))
    assert sorted(r["rank"] for r in rows) == list(range(1, 17))
    assert sum(r["selected"] for r in rows) == 13  # round(0.8 * 16)
    assert all(r["selected"] == (r["rank"] <= 13) for r in rows)
    selected = [json.loads(x) for x in (run / "selected.jsonl").read_text().splitlines()]
    source = alpaca_rows(16)
    assert selected == [source[r["index"]] for r in rows if r["selected"]]
    assert {"config.yaml", "metrics.jsonl", "selector.safetensors", "dropped.jsonl"} <= {
        p.name for p in run.iterdir()
    }
    assert not {"checkpoint", "checkpoint.tmp", "checkpoint.old"} & {p.name for p in run.iterdir()}
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 8 and {
        "gamma",
        "safe_loss",
        "finetune_loss",
        "lr_model",
        "lr_selector",
    } <= set(metrics[0])
    assert "kept 13" in capsys.readouterr().out


def test_shuffled_input_gives_the_same_scores(tmp_path, tiny_model_dir, files):
    assert _cli(tmp_path, tiny_model_dir, *files, out="a") == 0
    rows = alpaca_rows(16)
    random.Random(7).shuffle(rows)
    shuffled = write_jsonl(tmp_path / "ft2.jsonl", rows)
    assert _cli(tmp_path, tiny_model_dir, shuffled, files[1], out="b") == 0
    a = {r["sample_id"]: r for r in pq.read_table(tmp_path / "a" / "scores.parquet").to_pylist()}
    b = {r["sample_id"]: r for r in pq.read_table(tmp_path / "b" / "scores.parquet").to_pylist()}
    assert a.keys() == b.keys()
    for sid in a:
        assert (a[sid]["score"], a[sid]["rank"]) == (b[sid]["score"], b[sid]["rank"])


def test_same_seed_same_scores_other_seed_differs(tmp_path, tiny_model_dir, files):
    for out, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert _cli(tmp_path, tiny_model_dir, *files, out=out, extra=[f"seed={seed}"]) == 0
    a, b, c = (
        pq.read_table(tmp_path / o / "scores.parquet").column("score").to_pylist() for o in "abc"
    )
    assert a == b and a != c


def test_algorithm1_end_to_end_with_dropped_rows(tmp_path, tiny_model_dir):
    rows = alpaca_rows(10) + [{"instruction": " ".join(["task"] * 60), "output": "w1"}]
    data = write_jsonl(tmp_path / "ft.jsonl", rows)
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(4))
    assert _cli(tmp_path, tiny_model_dir, data, safe, extra=["--algorithm", "1"]) == 0
    dropped = [json.loads(x) for x in (tmp_path / "run" / "dropped.jsonl").read_text().splitlines()]
    assert [(d["index"], d["reason"]) for d in dropped] == [(10, "prompt_too_long")]
    assert pq.read_table(tmp_path / "run" / "scores.parquet").num_rows == 10


@pytest.mark.parametrize("kind", [(), ("selector.kind=features",)], ids=["logits", "features"])
def test_resume_after_a_crash_matches_an_uninterrupted_run(
    tmp_path, tiny_model_dir, files, monkeypatch, kind
):
    assert _cli(tmp_path, tiny_model_dir, *files, out="whole", extra=kind) == 0
    real = bilevel.BilevelTrainer.upper_backward

    def crash_in_epoch_two(self, ft_idx, safe_idx, gamma, *args):
        if gamma > 0:
            raise KeyboardInterrupt
        return real(self, ft_idx, safe_idx, gamma, *args)

    monkeypatch.setattr(bilevel.BilevelTrainer, "upper_backward", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _cli(tmp_path, tiny_model_dir, *files, out="crashed", extra=kind)
    assert (tmp_path / "crashed" / "checkpoint" / "state.json").exists()
    assert not (tmp_path / "crashed" / "scores.parquet").exists()
    monkeypatch.setattr(bilevel.BilevelTrainer, "upper_backward", real)
    assert _cli(tmp_path, tiny_model_dir, *files, out="crashed", extra=kind) == 0
    whole = pq.read_table(tmp_path / "whole" / "scores.parquet").column("score").to_pylist()
    resumed = pq.read_table(tmp_path / "crashed" / "scores.parquet").column("score").to_pylist()
    assert resumed == whole
    metrics = (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 8


def test_finished_run_is_reused_and_a_changed_config_refused(
    tmp_path, tiny_model_dir, files, capsys
):
    assert _cli(tmp_path, tiny_model_dir, *files) == 0
    stamp = (tmp_path / "run" / "scores.parquet").stat().st_mtime_ns
    assert _cli(tmp_path, tiny_model_dir, *files) == 0
    assert (tmp_path / "run" / "scores.parquet").stat().st_mtime_ns == stamp
    assert _cli(tmp_path, tiny_model_dir, *files, extra=["seed=3"]) == 2
    assert "different config" in capsys.readouterr().err
    write_jsonl(files[0], alpaca_rows(15))
    assert _cli(tmp_path, tiny_model_dir, *files) == 2
    assert "different data" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "no such file"),
        (
            '{"instruction": "a", "output": "b"}\n{"instruction": "a"\n',
            r"ft\.jsonl:2: malformed JSON",
        ),
        (
            '{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n',
            r"ft\.jsonl:2: missing field 'output'",
        ),
    ],
)
def test_bad_input_one_line_and_no_output(tmp_path, tiny_model_dir, capsys, content, expected):
    data = tmp_path / "ft.jsonl"
    if content is not None:
        data.write_text(content)
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(3))
    assert _cli(tmp_path, tiny_model_dir, data, safe) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("seal: error:")
    import re

    assert re.search(expected, err)
    assert not (tmp_path / "run").exists()


def test_config_errors_name_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("selector:\n  lr: fast\n  colour: red\n")
    assert main(["select", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "selector.lr" in err and "selector.colour: unknown key" in err
    assert main(["select", "p=2"]) == 2
    assert "p: Input should be less than or equal to 1" in capsys.readouterr().err
    assert main(["select"]) == 2
    assert "model.name_or_path" in capsys.readouterr().err


def test_yaml_and_overrides_compose(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("selector:\n  algorithm: 2\n  lr: 0.5\ndata:\n  path: x.jsonl\n")
    loaded = load_config(SelectRecipeConfig, cfg, ["selector.lr=0.25", "data.fields={input: ctx}"])
    assert loaded.selector.algorithm == 2 and loaded.selector.lr == 0.25
    assert loaded.data.fields == {"input": "ctx"} and loaded.data.path == "x.jsonl"


def test_help_documents_every_key(capsys):
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    out = capsys.readouterr().out
    for key in (
        "selector.algorithm",
        "selector.optimizer",
        "selector.response_tokens",
        "lora.target_modules",
        "tokenize.overflow",
        "selector_train.micro_batch_size",
        "p =",
        "data.fields",
        "safe.hub",
    ):
        assert key in out


def test_select_on_shared_files(tmp_path, tiny_model_dir):
    """alpaca JSON, JSONL (with a field mapping) and HH .jsonl.gz from ../shared/data."""
    alpaca = shared_file("benign/alpaca_subset.json")
    jbb = shared_file("harmful/jailbreakbench_jailbroken.jsonl")
    hh = shared_file("harmful/hh_rlhf_harmless_base_test.jsonl.gz")
    safe = shared_file("safe/safety_only_data_Instructions.json")
    cases = {
        "alpaca": [f"data.path={alpaca}"],
        "jsonl": [
            f"data.path={jbb}",
            "data.format=alpaca",
            "data.fields={instruction: goal, output: response}",
        ],
        "hh": [f"data.path={hh}"],
    }
    for name, data in cases.items():
        args = [
            "select",
            "--model",
            str(tiny_model_dir),
            "--safe",
            str(safe),
            "--output-dir",
            str(tmp_path / name),
            *FAST,
            "selector.epochs=1",
            "data.limit=12",
            "safe.limit=8",
            "tokenize.max_length=96",
            *data,
        ]
        assert main(args) == 0, name
        assert pq.read_table(tmp_path / name / "scores.parquet").column_names == COLUMNS


def test_run_select_accepts_a_loaded_model(tmp_path, tiny_model_dir, files):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = SelectRecipeConfig.model_validate(
        {
            "model": {"name_or_path": "in-memory"},
            "data": {"path": str(files[0])},
            "safe": {"path": str(files[1])},
            "output_dir": str(tmp_path / "mem"),
            "lora": {"r": 2},
            "runtime": {"precision": "fp32"},
            "selector": {"epochs": 1},
        }
    )
    result = run_select(
        cfg,
        progress=False,
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        tokenizer=AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    assert result.scores.num_rows == 16
    assert torch.isfinite(torch.tensor(result.scores.column("score").to_pylist())).all()


def test_shipped_configs_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    paper = load_config(SelectRecipeConfig, root / "paper.yaml")
    assert (paper.selector.algorithm, paper.selector.optimizer, paper.selector.lr) == (
        2,
        "adam",
        5e-3,
    )
    assert [paper.selector.gamma(e) for e in range(3)] == pytest.approx([0, 0.03, 0.06])
    assert paper.selector.response_tokens is None and paper.selector.warmup_epochs == 0
    assert paper.selector.baseline == "none" and paper.selector.activation == "softmax"
    assert (paper.selector.kind, paper.selector.smoothing) == ("logits", "none")
    assert paper.selector.probe_weight() == 0
    load_config(SelectRecipeConfig, root / "select.yaml")
    fast = load_config(SelectRecipeConfig, root / "fast.yaml")
    assert (fast.selector.epochs, fast.selector.warmup_epochs) == (1, 0)
    # Every other setting is the defaults'.
    assert fast.selector.model_dump(exclude={"epochs", "warmup_epochs"}) == (
        SelectRecipeConfig().selector.model_dump(exclude={"epochs", "warmup_epochs"})
    )


@pytest.mark.parametrize("algorithm", ["1", "2"])
def test_full_fine_tuning_without_lora(tmp_path, tiny_model_dir, files, algorithm):
    assert (
        _cli(
            tmp_path,
            tiny_model_dir,
            *files,
            extra=["lora.enabled=false", "--algorithm", algorithm, "selector.epochs=1"],
        )
        == 0
    )
    logits = pq.read_table(tmp_path / "run" / "scores.parquet").column("score").to_pylist()
    assert len(set(logits)) > 1


def test_safe_set_from_several_sources(tmp_path, tiny_model_dir, files):
    benign = write_jsonl(tmp_path / "benign.jsonl", alpaca_rows(5, prefix="good"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"safe:\n  - path: {files[1]}\n  - path: {benign}\n  - path: {files[1]}\n")
    assert (
        main(
            [
                "select",
                "--config",
                str(cfg),
                "--model",
                str(tiny_model_dir),
                "--data",
                str(files[0]),
                "--output-dir",
                str(tmp_path / "run"),
                *FAST,
            ]
        )
        == 0
    )
    from sealft.data import load_sources

    loaded = load_sources(load_config(SelectRecipeConfig, cfg).safe)
    assert len(loaded.samples) == 6 + 5  # the repeated file adds nothing
    assert pq.read_table(tmp_path / "run" / "scores.parquet").num_rows == 16


def test_several_data_sources_concatenate_with_running_indices(tmp_path):
    from sealft.config import DataConfig
    from sealft.data import load_sources

    a = write_jsonl(tmp_path / "a.jsonl", alpaca_rows(3))
    rows_b = alpaca_rows(2, prefix="job") + [alpaca_rows(3)[1]]  # the last repeats a's row 1
    b = write_jsonl(tmp_path / "b.jsonl", rows_b)
    loaded = load_sources([DataConfig(path=str(a)), DataConfig(path=str(b))])
    assert [s.index for s in loaded.samples] == [0, 1, 2, 3, 4]
    assert [(d.index, d.reason) for d in loaded.dropped] == [(5, "duplicate")]
    assert loaded.source == f"{a} + {b}"
