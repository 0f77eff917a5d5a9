"""Load fine-tuning and safe data and give every sample a stable ID.

rows (dicts from a file or the Hub, each with its location) → `Sample`s in one canonical
conversational form (prompt messages + response). Tokenizing is `data.tokenize`'s job.

Every sample's ID is a hash of its normalised content, never its position: the reference
code numbered samples after a tokenizer-dependent filter and then applied the selection
to the unfiltered file, which kept the wrong rows (seal-method.md §5.2). Here a dropped
sample is reported by ID and the rest keep theirs.

A data set of a million rows is read as a stream and kept column-wise in Arrow
(`Samples`): IDs, input positions, prompts, responses and each record's JSON text, with a
`Sample` object made only while some code holds it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import operator
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import DataConfig, Sources, as_list

Format = Literal["auto", "alpaca", "messages", "prompt_completion", "hh"]

# The canonical fields of each format; a `fields` mapping renames source columns onto them.
FORMAT_FIELDS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "input", "output"),
    "messages": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "hh": ("chosen",),
}

# Rows converted (and samples read back) per Arrow batch: the Python objects of one batch
# are all that exist at a time.
BATCH = 8192
# Bytes read at a time when a text file is checked before it is parsed.
CHUNK = 1 << 20

# One row per kept sample, in input order. Large types: a column may pass 2 GiB.
COLUMNS = pa.schema(
    [
        ("sample_id", pa.string()),
        ("index", pa.int64()),
        (
            "prompt",
            pa.large_list(pa.struct([("role", pa.string()), ("content", pa.large_string())])),
        ),
        ("response", pa.large_string()),
        ("record", pa.large_string()),  # the input record as JSON text
    ]
)


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


@dataclass(frozen=True)
class Sample:
    """One (prompt, response) pair; `prompt` is a list of chat messages ending with a user turn."""

    sample_id: str
    index: int
    prompt: tuple[dict[str, str], ...]
    response: str
    record: dict[str, Any] = field(repr=False)


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


def _rows(
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
    return list(_rows(path, hub=hub, hub_config=hub_config, split=split, revision=revision))


# --------------------------------------------------------------------------- formats


def _field(row: Row, fields: dict[str, str], name: str, *, required: bool = True) -> Any:
    source = fields.get(name, name)
    value = row.record.get(source)
    if value is None:
        if required:
            raise DataError(f"{row.where}: missing field '{source}'")
        return ""
    return value


def _text(row: Row, fields: dict[str, str], name: str, *, required: bool = True) -> str:
    value = _field(row, fields, name, required=required)
    if not isinstance(value, str):
        raise DataError(
            f"{row.where}: field '{fields.get(name, name)}' must be a string, "
            f"got {type(value).__name__}"
        )
    return value


def _messages(row: Row, value: Any, source: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{row.where}: field '{source}' must be a non-empty list of messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise DataError(f"{row.where}: field '{source}[{i}]' needs a string 'content'")
        if m.get("role") not in ("system", "user", "assistant"):
            raise DataError(
                f"{row.where}: field '{source}[{i}].role' must be system, user or assistant, "
                f"got {m.get('role')!r}"
            )
        out.append({"role": m["role"], "content": m["content"]})
    return out


_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def parse_hh(transcript: str) -> list[dict[str, str]]:
    """Split an Anthropic HH transcript ("\\n\\nHuman: … \\n\\nAssistant: …") into messages."""
    if not transcript.startswith("\n\n"):
        transcript = "\n\n" + transcript.lstrip("\n")
    parts = _HH_TURN.split(transcript)
    if parts[0].strip():
        raise ValueError("text before the first 'Human:' turn")
    roles = {"Human": "user", "Assistant": "assistant"}
    return [
        {"role": roles[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)
    ]


def _split_conversation(row: Row, messages: list[dict[str, str]], source: str):
    if messages[-1]["role"] != "assistant":
        raise DataError(f"{row.where}: field '{source}': the last turn must be the assistant's")
    prompt, response = messages[:-1], messages[-1]["content"]
    if not any(m["role"] == "user" for m in prompt):
        raise DataError(f"{row.where}: field '{source}': no user turn before the response")
    return prompt, response


def detect_format(record: dict[str, Any]) -> str:
    keys = set(record)
    if "messages" in keys:
        return "messages"
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if "chosen" in keys:
        return "hh"
    # Half of a format's required fields is most likely that format with a column missing.
    for fmt, needed in (
        ("prompt_completion", ("prompt", "completion")),
        ("alpaca", ("instruction", "output")),
    ):
        missing = [f for f in needed if f not in keys]
        if len(missing) == 1:
            raise DataError(
                f"missing field '{missing[0]}' (the {fmt} format needs {' and '.join(needed)}; "
                f"for other names set `format` and a `fields` mapping)"
            )
    raise DataError(
        f"cannot tell the data format from the fields {sorted(keys)}; set `format` "
        f"(alpaca, messages, prompt_completion, hh) and a `fields` mapping"
    )


def to_prompt_response(row: Row, fmt: str, fields: dict[str, str]):
    """Turn a raw row into (prompt messages, response) for the given format."""
    if fmt == "alpaca":
        instruction = _text(row, fields, "instruction")
        extra = _text(row, fields, "input", required=False)
        output = _text(row, fields, "output")
        content = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return [{"role": "user", "content": content}], output
    if fmt == "messages":
        source = fields.get("messages", "messages")
        return _split_conversation(
            row, _messages(row, _field(row, fields, "messages"), source), source
        )
    if fmt == "prompt_completion":
        prompt, completion = _field(row, fields, "prompt"), _field(row, fields, "completion")
        if isinstance(prompt, list):  # TRL's conversational prompt/completion
            msgs = _messages(row, prompt, fields.get("prompt", "prompt"))
            comp = _messages(row, completion, fields.get("completion", "completion"))
            return _split_conversation(row, msgs + comp, fields.get("completion", "completion"))
        return [{"role": "user", "content": _text(row, fields, "prompt")}], _text(
            row, fields, "completion"
        )
    if fmt == "hh":
        source = fields.get("chosen", "chosen")
        try:
            messages = parse_hh(_text(row, fields, "chosen"))
        except ValueError as e:
            raise DataError(f"{row.where}: field '{source}': not an HH transcript ({e})") from None
        if not messages:
            raise DataError(f"{row.where}: field '{source}': no 'Human:' turn")
        return _split_conversation(row, messages, source)
    raise DataError(f"unknown format {fmt!r}; use one of {sorted(FORMAT_FIELDS)}")


# The string encoder json.dumps(ensure_ascii=False) uses.
_json_string = json.encoder.encode_basestring


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def sample_id(prompt: Sequence[dict[str, str]], response: str) -> str:
    """A hash of the normalised content: stable under reordering, filtering and re-tokenizing.

    The hashed text is json.dumps([[role, content], …, ["assistant", response]],
    ensure_ascii=False, separators=(",", ":")) of the normalised texts, written out
    directly: json.dumps builds an encoder per call, which was most of the time it took.
    """
    pairs = [(m["role"], m["content"]) for m in prompt] + [("assistant", response)]
    canonical = ",".join(
        f"[{_json_string(role)},{_json_string(_normalise(text))}]" for role, text in pairs
    )
    return hashlib.sha256(f"[{canonical}]".encode()).hexdigest()[:20]


@dataclass
class Dropped:
    sample_id: str
    index: int
    reason: str


# --------------------------------------------------------------------------- columns


def _first_occurrences(ids: pa.ChunkedArray) -> np.ndarray:
    """Which rows hold the first occurrence of their ID: in a stable sort, every row equal
    to the one before it is a later copy (no Python set of a million strings, nor the
    hash table of an Arrow aggregation)."""
    keep = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        order = pc.sort_indices(ids).to_numpy()
        ranked = ids.take(order)
        repeat = pc.equal(ranked[1:], ranked[:-1]).to_numpy(zero_copy_only=False)
        keep[order[1:][repeat]] = False
    return keep


def _duplicates(ids: pa.ChunkedArray, index: pa.ChunkedArray, keep: np.ndarray) -> list[Dropped]:
    drop = pa.array(~keep)
    ids, index = ids.filter(drop).to_pylist(), index.filter(drop).to_pylist()
    return [Dropped(sid, i, "duplicate") for sid, i in zip(ids, index, strict=True)]


class Samples(Sequence[Sample]):
    """The samples of a data set, kept column-wise (`COLUMNS`) and read back in batches.

    A view: a table of rows in input order (the batches they were stored in) and an order
    over some of them. Indexing, iterating and slicing work as on a list of `Sample`s,
    each made when it is read, so a million samples are a few Arrow buffers rather than
    millions of Python objects. The bulk readers (`column`, `values`, `records`) skip what
    they do not need, the JSON of each record above all.
    """

    def __init__(self, table: pa.Table, order: np.ndarray | None = None) -> None:
        self._table = table
        self._order = np.arange(table.num_rows, dtype=np.int64) if order is None else order
        self._batches = table.to_batches()
        self._starts = np.cumsum([0, *(len(b) for b in self._batches)])

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"Samples({len(self)} of {self._table.num_rows} rows)"

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Samples(self._table, self._order[i])
        return self._read(self._order[[operator.index(i)]])[0]

    def __iter__(self) -> Iterator[Sample]:
        for start in range(0, len(self), BATCH):
            yield from self._read(self._order[start : start + BATCH])

    def __add__(self, other: Sequence[Sample]):
        # `samples + extra` as on lists; adding nothing keeps the columnar view.
        if not other:
            return Samples(self._table, self._order)
        return [*self, *other]

    def _gather(self, positions: np.ndarray, names: Sequence[str]) -> pa.Table:
        """Some columns of the table's rows at these positions, in this order.

        Taken from each stored batch on its own: Arrow's take on a chunked table first
        concatenates every chunk, a copy of whole columns for every batch read. Combining
        the chunks once instead would hold the data twice over while it is done."""
        batch_of = np.searchsorted(self._starts, positions, side="right") - 1
        sorter = np.argsort(batch_of, kind="stable")
        grouped = batch_of[sorter]
        schema = pa.schema([COLUMNS.field(name) for name in names])
        parts = [pa.record_batch([[] for _ in names], schema=schema)]
        for b in np.unique(grouped):
            lo, hi = np.searchsorted(grouped, [b, b + 1])
            rows = positions[sorter[lo:hi]] - self._starts[b]
            parts.append(self._batches[b].select(list(names)).take(rows))
        inverse = np.empty_like(sorter)
        inverse[sorter] = np.arange(len(sorter))
        return pa.Table.from_batches(parts).combine_chunks().take(inverse)

    def _read(self, positions: np.ndarray) -> list[Sample]:
        part = self._gather(positions, COLUMNS.names)
        ids, index, prompt, response, record = (c.to_pylist() for c in part.columns)
        return [
            Sample(s, i, tuple(p), r, json.loads(rec))
            for s, i, p, r, rec in zip(ids, index, prompt, response, record, strict=True)
        ]

    def column(self, name: str) -> pa.ChunkedArray:
        """One column (e.g. sample_id or index) in this view's order."""
        return self._gather(self._order, [name]).column(0)

    def values(self, *names: str) -> Iterator[tuple]:
        """Tuples of some fields of every sample (prompts as tuples), in this view's order."""
        for start in range(0, len(self), BATCH):
            part = self._gather(self._order[start : start + BATCH], names)
            columns = [c.to_pylist() for c in part.columns]
            if "prompt" in names:
                at = names.index("prompt")
                columns[at] = [tuple(p) for p in columns[at]]
            yield from zip(*columns, strict=True)

    def take(self, positions: Sequence[int] | np.ndarray) -> Samples:
        """The samples at these positions of this view, in that order."""
        return Samples(self._table, self._order[np.asarray(positions, dtype=np.int64)])

    def sort_by_id(self) -> None:
        """Put the view in sample-ID order, in place (as list.sort would)."""
        self._order = self._order[pc.sort_indices(self.column("sample_id")).to_numpy()]

    def records(self, indices: Sequence[int] | np.ndarray) -> Iterator[dict[str, Any]]:
        """The input records of the samples whose `index` is given, in the order given."""
        # The table is in input order, so an index is found by bisection.
        stored = self._table.column("index").to_numpy()
        indices = np.asarray(indices, dtype=np.int64)
        at = np.searchsorted(stored, indices).clip(max=len(stored) - 1)
        if not np.array_equal(stored[at], indices):
            raise KeyError("no sample has some of these input indices")
        for start in range(0, len(at), BATCH):
            part = self._gather(at[start : start + BATCH], ["record"])
            yield from map(json.loads, part.column(0).to_pylist())


