"""Record formats (alpaca, messages, prompt/completion, HH transcripts) → one canonical
(prompt messages, response) pair, and the sample ID: a hash of the normalised content,
never the position (seal-method.md §5.2)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

from .readers import DataError, Row

Format = Literal["auto", "alpaca", "messages", "prompt_completion", "hh"]

# The canonical fields of each format; a `fields` mapping renames source columns onto them.
FORMAT_FIELDS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "input", "output"),
    "messages": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "hh": ("chosen",),
}


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
