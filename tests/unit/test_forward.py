import math

import pytest
import torch

from minidlm.forward import (mask_tokens, posterior_probs, posterior_sample, reveal_probability,
                             sample_discrete_times, sample_times)

MASK, PAD = 9, 0


def _x0(B=64, L=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 9, (B, L), generator=g)  # ids 1..8: no PAD, no MASK


def test_masking_rate_matches_one_minus_alpha():
    B, L = 256, 400
    x0 = _x0(B, L)
    alpha = torch.rand(B, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    xt = mask_tokens(x0, alpha, MASK, generator=2)
    n_masked = (xt == MASK).sum(1).double()                     # Binomial(L, 1 - alpha) per row
    expected = L * (1 - alpha)
    sd = torch.sqrt(L * alpha * (1 - alpha)).clamp(min=1e-3)
    z_rows = (n_masked - expected) / sd
    assert z_rows.abs().max() < 5.5, "a row's mask count is implausibly far from L(1 - alpha)"
    z_all = (n_masked - expected).sum() / torch.sqrt((sd ** 2).sum())
    assert abs(z_all) < 4


def test_alpha_one_returns_x0_and_alpha_zero_masks_all_but_pad():
    x0 = _x0(8, 50)
    x0[:, -5:] = PAD
    assert torch.equal(mask_tokens(x0, 1.0, MASK, generator=0, pad_id=PAD), x0)
    xt = mask_tokens(x0, 0.0, MASK, generator=0, pad_id=PAD)
    assert (xt[:, :-5] == MASK).all()
    assert (xt[:, -5:] == PAD).all(), "PAD must never be masked"


def test_keep_protects_positions_and_clean_tokens_are_unchanged():
    x0 = _x0(16, 30)
    keep = torch.zeros(30, dtype=torch.bool)
    keep[:4] = True
    xt = mask_tokens(x0, 0.3, MASK, generator=0, keep=keep)
    assert torch.equal(xt[:, :4], x0[:, :4])
    clean = xt != MASK
    assert torch.equal(xt[clean], x0[clean])


def test_same_seed_same_mask():
    x0 = _x0()
    assert torch.equal(mask_tokens(x0, 0.5, MASK, generator=7), mask_tokens(x0, 0.5, MASK, generator=7))
    assert not torch.equal(mask_tokens(x0, 0.5, MASK, generator=7), mask_tokens(x0, 0.5, MASK, generator=8))


def test_antithetic_times_cover_the_interval_evenly():
    eps, B = 1e-3, 32
    t = sample_times(B, eps=eps, generator=0).double().sort().values
    assert t.min() >= eps and t.max() <= 1
    gaps = t[1:] - t[:-1]
    torch.testing.assert_close(gaps, torch.full_like(gaps, (1 - eps) / B), atol=1e-6, rtol=0)
    iid = sample_times(B, antithetic=False, generator=0)
    assert iid.shape == (B,)


@pytest.mark.parametrize("t,s", [(1.0, 0.75), (0.5, 0.1), (0.3, 0.0)])
def test_posterior_reveals_with_probability_t_minus_s_over_t(t, s):
    """Log-linear: alpha = 1 - t, so (alpha_s - alpha_t)/(1 - alpha_t) = (t - s)/t."""
    p = (t - s) / t
    assert reveal_probability(1 - t, 1 - s).item() == pytest.approx(p)
    B, L = 200, 500
    x0 = _x0(B, L)
    xt = torch.full_like(x0, MASK)
    xs = posterior_sample(xt, x0, 1 - t, 1 - s, MASK, generator=3)
    revealed = (xs != MASK)
    assert torch.equal(xs[revealed], x0[revealed]), "a revealed token must be the true token"
    n = B * L
    freq = revealed.double().mean().item()
    assert abs(freq - p) < 5 * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-12


def test_posterior_keeps_clean_tokens_and_probs_are_exact():
    x0 = _x0(4, 20)
    xt = mask_tokens(x0, 0.5, MASK, generator=0)
    xs = posterior_sample(xt, x0, 0.5, 0.8, MASK, generator=1)
    clean = xt != MASK
    assert torch.equal(xs[clean], xt[clean])
    probs = posterior_probs(xt, x0, 0.5, 0.8, MASK, vocab_size=10)   # (B, L, V)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4, 20, dtype=torch.float64))
    p = (0.8 - 0.5) / (1 - 0.5)
    m = xt == MASK
    assert torch.allclose(probs[m].gather(-1, x0[m][:, None]).squeeze(-1), torch.tensor(p, dtype=torch.float64))
    assert torch.allclose(probs[m][:, MASK], torch.tensor(1 - p, dtype=torch.float64))
    assert (probs[clean].gather(-1, xt[clean][:, None]) == 1).all()


def test_discrete_times_on_the_grid():
    t, s = sample_discrete_times(1000, 8, generator=0)
    torch.testing.assert_close(t - s, torch.full_like(t, 1 / 8))
    assert set((t * 8).round().long().tolist()) == set(range(1, 9))


def test_bad_inputs_raise_clear_errors():
    x0 = _x0(2, 5)
    with pytest.raises(ValueError, match="x0"):
        mask_tokens(x0.float(), 0.5, MASK)
    with pytest.raises(ValueError, match="x0"):
        mask_tokens(x0[0], 0.5, MASK)
    with pytest.raises(ValueError, match="alpha_t"):
        mask_tokens(x0, 1.5, MASK)
    with pytest.raises(ValueError, match="alpha_t"):
        mask_tokens(x0, torch.tensor([0.1, 0.2, 0.3]), MASK)
    with pytest.raises(ValueError, match="mask_id"):
        mask_tokens(x0, 0.5, None)
    with pytest.raises(ValueError, match="alpha_s"):
        reveal_probability(0.5, 0.2)
    with pytest.raises(ValueError, match="batch_size"):
        sample_times(0)
    with pytest.raises(ValueError, match="generator"):
        mask_tokens(x0, 0.5, MASK, generator="seed")
