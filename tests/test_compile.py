"""runtime.compile: decoder layers compiled for the training passes, with the same losses and
gradients as uncompiled ones to float tolerance, and undone afterwards."""

import pytest
import torch
from conftest import alpaca_rows, write_jsonl
from tolerance import assert_rounding_close, batch_tokens, network_rtol
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft.config import ConfigError, LoraSettings
from sealft.data import encode, load_samples, pad_id
from sealft.model.load import compiled_layers
from sealft.model.lora import add_lora
from sealft.model.losses import losses_and_backward

CPU = torch.device("cpu")


def _pass(model, data, tok) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    kw = {"pad": pad_id(tok), "device": CPU, "precision": "fp32", "micro": None}
    coef = torch.linspace(0.1, 0.6, len(data))
    losses = losses_and_backward(model, data, torch.arange(len(data)), coef, **kw)
    return losses, [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_compiled_layers_give_the_same_losses_and_gradients(tiny_model_dir, tmp_path):
    torch._dynamo.reset()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = add_lora(AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoraSettings(r=2))
    rows = load_samples(write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(6))).samples
    data = encode(rows, tok, max_length=48)
    layers = model.get_base_model().model.layers
    eager = _pass(model, data, tok)
    with compiled_layers(model, True):
        assert all(layer._compiled_call_impl is not None for layer in layers)
        compiled = _pass(model, data, tok)
    assert all(layer._compiled_call_impl is None for layer in layers)
    # Inductor fuses the layers' kernels and takes their sums in another order: rounding,
    # bounded through the network's depth (tests/tolerance.py).
    config, tokens = model.get_base_model().config, batch_tokens(data)
    assert_rounding_close(compiled[0], eager[0], network_rtol(config, tokens))
    assert len(compiled[1]) == len(eager[1]) > 0
    for a, b in zip(compiled[1], eager[1], strict=True):
        assert_rounding_close(a, b, network_rtol(config, tokens, backward=True))


def test_off_compiles_nothing_and_a_model_without_layer_classes_is_refused():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with compiled_layers(model, False):
        assert model[0]._compiled_call_impl is None
    with pytest.raises(ConfigError, match="runtime.compile"), compiled_layers(model, True):
        pass


def test_sft_refuses_compile_under_an_engine_that_shards_the_parameters(monkeypatch):
    from sealft import sft
    from sealft.config import RuntimeConfig

    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(ConfigError, match="runtime.compile is not supported under fsdp"):
        sft._compiled(model, RuntimeConfig(compile=True))
    # Off, nothing is asked of the engine.
    with sft._compiled(model, RuntimeConfig()):
        pass
