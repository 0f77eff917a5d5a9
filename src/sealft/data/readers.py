"""Read rows from files (JSONL, JSON, CSV, Parquet, gzipped or not) or the Hub, each with
its location, checking the bytes before parsing: a bad file is a `DataError` naming the
file, the line and what is wrong."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Rows converted (and samples read back) per Arrow batch: the Python objects of one batch
# are all that exist at a time.
BATCH = 8192
# Bytes read at a time when a text file is checked before it is parsed.
CHUNK = 1 << 20


class DataError(ValueError):
    """Bad input data. The message names the file, the line (or row) and the field."""


@dataclass(frozen=True)
class Location:
    source: str
    line: int  # 1-based line in a text file, or 1-based row in a table / Hub split
    unit: str = "line"

    def __str__(self) -> str:
        return (
            f"{self.source}:{self.line}"
            if self.unit == "line"
            else (f"{self.source} row {self.line}")
        )


@dataclass(frozen=True)
class Row:
    index: int  # 0-based position in the input
    record: dict[str, Any]
    where: Location
    # The record's JSON text as read (JSON and JSONL files), kept instead of encoding the
    # record again.
    raw: str | None = field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------- loading


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _utf8_problem(decoder, chunk: bytes, newlines: int, final: bool = False) -> str | None:
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as e:
        # e.object is the decoder's pending bytes (part of one character, no newline) and
        # this chunk, so the newlines before the error are those of the earlier chunks
        # and of e.object up to it.
        line = newlines + e.object.count(b"\n", 0, e.start) + 1
        return f"{line}: not UTF-8 text ({e.reason})"
    return None


def _check_text(path: Path) -> None:
    """Read a text file once, in chunks, for what makes it unreadable as a whole: a
    broken gzip stream first, then bytes that are not UTF-8 (the first of them is named).

    The records are parsed in a second pass that never holds the whole text, and a file
    that fails here fails as it did when it was read whole before parsing."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, bad = 0, None
    try:
        with _open_binary(path) as fh:
            while chunk := fh.read(CHUNK):
                if bad is None:
                    bad = _utf8_problem(decoder, chunk, newlines)
                newlines += chunk.count(b"\n")
    # BadGzipFile is an OSError too: it must be caught first to be named as what it is.
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from None
    bad = bad or _utf8_problem(decoder, b"", newlines, final=True)
    if bad is not None:
        raise DataError(f"{path}:{bad}")


def _read_text(path: Path) -> str:
    _check_text(path)
    with _open_binary(path) as fh:
        # A byte-order mark is what spreadsheet programs write before UTF-8; it is no content.
        return fh.read().removeprefix(codecs.BOM_UTF8).decode("utf-8")


def _lines(path: Path) -> Iterator[str]:
    """A checked text file's lines, read one at a time."""
    with _open_binary(path) as fh:
        # Only "\n" ends a line (binary reading splits there alone): str.splitlines would
        # also split at the line and paragraph separators that JSON strings may hold.
        for number, line in enumerate(fh):
            if number == 0:
                line = line.removeprefix(codecs.BOM_UTF8)
            yield line.decode("utf-8").removesuffix("\n")


def _base_suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def _json_problem(e: json.JSONDecodeError) -> str:
    return f"malformed JSON ({e.msg.removesuffix(' at')} at column {e.colno})"


def _iter_jsonl(path: Path, lines: Iterable[str]) -> Iterator[Row]:
    index = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: {_json_problem(e)}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        yield Row(index, record, Location(str(path), lineno), line)
        index += 1


