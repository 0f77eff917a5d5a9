"""Per-sample losses: the mean next-token NLL over each sample's response tokens.

One definition serves the selector's bilevel steps, the weighted SFT loss, the frozen-loss
ranking and held-out evaluation.

Logits are computed only where the loss reads them. The model's own forward still runs (so
PEFT's and accelerate's wrappers around it apply) but asks for the last position's logits
only; a hook on the model body takes the final hidden states (after the final norm), keeps
the rows whose next-token label is not -100, and projects just those rows through the LM
head, a bounded number of rows at a time. Batch 8 × length 2048 over Llama-3's 128,256-token
vocabulary needs 8.6 GB of float32 logits for every position; the selector often reads only
4 response tokens per sample. Models where that shortcut is not known to give the same
logits take the full-logits path (`full_logits_loss`), chosen by `lean_parts`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from ..data.tokenize import Encoded, collate
from ..progress import progress_bar
from .load import attention_for, autocast, frozen_weights_in_bf16, unwrap_parallel

# Causal LMs whose forward (transformers 5.x, checked in the source) computes
# `logits = lm_head(body(...)[0])` with nothing after the head. Scaled or soft-capped heads
# (Gemma 2/3's final_logit_softcapping, Cohere's logit_scale, Granite's logits_scaling,
# MiniCPM3, Falcon-H1, ...) are left out on purpose: they take the full-logits path rather
# than having their head arithmetic copied here, where it could drift from the library's.
_PLAIN_HEAD_MODELS = frozenset(
    {
        "GPT2LMHeadModel",
        "GPTBigCodeForCausalLM",
        "GPTJForCausalLM",
        "GPTNeoForCausalLM",
        "GPTNeoXForCausalLM",
        "GemmaForCausalLM",
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "MixtralForCausalLM",
        "Olmo2ForCausalLM",
        "OlmoForCausalLM",
        "Phi3ForCausalLM",
        "PhiForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen2MoeForCausalLM",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "SmolLM3ForCausalLM",
        "StableLmForCausalLM",
        "Starcoder2ForCausalLM",
    }
)

# Logits projected at once: 2^25 float32 logits are 128 MiB (261 rows of a 128,256-token
# vocabulary), big enough for an efficient matmul, small enough to bound the all-response case.
LOGIT_CHUNK_ELEMENTS = 1 << 25


def full_logits_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The per-sample loss from float32 logits at every position: the path for models that
    `lean_parts` does not vouch for."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)


def lean_parts(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(body, LM head) of a model whose logits are exactly `head(body(...)[0])`, else None.

    A PEFT model qualifies through its base model, unless it is prompt learning: virtual
    tokens prepended to the sequence would shift the positions the labels point at.
    """
    from peft import PeftModel

    # Only through wrappers that run the wrapped model's forward unchanged: the body and
    # head of a model inside, say, FSDP would skip the wrapper's parameter gathering.
    model = unwrap_parallel(model, transparent_only=True)
    base = model
    if isinstance(model, PeftModel):
        if model.active_peft_config.is_prompt_learning:
            return None
        base = model.get_base_model()
    cls = type(base)
    # The exact library class: a subclass (e.g. remote code) may have changed the forward.
    if cls.__name__ not in _PLAIN_HEAD_MODELS or not cls.__module__.startswith(
        "transformers.models."
    ):
        return None
    body, head = base.base_model, base.get_output_embeddings()
    if body is base or head is None:
        return None
    return body, head


