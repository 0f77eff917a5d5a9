import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl
from tolerance import assert_rounding_close, batch_tokens, network_rtol
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft.config import LoraSettings, RuntimeConfig, SelectorConfig, SelectorTrainConfig
from sealft.data import encode, load_samples, pad_id
from sealft.model.lora import add_lora
from sealft.selection import bilevel
from sealft.selection.bilevel import BilevelTrainer, adapter_names


def _setup(tiny_model_dir, tmp_path, algorithm, **selector):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ft = encode(
        load_samples(write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(12))).samples,
        tok,
        max_length=48,
    )
    sf = encode(
        load_samples(write_jsonl(tmp_path / "sf.jsonl", safe_rows(5))).samples, tok, max_length=48
    )
    adapters = adapter_names(algorithm)
    model = add_lora(model, LoraSettings(r=2, alpha=4), adapters)
    cfg = SelectorConfig(algorithm=algorithm, epochs=2, gamma_step=0.5, **selector)
    return BilevelTrainer(
        model,
        ft,
        sf,
        selector_cfg=cfg,
        train_cfg=SelectorTrainConfig(lr=1e-2, batch_size=4, micro_batch_size=3),
        runtime=RuntimeConfig(precision="fp32"),
        pad=pad_id(tok),
        seed=0,
        lora=True,
        device=torch.device("cpu"),
        progress=False,
    )


def test_algorithm1_equals_algorithm2_when_aux_losses_are_zero(
    tiny_model_dir, tmp_path, monkeypatch
):
    torch.manual_seed(0)
    alg2 = _setup(tiny_model_dir, tmp_path, 2).train().logits.detach().clone()
    torch.manual_seed(0)
    t1 = _setup(tiny_model_dir, tmp_path, 1)
    monkeypatch.setattr(t1, "lower_backward", lambda idx: torch.zeros(len(idx)))
    alg1 = t1.train().logits.detach()
    torch.testing.assert_close(alg1, alg2)
    assert alg1.abs().max() > 0


def test_algorithm1_trains_the_auxiliary_adapter_only_on_finetune_data(tiny_model_dir, tmp_path):
    t = _setup(tiny_model_dir, tmp_path, 1)
    lower = [p.detach().clone() for n, p in t.upper.module.named_parameters() if ".lower." in n]
    upper = [p.detach().clone() for n, p in t.upper.module.named_parameters() if ".upper." in n]
    idx = torch.arange(4)
    t.lower_backward(idx)
    t.lower.optimizer.step()
    after_lower = [p for n, p in t.upper.module.named_parameters() if ".lower." in n]
    after_upper = [p for n, p in t.upper.module.named_parameters() if ".upper." in n]
    assert any(not torch.equal(a, b) for a, b in zip(lower, after_lower, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(upper, after_upper, strict=True))


def test_gamma_zero_runs_the_finetune_batch_forward_only(tiny_model_dir, tmp_path, monkeypatch):
    t = _setup(tiny_model_dir, tmp_path, 2)
    coefs = []
    real = bilevel.losses_and_backward

    def spy(model, data, idx, coef, **kw):
        coefs.append((data is t.finetune, coef))
        return real(model, data, idx, coef, **kw)

    monkeypatch.setattr(bilevel, "losses_and_backward", spy)
    t.upper_backward(torch.arange(4), torch.arange(4), gamma=0.0)
    assert [c for is_ft, c in coefs if is_ft] == [None]
    coefs.clear()
    t.upper_backward(torch.arange(4), torch.arange(4), gamma=0.5)
    assert all(c is not None for _, c in coefs)


def test_micro_batches_give_the_same_gradient(tiny_model_dir, tmp_path):
    t = _setup(tiny_model_dir, tmp_path, 2)
    model = t.upper.activate()
    grads = []
    for micro in (None, 1):
        model.zero_grad()
        bilevel.losses_and_backward(
            model,
            t.finetune,
            torch.arange(5),
            0.2,
            pad=t.pad,
            device=torch.device("cpu"),
            precision="fp32",
            micro=micro,
        )
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    # Rows padded to another length and gradients summed in another order: rounding only.
    rtol = network_rtol(model.get_base_model().config, batch_tokens(t.finetune), backward=True)
    for a, b in zip(*grads, strict=True):
        assert_rounding_close(b, a, rtol)


def test_selector_moves_every_epoch_from_gamma_zero(tiny_model_dir, tmp_path):
    t = _setup(tiny_model_dir, tmp_path, 2)
    logs = []
    t.train(log=logs.append)
    assert [r["gamma"] for r in logs if r["step"] == 0] == [0.0, 0.5]
    assert len(logs) == 2 * 3  # 12 samples, batch 4, 2 epochs


def test_empty_sets_rejected(tiny_model_dir, tmp_path):
    t = _setup(tiny_model_dir, tmp_path, 2)
    with pytest.raises(ValueError, match="at least one sample"):
        BilevelTrainer(
            t.upper.module,
            t.finetune,
            encode([], None),
            selector_cfg=t.cfg,
            train_cfg=t.train_cfg,
            runtime=RuntimeConfig(),
            pad=0,
            seed=0,
            lora=True,
            device="cpu",
        )


def test_warmup_trains_the_models_but_not_the_logits(tiny_model_dir, tmp_path):
    t = _setup(tiny_model_dir, tmp_path, 1, warmup_epochs=1)
    before = [p.detach().clone() for n, p in t.upper.module.named_parameters() if "lora_B" in n]
    seen = []
    t.train(on_epoch=lambda e, sel: seen.append(sel.logits.detach().clone()))
    assert torch.equal(seen[0], torch.zeros_like(seen[0]))
    assert seen[1].abs().max() > 0
    after = [p for n, p in t.upper.module.named_parameters() if "lora_B" in n]
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_warmup_never_takes_the_last_epoch():
    cfg = SelectorConfig(epochs=2, warmup_epochs=5)
    assert [cfg.selector_learns(e) for e in range(2)] == [False, True]
    assert SelectorConfig(epochs=1, warmup_epochs=1).selector_learns(0)
