"""The data layer: read (files, the Hub) → formats (canonical pairs, sample IDs) →
samples (Arrow-backed sets, sources) → tokenize (render, encode)."""

from .formats import parse_hh, sample_id
from .readers import DataError, read_rows
from .samples import (
    Dropped,
    LoadedData,
    Sample,
    Samples,
    load_data,
    load_samples,
    load_sources,
)
from .tokenize import (
    Encoded,
    collate,
    encode,
    encode_configured,
    pad_id,
    prompt_ids,
    render,
    user_prompt_text,
)

__all__ = [
    "DataError",
    "Dropped",
    "Encoded",
    "LoadedData",
    "Sample",
    "Samples",
    "collate",
    "encode",
    "encode_configured",
    "load_data",
    "load_samples",
    "load_sources",
    "pad_id",
    "parse_hh",
    "prompt_ids",
    "read_rows",
    "render",
    "sample_id",
    "user_prompt_text",
]