def _iter_json_array(path: Path, text: str) -> Iterator[Row]:
    """Decode a JSON array element by element so that every record knows its line."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")

    # Positions only move forward, so newlines are counted once, incrementally: counting
    # from the start for every record made large files quadratic.
    seen = {"pos": 0, "line": 1}

    def line_of(pos: int) -> int:
        seen["line"] += text.count("\n", seen["pos"], pos)
        seen["pos"] = pos
        return seen["line"]

    pos = ws.match(text, 0).end()
    if pos >= len(text):
        return  # an empty file: no records, which the caller reports
    if text[pos] != "[":
        if text[pos] == "{":
            # One JSON object (possibly spread over many lines) is one record; otherwise
            # a .json file holding JSON lines is common enough to accept.
            try:
                record, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                record, end = None, pos
            if record is not None and ws.match(text, end).end() == len(text):
                yield Row(0, record, Location(str(path), line_of(pos)), text[pos:end])
                return
            yield from _iter_jsonl(path, text.split("\n"))
            return
        raise DataError(f"{path}:{line_of(pos)}: expected a JSON array of objects")
    pos = ws.match(text, pos + 1).end()
    index = 0
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            record, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: {_json_problem(e)}") from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}:{line_of(pos)}: expected a JSON object, got {type(record).__name__}"
            )
        yield Row(index, record, Location(str(path), line_of(pos)), text[pos:end])
        index += 1
        pos = ws.match(text, end).end()
        if pos < len(text) and text[pos] == ",":
            pos = ws.match(text, pos + 1).end()
            continue
        if pos < len(text) and text[pos] == "]":
            return
        raise DataError(f"{path}:{line_of(pos)}: malformed JSON (expected ',' or ']')")


def _iter_csv(path: Path) -> Iterator[Row]:
    # utf-8-sig drops a byte-order mark at the start, as spreadsheet programs write one.
    with _open_binary(path) as fh, io.TextIOWrapper(fh, "utf-8-sig", newline="") as text:
        reader = csv.DictReader(text)
        index = 0
        start = 2  # the header is line 1
        try:
            for record in reader:
                if None in record:
                    raise DataError(f"{path}:{start}: more values than header columns")
                yield Row(index, dict(record), Location(str(path), start))
                index += 1
                start = reader.line_num + 1
        except csv.Error as e:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None


def _iter_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: unreadable Parquet file ({e})") from None
    index = 0
    # Arrow holds the table compactly; its rows become Python dicts a batch at a time.
    for batch in table.to_batches(max_chunksize=BATCH):
        for record in batch.to_pylist():
            yield Row(index, record, Location(str(path), index + 1, "row"))
            index += 1


def _iter_hub(name: str, config: str | None, split: str, revision: str | None) -> Iterator[Row]:
    import datasets

    source = f"hub:{name}" + (f"/{config}" if config else "") + f"[{split}]"
    try:
        ds = datasets.load_dataset(name, config, split=split, revision=revision)
    # Unreachable or unknown (ConnectionError, DatasetNotFoundError: OSErrors) or a wrong
    # config or split (ValueError).
    except (OSError, ValueError) as e:
        raise DataError(f"{source}: cannot load the Hub data set ({e})") from None
    for index, record in enumerate(ds):
        yield Row(index, dict(record), Location(source, index + 1, "row"))


def iter_rows(
    path: str | Path | None,
    *,
    hub: str | None,
    hub_config: str | None,
    split: str,
    revision: str | None,
) -> Iterator[Row]:
    """The records of a local file or a Hub data set, one at a time.

    Everything that makes the source unreadable as a whole (no such file, unknown type,
    broken gzip, not UTF-8) is raised here, before the first record."""
    if (path is None) == (hub is None):
        raise DataError("give exactly one of a local path or a Hub data set name")
    if hub is not None:
        return _iter_hub(hub, hub_config, split, revision)
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a folder, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = _base_suffix(path)
    if suffix == ".parquet":
        return _iter_parquet(path)
    if suffix == ".json":
        return _iter_json_array(path, _read_text(path))
    if suffix not in (".jsonl", ".csv"):
        raise DataError(
            f"{path}: unknown file type (use .json, .jsonl, .csv or .parquet, .gz allowed)"
        )
    _check_text(path)
    return _iter_csv(path) if suffix == ".csv" else _iter_jsonl(path, _lines(path))


def read_rows(
    path: str | Path | None = None,
    *,
    hub: str | None = None,
    hub_config: str | None = None,
    split: str = "train",
    revision: str | None = None,
) -> list[Row]:
    """Read raw records from a local file (JSON, JSONL, CSV, Parquet; `.gz` too) or the Hub."""
    return list(iter_rows(path, hub=hub, hub_config=hub_config, split=split, revision=revision))
