"""The scores table: one row per ranked sample, the interface between every ranking method
(the selector, random, DSIR, the frozen model's loss) and fine-tuning.

Columns: `sample_id`, `index` (row in the input), `logit` (higher = kept first), `weight`,
`rank` (1 = most wanted) and `selected` (inside the top p of the run that wrote it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .data.load import DataError

SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("index", pa.int64()),
        ("logit", pa.float64()),
        ("weight", pa.float64()),
        ("rank", pa.int64()),
        ("selected", pa.bool_()),
    ]
)
REQUIRED_COLUMNS = ("sample_id", "rank", "weight")


def ranking(logits: torch.Tensor) -> torch.Tensor:
    """Rank 1 = most wanted (largest logit); ties go to the earlier sample, deterministically."""
    order = sorted(range(len(logits)), key=lambda i: (-float(logits[i]), i))
    ranks = torch.empty(len(logits), dtype=torch.long)
    for r, i in enumerate(order, start=1):
        ranks[i] = r
    return ranks


def n_keep(n: int, p: float) -> int:
    """How many of n samples the top-p selection keeps (round half up, at least one)."""
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    return max(1, min(n, math.floor(n * p + 0.5)))


def scores_table(samples: Sequence, logits, p: float, weights=None) -> pa.Table:
    """The table for `samples` (anything with `sample_id` and `index`), in input order.

    `weights` default to 1: a ranking without a selector weights nothing.
    """
    t = torch.as_tensor(
        logits.detach() if isinstance(logits, torch.Tensor) else list(logits),
        dtype=torch.float64,
    )
    ranks = ranking(t) if len(t) else torch.empty(0, dtype=torch.long)
    keep = n_keep(len(t), p) if len(t) else 0
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().double().tolist()
    table = pa.Table.from_pydict(
        {
            "sample_id": [s.sample_id for s in samples],
            "index": [s.index for s in samples],
            "logit": t.tolist(),
            "weight": list(weights) if weights is not None else [1.0] * len(t),
            "rank": ranks.tolist(),
            "selected": (ranks <= keep).tolist(),
        },
        schema=SCHEMA,
    )
    return table.sort_by("index")


def selected_ids(table: pa.Table) -> set[str]:
    ids, keep = table.column("sample_id").to_pylist(), table.column("selected").to_pylist()
    return {sid for sid, k in zip(ids, keep, strict=True) if k}


def read_scores(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such scores file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a Parquet scores file ({e})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: scores file lacks column(s) {', '.join(missing)}")
    return table
