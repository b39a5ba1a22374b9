import math

import pytest
import torch

from minidlm.forward import mask_tokens, sample_discrete_times, sample_times
from minidlm.losses import (ar_loss, cross_entropy, discrete_nelbo, entropy, kl_divergence,
                            llada_loss, masked_cross_entropy, mdlm_nelbo, perplexity,
                            token_cross_entropy)

# ------------------------------------------------------------------ lesson 03: the worked example

def test_review_worked_example_in_bits():
    p = torch.tensor([0.7, 0.2, 0.1])
    assert entropy(p, base=2).item() == pytest.approx(1.15678, abs=1e-4)
    q = torch.tensor([0.6, 0.3, 0.1])
    kl = kl_divergence(p, q, base=2).item()
    assert kl == pytest.approx(cross_entropy(p, q, base=2).item() - 1.15678, abs=1e-4)
    assert kl > 0
    assert kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)


def test_one_hot_target_kl_equals_ce_and_entropy_is_zero():
    p = torch.tensor([1.0, 0.0, 0.0])
    q = torch.tensor([0.7, 0.2, 0.1])
    assert entropy(p).item() == 0.0
    assert kl_divergence(p, q).item() == pytest.approx(cross_entropy(p, q).item())
    assert cross_entropy(p, q).item() == pytest.approx(-math.log(0.7))
    # confident mistakes are punished: -log 0.9 ~ 0.105 vs -log 0.01 ~ 4.6
    assert cross_entropy(p, [0.9, 0.05, 0.05]).item() == pytest.approx(0.10536, abs=1e-4)
    assert cross_entropy(p, [0.01, 0.5, 0.49]).item() == pytest.approx(4.60517, abs=1e-4)


def test_ce_gradient_is_softmax_minus_onehot():
    logits = torch.randn(2, 3, 7, dtype=torch.float32, requires_grad=True)
    y = torch.randint(0, 7, (2, 3))
    token_cross_entropy(logits, y).sum().backward()
    expected = torch.softmax(logits.detach(), -1) - torch.nn.functional.one_hot(y, 7).float()
    torch.testing.assert_close(logits.grad, expected, atol=1e-6, rtol=1e-5)


def test_probability_checks():
    with pytest.raises(ValueError, match="^p:"):
        entropy([0.5, 0.6])
    with pytest.raises(ValueError, match="^q:"):
        cross_entropy([0.5, 0.5], [-0.1, 1.1])
    with pytest.raises(ValueError, match="p, q"):
        kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])


# ------------------------------------------------------------------ lesson 05: NELBO vs mathematics
V, MASK = 6, 5                        # tokens 0..4, [MASK] = 5
P = torch.tensor([0.4, 0.25, 0.15, 0.12, 0.08], dtype=torch.float64)
H = entropy(P).item()


def _iid_oracle_logits(xt):
    """A model that knows tokens are i.i.d. from P: it predicts P at every position."""
    B, L = xt.shape
    logits = torch.full((B, L, V), float("-inf"))
    logits[..., :5] = P.log().float()
    return logits


def test_continuous_nelbo_of_the_true_model_equals_L_times_entropy():
    """Tokens i.i.d. from P, model predicts P: E[NELBO per sequence] = L * H(P) exactly."""
    g = torch.Generator().manual_seed(0)
    B, L, reps = 512, 16, 8
    est = []
    for _ in range(reps):
        x0 = torch.multinomial(P, B * L, replacement=True, generator=g).view(B, L)
        t = sample_times(B, generator=g)
        xt = mask_tokens(x0, 1 - t, MASK, generator=g)
        est.append(mdlm_nelbo(_iid_oracle_logits(xt), x0, xt, t, MASK, reduction="sequence").double())
    est = torch.cat(est)
    se = est.std() / math.sqrt(est.numel())
    assert abs(est.mean().item() - L * H) < 4 * se.item(), (est.mean().item(), L * H, se.item())
    # the estimate is not vacuous: a model that predicts uniform costs L * log(5) > L * H
    assert L * math.log(5) - L * H > 4 * se.item()


def _copy_oracle_logits(xt):
    """The true denoiser for sequences 'c c c ... c' with c ~ P: once any token is visible it
    predicts that token with certainty; with everything masked it predicts P."""
    B, L = xt.shape
    visible = xt != MASK
    logits = torch.full((B, L, V), float("-inf"))
    logits[..., :5] = P.log().float()
    any_visible = visible.any(1)
    first = torch.where(any_visible, xt.gather(1, visible.float().argmax(1, keepdim=True)).squeeze(1), 0)
    onehot = torch.full((B, V), float("-inf"))
    onehot[torch.arange(B), first] = 0.0
    return torch.where(any_visible[:, None, None], onehot[:, None, :].expand(B, L, V), logits)


def _mc(fn, reps, g):
    vals = torch.cat([fn(g) for _ in range(reps)]).double()
    return vals.mean().item(), (vals.std() / math.sqrt(vals.numel())).item()


