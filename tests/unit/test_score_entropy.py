"""losses.score_entropy (absorbing case): non-negative, zero exactly at the true ratios, minimized there."""
import math

import pytest
import torch

from minidlm.losses import score_entropy

V, MASK = 6, 5


def _batch(seed, B=3, L=8):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randint(0, MASK, (B, L), generator=g)
    xt = torch.where(torch.rand(B, L, generator=g) < 0.5, torch.full_like(x0, MASK), x0)
    xt[:, 0] = MASK                                               # at least one masked position per row
    sigma = torch.rand(B, generator=g, dtype=torch.float64) * 3 + 0.05
    return x0, xt, sigma, g


def _true_log_ratio(x0, sigma):
    """log s*: log(1/(e^sigma - 1)) at x0, -inf (ratio 0) elsewhere."""
    B, L = x0.shape
    ls = torch.full((B, L, V), -math.inf, dtype=torch.float64)
    ls.scatter_(-1, x0[..., None], (-torch.log(torch.expm1(sigma)))[:, None, None].expand(B, L, 1))
    return ls


@pytest.mark.parametrize("seed", range(5))
def test_non_negative_and_zero_at_clean_positions(seed):
    x0, xt, sigma, g = _batch(seed)
    ls = 3 * torch.randn(*x0.shape, V, generator=g, dtype=torch.float64)
    loss = score_entropy(ls, x0, xt, sigma, MASK)
    assert loss.shape == x0.shape
    assert (loss >= -1e-5).all()
    assert (loss[xt != MASK] == 0).all()
    assert (loss[xt == MASK] > 0).all()        # random scores are not the true ratios


def test_zero_exactly_at_the_true_ratio():
    """log s = log a at x0, -inf elsewhere: l = a - a log a + a (log a - 1) = 0."""
    x0, xt, sigma, _ = _batch(0)
    loss = score_entropy(_true_log_ratio(x0, sigma), x0, xt, sigma, MASK)
    torch.testing.assert_close(loss, torch.zeros_like(loss), atol=1e-6, rtol=0)


def test_known_value_matches_the_formula():
    sigma, s = 0.4, torch.tensor([0.3, 1.2, 0.05, 2.0, 0.7, 99.0])  # the [MASK] entry (99) is ignored
    a = 1 / math.expm1(sigma)
    x0, xt = torch.tensor([[1]]), torch.tensor([[MASK]])
    got = score_entropy(s.log().view(1, 1, V), x0, xt, torch.tensor([sigma]), MASK).item()
    expected = float(s[:MASK].sum()) - a * math.log(1.2) + a * (math.log(a) - 1)
    assert got == pytest.approx(expected, rel=1e-5)


def test_minimized_at_the_true_ratio():
    """The gradient vanishes at log s(x0) = log a, and moving log s(x0) either way, or giving any
    other token a positive score, increases the loss."""
    x0, xt, sigma, _ = _batch(1)
    star = _true_log_ratio(x0, sigma)
    masked = xt == MASK
    # gradient w.r.t. log s(x0) is s(x0) - a = 0 at the optimum (finite entries only)
    ls = star.clone().requires_grad_(True)
    score_entropy(ls, x0, xt, sigma, MASK).sum().backward()
    g_x0 = ls.grad.gather(-1, x0[..., None]).squeeze(-1)
    torch.testing.assert_close(g_x0[masked], torch.zeros_like(g_x0[masked]), atol=1e-6, rtol=0)
    base = score_entropy(star, x0, xt, sigma, MASK)
    for delta in (-0.5, -0.01, 0.01, 0.5):
        moved = star.clone()
        moved.scatter_add_(-1, x0[..., None], torch.full_like(x0[..., None], delta, dtype=torch.float64))
        assert (score_entropy(moved, x0, xt, sigma, MASK)[masked] > base[masked]).all(), delta
    other = star.clone()
    other[..., (x0[0, 0] + 1) % MASK] = math.log(0.1)              # a wrong token gets ratio 0.1
    worse = score_entropy(other, x0, xt, sigma, MASK)
    assert (worse[masked] >= base[masked]).all() and (worse[masked] > base[masked] + 0.05).any()


def test_dsigma_weights_and_reductions():
    x0, xt, sigma, g = _batch(2)
    ls = torch.randn(*x0.shape, V, generator=g, dtype=torch.float64)
    per_pos = score_entropy(ls, x0, xt, sigma, MASK)
    dsigma = torch.tensor([1.0, 2.0, 0.5])
    weighted = score_entropy(ls, x0, xt, sigma, MASK, dsigma=dsigma)
    torch.testing.assert_close(weighted, per_pos * dsigma[:, None].to(per_pos.dtype))
    torch.testing.assert_close(score_entropy(ls, x0, xt, sigma, MASK, reduction="sequence"), per_pos.sum(1))
    torch.testing.assert_close(score_entropy(ls, x0, xt, sigma, MASK, reduction="token"), per_pos.sum() / per_pos.numel())


def test_input_checks_name_the_argument():
    x0, xt, sigma, _ = _batch(3)
    ls = torch.zeros(*x0.shape, V)
    with pytest.raises(ValueError, match="^sigma:"):
        score_entropy(ls, x0, xt, torch.zeros(3), MASK)
    with pytest.raises(ValueError, match="^mask_id:"):
        score_entropy(ls, x0, xt, sigma, V)
    with pytest.raises(ValueError, match="^x0, xt:"):
        score_entropy(ls, x0[:, :-1], xt, sigma, MASK)
    with pytest.raises(ValueError, match="^log_score:"):
        score_entropy(ls[0], x0, xt, sigma, MASK)
