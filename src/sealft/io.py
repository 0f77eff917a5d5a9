"""Files: atomic writes, JSONL and Parquet, and the dropped-samples list.

Every output of sealft is written through `atomic_write` (a temporary file renamed into
place), so a killed run never leaves a half-written file behind.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def atomic_write(path: str | Path, data: bytes | str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    tmp.replace(path)


def write_parquet(path: str | Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write(path, sink.getvalue().to_pybytes())


def write_json(path: str | Path, value) -> None:
    atomic_write(path, json.dumps(value, indent=1, ensure_ascii=False))


def read_json(path: str | Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _plain(value):
    """JSON has no NaN: a missing measurement is written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def json_line(record: dict) -> str:
    return json.dumps({k: _plain(v) for k, v in record.items()}, ensure_ascii=False, default=str)


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """One JSON line per record, written as the records come (a million of them are never
    one string in memory) to a temporary file renamed into place."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        # newline="": "\n" is written as it is on every platform.
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            for record in records:
                fh.write(json_line(record) + "\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def append_jsonl(path: str | Path, record: dict) -> None:
    """Add one record to a log as it happens (a crash loses at most the line in flight)."""
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(json_line(record) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def trim_jsonl(path: str | Path, keep) -> None:
    """Keep only the records for which `keep(record)` holds: a resumed run forgets what was
    logged after the checkpoint it resumes from."""
    path = Path(path)
    records = read_jsonl(path) if path.exists() else []
    write_jsonl(path, [r for r in records if keep(r)])


def write_dropped(path: str | Path, dropped: Iterable) -> None:
    """dropped.jsonl: one {sample_id, index, reason} per sample left out before ranking."""
    write_jsonl(path, (dataclasses.asdict(d) for d in dropped))


def read_dropped_ids(path: str | Path) -> set[str]:
    path = Path(path)
    return {r["sample_id"] for r in read_jsonl(path)} if path.exists() else set()
