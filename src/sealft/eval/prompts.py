"""Evaluation prompt sets: a list of prompts, marked harmful (refuse) or benign (answer).

Reads every format under ../shared/data/eval and most others:
- CSV, JSON, JSONL or Parquet with a prompt column (AdvBench's `Behavior`, Do-Not-Answer's
  `prompt`, ...), categories kept when a column has them;
- the `{"instructions": [...], "inputs": [...]}` JSON of safety-tuned-llamas;
- a folder of such files, each file becoming a category (Do-Not-Answer's risk areas).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import PromptSetConfig
from ..data import DataError, read_rows

PROMPT_FIELDS = ("prompt", "instruction", "goal", "behavior", "question", "text")
CATEGORY_FIELDS = ("category", "intents")
SUFFIXES = (".csv", ".json", ".jsonl", ".parquet", ".gz")


@dataclass(frozen=True)
class Prompt:
    text: str
    category: str | None
    where: str  # file:line, for messages and for finding the prompt again


@dataclass
class PromptSet:
    name: str
    kind: str  # "harmful" or "benign"
    prompts: list[Prompt]
    source: str

    @property
    def categories(self) -> list[str]:
        return sorted({p.category for p in self.prompts if p.category})


def _column(record: dict, wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    if wanted is not None:
        return wanted if wanted in record else None
    lower = {k.lower(): k for k in record}
    return next((lower[c] for c in candidates if c in lower), None)


def _category(value) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _read_file(path: Path, cfg: PromptSetConfig, category: str | None) -> list[Prompt]:
    rows = read_rows(path)
    if len(rows) == 1 and isinstance(rows[0].record.get("instructions"), list):
        # safety-tuned-llamas: parallel lists of instructions and (optional) inputs.
        record = rows[0].record
        inputs = record.get("inputs") or [""] * len(record["instructions"])
        return [
            Prompt(
                f"{inst}\n\n{inp}".strip() if inp else str(inst).strip(),
                category,
                f"{path}:instructions[{i}]",
            )
            for i, (inst, inp) in enumerate(zip(record["instructions"], inputs, strict=False))
        ]
    prompts = []
    for row in rows:
        field = _column(row.record, cfg.prompt_field, PROMPT_FIELDS)
        if field is None:
            wanted = cfg.prompt_field or " or ".join(PROMPT_FIELDS)
            raise DataError(f"{row.where}: no prompt field '{wanted}'")
        text = row.record[field]
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{row.where}: field '{field}': expected a non-empty string")
        # In a folder the file is the category (Do-Not-Answer's risk areas), unless a
        # category field is named explicitly.
        cat = category if cfg.category_field is None else None
        if cat is None:
            cat_field = _column(row.record, cfg.category_field, CATEGORY_FIELDS)
            cat = _category(row.record.get(cat_field)) if cat_field else None
        prompts.append(Prompt(text.strip(), cat, str(row.where)))
    return prompts


def load_prompt_set(cfg: PromptSetConfig) -> PromptSet:
    path = Path(cfg.path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix in SUFFIXES)
        if not files:
            raise DataError(f"{path}: a folder without prompt files")
        prompts = [p for f in files for p in _read_file(f, cfg, f.name.split(".")[0])]
    elif path.exists():
        prompts = _read_file(path, cfg, None)
    else:
        raise DataError(f"{path}: no such prompt file or folder")
    if not prompts:
        raise DataError(f"{path}: no prompts")
    if cfg.limit is not None:
        prompts = prompts[: cfg.limit]
    name = cfg.name or path.name.split(".")[0]
    return PromptSet(name, cfg.kind, prompts, str(path))
