"""The `guard` baseline: rank samples by a safety classifier's verdict on (prompt, response).

It answers "why not just filter with Llama Guard?": every sample gets the guard's log-odds
that it is safe, log P(safe) - log P(unsafe), as its logit, so the samples the guard
finds most unsafe rank last and `seal finetune` drops them first. Log-odds rather than a
hard verdict keep ties rare, so the top p is a real ranking and not an arbitrary cut
through thousands of equal "safe" scores.

Two kinds of guard are supported (`GuardConfig.kind`; `auto` tells them apart by the
checkpoint's architecture):

- **causal**: a guard LM used through its own chat template, Llama Guard style. The
  intended targets are meta-llama/Llama-Guard-3-1B and meta-llama/Llama-Guard-3-8B: their
  template turns the conversation into the classification prompt and the verdict
  ("safe" / "unsafe") is the reply's first word. P(unsafe) is read off the next-token
  distribution, restricted to the two verdict tokens.
- **classifier**: a sequence-classification model whose labels include an unsafe one, for
  example a toxicity classifier such as s-nlp/roberta_toxicity_classifier (labels
  neutral / toxic). P(unsafe) is the softmax probability of that label.

These models are the intended targets; the test suite checks the mechanics on tiny models
built from configs, not the real checkpoints.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import pyarrow as pa
import torch

from ..config import ConfigError, GuardConfig
from ..data import Sample, pad_id
from ..model.load import autocast, cache_keyword, use_bf16
from ..progress import progress_bar
from ..scores import scores_table
from .guard_prompt import first_line, guard_input

log = logging.getLogger(__name__)

# Substrings that name an unsafe label, and words that negate them ("non-toxic", "harmless").
UNSAFE_NAMES = ("unsafe", "harm", "toxic")
NEGATIONS = ("no", "not", "non", "harmless", "nontoxic", "nonharmful")
# A guard LM may write whitespace before its verdict (Llama Guard 3 is reported to start with
# "\n\n"); at most this many whitespace-only tokens are stepped over before it is read.
MAX_FILLER_TOKENS = 3

Scorer = Callable[[list[list[int]]], torch.Tensor]


class Verdict(NamedTuple):
    """Token ids whose probability counts as each verdict (a word with and without a space)."""

    unsafe: list[int]
    safe: list[int]


def guard_scores(
    samples: Sequence[Sample],
    cfg: GuardConfig,
    *,
    p: float,
    device,
    precision: str = "auto",
    progress: bool = False,
    model=None,
    tokenizer=None,
) -> pa.Table:
    """The scores table of the guard ranking: logit = log P(safe) - log P(unsafe)."""
    odds = safe_log_odds(
        samples,
        cfg,
        device=device,
        precision=precision,
        progress=progress,
        model=model,
        tokenizer=tokenizer,
    )
    return scores_table(samples, odds, p)


def safe_log_odds(
    samples: Sequence[Sample],
    cfg: GuardConfig,
    *,
    device,
    precision: str = "auto",
    progress: bool = False,
    model=None,
    tokenizer=None,
) -> torch.Tensor:
    """log P(safe) - log P(unsafe) of every sample, in input order (float64).

    The guard is loaded from `cfg.model` unless `model` and `tokenizer` are given; either
    way it is moved to `device` and runs in eval mode (its training mode is restored).
    """
    if (model is None) != (tokenizer is None):
        raise ConfigError("guard: pass both the model and its tokenizer, or neither")
    if not samples:
        return torch.empty(0, dtype=torch.float64)
    device = torch.device(device)
    if model is None:
        model, tokenizer = load_guard(cfg, device=device, precision=precision)
    model = model.to(device)
    kind = guard_kind(cfg.kind, model)
    causal = kind == "causal"
    if causal:
        scorer, batch_size = causal_scorer(model, tokenizer, cfg, device), cfg.batch_size
    else:
        scorer = classifier_scorer(model, cfg, device)
        # Without a pad id, a decoder classifier cannot find each row's last token.
        has_pad = getattr(model.config, "pad_token_id", None) is not None
        batch_size = cfg.batch_size if has_pad else 1
    texts = [guard_input(tokenizer, s, cfg, causal) for s in samples]
    # A chat template writes its own special tokens; plain text gets the tokenizer's.
    special = not causal and not getattr(tokenizer, "chat_template", None)
    ids = encode(tokenizer, texts, cfg.max_length, special=special)
    with _eval_mode(model), torch.no_grad(), autocast(device, precision):
        return _score_batches(ids, scorer, batch_size, progress)


# --------------------------------------------------------------------------- loading


def load_guard(cfg: GuardConfig, *, device, precision: str = "auto"):
    """Load the guard model and tokenizer named by `cfg.model`, for its kind.

    Weights load in bf16 where the run computes in bf16 anyway, which halves the memory an
    8B guard needs. A checkpoint that lacks the weights of the class its kind asks for
    (a causal LM loaded as a classifier gets a random head) is refused.
    """
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    remote = {"trust_remote_code": cfg.trust_remote_code}
    dtype = torch.bfloat16 if use_bf16(torch.device(device), precision) else torch.float32
    try:
        config = AutoConfig.from_pretrained(cfg.model, **remote)
        kind = guard_kind(cfg.kind, config)
        auto = AutoModelForSequenceClassification if kind == "classifier" else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(cfg.model, **remote)
        model, info = auto.from_pretrained(
            cfg.model, config=config, dtype=dtype, output_loading_info=True, **remote
        )
    except (OSError, ValueError) as e:
        raise ConfigError(f"guard.model {cfg.model!r}: cannot load it ({first_line(e)})") from None
    if info.get("missing_keys"):
        missing = ", ".join(sorted(info["missing_keys"])[:3])
        raise ConfigError(
            f"guard.model {cfg.model!r} has no trained {kind} weights ({missing} missing); "
            "check guard.kind"
        )
    return model.to(device), tokenizer


def guard_kind(kind: str, model_or_config) -> str:
    """`kind`, or for "auto": classifier when the architecture is a sequence classifier."""
    if kind != "auto":
        return kind
    config = getattr(model_or_config, "config", model_or_config)
    names = list(getattr(config, "architectures", None) or [])
    if config is not model_or_config:
        # A model built in memory has no `architectures` until it is saved.
        names.append(type(model_or_config).__name__)
    return "classifier" if any(n.endswith("ForSequenceClassification") for n in names) else "causal"


def encode(tokenizer, texts: Sequence[str], max_length: int, *, special: bool) -> list[list[int]]:
    """Token ids of every text, longer ones cut from the left to `max_length`.

    The left is cut because the end holds what is judged: the response and, for a guard
    LM, the point where its verdict starts.
    """
    ids = tokenizer(list(texts), add_special_tokens=special)["input_ids"]
    long = [i for i, x in enumerate(ids) if len(x) > max_length]
    if long:
        log.warning(
            "guard: %d of %d inputs are longer than %d tokens and were cut from the left",
            len(long),
            len(ids),
            max_length,
        )
        side, tokenizer.truncation_side = tokenizer.truncation_side, "left"
        try:
            cut = tokenizer(
                [texts[i] for i in long],
                add_special_tokens=special,
                truncation=True,
                max_length=max_length,
            )["input_ids"]
        finally:
            tokenizer.truncation_side = side
        for i, x in zip(long, cut, strict=True):
            ids[i] = x
    return ids


# --------------------------------------------------------------------------- scoring


def _score_batches(
    ids: list[list[int]], scorer: Scorer, batch_size: int, progress: bool
) -> torch.Tensor:
    """Run `scorer` over batches of similar length (less padding), results in input order."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    odds = torch.empty(len(ids), dtype=torch.float64)
    bar = progress_bar(total=len(ids), desc="guard", enabled=progress)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        odds[chunk] = scorer([ids[i] for i in chunk]).double().cpu()
        bar.update(len(chunk))
    bar.close()
    return odds


