"""Pairwise win rate with an LLM judge, AlpacaEval style.

Every pair of answers is judged twice, once in each order, so that a judge's preference
for the first (or second) position cancels out. A win counts 1, a tie 1/2, a loss 0.
A verdict that cannot be parsed, or a request that fails, is counted and reported; it
never silently drops out of the denominator's bookkeeping. Verdicts are cached on disk
by (judge, template, prompt, first answer, second answer): re-running costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import GenerationConfig, JudgeConfig
from ..io import append_jsonl, read_jsonl
from ..progress import progress_bar
from .generation import generate

TEMPLATE_VERSION = "pairwise-1"
SYSTEM = (
    "You are a careful, impartial judge of AI assistants. You compare two responses to "
    "the same user instruction and decide which one is more helpful, correct and "
    "relevant. The order in which the responses appear must not influence you, nor "
    "their length."
)
TEMPLATE = """Instruction:
{prompt}

Response A:
{first}

Response B:
{second}

Which response is better? Reply with exactly one of: A, B, tie."""

_VERDICT = re.compile(r"^\W*(?:response\s+)?(a|b|tie)\b", re.IGNORECASE)


def parse_verdict(text: str | None) -> str | None:
    """'A', 'B' or 'tie' from the start of a judge's reply; None when it says neither."""
    if not text:
        return None
    match = _VERDICT.match(text.strip())
    if match is None:
        return None
    word = match.group(1).lower()
    return "tie" if word == "tie" else word.upper()


class JudgeError(RuntimeError):
    pass


class OpenAIJudge:
    """Any OpenAI-compatible chat endpoint: OpenAI, vLLM, llama.cpp's server, ..."""

    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        self.id = f"openai:{cfg.base_url.rstrip('/')}:{cfg.model}"

    def __call__(self, user: str) -> str:
        cfg = self.cfg
        body = json.dumps(
            {
                "model": cfg.model,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": user},
                ],
                "temperature": 0,
                "max_tokens": cfg.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        last = ""
        for attempt in range(cfg.retries + 1):
            if attempt:
                time.sleep(min(2.0**attempt, 10.0) * 0.1)
            try:
                request = urllib.request.Request(url, body, headers, method="POST")
                with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                return payload["choices"][0]["message"]["content"] or ""
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code} from {url}"
                if e.code in (400, 401, 403, 404):
                    break  # the request itself is wrong: retrying cannot help
            except (TimeoutError, urllib.error.URLError, OSError) as e:
                last = f"{url}: {getattr(e, 'reason', e)}"
            except (ValueError, KeyError, IndexError, TypeError):
                last = f"{url}: not an OpenAI chat completion"
        raise JudgeError(last)


class HFJudge:
    """A local Hugging Face chat model, greedy."""

    def __init__(self, cfg: JudgeConfig, model=None, tokenizer=None):
        from ..model.load import load_model_and_tokenizer

        if model is None:
            model, tokenizer = load_model_and_tokenizer(cfg.model)
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.id = f"hf:{cfg.model}"

    def __call__(self, user: str) -> str:
        settings = GenerationConfig(max_new_tokens=self.cfg.max_tokens, batch_size=1)
        return generate(self.model, self.tokenizer, [f"{SYSTEM}\n\n{user}"], settings)[0]


def make_judge(cfg: JudgeConfig):
    return OpenAIJudge(cfg) if cfg.kind == "openai" else HFJudge(cfg)


class JudgmentCache:
    """Verdicts on disk, one JSON line each, appended as they come."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            self.entries = {entry["key"]: entry for entry in read_jsonl(self.path)}

    @staticmethod
    def key(judge_id: str, prompt: str, first: str, second: str) -> str:
        text = json.dumps([judge_id, TEMPLATE_VERSION, prompt, first, second])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, entry: dict) -> None:
        self.entries[entry["key"]] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.path, entry)


@dataclass
class WinRate:
    """Win rate of a model over a reference, from both orders of every pair."""

    judge: str
    wins: int = 0
    ties: int = 0
    losses: int = 0
    unparseable: int = 0
    errors: int = 0
    pairs: int = 0
    judgments: list[dict] = field(default_factory=list, repr=False)

    @property
    def judged(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def rate(self) -> float | None:
        """Percent; ties count half. None when no verdict could be used."""
        if not self.judged:
            return None
        return 100.0 * (self.wins + 0.5 * self.ties) / self.judged

    def summary(self) -> dict:
        return {
            "win_rate": self.rate,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "unparseable": self.unparseable,
            "errors": self.errors,
            "pairs": self.pairs,
            "judgments": 2 * self.pairs,
            "judge": self.judge,
            "template": TEMPLATE_VERSION,
        }


OUTCOME_FIELDS = {
    "win": "wins",
    "tie": "ties",
    "loss": "losses",
    "unparseable": "unparseable",
    "error": "errors",
}


def _outcome(entry: dict, ours_is: str) -> str:
    if entry.get("error"):
        return "error"
    verdict = parse_verdict(entry["reply"])
    if verdict is None:
        return "unparseable"
    if verdict == "tie":
        return "tie"
    return "win" if verdict == ours_is else "loss"


def win_rate(
    judge,
    prompts: Sequence[str],
    answers: Sequence[str],
    reference: Sequence[str],
    cache: JudgmentCache,
    *,
    progress: bool = False,
) -> WinRate:
    """How often `answers` beat `reference` (the same prompts, in the same order)."""
    if not len(prompts) == len(answers) == len(reference):
        raise ValueError("prompts, answers and reference answers must line up one to one")
    result = WinRate(judge.id, pairs=len(prompts))
    bar = progress_bar(total=2 * len(prompts), desc="judge", enabled=progress)
    for prompt, ours, theirs in zip(prompts, answers, reference, strict=True):
        # Order 1: ours is A. Order 2: ours is B.
        for ours_is, first, second in (("A", ours, theirs), ("B", theirs, ours)):
            key = JudgmentCache.key(judge.id, prompt, first, second)
            entry = cache.get(key)
            if entry is None:
                user = TEMPLATE.format(prompt=prompt, first=first, second=second)
                try:
                    reply, error = judge(user), None
                except JudgeError as e:
                    reply, error = None, str(e)
                entry = {"key": key, "judge": judge.id, "reply": reply, "error": error}
                if error is None:  # failures are retried next time, not cached
                    cache.put(entry)
            outcome = _outcome(entry, ours_is)
            name = OUTCOME_FIELDS[outcome]
            setattr(result, name, getattr(result, name) + 1)
            result.judgments.append(
                {
                    "prompt": prompt,
                    "ours_is": ours_is,
                    "reply": entry["reply"],
                    "error": entry.get("error"),
                    "outcome": outcome,
                }
            )
            bar.update()
    bar.close()
    return result