def sample_values(samples: Sequence[Sample], *names: str) -> Iterator[tuple]:
    """Some fields of every sample, as tuples; from `Samples` without decoding records."""
    if isinstance(samples, Samples):
        return samples.values(*names)
    return (tuple(getattr(s, name) for name in names) for s in samples)


def take_samples(samples: Sequence[Sample], positions: Sequence[int]) -> Sequence[Sample]:
    """The samples at these positions: a view of a view, a list of a list."""
    if isinstance(samples, Samples):
        return samples.take(positions)
    return [samples[i] for i in positions]


def id_columns(samples: Sequence[Sample]) -> tuple[pa.Array, pa.Array]:
    """Every sample's ID and input index, as Arrow arrays."""
    if isinstance(samples, Samples):
        return samples.column("sample_id"), samples.column("index")
    return (
        pa.array([s.sample_id for s in samples], pa.string()),
        pa.array([s.index for s in samples], pa.int64()),
    )


def input_records(samples: Sequence[Sample], indices: Sequence[int]) -> Iterator[dict]:
    """The input records of the samples with these input indices, in the order given."""
    if isinstance(samples, Samples):
        return samples.records(indices)
    by_index = {s.index: s.record for s in samples}
    return (by_index[i] for i in indices)


# --------------------------------------------------------------------------- data sets