def _pad(ids: list[list[int]], pad: int, device, *, left: bool):
    """Pad a batch to one width; returns input_ids and attention_mask."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, x in enumerate(ids):
        span = slice(width - len(x), width) if left else slice(0, len(x))
        input_ids[row, span] = torch.tensor(x, dtype=torch.long)
        mask[row, span] = 1
    return input_ids.to(device), mask.to(device)


@contextlib.contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def unsafe_label_index(config, unsafe_label: str | int | None) -> int:
    """The index of the unsafe label in a classifier's `config`.

    An explicit name or index wins; otherwise the first label whose name says unsafe,
    harm or toxic (and is not negated, as in "harmless"), else label 1 of two.
    """
    n = int(config.num_labels)
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    labels = ", ".join(f"{i}={id2label.get(i, '?')}" for i in range(n))
    if isinstance(unsafe_label, int) and not isinstance(unsafe_label, bool):
        if 0 <= unsafe_label < n:
            return unsafe_label
        raise ConfigError(f"guard.unsafe_label {unsafe_label} is out of range (labels: {labels})")
    if isinstance(unsafe_label, str):
        for match in (lambda a, b: a == b, lambda a, b: a.lower() == b.lower()):
            found = [i for i in range(n) if match(id2label.get(i, ""), unsafe_label)]
            if found:
                return found[0]
        raise ConfigError(f"guard.unsafe_label {unsafe_label!r} is not a label (labels: {labels})")
    for i in range(n):
        name = id2label.get(i, "").lower()
        negated = any(w in NEGATIONS for w in re.split(r"[^a-z]+", name))
        if any(key in name for key in UNSAFE_NAMES) and not negated:
            return i
    if n == 2:
        return 1
    raise ConfigError(
        f"guard: no label of the classifier reads as unsafe (labels: {labels}); "
        "set guard.unsafe_label"
    )


def classifier_scorer(model, cfg: GuardConfig, device) -> Scorer:
    """log-odds of safe from a sequence classifier's logits.

    Softmax heads: log P(safe) - log P(unsafe), with P(safe) the mass of every other label.
    One-logit heads and multi-label heads (independent sigmoids): minus the unsafe logit.
    """
    config = model.config
    single = int(config.num_labels) == 1
    label = 0 if single else unsafe_label_index(config, cfg.unsafe_label)
    sigmoid = single or getattr(config, "problem_type", None) == "multi_label_classification"
    pad = getattr(config, "pad_token_id", None)

    def score(ids: list[list[int]]) -> torch.Tensor:
        input_ids, mask = _pad(ids, 0 if pad is None else pad, device, left=False)
        logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
        if logits.dim() != 2:
            raise ConfigError(f"guard {cfg.model!r} is not a sequence classifier; check guard.kind")
        unsafe = logits[:, label]
        if sigmoid:
            return -unsafe
        others = logits.clone()
        others[:, label] = float("-inf")
        return torch.logsumexp(others, dim=-1) - unsafe

    return score


def verdict_ids(tokenizer, word: str) -> list[int]:
    """The first token of `word`, as it starts a reply with and without a leading space.

    A candidate counts only if it decodes to the start of the word: this rules out <unk>,
    special tokens and a bare-space piece that " safe" and " unsafe" would share.
    """
    found = set()
    for text in (word, " " + word):
        ids = tokenizer.encode(text, add_special_tokens=False)
        if not ids or ids[0] in tokenizer.all_special_ids:
            continue
        piece = tokenizer.decode([ids[0]]).strip()
        if piece and word.startswith(piece):
            found.add(ids[0])
    return sorted(found)


def resolve_verdict(tokenizer, cfg: GuardConfig) -> Verdict:
    """Both verdicts' token ids; a clear error when the tokenizer cannot write one of them."""
    unsafe, safe = verdict_ids(tokenizer, cfg.unsafe_token), verdict_ids(tokenizer, cfg.safe_token)
    shared = set(unsafe) & set(safe)
    unsafe, safe = [t for t in unsafe if t not in shared], [t for t in safe if t not in shared]
    missing = [w for w, ids in ((cfg.unsafe_token, unsafe), (cfg.safe_token, safe)) if not ids]
    if missing:
        words = " and ".join(repr(w) for w in missing)
        raise ConfigError(
            f"guard {cfg.model!r}: the tokenizer has no token that starts the verdict "
            f"{words} (tried with and without a leading space); set guard.unsafe_token / "
            "guard.safe_token to the guard's verdict words"
        )
    return Verdict(unsafe, safe)


