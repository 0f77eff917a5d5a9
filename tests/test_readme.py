"""Every example in the README runs: its `seal` commands and its Python, on a tiny model
(the README's model id swapped for it) and tiny files under the names the README uses."""

import re
import shlex
from pathlib import Path

import pytest
from conftest import alpaca_rows, safe_rows, write_jsonl

from sealft.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _commands(block: str) -> list[list[str]]:
    """The `seal` command lines of a bash block, continuation lines joined, comments cut."""
    joined = block.replace("\\\n", " ")
    return [
        shlex.split(line, comments=True) for line in joined.splitlines() if line.startswith("seal ")
    ]


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_model_dir):
    """The README's file names, in a fresh folder that is the working directory."""
    write_jsonl(tmp_path / "my_finetune.jsonl", alpaca_rows(16))
    write_jsonl(tmp_path / "safe.jsonl", safe_rows(6))
    write_jsonl(tmp_path / "harmful_prompts.jsonl", [{"prompt": "do harm number 3"}])
    write_jsonl(tmp_path / "benign_prompts.jsonl", [{"prompt": "task number 2 : say the word"}])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_has_the_examples_this_test_runs():
    assert any(_commands(b) for b in _blocks("bash")) and _blocks("python")


def test_the_readme_commands_run(workdir, tiny_model_dir):
    for block in _blocks("bash"):
        for argv in _commands(block):
            argv = [str(tiny_model_dir) if a == MODEL else a for a in argv[1:]]
            # Short answers: the tiny model's rambling would only cost time.
            extra = ["eval.generation.max_new_tokens=8"] if argv[0] == "eval" else []
            assert main([*argv, "--no-progress", *extra]) == 0, argv


def test_the_readme_python_runs(workdir, tiny_model_dir):
    for block in _blocks("python"):
        code = block.replace(f'"{MODEL}"', repr(str(tiny_model_dir)))
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert (workdir / "runs" / "mine" / "plan.json").exists()
    assert (workdir / "runs" / "trl").is_dir()