@dataclass
class LoadedData:
    samples: Samples
    dropped: list[Dropped]
    source: str


def _as_json(record: dict[str, Any]) -> str:
    # What the record's export (io.json_line) would write of a value JSON has no type for
    # (a date from Parquet, say): its str(). Everything else comes back from json.loads.
    return json.dumps(record, ensure_ascii=False, default=str)


class _Builder:
    """One source's rows in the slice to load, turned into sample columns as they are read.

    The first bad row's error is kept, not raised, until every row has been read: a file
    that cannot be parsed further down is reported as that, as when files were read whole
    before any row was looked at."""

    def __init__(self, fmt: str, fields: dict[str, str], source: str) -> None:
        self.fmt, self.fields, self.source = fmt, fields, source
        self.pending: list[list] = [[] for _ in COLUMNS.names]
        self.batches: list[pa.RecordBatch] = []
        self.dropped: list[Dropped] = []
        self.error: DataError | None = None
        self.count = 0

    def _detect(self, row: Row) -> str:
        if self.fields:
            raise DataError(f"{self.source}: a `fields` mapping needs an explicit `format`")
        try:
            return detect_format(row.record)
        except DataError as e:
            raise DataError(f"{row.where}: {e}") from None

    def add(self, row: Row) -> None:
        self.count += 1
        if self.error is not None:
            return
        try:
            if self.fmt == "auto":
                self.fmt = self._detect(row)
            prompt, response = to_prompt_response(row, self.fmt, self.fields)
        except DataError as e:
            self.error = e
            return
        sid = sample_id(prompt, response)
        if not response.strip():
            self.dropped.append(Dropped(sid, row.index, "empty_response"))
            return
        raw = row.raw if row.raw is not None else _as_json(row.record)
        for column, value in zip(
            self.pending, (sid, row.index, prompt, response, raw), strict=True
        ):
            column.append(value)
        if len(self.pending[0]) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        # The system allocator gives back what building a batch grew and freed; Arrow's
        # default (mimalloc) kept it, a few hundred MB over a million rows.
        pool = pa.system_memory_pool()
        arrays = [
            pa.array(values, f.type, memory_pool=pool)
            for values, f in zip(self.pending, COLUMNS, strict=True)
        ]
        self.batches.append(pa.RecordBatch.from_arrays(arrays, schema=COLUMNS))
        self.pending = [[] for _ in COLUMNS.names]

    def finish(self) -> tuple[Samples, list[Dropped]]:
        """The kept samples (of exact duplicates, the first copy) and the dropped."""
        if self.error is not None:
            raise self.error
        self._flush()
        table = pa.Table.from_batches(self.batches, COLUMNS)
        self.batches = []
        keep = _first_occurrences(table.column("sample_id"))
        dropped = self.dropped
        if not keep.all():
            dropped += _duplicates(table.column("sample_id"), table.column("index"), keep)
            # In row order, as rows were once checked one after the other.
            dropped.sort(key=lambda d: d.index)
        # A duplicate's row stays in the table, out of the view: no copy of the rest.
        return Samples(table, np.flatnonzero(keep)), dropped


