"""per_sample_loss projects only the rows the loss reads and must equal the full-logits loss."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, PromptTuningConfig, get_peft_model
from tolerance import assert_rounding_close, network_rtol, rounding_rtol
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

from sealft.data.tokenize import collate
from sealft.model import losses
from sealft.model.load import unwrap_parallel
from sealft.model.lora import adapter_parameters
from sealft.model.losses import lean_parts, per_sample_loss

VOCAB = 97
PAD = 0


def reference_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss as it was before the lean path: float32 logits at every position."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    nll = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), labels.clamp(min=0), reduction="none"
    )
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)


@pytest.fixture
def lean_only(monkeypatch):
    """Fails a test if the full-logits fallback is taken instead of the lean path."""

    def refuse(model, batch):
        raise AssertionError("the full-logits fallback was taken")

    monkeypatch.setattr(losses, "full_logits_loss", refuse)


def tiny_llama(tied: bool = False) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
        pad_token_id=PAD,
    )
    return LlamaForCausalLM(config).eval()


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    return GPT2LMHeadModel(config).eval()


def with_lora(model, names: tuple[str, ...] = ("first", "second"), targets=("q_proj", "v_proj")):
    # Random (not zero) B matrices, so each adapter changes the output and has gradients.
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=list(targets),
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(1)
    peft_model = get_peft_model(model, config, adapter_name=names[0])
    for name in names[1:]:
        peft_model.add_adapter(name, config)
    peft_model.set_adapter(names[0])
    return peft_model.eval()


def sft_batch(k: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Prompt (labels -100) then response, right-padded by `collate`; with `k`, only the
    first k response tokens are labelled, as the selector's K-token losses are."""
    gen = torch.Generator().manual_seed(seed)
    ids, labels = [], []
    for prompt_len, response_len in [(5, 9), (12, 3), (2, 20), (7, 7), (1, 1)]:
        tokens = torch.randint(1, VOCAB, (prompt_len + response_len,), generator=gen).tolist()
        response = tokens[prompt_len:]
        if k is not None:
            response = response[:k] + [-100] * (len(response) - k)
        ids.append(tokens)
        labels.append([-100] * prompt_len + response)
    return collate(ids, labels, PAD)


