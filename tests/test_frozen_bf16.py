"""Frozen weights held in bf16 while autocast trains: the same losses and gradients as
autocast's own casts, adapters untouched, and the fp32 model back afterwards."""

import torch
from conftest import alpaca_rows, write_jsonl
from tolerance import assert_rounding_close, batch_tokens, network_rtol
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft.config import LoraSettings
from sealft.data import encode, load_samples, pad_id
from sealft.model.load import frozen_weights_in_bf16
from sealft.model.lora import add_lora
from sealft.model.losses import losses_and_backward, sample_losses

CPU = torch.device("cpu")


def _model_and_data(tiny_model_dir, tmp_path, tied: bool = False):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    if tied:  # as SmolLM2's: one tensor for the embeddings and the LM head
        model.lm_head.weight = model.model.embed_tokens.weight
    model = add_lora(model, LoraSettings(r=2, alpha=4), ("upper", "lower"))
    rows = load_samples(write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(6))).samples
    return model, tok, encode(rows, tok, max_length=48)


def _pass(model, tok, data, coef):
    model.zero_grad()
    kw = {"pad": pad_id(tok), "device": CPU, "precision": "bf16", "micro": None}
    losses = losses_and_backward(model, data, torch.arange(len(data)), coef, **kw)
    return losses, [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_losses_and_gradients_match_autocasts_own_casts(tiny_model_dir, tmp_path):
    model, tok, data = _model_and_data(tiny_model_dir, tmp_path)
    coef = torch.linspace(0.1, 1.0, len(data))
    plain_losses, plain_grads = _pass(model, tok, data, coef)
    with frozen_weights_in_bf16(model, CPU, "bf16"):
        losses, grads = _pass(model, tok, data, coef)
    # Both round the same weights to the same bf16 values; only the float32 sums of the
    # kernels that take bf16 operands directly may run in another order.
    config, tokens = model.get_base_model().config, batch_tokens(data)
    assert_rounding_close(losses, plain_losses, network_rtol(config, tokens))
    assert len(grads) == len(plain_grads) > 0
    for a, b in zip(grads, plain_grads, strict=True):
        assert_rounding_close(a, b, network_rtol(config, tokens, backward=True))


def _linear_weights(model, adapters: bool) -> dict[str, torch.nn.Parameter]:
    return {
        n: p
        for n, p in model.named_parameters()
        if n.endswith("proj.weight") or n.endswith("proj.base_layer.weight") or "lora_" in n
        if ("lora_" in n) == adapters
    }


def test_only_frozen_base_weights_are_swapped_and_all_come_back(tiny_model_dir, tmp_path):
    model, _, _ = _model_and_data(tiny_model_dir, tmp_path)
    base, adapters = _linear_weights(model, False), _linear_weights(model, True)
    # The inactive adapter's weights are frozen too, and must stay the optimiser's tensors.
    assert any(not p.requires_grad for p in adapters.values())
    with frozen_weights_in_bf16(model, CPU, "bf16"):
        inside = dict(model.named_parameters())
        assert all(inside[n].dtype == torch.bfloat16 for n in base)
        assert all(inside[n] is p and p.dtype == torch.float32 for n, p in adapters.items())
    after = dict(model.named_parameters())
    assert all(after[n] is p for n, p in {**base, **adapters}.items())


def test_a_tied_lm_head_is_untied_inside_and_tied_again(tiny_model_dir, tmp_path):
    model, _, _ = _model_and_data(tiny_model_dir, tmp_path, tied=True)
    base = model.get_base_model()
    assert base.lm_head.weight is base.model.embed_tokens.weight
    with frozen_weights_in_bf16(model, CPU, "bf16"):
        assert base.lm_head.weight.dtype == torch.bfloat16
        assert base.model.embed_tokens.weight.dtype == torch.float32
    assert base.lm_head.weight is base.model.embed_tokens.weight


def test_nothing_is_swapped_without_bf16_autocast(tiny_model_dir, tmp_path):
    model, _, _ = _model_and_data(tiny_model_dir, tmp_path)
    before = dict(model.named_parameters())
    with frozen_weights_in_bf16(model, CPU, "fp32"):
        assert all(p is before[n] for n, p in model.named_parameters())


def test_frozen_losses_of_a_whole_set_are_unchanged(tiny_model_dir, tmp_path):
    model, tok, data = _model_and_data(tiny_model_dir, tmp_path)
    kw = {"pad": pad_id(tok), "device": CPU, "precision": "bf16"}
    # Autocast's own casts, batch by batch: what sample_losses computed before the copy.
    expected = torch.cat(
        [
            losses_and_backward(model, data, idx, None, micro=None, **kw)
            for idx in torch.arange(len(data)).split(4)
        ]
    )
    rtol = network_rtol(model.get_base_model().config, batch_tokens(data))
    assert_rounding_close(sample_losses(model, data, batch_size=4, **kw), expected, rtol)
    assert all(p.dtype == torch.float32 for p in model.parameters())
