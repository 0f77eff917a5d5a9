"""The Python API (sealft.api): the commands as functions, results in memory."""

import datasets
import pytest
import yaml
from conftest import alpaca_rows, safe_rows, write_jsonl
from test_pipeline import FAST

import sealft
from sealft.config import ConfigError, SelectRecipeConfig, load_config
from sealft.scores import n_keep

SETTINGS = [s for s in FAST if "=" in s]


def _fast() -> dict:
    """test_pipeline's fast settings, as the API's keyword arguments."""
    out: dict = {}
    for item in SETTINGS:
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def test_select_takes_records_and_returns_scores_and_the_kept_rows(tmp_path, tiny_model_dir):
    rows = alpaca_rows(16)
    got = sealft.select(
        rows, safe_rows(6), tiny_model_dir, p=0.5, output_dir=str(tmp_path / "sel"), **_fast()
    )
    assert list(got.scores.columns) == ["sample_id", "index", "score", "weight", "rank", "selected"]
    assert got.scores["index"].tolist() == list(range(16))  # input order
    assert isinstance(got.kept, datasets.Dataset) and len(got.kept) == n_keep(16, 0.5)
    assert got.kept.column_names == ["instruction", "input", "output"]  # the input's format
    chosen = got.scores[got.scores["selected"]]["index"].tolist()
    assert got.kept.to_list() == [rows[i] for i in chosen]
    assert got.plan["smoothing"] == "blend"
    # The same call reads the finished run back; a Dataset of the same rows is the same data.
    again = sealft.select(
        datasets.Dataset.from_list(rows),
        safe_rows(6),
        tiny_model_dir,
        p=0.5,
        output_dir=str(tmp_path / "sel"),
        **_fast(),
    )
    assert again.scores.equals(got.scores)


def test_settings_come_as_keywords_or_a_config_and_errors_name_the_field(tmp_path, tiny_model_dir):
    cfg = load_config(SelectRecipeConfig, None, [f"output_dir={tmp_path / 'cfg'}", *SETTINGS])
    got = sealft.select(alpaca_rows(12), safe_rows(4), tiny_model_dir, config=cfg, p=0.25)
    assert got.scores["selected"].sum() == n_keep(12, 0.25)
    assert (tmp_path / "cfg" / "scores.parquet").exists()
    with pytest.raises(ConfigError, match="selector.epochs"):
        sealft.select(alpaca_rows(4), safe_rows(2), tiny_model_dir, selector={"epochs": 0})


def test_finetune_on_a_selection_and_evaluate_the_adapter(tmp_path, tiny_model_dir):
    sel = sealft.select(
        alpaca_rows(16), safe_rows(6), tiny_model_dir, output_dir=str(tmp_path / "s"), **_fast()
    )
    tuned = sealft.finetune(
        alpaca_rows(16),
        tiny_model_dir,
        scores=sel,
        output_dir=str(tmp_path / "ft"),
        sft={"epochs": 1, "batch_size": 4},
        lora={"r": 2, "alpha": 4},
        runtime={"precision": "fp32"},
    )
    assert tuned.summary["trained"] == n_keep(16, 0.8)
    assert tuned.model is not None and tuned.tokenizer is not None
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "do harm number 1"}])
    result = sealft.evaluate(
        tiny_model_dir,
        adapter=tuned.run_dir / "adapter",
        output_dir=str(tmp_path / "ev"),
        eval={
            "prompt_sets": [{"path": str(prompts), "kind": "harmful", "name": "h"}],
            "generation": {"max_new_tokens": 4},
        },
        runtime={"precision": "fp32"},
    )
    assert 0.0 <= result["metrics"]["refusal_rate"] <= 1.0


def test_score_keeps_the_top_p_of_unseen_rows(tmp_path, tiny_model_dir):
    fast = _fast() | {"selector": {**_fast()["selector"], "kind": "features"}}
    sealft.select(
        alpaca_rows(16), safe_rows(6), tiny_model_dir, output_dir=str(tmp_path / "f"), **fast
    )
    unseen = alpaca_rows(10, prefix="job")
    got = sealft.score(unseen, tmp_path / "f", p=0.5, output_dir=str(tmp_path / "sc"))
    chosen = got.scores[got.scores["selected"]]["index"].tolist()
    assert len(chosen) == 5 and got.kept.to_list() == [unseen[i] for i in chosen]


def test_the_api_is_imported_only_when_used():
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sealft.nothing  # noqa: B018
