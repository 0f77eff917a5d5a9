"""runtime.attention: which attention kernel the training passes use, and that the choice
changes neither a loss nor a gradient beyond float tolerance."""

import pytest
import torch
from conftest import alpaca_rows, write_jsonl
from tolerance import assert_rounding_close, batch_tokens, network_rtol
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft import sft
from sealft.config import LoraSettings, RuntimeConfig, SFTConfig
from sealft.data import collate, encode, load_samples, pad_id
from sealft.model.load import EAGER_CPU_MAX_TOKENS, attention_for, training_attention
from sealft.model.lora import add_lora
from sealft.model.losses import losses_and_backward

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_is_eager_for_short_batches_on_a_cpu_only():
    assert training_attention("auto", CPU, 46) == "eager"
    assert training_attention("auto", CPU, EAGER_CPU_MAX_TOKENS) == "eager"
    assert training_attention("auto", CPU, EAGER_CPU_MAX_TOKENS + 1) is None
    assert training_attention("auto", CUDA, 46) is None
    assert training_attention("model", CPU, 46) is None
    assert training_attention("sdpa", CPU, 46) == "sdpa"
    assert training_attention("eager", CUDA, 4096) == "eager"


def _model_and_data(tiny_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    model = add_lora(model, LoraSettings(r=2, alpha=4))
    rows = load_samples(write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(6))).samples
    return model, tok, encode(rows, tok, max_length=48)


def _seen_attention(model) -> list[str]:
    """The attention implementation of every forward pass of `model`'s base, as it runs."""
    base = model.get_base_model()
    seen: list[str] = []
    base.register_forward_pre_hook(lambda m, args: seen.append(m.config._attn_implementation))
    return seen


def test_the_kernel_is_switched_for_the_pass_and_restored(tiny_model_dir, tmp_path):
    model, tok, data = _model_and_data(tiny_model_dir, tmp_path)
    seen = _seen_attention(model)
    kw = {"pad": pad_id(tok), "device": CPU, "precision": "fp32", "micro": None}
    grads, losses = {}, {}
    for setting in ("model", "auto"):
        model.zero_grad()
        losses[setting] = losses_and_backward(
            model, data, torch.arange(6), 0.5, attention=setting, **kw
        )
        grads[setting] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert seen == ["sdpa", "eager"]
    assert model.get_base_model().config._attn_implementation == "sdpa"
    # The kernels take the attention's sums in another order: rounding, bounded through
    # the network's depth (tests/tolerance.py).
    config, tokens = model.get_base_model().config, batch_tokens(data)
    assert_rounding_close(losses["auto"], losses["model"], network_rtol(config, tokens))
    for a, b in zip(grads["model"], grads["auto"], strict=True):
        assert_rounding_close(b, a, network_rtol(config, tokens, backward=True))
    # Forward-only passes (frozen rankings, evaluation) keep the model's kernel.
    losses_and_backward(model, data, torch.arange(6), None, attention="auto", **kw)
    assert seen[-1] == "sdpa"


def test_a_failed_pass_still_restores_the_kernel(tiny_model_dir, tmp_path):
    model, tok, data = _model_and_data(tiny_model_dir, tmp_path)
    batch = collate(data.input_ids[:2], data.labels[:2], pad_id(tok))
    with pytest.raises(RuntimeError), attention_for(model, "eager", batch["input_ids"]):
        assert model.get_base_model().config._attn_implementation == "eager"
        raise RuntimeError("a pass that fails")
    assert model.get_base_model().config._attn_implementation == "sdpa"


def test_sft_trains_with_the_runtime_attention(tiny_model_dir, tmp_path):
    model, tok, data = _model_and_data(tiny_model_dir, tmp_path)
    seen = _seen_attention(model)
    settings = SFTConfig(epochs=1, batch_size=3, lr=1e-3)
    runtime = RuntimeConfig(device="cpu", precision="fp32", attention="eager")
    sft.train(model, tok, data, settings, runtime, run_dir=tmp_path / "run", progress=False)
    assert seen == ["eager", "eager"]
    assert model.get_base_model().config._attn_implementation == "sdpa"


def test_a_model_without_an_attention_setting_is_left_alone():
    plain = torch.nn.Linear(2, 2)
    with attention_for(plain, "eager", torch.zeros(1, 4, dtype=torch.long)):
        assert not hasattr(plain, "config")