def left_padded(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same rows padded on the left instead of the right."""
    out = {k: torch.empty_like(v) for k, v in batch.items()}
    fill = {"input_ids": PAD, "attention_mask": 0, "labels": -100}
    for i, n in enumerate(batch["attention_mask"].sum(1).tolist()):
        for key, value in batch.items():
            row = torch.full_like(value[i], fill[key])
            row[len(row) - n :] = value[i, :n]
            out[key][i] = row
    return out


def head_rtol(model, *, bf16: bool = False) -> float:
    """Both paths run the same layers on the same rows up to the head, bit for bit; they
    differ in the head (a sum over the hidden size, in other chunks), the log-sum-exp (over
    the vocabulary) and the mean over a row's tokens, and under bf16 autocast in where the
    head's output is rounded to bf16."""
    config = unwrap_parallel(model).config
    return rounding_rtol(3, max(config.hidden_size, config.vocab_size), bf16=bf16)


def assert_lean_equals_full(
    model, batch, chunk_elements: int = losses.LOGIT_CHUNK_ELEMENTS, bf16: bool = False
) -> torch.Tensor:
    with torch.no_grad():
        lean = per_sample_loss(model, batch, chunk_elements=chunk_elements)
        full = reference_loss(model, batch)
    assert_rounding_close(lean, full, head_rtol(model, bf16=bf16))
    return lean


@pytest.mark.parametrize("tied", [False, True])
def test_llama_lean_equals_full(lean_only, tied):
    model = tiny_llama(tied)
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    assert (head.weight is embed.weight) == tied
    assert lean_parts(model) is not None
    assert_lean_equals_full(model, sft_batch())


def test_gpt2_lean_equals_full(lean_only):
    model = tiny_gpt2()
    assert lean_parts(model) is not None
    assert_lean_equals_full(model, sft_batch())


def test_lora_adapters_switched(lean_only):
    model = with_lora(tiny_llama())
    batch = sft_batch()
    model.set_adapter("first")
    loss_a = assert_lean_equals_full(model, batch)
    model.set_adapter("second")
    loss_b = assert_lean_equals_full(model, batch)
    assert not torch.allclose(loss_a, loss_b)


@pytest.mark.parametrize("k", [1, 4])
def test_first_k_response_tokens(lean_only, k):
    assert_lean_equals_full(tiny_llama(), sft_batch(k=k))


def test_padding_on_either_side(lean_only):
    model = with_lora(tiny_llama())
    right = sft_batch(k=4)
    left = left_padded(right)
    assert (left["attention_mask"][:, 0] == 0).any() and (right["attention_mask"][:, -1] == 0).any()
    assert_lean_equals_full(model, right)
    assert_lean_equals_full(model, left)


def test_rows_projected_in_chunks(lean_only):
    # Three rows per chunk: the batch's 40 response rows go through the head in 14 chunks.
    assert_lean_equals_full(tiny_gpt2(), sft_batch(), chunk_elements=3 * VOCAB)


def test_bf16_autocast(lean_only):
    model = with_lora(tiny_llama(tied=True))
    batch = sft_batch()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        lean = per_sample_loss(model, batch)
        full = reference_loss(model, batch)
    assert lean.dtype == torch.float32
    assert_rounding_close(lean, full, head_rtol(model, bf16=True))


def test_head_runs_under_a_wrapped_forwards_autocast(lean_only):
    # accelerate's mixed precision wraps the instance's forward in autocast; the lean head
    # must run inside that wrapper, as the full path's head does.
    model = with_lora(tiny_llama(tied=True))
    inner = model.forward

    def forward(*args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return inner(*args, **kwargs)

    model.forward = forward
    dtypes = []
    head = model.get_base_model().get_output_embeddings()
    handle = head.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    try:
        lean = assert_lean_equals_full(model, sft_batch(), bf16=True)
    finally:
        handle.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert lean.dtype == torch.float32


def lora_grads(model, loss_fn, batch, coef) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    (loss_fn(model, batch) * coef).sum().backward()
    return [p.grad.clone() for p in adapter_parameters(model, "first")]


@pytest.mark.parametrize("chunk_elements", [losses.LOGIT_CHUNK_ELEMENTS, 4 * VOCAB])
def test_lora_gradients_equal_full_path(lean_only, chunk_elements):
    model = with_lora(tiny_llama(tied=True))
    model.set_adapter("first")
    batch = sft_batch()
    coef = torch.linspace(-1.0, 2.0, len(batch["input_ids"]))

    def lean(m, b):
        return per_sample_loss(m, b, chunk_elements=chunk_elements)

    got = lora_grads(model, lean, batch, coef)
    want = lora_grads(model, reference_loss, batch, coef)
    assert all(g.abs().sum() > 0 for g in want)
    # The head's rounding differs (head_rtol) and the backward pass carries it through
    # every layer: the whole network's bound, run back.
    tokens = batch["input_ids"].numel()
    rtol = network_rtol(unwrap_parallel(model).config, tokens, backward=True)
    for g, w in zip(got, want, strict=True):
        assert_rounding_close(g, w, rtol)


def tiny_gemma2() -> Gemma2ForCausalLM:
    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
        final_logit_softcapping=5.0,
        pad_token_id=PAD,
    )
    return Gemma2ForCausalLM(config).eval()


def test_soft_capped_head_falls_back_to_full_logits(monkeypatch):
    model = tiny_gemma2()
    assert lean_parts(model) is None
    taken = []
    full = losses.full_logits_loss
    monkeypatch.setattr(losses, "full_logits_loss", lambda m, b: taken.append(1) or full(m, b))
    assert_lean_equals_full(model, sft_batch())
    assert taken == [1]


def test_prompt_tuning_falls_back_to_full_logits():
    config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)
    model = get_peft_model(tiny_llama(), config)
    assert lean_parts(model) is None


class DistributedDataParallel(torch.nn.Module):
    """Stands in for torch's DDP wrapper (same name, same `.module`), which needs a
    process group to build."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def test_data_parallel_wrapper_takes_the_lean_path(lean_only):
    inner = with_lora(tiny_llama())
    wrapped = DistributedDataParallel(inner)
    assert lean_parts(wrapped) == lean_parts(inner) is not None
    assert_lean_equals_full(wrapped, sft_batch(k=4))


class FullyShardedDataParallel(DistributedDataParallel):
    """Stands in for a wrapper whose forward does more than call the wrapped model's."""


def test_other_wrappers_keep_the_full_path_but_are_unwrapped_for_settings():
    inner = with_lora(tiny_llama())
    wrapped = FullyShardedDataParallel(inner)
    assert lean_parts(wrapped) is None
    assert unwrap_parallel(wrapped) is inner
    assert unwrap_parallel(wrapped, transparent_only=True) is wrapped