def per_sample_loss(
    model, batch: dict[str, torch.Tensor], *, chunk_elements: int = LOGIT_CHUNK_ELEMENTS
) -> torch.Tensor:
    """Mean next-token NLL over each sample's response tokens (labels != -100)."""
    parts = lean_parts(model)
    if parts is None:
        return full_logits_loss(model, batch)
    body, head = parts
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    rows, cols = mask.nonzero(as_tuple=True)
    targets = labels[rows, cols]
    chunk_rows = max(1, chunk_elements // head.out_features)
    found: list[torch.Tensor] = []

    def on_body(module, args, output) -> None:
        # Inside the model's forward, so under whatever autocast its wrappers set, as the
        # full path's head would be.
        hidden = output[0][rows, cols]
        found.append(_chunked_nll(head, hidden, targets, chunk_rows))

    handle = body.register_forward_hook(on_body)
    try:
        model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            use_cache=False,
            logits_to_keep=1,
        )
    finally:
        handle.remove()
    (nll,) = found
    sums = torch.zeros(len(labels), dtype=nll.dtype, device=nll.device).index_add(
        0, rows.to(nll.device), nll
    )
    return sums / mask.sum(1).clamp(min=1).to(nll.device)


def _rows_nll(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    return F.cross_entropy(logits, targets.to(logits.device), reduction="none")


def _chunked_nll(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, chunk_rows: int
) -> torch.Tensor:
    """Per-row NLL, `chunk_rows` rows of logits at a time.

    With gradients, autograd would keep every chunk's logits until the backward pass, so
    when there are several chunks each one is recomputed there instead (checkpointed).
    """
    if len(hidden) <= chunk_rows:
        return _rows_nll(head, hidden, targets)
    step = functools.partial(_rows_nll, head)
    pieces = zip(hidden.split(chunk_rows), targets.split(chunk_rows), strict=True)
    if torch.is_grad_enabled():
        return torch.cat([checkpoint(step, h, t, use_reentrant=False) for h, t in pieces])
    return torch.cat([step(h, t) for h, t in pieces])


def _micro(idx: torch.Tensor, size: int | None) -> Iterator[torch.Tensor]:
    yield from (idx.split(size) if size else (idx,))


def losses_and_backward(
    model,
    data: Encoded,
    idx: torch.Tensor,
    coef: torch.Tensor | float | None,
    *,
    pad: int,
    device,
    precision: str,
    micro: int | None,
    attention: str = "model",
) -> torch.Tensor:
    """Per-sample losses of `idx`; backpropagates Σ_i coef_i·ℓ_i unless `coef` is None.

    The batch is cut into micro-batches with gradients accumulated, so a large batch fits
    in memory; the result is the same as one pass over the whole batch. `attention`
    (runtime.attention) picks the kernel of the passes that backpropagate.
    """
    chunks = []
    offset = 0
    for part in _micro(idx, micro):
        batch = collate([data.input_ids[i] for i in part], [data.labels[i] for i in part], pad)
        batch = {k: v.to(device) for k, v in batch.items()}
        if coef is None:
            with torch.no_grad(), autocast(device, precision):
                loss = per_sample_loss(model, batch)
        else:
            with attention_for(model, attention, batch["input_ids"]), autocast(device, precision):
                loss = per_sample_loss(model, batch)
            c = coef if isinstance(coef, float) else coef[offset : offset + len(part)].to(device)
            (loss * c).sum().backward()
        chunks.append(loss.detach().float())
        offset += len(part)
    # One copy to the host per call, not per micro-batch: on a GPU each copy makes the host
    # wait for the pass before it can queue the next one.
    return torch.cat(chunks).cpu()


def sample_losses(
    model,
    data: Encoded,
    *,
    pad: int,
    batch_size: int = 8,
    device=None,
    precision: str = "auto",
    progress: bool = False,
) -> torch.Tensor:
    """Per-sample losses of a frozen model over a whole set, in order."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    batches = torch.arange(len(data)).split(batch_size)
    with frozen_weights_in_bf16(model, device, precision):
        for idx in progress_bar(batches, desc="losses", enabled=progress):
            out.append(
                losses_and_backward(
                    model, data, idx, None, pad=pad, device=device, precision=precision, micro=None
                )
            )
    return torch.cat(out) if out else torch.empty(0)