def causal_scorer(model, tokenizer, cfg: GuardConfig, device) -> Scorer:
    """log-odds of safe from a guard LM's verdict-token distribution."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"guard {cfg.model!r}: a causal guard is prompted through its chat template, "
            "and its tokenizer has none"
        )
    verdict = resolve_verdict(tokenizer, cfg)
    params = inspect.signature(model.forward).parameters
    extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    positions = "position_ids" in params
    cache = cache_keyword(model)
    pad, filler = pad_id(tokenizer), _filler_test(tokenizer, verdict)

    def step(input_ids, mask, past):
        kwargs = dict(extra, attention_mask=mask, use_cache=True, **{cache: past})
        if positions:
            # Left padding: count positions from each row's first real token.
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
        out = model(input_ids=input_ids, **kwargs)
        if out.logits.dim() != 3:
            raise ConfigError(f"guard {cfg.model!r} is not a causal LM; check guard.kind")
        return out.logits[:, -1].float(), getattr(out, cache)

    def score(ids: list[list[int]]) -> torch.Tensor:
        input_ids, mask = _pad(ids, pad, device, left=True)
        logits, past = step(input_ids, mask, None)
        return _read_verdict(logits, past, mask, step, verdict, filler)

    return score


def _read_verdict(logits, past, mask, step, verdict: Verdict, filler) -> torch.Tensor:
    """Log-odds of safe at each row's verdict position.

    A row whose most likely next token is whitespace (Llama Guard 3's "\\n\\n") is fed
    that token and read one position later, up to MAX_FILLER_TOKENS times.
    """
    odds = torch.zeros(logits.shape[0], dtype=torch.float64, device=logits.device)
    todo = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    for n in range(MAX_FILLER_TOKENS + 1):
        top = logits.argmax(-1)
        wait = torch.tensor([filler(t) for t in top.tolist()], device=logits.device)
        ready = todo & ~wait if n < MAX_FILLER_TOKENS else todo
        safe = torch.logsumexp(logits[:, verdict.safe], dim=-1)
        unsafe = torch.logsumexp(logits[:, verdict.unsafe], dim=-1)
        odds = torch.where(ready, (safe - unsafe).double(), odds)
        todo = todo & ~ready
        if not todo.any():
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        logits, past = step(top[:, None], mask, past)
    return odds


def _filler_test(tokenizer, verdict: Verdict) -> Callable[[int], bool]:
    """Whether a token id is whitespace only (and not a verdict), memoised per id."""
    known: dict[int, bool] = {}
    verdicts = set(verdict.unsafe) | set(verdict.safe)

    def is_filler(token: int) -> bool:
        if token not in known:
            text = tokenizer.decode([token])
            known[token] = token not in verdicts and bool(text) and not text.strip()
        return known[token]

    return is_filler
