"""Samples: rows → `Sample`s, kept column-wise in Arrow.

A data set of a million rows is read as a stream and kept column-wise in Arrow
(`Samples`): IDs, input positions, prompts, responses and each record's JSON text, with a
`Sample` object made only while some code holds it. Duplicates are dropped by ID and
reported (`Dropped`); the rest keep their IDs.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import DataConfig, Sources, as_list
from .formats import Format, detect_format, sample_id, to_prompt_response
from .readers import BATCH, DataError, Row, iter_rows

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


@dataclass(frozen=True)
class Sample:
    """One (prompt, response) pair; `prompt` is a list of chat messages ending with a user turn."""

    sample_id: str
    index: int
    prompt: tuple[dict[str, str], ...]
    response: str
    record: dict[str, Any] = field(repr=False)


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
    rows = iter_rows(path, hub=hub, hub_config=hub_config, split=split, revision=revision)
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