def load_samples(
    path: str | Path | None = None,
    *,
    format: Format = "auto",
    fields: dict[str, str] | None = None,
    hub: str | None = None,
    hub_config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    skip: int = 0,
    limit: int | None = None,
) -> LoadedData:
    """Load a data set as `Sample`s.

    Rows with an empty response and exact duplicates (same ID) are dropped and reported;
    a missing or ill-typed field is an error naming the file, line and field.
    """
    fields = dict(fields or {})
    rows = _rows(path, hub=hub, hub_config=hub_config, split=split, revision=revision)
    source = str(path) if path is not None else f"hub:{hub}"
    end = None if limit is None else skip + limit
    builder = _Builder(format, fields, source)
    total = 0
    for row in rows:
        # Rows outside the slice are still read: a malformed one is an error all the same.
        if total >= skip and (end is None or total < end):
            builder.add(row)
        total += 1
    if not total:
        raise DataError(f"{source}: no records")
    if not builder.count:
        raise DataError(f"{source}: no records left after skipping {skip}")
    samples, dropped = builder.finish()
    if not samples:
        # Duplicates always leave their first copy, so only empty responses empty a set.
        raise DataError(f"{source}: no usable records: all {builder.count} have an empty response")
    return LoadedData(samples, dropped, source)


def load_data(cfg: DataConfig) -> LoadedData:
    """`load_samples` for one `DataConfig` source."""
    return load_samples(
        cfg.path,
        format=cfg.format,
        fields=cfg.fields,
        hub=cfg.hub,
        hub_config=cfg.hub_config,
        split=cfg.split,
        revision=cfg.revision,
        skip=cfg.skip,
        limit=cfg.limit,
    )


