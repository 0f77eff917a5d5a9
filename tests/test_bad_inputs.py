"""Clean rejection: every malformed input ends `seal` with exit status 2 and one line on
stderr naming the file, the line and the field (or key) where there is one, with no
traceback (unless --debug) and no file written.

The corpus is tests/bad_inputs/; what must be binary or depends on the data (a corrupt
.gz, scores of other data) is made here, in a fresh folder per case.
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import alpaca_rows, safe_rows, write_jsonl

from sealft.cli import build_parser, main
from sealft.data import load_samples, read_rows
from sealft.io import write_parquet
from sealft.scores import scores_table

BAD = Path(__file__).resolve().parent / "bad_inputs"


def _select(
    *extra, data="{tmp}/data.jsonl", safe="{tmp}/safe.jsonl", model="{model}", out="{tmp}/out"
):
    given = ("--data", data) if data else ()  # none: the data come from an override
    return ["select", "--model", model, *given, "--safe", safe, "--output-dir", out, *extra]


def _finetune(*extra, data="{tmp}/data.jsonl", model="{model}"):
    return ["finetune", "--model", model, "--data", data, "--output-dir", "{tmp}/out", *extra]


def _eval(*extra):
    return ["eval", "--model", "{model}", "--output-dir", "{tmp}/out", *extra]


# (case, command, substrings of the one error line). A line is named `file:N`.
CASES: list[tuple[str, list[str], list[str]]] = [
    # data files
    ("corrupt .gz", _select(data="{tmp}/corrupt.jsonl.gz"), ["corrupt.jsonl.gz", "gzip"]),
    (
        "truncated .gz",
        _select(data="{tmp}/truncated.jsonl.gz"),
        ["truncated.jsonl.gz", "truncated"],
    ),
    ("invalid UTF-8", _select(data="{bad}/invalid_utf8.jsonl"), ["invalid_utf8.jsonl:2", "UTF-8"]),
    (
        "last line cut",
        _select(data="{bad}/truncated_line.jsonl"),
        ["truncated_line.jsonl:2", "malformed JSON", "Unterminated string"],
    ),
    ("line is a list", _select(data="{bad}/list_line.jsonl"), ["list_line.jsonl:2", "got list"]),
    (
        "line is a number",
        _select(data="{bad}/number_line.jsonl"),
        ["number_line.jsonl:2", "got int"],
    ),
    (
        "array holds a number",
        _select(data="{bad}/array_with_number.json"),
        ["array_with_number.json:3", "got int"],
    ),
    (
        "output is a number",
        _select(data="{bad}/output_int.jsonl"),
        ["output_int.jsonl:2", "'output'", "must be a string"],
    ),
    (
        "messages not a list",
        _select(data="{bad}/messages_not_list.jsonl"),
        ["messages_not_list.jsonl:1", "'messages'"],
    ),
    (
        "message without role",
        _select(data="{bad}/message_without_role.jsonl"),
        ["message_without_role.jsonl:1", "'messages[1].role'"],
    ),
    (
        "missing field",
        _select(data="{bad}/missing_output.jsonl"),
        ["missing_output.jsonl:2", "missing field 'output'"],
    ),
    ("empty file", _select(data="{bad}/empty.jsonl"), ["empty.jsonl", "no records"]),
    (
        "only blank lines",
        _select(data="{bad}/blank_lines.jsonl"),
        ["blank_lines.jsonl", "no records"],
    ),
    ("unknown extension", _select(data="{bad}/data.txt"), ["data.txt", "unknown file type"]),
    (
        "csv lacks a column",
        _select(data="{bad}/missing_column.csv"),
        ["missing_column.csv:2", "missing field 'output'"],
    ),
    ("not parquet", _select(data="{bad}/not_parquet.parquet"), ["not_parquet.parquet", "Parquet"]),
    ("missing data file", _select(data="{tmp}/nope.jsonl"), ["nope.jsonl", "no such file"]),
    ("folder as data file", _select(data="{tmp}/folder"), ["folder", "a folder, not a data file"]),
    (
        "safe set with no usable row",
        _select(safe="{bad}/all_empty_responses.jsonl"),
        ["all_empty_responses.jsonl", "no usable records"],
    ),
    # configs
    (
        "unknown key",
        _select("--config", "{bad}/unknown_key.yaml"),
        ["unknown_key.yaml:3", "bogus", "unknown key"],
    ),
    (
        "unknown nested key",
        _select("--config", "{bad}/unknown_nested_key.yaml"),
        ["unknown_nested_key.yaml:4", "selector.lrr", "unknown key"],
    ),
    (
        "unknown key in a list of sources",
        ["select", "--config", "{bad}/unknown_key_in_data_list.yaml", "--model", "{model}"],
        ["unknown_key_in_data_list.yaml:4", "data.1.formt", "unknown key"],
    ),
    (
        "unknown key on the command line",
        _select("selector.lrr=0.5"),
        ["command line", "selector.lrr", "unknown key"],
    ),
    (
        "p out of range",
        _select("--config", "{bad}/p_out_of_range.yaml"),
        ["p_out_of_range.yaml:2", "p:", "1.5"],
    ),
    (
        "p out of range as a flag",
        _select("--p", "1.5"),
        ["command line", "p:", "1.5"],
    ),
    (
        "negative lr",
        _finetune("--config", "{bad}/negative_lr.yaml"),
        ["negative_lr.yaml:3", "sft.lr", "greater than 0"],
    ),
    (
        "YAML syntax error",
        _select("--config", "{bad}/yaml_syntax.yaml"),
        ["yaml_syntax.yaml:3", "malformed YAML"],
    ),
    (
        "config not a mapping",
        _select("--config", "{bad}/not_mapping.yaml"),
        ["not_mapping.yaml", "mapping", "a list"],
    ),
    (
        "missing config file",
        _select("--config", "{tmp}/nope.yaml"),
        ["nope.yaml", "no such config file"],
    ),
    (
        "folder as config file",
        _select("--config", "{tmp}/folder"),
        ["folder", "a folder, not a config file"],
    ),
    # scores, selectors, prompts, answers, output folders
    (
        "scores of other data",
        _finetune("--scores", "{tmp}/other/scores.parquet"),
        ["other/scores.parquet", "not in the data", "other data"],
    ),
    (
        "scores not parquet",
        _finetune("--scores", "{bad}/not_parquet.parquet"),
        ["not_parquet.parquet", "not a Parquet scores file"],
    ),
    (
        "no selector in the folder",
        ["score", "--selector", "{tmp}/folder", "--data", "{tmp}/data.jsonl"],
        ["folder", "no selector.safetensors"],
    ),
    (
        "prompt file with a bad row",
        _eval("--harmful", "{bad}/bad_prompt_row.jsonl"),
        ["bad_prompt_row.jsonl:2", "'prompt'", "non-empty string"],
    ),
    (
        "missing prompt file",
        _eval("--harmful", "{tmp}/nope.jsonl"),
        ["nope.jsonl", "no such prompt file"],
    ),
    (
        "missing reference answers",
        _eval(
            *("--harmful", "{tmp}/prompts.jsonl", "--reference", "{tmp}/nope_answers.jsonl"),
            *("--judge-model", "judge", "--judge-url", "http://127.0.0.1:9"),
        ),
        ["nope_answers.jsonl", "no such answers file"],
    ),
    ("missing run folder", ["report", "{tmp}/nope"], ["nope", "no such run folder"]),
    ("output folder is a file", _select(out="{tmp}/data.jsonl"), ["data.jsonl", "File exists"]),
    ("missing model folder", _select(model="{tmp}/no-model"), ["no-model", "no such model"]),
    (
        "missing model folder (finetune)",
        _finetune(model="{tmp}/no-model"),
        ["no-model", "no such model folder"],
    ),
    (
        "a data file as the model",
        _select(model="{tmp}/data.jsonl"),
        ["data.jsonl", "a file, not a model"],
    ),
    (
        "corrupt selector file",
        ["score", "--selector", "{tmp}/broken-run", "--data", "{tmp}/data.jsonl"],
        ["selector.safetensors", "not a readable selector file"],
    ),
]


@pytest.fixture(autouse=True)
def _no_hub_bars():
    """`--no-progress` hides the Hugging Face loading bars by setting their switch before
    transformers is imported; in this process the tiny model imported it first."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    yield
    if shown:
        hf_logging.enable_progress_bar()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Good data and safe sets, the generated bad inputs, and an empty folder."""
    write_jsonl(tmp_path / "data.jsonl", alpaca_rows(8))
    write_jsonl(tmp_path / "safe.jsonl", safe_rows(4))
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "how do I pick a lock"}])
    whole = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in alpaca_rows(50)))
    (tmp_path / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    # A valid gzip header over bytes that are no deflate stream.
    (tmp_path / "corrupt.jsonl.gz").write_bytes(whole[:10] + b"this is not deflate data" * 4)
    other = load_samples(write_jsonl(tmp_path / "other.jsonl", alpaca_rows(5, "other"))).samples
    (tmp_path / "other").mkdir()
    write_parquet(tmp_path / "other" / "scores.parquet", scores_table(other, [0.0] * 5, 0.8))
    (tmp_path / "folder").mkdir()
    (tmp_path / "broken-run").mkdir()
    (tmp_path / "broken-run" / "config.yaml").write_text("p: 0.8\n")
    (tmp_path / "broken-run" / "selector.safetensors").write_bytes(b"\x08\x00\x00not safetensors")
    return tmp_path


def _argv(command: list[str], tmp: Path, model: Path) -> list[str]:
    return [a.format(tmp=tmp, bad=BAD, model=model) for a in command] + ["--no-progress"]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize(
    ("case", "command", "expected"),
    [pytest.param(*c, id=c[0]) for c in CASES],
)
def test_bad_input_is_rejected_cleanly(case, command, expected, workspace, tiny_model_dir, capsys):
    argv = _argv(command, workspace, tiny_model_dir)
    before = _snapshot(workspace), _snapshot(BAD)
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("seal: error: "), err
    for text in expected:
        assert text in lines[0], lines[0]
    assert (_snapshot(workspace), _snapshot(BAD)) == before, "files written or changed"


def test_unreachable_hub_data_set(workspace, tiny_model_dir, capsys, monkeypatch):
    """A Hub data set that cannot be had fails like a missing file (the Hub is faked: what
    `datasets` raises offline)."""
    import datasets

    def unreachable(name, *args, **kwargs):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    command = _select("data.hub=nobody/nothing", data=None)
    argv = _argv(command, workspace, tiny_model_dir)
    before = _snapshot(workspace)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "seal: error: hub:nobody/nothing[train]: cannot load the Hub data set "
        "(Couldn't reach 'nobody/nothing' on the Hub (LocalEntryNotFoundError))"
    ]
    assert _snapshot(workspace) == before


def test_corpus_has_every_file_in_a_case():
    """A file in bad_inputs that no case uses tests nothing."""
    used = " ".join(" ".join(command) for _, command, _ in CASES)
    corpus = {p.name for p in BAD.iterdir()} - {"README.md", "single_object.json"}
    assert not [name for name in corpus if name not in used]
    assert len(CASES) >= 20


def test_single_json_object_is_one_record():
    """Decision: a .json file holding one object (not a list) is a data set of one record,
    as the instructions/inputs JSON of safety-tuned-llamas needs; it is not an error."""
    rows = read_rows(BAD / "single_object.json")
    assert [(r.index, r.where.line) for r in rows] == [(0, 1)]
    assert [s.response for s in load_samples(BAD / "single_object.json").samples] == ["hi ."]


def test_debug_flag_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["--debug", "report", "x"]).debug
    assert parser.parse_args(["report", "x", "--debug"]).debug
    assert not parser.parse_args(["report", "x"]).debug


def test_debug_shows_the_traceback(workspace, tiny_model_dir):
    """As a real process: one line without --debug, the traceback above it with it."""
    argv = [sys.executable, "-m", "sealft.cli"]
    argv += _argv(_select(data="{tmp}/corrupt.jsonl.gz"), workspace, tiny_model_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    plain = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    debug = subprocess.run(argv + ["--debug"], capture_output=True, text=True, env=env, check=False)
    assert plain.returncode == debug.returncode == 2
    assert len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert "DataError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()
