"""Tolerances for two float computations that agree in exact arithmetic.

They differ by rounding alone, so each tolerance here is a rounding bound, stated relative
to the scale of what is compared, never a figure seen on one host. Two kinds:

- **One evaluation against another** (a chunked head, compiled layers, another attention
  kernel, frozen weights in bf16): both take the same sums in another order, or round their
  operands differently. `rounding_rtol` bounds that through the network's depth.
- **One training run against another** (another number of processes, another micro-batch
  size): rounding enters every step and the optimiser carries it on, amplified where it
  divides by a small quantity (Adam divides each step by the gradient's own size;
  Algorithm 1's selector gradient is a difference of two nearly equal losses; the composed
  score divides the learned logits by their spread). No a-priori bound is tight enough to
  test with, so it is measured where the test runs: a *twin* run that changes only the order
  of the sums (another micro-batch size: the same computation in exact arithmetic, on the
  same host and libraries) shows how far rounding alone moves the result, and
  `twin_tolerance` allows a stated multiple of that.
"""

from __future__ import annotations

import torch

# Unit roundoff: half the gap between 1 and the next float (2^-24 for float32; bf16 keeps 8
# significant bits, 2^-8).
U32 = torch.finfo(torch.float32).eps / 2
U_BF16 = torch.finfo(torch.bfloat16).eps / 2


def gamma(n: int, u: float = U32) -> float:
    """Higham's γ_n = nu / (1 − nu): a sum or dot product of n terms, computed in floats in
    any order, lies within γ_n·Σ|terms| of the exact value (Higham, "Accuracy and Stability
    of Numerical Algorithms", 2nd ed., eq. 3.4 and §4.2)."""
    assert n * u < 1
    return n * u / (1 - n * u)


def rounding_rtol(depth: int, width: int, *, bf16: bool = False) -> float:
    """How far apart, relative to the scale of the result, two evaluations of a chain of
    `depth` reductions of at most `width` terms each may land when they take the sums in
    different orders (and, with `bf16`, round their operands to bf16 under autocast, the
    sums still accumulating in float32).

    Each evaluation of a link is within γ_width of exact (plus 2·u_bf16 for two rounded
    operands); two evaluations are within twice that of each other; to first order, and for
    a chain whose links are well conditioned (a tiny model at initialisation), the relative
    errors of the links add. This is a worst case: real differences are orders smaller."""
    link = gamma(width) + (2 * U_BF16 if bf16 else 0.0)
    return 2 * depth * link


def llama_depth(layers: int) -> int:
    """Chained reductions of a Llama-style forward pass and its loss: per decoder layer the
    input norm, the q/k/v projections, the attention scores, their softmax, the weighted
    values, the output projection, the second norm, gate/up and down (9); then the final
    norm, the head, the log-sum-exp and the mean over tokens (4)."""
    return 9 * layers + 4


def network_rtol(config, tokens: int, *, backward: bool = False, bf16: bool = False) -> float:
    """rounding_rtol for a whole forward pass (and loss) of a decoder model with `config`, on
    a batch of `tokens` tokens, or for its gradients (`backward`: the chain run back again).
    The widest sum is the largest of the hidden size, the MLP's, the vocabulary (the
    log-sum-exp) and the batch's tokens (a weight's gradient sums over them)."""
    hidden = config.hidden_size
    mlp = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None)
    width = max(hidden, mlp or 4 * hidden, config.vocab_size, tokens)
    depth = llama_depth(config.num_hidden_layers) * (2 if backward else 1)
    return rounding_rtol(depth, width, bf16=bf16)


def assert_rounding_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    """|actual − expected| ≤ rtol · max|expected| everywhere: a rounding bound is relative to
    the size of the terms summed, which an entry near zero does not show (so no elementwise
    relative test)."""
    scale = expected.detach().abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=rtol * scale)


# Two runs that each differ from exact arithmetic by rounding of one kind and size (another
# order of the same sums) differ from each other by about as much as either differs from a
# third: |a − b| ≤ |a − x| + |x − b|. The factor allows each of those two distances to come
# out twice the twin's; the floor, a few float32 units of the scale, is for a twin that
# happened to come out bit-identical.
TWIN_FACTOR = 4.0
FLOOR_UNITS = 16


def twin_tolerance(reference: torch.Tensor, twin: torch.Tensor) -> float:
    """The distance allowed from `reference` for a run that differs from it by rounding only,
    given a `twin` that does."""
    distance = (twin.double() - reference.double()).abs().max().item()
    scale = reference.detach().abs().max().item()
    return TWIN_FACTOR * distance + FLOOR_UNITS * U32 * scale


def assert_within_twin(actual: torch.Tensor, reference: torch.Tensor, twin: torch.Tensor) -> float:
    """`actual` lies as close to `reference` as rounding alone allows (see twin_tolerance);
    returns the tolerance used."""
    atol = twin_tolerance(reference, twin)
    torch.testing.assert_close(actual, reference, rtol=0.0, atol=atol)
    return atol


def assert_same_ranking(actual: torch.Tensor, reference: torch.Tensor, margin: float) -> None:
    """Every pair of samples whose reference scores differ by more than `margin` is ordered
    alike in `actual`; pairs closer than that are ties that rounding may break either way."""
    diff = reference[:, None] - reference[None, :]
    clearly = diff > margin
    agree = (actual[:, None] - actual[None, :]) > 0
    flipped = (clearly & ~agree).nonzero().tolist()
    assert not flipped, f"pairs ordered otherwise beyond the margin {margin:.3g}: {flipped[:5]}"


def batch_tokens(data) -> int:
    """Tokens of `data` (an Encoded set) padded to its longest row, as one batch holds them."""
    return len(data.input_ids) * max(len(ids) for ids in data.input_ids)