def load_sources(sources: Sources) -> LoadedData:
    """One source, or several concatenated with exact duplicates across them dropped.

    `index` counts rows through the concatenation, so it stays unique: the second file's
    first row follows the first file's last.
    """
    parts = [load_data(source) for source in as_list(sources)]
    if len(parts) == 1:
        return parts[0]
    tables, orders, shifts, offset, rows = [], [], [], 0, 0
    for part in parts:
        table, index = part.samples._table, part.samples._table.column("index")
        tables.append(table.set_column(1, "index", pc.add(index, offset)))
        orders.append(part.samples._order + rows)
        shifts.append(offset)
        rows += table.num_rows
        offset += 1 + max([pc.max(index).as_py(), *(d.index for d in part.dropped)])
    joined = Samples(pa.concat_tables(tables), np.concatenate(orders))
    ids, index = joined.column("sample_id"), joined.column("index")
    keep = _first_occurrences(ids)
    dropped, start = [], 0
    for part, shift in zip(parts, shifts, strict=True):
        dropped += [replace(d, index=d.index + shift) for d in part.dropped]
        end = start + len(part.samples)
        dropped += _duplicates(ids[start:end], index[start:end], keep[start:end])
        start = end
    samples = joined.take(np.flatnonzero(keep))
    return LoadedData(samples, dropped, " + ".join(p.source for p in parts))
