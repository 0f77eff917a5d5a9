import json
from pathlib import Path

import pytest
import torch

from sealft.demo.tiny import tiny_pair

# Tiny models gain nothing from threads, and a second thread fights any other job on the box.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is missing: the real data sets live in ../shared/data")
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def alpaca_rows(n: int, prefix: str = "task") -> list[dict]:
    return [
        {
            "instruction": f"{prefix} number {i} : say the word w{i % 7}",
            "input": "",
            "output": f"The word is w{i % 7} . Done {i} .",
        }
        for i in range(n)
    ]


def safe_rows(n: int) -> list[dict]:
    return [
        {"instruction": f"do harm number {i}", "input": "", "output": "I can't help with that ."}
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama and word-level tokenizer saved as a model folder (no download)."""
    texts = [r[k] for r in alpaca_rows(40) + safe_rows(20) for k in ("instruction", "output")]
    tokenizer, model = tiny_pair(texts, seed=0, hidden_size=16, num_layers=1, num_heads=2)
    folder = tmp_path_factory.mktemp("tiny-model")
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder
