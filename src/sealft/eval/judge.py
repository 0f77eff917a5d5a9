"""Pairwise win rate with an LLM judge, AlpacaEval style.

Every pair of answers is judged twice, once in each order, so that a judge's preference
for the first (or second) position cancels out. A win counts 1, a tie 1/2, a loss 0.
A verdict that cannot be parsed, or a request that fails, is counted and reported; it
never silently drops out of the denominator's bookkeeping. Verdicts are cached on disk
by (judge, template, prompt, first answer, second answer): re-running costs nothing.
Endpoint judges speak HTTP through the official `openai` client, which retries with
exponential back-off, honours `Retry-After` on 429 and 503, and reaches vLLM or
llama.cpp's server as well as OpenAI through `base_url`; several requests are in flight
at once (`concurrency`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
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
        import openai  # ~0.4 s to import: only endpoint judges pay for it

        self.cfg = cfg
        self.id = f"openai:{cfg.base_url.rstrip('/')}:{cfg.model}"
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.concurrency = cfg.concurrency
        # Always an explicit key: left to itself the client would fall back on
        # $OPENAI_API_KEY and send a real OpenAI key to whatever server base_url names.
        # Local vLLM and llama.cpp servers accept any key.
        key = os.environ.get(cfg.api_key_env) or "not-needed"
        self.client = openai.OpenAI(
            base_url=cfg.base_url, api_key=key, timeout=cfg.timeout, max_retries=cfg.retries
        )

    def __call__(self, user: str) -> str:
        import openai

        try:
            completion = self.client.chat.completions.create(
                model=self.cfg.model,
                messages=[
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": user},
                ],
                temperature=0,
                max_tokens=self.cfg.max_tokens,
            )
        # `from None` throughout: the client's errors carry the response body, and an
        # endpoint may echo the API key there (OpenAI's 401 does), so none of it travels.
        except openai.APIStatusError as e:
            raise JudgeError(f"HTTP {e.status_code} from {self.url}") from None
        except openai.APITimeoutError:
            raise JudgeError(f"{self.url}: timed out") from None
        except openai.APIConnectionError as e:
            raise JudgeError(f"{self.url}: {e.__cause__ or 'connection failed'}") from None
        except (openai.OpenAIError, ValueError):  # ValueError: a body that is not JSON
            raise JudgeError(f"{self.url}: not an OpenAI chat completion") from None
        # The client does not validate a response strictly (local servers leave fields
        # out), and hands back a body served as text/html as a str: check what we use.
        try:
            content = completion.choices[0].message.content
            if not (content is None or isinstance(content, str)):
                raise TypeError(content)
        except (AttributeError, IndexError, KeyError, TypeError):
            raise JudgeError(f"{self.url}: not an OpenAI chat completion") from None
        return content or ""


class HFJudge:
    """A local Hugging Face chat model, greedy."""

    def __init__(self, cfg: JudgeConfig, model=None, tokenizer=None):
        from ..model.load import load_model_and_tokenizer

        if model is None:
            model, tokenizer = load_model_and_tokenizer(cfg.model)
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.id = f"hf:{cfg.model}"
        self.concurrency = 1  # one model, one forward pass at a time

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


def _ask(judge, key: str, user: str, times: int) -> list[dict]:
    """Up to `times` tries, stopping at the first success: what `times` sequential
    occurrences of one question cost when each success is cached for the next."""
    entries = []
    for _ in range(times):
        try:
            reply, error = judge(user), None
        except JudgeError as e:
            reply, error = None, str(e)
        entries.append({"key": key, "judge": judge.id, "reply": reply, "error": error})
        if error is None:
            break
    return entries


def _questions(judge, prompts, answers, reference) -> list[tuple[str, str, str, str]]:
    """(prompt, ours_is, cache key, judge's message) for every pair in both orders."""
    questions = []
    for prompt, ours, theirs in zip(prompts, answers, reference, strict=True):
        # Order 1: ours is A. Order 2: ours is B.
        for ours_is, first, second in (("A", ours, theirs), ("B", theirs, ours)):
            key = JudgmentCache.key(judge.id, prompt, first, second)
            user = TEMPLATE.format(prompt=prompt, first=first, second=second)
            questions.append((prompt, ours_is, key, user))
    return questions


def _ask_all(judge, questions, cache: JudgmentCache, bar) -> dict[str, list[dict]]:
    """Replies to the uncached questions, asked `judge.concurrency` at a time."""
    times: dict[str, int] = {}
    users: dict[str, str] = {}
    for _, _, key, user in questions:
        if cache.get(key) is None:
            times[key] = times.get(key, 0) + 1
            users[key] = user
        else:
            bar.update()
    replies: dict[str, list[dict]] = {}
    pool = ThreadPoolExecutor(max_workers=getattr(judge, "concurrency", 1))
    try:
        futures = {pool.submit(_ask, judge, k, users[k], n): k for k, n in times.items()}
        for future in as_completed(futures):
            key = futures[future]
            replies[key] = future.result()
            if replies[key][-1]["error"] is None:  # failures are retried next time
                cache.put(replies[key][-1])  # as they come: an interrupted run keeps them
            bar.update(times[key])
    finally:
        # On an error or Ctrl-C, drop the queued requests instead of sending them all.
        pool.shutdown(wait=True, cancel_futures=True)
    return replies


def win_rate(
    judge,
    prompts: Sequence[str],
    answers: Sequence[str],
    reference: Sequence[str],
    cache: JudgmentCache,
    *,
    progress: bool = False,
) -> WinRate:
    """How often `answers` beat `reference` (the same prompts, in the same order).

    Uncached questions go to the judge `judge.concurrency` at a time; the result, its
    order and the entries cached are those of asking one question after the other
    (only the cache file's line order follows the replies' arrival)."""
    if not len(prompts) == len(answers) == len(reference):
        raise ValueError("prompts, answers and reference answers must line up one to one")
    result = WinRate(judge.id, pairs=len(prompts))
    questions = _questions(judge, prompts, answers, reference)
    bar = progress_bar(total=len(questions), desc="judge", enabled=progress)
    try:
        replies = _ask_all(judge, questions, cache, bar)
    finally:
        bar.close()
    seen: dict[str, int] = {}
    for prompt, ours_is, key, _ in questions:
        entry = cache.get(key)
        if key in replies:
            # The n-th asking of a question gets the n-th try; after a success, the
            # success, as the cache would have given it.
            tries = replies[key]
            entry = tries[min(seen.get(key, 0), len(tries) - 1)]
            seen[key] = seen.get(key, 0) + 1
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
    return result
