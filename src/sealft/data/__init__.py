"""The data layer: load (formats, sample IDs, sources) → tokenize (render, encode)."""

from .load import (
    DataError,
    Dropped,
    LoadedData,
    Sample,
    Samples,
    load_data,
    load_samples,
    load_sources,
    parse_hh,
    read_rows,
    sample_id,
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
