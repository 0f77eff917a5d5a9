import pytest
import torch
from scipy.stats import spearmanr

from sealft.scores import n_keep, ranking
from sealft.selection.schedule import cycled_batches, fine_tune_batches
from sealft.selection.selector import Selector, make_optimizer


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_gradient_matches_closed_form(activation):
    torch.manual_seed(0)
    n = 10
    sel = Selector([str(i) for i in range(n)], activation)
    with torch.no_grad():
        sel.logits.normal_()
    batch = torch.tensor([1, 4, 7])
    d = torch.tensor([0.5, 2.0, -1.0])
    sel.objective(batch, d).backward()
    w = torch.softmax(sel.logits.detach(), 0)
    if activation == "softmax":
        # ∂/∂ω_k (1/|B|) Σ_{i∈B} N s_i d_i = (N/|B|) s_k (d_k [k∈B] − Σ_{i∈B} s_i d_i)
        dk = torch.zeros(n).index_put_((batch,), d)
        want = n / len(batch) * w * (dk - (w[batch] * d).sum())
    else:
        s = torch.sigmoid(sel.logits.detach())
        want = torch.zeros(n).index_put_((batch,), 2 * s[batch] * (1 - s[batch]) * d / len(batch))
    torch.testing.assert_close(sel.logits.grad, want)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_batch_baseline_gradient(activation):
    torch.manual_seed(1)
    n = 10
    sel = Selector([str(i) for i in range(n)], activation)
    with torch.no_grad():
        sel.logits.normal_()
    batch = torch.tensor([0, 3, 5, 9])
    d = torch.tensor([1.0, 3.0, -2.0, 0.5])
    sel.objective(batch, d, baseline="batch").backward()
    w = sel.weights().detach()[batch]
    centred = d - (w * d).sum() / w.sum()
    if activation == "softmax":
        dw = w  # ∂(N s_k)/∂ω_k = w_k (1 − s_k); the −s_k part cancels against the centring
    else:
        s = torch.sigmoid(sel.logits.detach()[batch])
        dw = 2 * s * (1 - s)
    want = torch.zeros(n).index_put_((batch,), dw * centred / len(batch))
    torch.testing.assert_close(sel.logits.grad, want)


def test_weights_average_one_for_softmax():
    sel = Selector(["a", "b", "c"])
    with torch.no_grad():
        sel.logits.copy_(torch.tensor([1.0, -2.0, 0.3]))
    assert float(sel.weights().detach().mean()) == pytest.approx(1.0)


def _train_fixed_losses(
    losses, optimizer, lr, activation, epochs=3, batch=8, common=0.0, baseline="none"
):
    """Selector updates on per-sample values (common + losses_i) * g(t), g growing 0 → 1.

    This is how real values behave: a large loss level shared by every sample, scaled up
    as training moves the models apart, with the per-sample differences on top.
    """
    sel = Selector([str(i) for i in range(len(losses))], activation)
    opt = make_optimizer(sel, optimizer, lr)
    steps = epochs * -(-len(losses) // batch)
    t = 0
    for epoch in range(epochs):
        for idx in fine_tune_batches(len(losses), batch, seed=0, epoch=epoch):
            t += 1
            values = losses[idx] if common == 0 else (common + losses[idx]) * t / steps
            opt.zero_grad()
            sel.objective(idx, values, baseline).backward()
            opt.step()
    return sel.logits.detach()


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_sgd_ranking_follows_fixed_losses(activation):
    """With per-sample losses fixed, SGD ranks exactly by loss (lowest loss = rank 1)."""
    losses = torch.rand(64, generator=torch.Generator().manual_seed(3)) * 2
    logits = _train_fixed_losses(losses, "sgd", 0.05, activation)
    assert torch.equal(ranking(logits), ranking(-losses))


def test_batch_baseline_removes_a_shared_trend():
    """A shared, growing loss level makes the plain estimate rank by visit time; centring
    each batch restores the ranking by loss."""
    losses = torch.rand(400, generator=torch.Generator().manual_seed(3)) * 0.5
    plain = _train_fixed_losses(losses, "sgd", 1.0, "softmax", epochs=2, common=2.0)
    centred = _train_fixed_losses(
        losses, "sgd", 1.0, "softmax", epochs=2, common=2.0, baseline="batch"
    )
    rho_plain = spearmanr(plain.numpy(), (-losses).numpy()).statistic
    rho_centred = spearmanr(centred.numpy(), (-losses).numpy()).statistic
    assert rho_plain < 0.6 and rho_centred > 0.9


def test_adam_mixes_visit_order_into_the_ranking():
    """seal-method.md §5.4: Adam's normalisation lets *when* a sample is seen move its rank."""
    losses = torch.rand(64, generator=torch.Generator().manual_seed(3)) * 2
    adam = _train_fixed_losses(losses, "adam", 5e-3, "softmax")
    rho = spearmanr(adam.numpy(), (-losses).numpy()).statistic
    assert rho < 0.99


def test_ranking_ties_and_keep():
    assert ranking(torch.tensor([0.0, 1.0, 0.0])).tolist() == [2, 1, 3]
    assert n_keep(10, 0.8) == 8 and n_keep(3, 0.01) == 1 and n_keep(5, 0.5) == 3
    with pytest.raises(ValueError):
        n_keep(5, 0.0)


def test_every_sample_once_per_epoch_and_safe_cycles():
    for epoch in range(3):
        batches = fine_tune_batches(21, 4, seed=5, epoch=epoch)
        assert sorted(torch.cat(batches).tolist()) == list(range(21))
    safe = cycled_batches(3, 4, steps=6, seed=5, epoch=0)
    assert len(safe) == 6 and all(len(b) == 4 for b in safe)
    assert torch.cat(safe).bincount().tolist() == [8, 8, 8]


def test_save_load_roundtrip(tmp_path):
    sel = Selector(["x", "y"], "sigmoid")
    with torch.no_grad():
        sel.logits.copy_(torch.tensor([0.25, -1.5]))
    sel.save(tmp_path / "s.safetensors")
    back = Selector.load(tmp_path / "s.safetensors")
    assert back.sample_ids == ["x", "y"] and back.activation == "sigmoid"
    assert torch.equal(back.logits, sel.logits)