def test_t_step_nelbo_is_above_the_continuous_one_and_converges():
    """Sequences of L copies of one token c ~ P have entropy H(P). With the exact denoiser:
    continuous NELBO = int_0^1 (1/t) t^L L H dt = H (tight), while factorized T-step sampling can
    reveal several copies at once from P, so NELBO_T = (L H / T) sum_i (i/T)^(L-1) > H."""
    B, L = 512, 4
    g = torch.Generator().manual_seed(1)

    def batch(g):
        c = torch.multinomial(P, B, replacement=True, generator=g)
        return c[:, None].expand(B, L).contiguous()

    def cont(g):
        x0 = batch(g)
        t = sample_times(B, generator=g)
        xt = mask_tokens(x0, 1 - t, MASK, generator=g)
        return mdlm_nelbo(_copy_oracle_logits(xt), x0, xt, t, MASK, reduction="sequence")

    def disc(T):
        def f(g):
            x0 = batch(g)
            t, s = sample_discrete_times(B, T, generator=g)
            xt = mask_tokens(x0, 1 - t, MASK, generator=g)
            return discrete_nelbo(_copy_oracle_logits(xt), x0, xt, t, s, T, MASK, reduction="sequence")
        return f

    c_mean, c_se = _mc(cont, 40, g)
    assert abs(c_mean - H) < 4 * c_se, (c_mean, H, c_se)
    means = []
    for T in (1, 2, 4, 16):
        exact = L * H / T * sum((i / T) ** (L - 1) for i in range(1, T + 1))
        m, se = _mc(disc(T), 16, g)
        assert abs(m - exact) < 4 * se + 1e-9, (T, m, exact, se)
        assert exact >= H
        means.append(exact)
    assert means == sorted(means, reverse=True) and means[-1] - H < 0.25 * (means[0] - H)


def test_llada_loss_equals_mdlm_per_token_nelbo_under_loglinear():
    g = torch.Generator().manual_seed(2)
    B, L, Vb = 8, 12, 11
    x0 = torch.randint(0, 10, (B, L), generator=g)
    t = sample_times(B, generator=g)
    xt = mask_tokens(x0, 1 - t, 10, generator=g)
    logits = torch.randn(B, L, Vb, generator=g)
    a = llada_loss(logits, x0, xt, p_mask=t, mask_id=10)
    b = mdlm_nelbo(logits, x0, xt, t, 10, schedule="loglinear", reduction="token")
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # and it is NOT normalized by the number of masked tokens
    n_masked = (xt == 10).sum()
    assert not torch.isclose(a, ((masked_cross_entropy(logits, x0, xt, 10) / t[:, None]).sum() / n_masked).float())


def test_clean_positions_cost_nothing_and_mask_logit_is_ignored():
    x0 = torch.tensor([[1, 2, 3, 4]])
    xt = torch.tensor([[1, 5, 3, 5]])
    logits = torch.zeros(1, 4, 6)
    logits[..., 5] = 100.0                       # a model that loves [MASK] gains nothing (SUBS)
    ce = masked_cross_entropy(logits, x0, xt, 5)
    assert ce[0, 0] == 0 and ce[0, 2] == 0
    torch.testing.assert_close(ce[0, 1], torch.tensor(math.log(5)))
    per_seq = mdlm_nelbo(logits, x0, xt, torch.tensor([0.5]), 5, reduction="sequence")
    torch.testing.assert_close(per_seq, torch.tensor([2 * 2 * math.log(5)]))


def test_pad_tokens_are_not_counted():
    x0 = torch.tensor([[1, 2, 0, 0]])
    xt = torch.tensor([[5, 5, 0, 0]])
    logits = torch.zeros(1, 4, 6)
    tok = mdlm_nelbo(logits, x0, xt, torch.tensor([1.0]), 5, reduction="token", pad_id=0)
    torch.testing.assert_close(tok, torch.tensor(math.log(5)))


def test_ar_loss_matches_manual_next_token_ce():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 7, 13, generator=g)
    x0 = torch.randint(0, 13, (3, 7), generator=g)
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 13), x0[:, 1:].reshape(-1))
    torch.testing.assert_close(ar_loss(logits, x0), manual)
    assert ar_loss(logits, x0, reduction="none").shape == (3, 6)
    assert perplexity(ar_loss(torch.zeros(3, 7, 13), x0)).item() == pytest.approx(13, rel=1e-5)


def test_bad_inputs():
    x0 = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="logits"):
        ar_loss(torch.zeros(2, 4, 5, dtype=torch.long), x0)
    with pytest.raises(ValueError, match="logits, targets"):
        token_cross_entropy(torch.zeros(2, 3, 5), x0)
    with pytest.raises(ValueError, match="reduction"):
        mdlm_nelbo(torch.zeros(2, 4, 5), x0, x0, torch.ones(2), 4, reduction="mean")
    with pytest.raises(ValueError, match="^t:"):
        mdlm_nelbo(torch.zeros(2, 4, 5), x0, x0, torch.tensor([0.5, 1.5]), 4)
    with pytest.raises(ValueError, match="T"):
        discrete_nelbo(torch.zeros(2, 4, 5), x0, x0, 0.5, 0.25, 0, 4)
    with pytest.raises(ValueError, match="mask_id"):
        masked_cross_entropy(torch.zeros(2, 4, 5), x0, x0, 7)
    with pytest.raises(ValueError, match="p_mask"):
        llada_loss(torch.zeros(2, 4, 5), x0, x0, torch.tensor([0.0, 0.5]), 4)
