"""benchmarks/real/finetune.py's resume rule: a grid that goes on across sittings (on a
machine without the earlier run folders) skips the runs real.json already holds."""

import importlib
import sys
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1] / "benchmarks" / "real"


@pytest.fixture(scope="module")
def finetune():
    sys.path.insert(0, str(REAL))
    try:
        yield importlib.import_module("finetune")
    finally:
        sys.path.remove(str(REAL))


def test_missing_keeps_only_unmeasured_methods(finetune):
    entry = {"runs": [{"method": m, "p": p} for m, p in [("aligned", None), ("full", None)]]}
    entry["runs"].append({"method": "seal", "p": 0.8})
    assert finetune.missing(entry, ["full", "seal", "random"], [0.8]) == ["random"]
    # A selecting method is done only at every p asked for; `full` has no p.
    assert finetune.missing(entry, ["full", "seal"], [0.7, 0.8]) == ["seal"]
    assert finetune.missing(entry, ["full", "seal"], [0.8]) == []
    assert finetune.missing({}, ["full", "oracle"], [0.8]) == ["full", "oracle"]
