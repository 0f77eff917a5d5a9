"""The scores table: one row per ranked sample, the interface between every ranking method
(the selector, random, DSIR, the frozen model's loss) and fine-tuning.

Columns: `sample_id`, `index` (row in the input), `score` (what the rows are ranked by,
higher = kept first; for `seal select`, the composed score of selection/score.py), `weight`,
`rank` (1 = most wanted) and `selected` (inside the top p of the run that wrote it).
Tables written before sealft 0.3 call `score` `logit`; `read_scores` renames it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .data.readers import DataError
from .data.samples import id_columns, input_records
from .io import write_jsonl

SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("index", pa.int64()),
        ("score", pa.float64()),
        ("weight", pa.float64()),
        ("rank", pa.int64()),
        ("selected", pa.bool_()),
    ]
)
REQUIRED_COLUMNS = ("sample_id", "rank", "weight")
LEGACY_SCORE = "logit"  # the score column's name before sealft 0.3


def _float64(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values if isinstance(values, np.ndarray) else list(values), np.float64)


def ranking(logits) -> torch.Tensor:
    """Rank 1 = most wanted (largest logit); ties go to the earlier sample, deterministically."""
    values = _float64(logits)
    # A stable sort of the negated logits: equal logits keep their sample order.
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.arange(1, len(values) + 1)
    return torch.from_numpy(ranks)


def n_keep(n: int, p: float) -> int:
    """How many of n samples the top-p selection keeps (round half up, at least one)."""
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    return max(1, min(n, math.floor(n * p + 0.5)))


def scores_table(samples: Sequence, logits, p: float, weights=None) -> pa.Table:
    """The table for `samples` (anything with `sample_id` and `index`), in input order.

    `weights` default to 1: a ranking without a selector weights nothing.
    """
    t = _float64(logits)
    ranks = ranking(t).numpy()
    keep = n_keep(len(t), p) if len(t) else 0
    ids, index = id_columns(samples)
    table = pa.table(
        {
            "sample_id": ids,
            "index": index,
            "score": t,
            "weight": _float64(weights) if weights is not None else np.ones(len(t)),
            "rank": ranks,
            "selected": ranks <= keep,
        },
        schema=SCHEMA,
    )
    return table.sort_by("index")


def selected_ids(table: pa.Table) -> set[str]:
    return set(table.filter(table.column("selected")).column("sample_id").to_pylist())


def write_selected(path: str | Path, samples: Sequence, table: pa.Table) -> None:
    """selected.jsonl: the input records of the selected samples, in input order.

    `table` is `samples`' scores table; the records stream from the samples' store by
    input index, so the selection of a million rows is never in memory at once."""
    chosen = table.filter(table.column("selected")).column("index").to_numpy()
    write_jsonl(path, input_records(samples, chosen))


def read_scores(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such scores file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a Parquet scores file ({e})") from None
    names = table.column_names
    if LEGACY_SCORE in names and "score" not in names:
        table = table.rename_columns(["score" if n == LEGACY_SCORE else n for n in names])
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: scores file lacks column(s) {', '.join(missing)}")
    return table
