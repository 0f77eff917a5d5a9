"""Load fine-tuning and safe data and give every sample a stable ID.

rows (dicts from a file or the Hub, each with its location) → `Sample`s in one canonical
conversational form (prompt messages + response). Tokenizing is `data.tokenize`'s job.

Every sample's ID is a hash of its normalised content, never its position: the reference
code numbered samples after a tokenizer-dependent filter and then applied the selection
to the unfiltered file, which kept the wrong rows (seal-method.md §5.2). Here a dropped
sample is reported by ID and the rest keep theirs.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import re
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..config import DataConfig, Sources, as_list

Format = Literal["auto", "alpaca", "messages", "prompt_completion", "hh"]

# The canonical fields of each format; a `fields` mapping renames source columns onto them.
FORMAT_FIELDS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "input", "output"),
    "messages": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "hh": ("chosen",),
}


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


@dataclass(frozen=True)
class Sample:
    """One (prompt, response) pair; `prompt` is a list of chat messages ending with a user turn."""

    sample_id: str
    index: int
    prompt: tuple[dict[str, str], ...]
    response: str
    record: dict[str, Any] = field(repr=False)


# --------------------------------------------------------------------------- loading


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    # BadGzipFile is an OSError too: it must be caught first to be named as what it is.
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from None


def _decode(path: Path, data: bytes) -> str:
    # A byte-order mark is what spreadsheet programs write before UTF-8 CSV; it is no content.
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None


def _base_suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def _json_problem(e: json.JSONDecodeError) -> str:
    return f"malformed JSON ({e.msg.removesuffix(' at')} at column {e.colno})"


def _iter_jsonl(path: Path, text: str) -> Iterator[Row]:
    index = 0
    # Only "\n" ends a record: str.splitlines would also split at the line and paragraph
    # separators that JSON strings may hold unescaped.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: {_json_problem(e)}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        yield Row(index, record, Location(str(path), lineno))
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
                yield Row(0, record, Location(str(path), line_of(pos)))
                return
            yield from _iter_jsonl(path, text)
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
        yield Row(index, record, Location(str(path), line_of(pos)))
        index += 1
        pos = ws.match(text, end).end()
        if pos < len(text) and text[pos] == ",":
            pos = ws.match(text, pos + 1).end()
            continue
        if pos < len(text) and text[pos] == "]":
            return
        raise DataError(f"{path}:{line_of(pos)}: malformed JSON (expected ',' or ']')")


def _iter_csv(path: Path, text: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
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
    for index, record in enumerate(table.to_pylist()):
        yield Row(index, record, Location(str(path), index + 1, "row"))


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


TEXT_READERS = {".jsonl": _iter_jsonl, ".json": _iter_json_array, ".csv": _iter_csv}


def read_rows(
    path: str | Path | None = None,
    *,
    hub: str | None = None,
    hub_config: str | None = None,
    split: str = "train",
    revision: str | None = None,
) -> list[Row]:
    """Read raw records from a local file (JSON, JSONL, CSV, Parquet; `.gz` too) or the Hub."""
    if (path is None) == (hub is None):
        raise DataError("give exactly one of a local path or a Hub data set name")
    if hub is not None:
        return list(_iter_hub(hub, hub_config, split, revision))
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a folder, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = _base_suffix(path)
    if suffix == ".parquet":
        return list(_iter_parquet(path))
    reader = TEXT_READERS.get(suffix)
    if reader is None:
        raise DataError(
            f"{path}: unknown file type (use .json, .jsonl, .csv or .parquet, .gz allowed)"
        )
    return list(reader(path, _decode(path, _read_bytes(path))))


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


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def sample_id(prompt: Sequence[dict[str, str]], response: str) -> str:
    """A hash of the normalised content: stable under reordering, filtering and re-tokenizing."""
    canonical = json.dumps(
        [[m["role"], _normalise(m["content"])] for m in prompt]
        + [["assistant", _normalise(response)]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


@dataclass
class Dropped:
    sample_id: str
    index: int
    reason: str


@dataclass
class LoadedData:
    samples: list[Sample]
    dropped: list[Dropped]
    source: str


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
    rows = read_rows(path, hub=hub, hub_config=hub_config, split=split, revision=revision)
    source = str(path) if path is not None else f"hub:{hub}"
    if not rows:
        raise DataError(f"{source}: no records")
    rows = rows[skip : None if limit is None else skip + limit]
    if not rows:
        raise DataError(f"{source}: no records left after skipping {skip}")
    fmt = format
    if fmt == "auto":
        if fields:
            raise DataError(f"{source}: a `fields` mapping needs an explicit `format`")
        try:
            fmt = detect_format(rows[0].record)
        except DataError as e:
            raise DataError(f"{rows[0].where}: {e}") from None
    samples: list[Sample] = []
    dropped: list[Dropped] = []
    seen: set[str] = set()
    for row in rows:
        prompt, response = to_prompt_response(row, fmt, fields)
        sid = sample_id(prompt, response)
        if not response.strip():
            dropped.append(Dropped(sid, row.index, "empty_response"))
            continue
        if sid in seen:
            dropped.append(Dropped(sid, row.index, "duplicate"))
            continue
        seen.add(sid)
        samples.append(Sample(sid, row.index, tuple(prompt), response, row.record))
    if not samples:
        # Duplicates always leave their first copy, so only empty responses empty a set.
        raise DataError(f"{source}: no usable records: all {len(rows)} have an empty response")
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
    samples, dropped, seen, offset = [], [], set(), 0
    for part in parts:
        dropped += [replace(d, index=d.index + offset) for d in part.dropped]
        for s in part.samples:
            if s.sample_id in seen:
                dropped.append(Dropped(s.sample_id, s.index + offset, "duplicate"))
                continue
            seen.add(s.sample_id)
            samples.append(replace(s, index=s.index + offset))
        offset += 1 + max((x.index for x in [*part.samples, *part.dropped]), default=-1)
    return LoadedData(samples, dropped, " + ".join(p.source for p in parts))
