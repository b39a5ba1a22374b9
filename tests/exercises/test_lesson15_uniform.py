"""Graded tests, lesson 15: the uniform forward process, its posterior, UDLM's NELBO integrand and
one ReMDM remasking step."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import remask, uniform
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import assert_same, gen, probs, seeds

LESSON = "lesson15_uniform"


def _states(g, B, L, K):
    return torch.randint(K, (B, L), generator=g)


# ----------------------------------------------------------------------------- task 15.1
@pytest.mark.task("15.1", points=1)
@GRADED
@given(B=st.integers(1, 4), L=st.integers(1, 16), K=st.integers(2, 9), seed=seeds, per_row=st.booleans())
def test_uniform_corrupt_shapes_extremes_and_generator(load, B, L, K, seed, per_row):
    """Shape, dtype and range kept, x0 untouched; alpha = 1 keeps every token; every draw comes from
    the generator (the same seed gives the same x_t, whatever the global seed)."""
    f = load(LESSON).uniform_corrupt
    x0 = _states(gen(seed), B, L, K)
    before = x0.clone()
    alpha = torch.rand(B, generator=gen(seed + 1), dtype=torch.float64) if per_row else 0.5
    torch.manual_seed(1)
    got = f(x0, alpha, K, gen(seed + 2))
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == (B, L), f"expected shape {(B, L)}"
    assert got.dtype == x0.dtype, f"dtype {got.dtype}, expected x0's {x0.dtype}"
    assert torch.equal(x0, before), "x0 must not be modified"
    assert bool(((got >= 0) & (got < K)).all()), f"ids outside the states 0..{K - 1}: {got.tolist()}"
    torch.manual_seed(2)
    assert torch.equal(f(x0, alpha, K, gen(seed + 2)), got), \
        "the same generator seed gave another x_t: draw every random number from `generator`"
    assert_same(f(x0, 1.0, K, gen(seed)), x0, "x_t at alpha_t = 1")
    ones = torch.ones(B, dtype=torch.float64)
    assert_same(f(x0, ones, K, gen(seed)), x0, "x_t at alpha_t = torch.ones(B)")


N1, K1 = 40_000, 5


def _chi2(counts: torch.Tensor, expected: torch.Tensor) -> float:
    keep = expected > 0
    return float(((counts - expected)[keep] ** 2 / expected[keep]).sum())


@pytest.mark.task("15.1", points=2)
def test_uniform_corrupt_keeps_a_token_with_probability_alpha_plus_its_share(load):
    """Per row (its own alpha), the share of x_t == x_0 is alpha + (1 - alpha) / K, within 5
    binomial standard deviations; alpha = 1 keeps every token."""
    alphas = torch.tensor([0.0, 0.3, 0.75, 1.0], dtype=torch.float64)
    x0 = _states(gen(10), len(alphas), N1, K1)
    f = load(LESSON).uniform_corrupt
    for alpha in (alphas, None):
        if alpha is None:                                                    # a float alpha too
            xt = f(x0[:1], 0.3, K1, gen(12))
            rows = [(0, 0.3)]
        else:
            xt = f(x0, alpha, K1, gen(11))
            rows = list(enumerate(alpha.tolist()))
        for r, a in rows:
            p = a + (1 - a) / K1
            share = float((xt[r] == x0[r]).double().mean())
            sd = math.sqrt(p * (1 - p) / N1)
            assert abs(share - p) <= 5 * sd + 1e-12, \
                (f"alpha = {a}: x_t == x_0 at a share {share:.4f} of the positions, expected "
                 f"alpha + (1 - alpha)/K = {p:.4f} (the uniform draw may land on the token itself)")


@pytest.mark.task("15.1", points=1)
def test_uniform_corrupt_replacements_are_uniform_over_the_states(load):
    """x_0 fixed per row: the histogram of x_t is alpha onehot(x_0) + (1 - alpha)/K (chi-square over
    the K states, far beyond its 1e-6 quantile fails); alpha = 0 gives the uniform distribution."""
    f = load(LESSON).uniform_corrupt
    alphas = torch.tensor([0.0, 0.4, 0.9], dtype=torch.float64)
    x0 = torch.tensor([[2], [0], [K1 - 1]]).expand(3, N1).contiguous()
    xt = f(x0, alphas, K1, gen(20))
    for r, a in enumerate(alphas.tolist()):
        counts = torch.bincount(xt[r], minlength=K1).double()
        want = torch.full((K1,), (1 - a) / K1, dtype=torch.float64)
        want[x0[r, 0]] += a
        stat = _chi2(counts, N1 * want)
        assert stat < 35.0, (f"alpha = {a}, x_0 = {int(x0[r, 0])}: x_t's counts {counts.long().tolist()}, "
                             f"expected about {[round(v) for v in (N1 * want).tolist()]} (chi-square {stat:.1f})")


# ----------------------------------------------------------------------------- task 15.2
def _alphas(g, B, as_float):
    a_t = torch.rand(B, generator=g, dtype=torch.float64) * 0.95
    a_s = a_t + (1 - a_t) * torch.rand(B, generator=g, dtype=torch.float64)
    a_s = torch.maximum(a_s, torch.full_like(a_s, 1e-3))
    if as_float:
        return float(a_t[0]), float(a_s[0])
    return a_t, a_s


@pytest.mark.task("15.2", points=3)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 8), K=st.integers(2, 7), seed=seeds,
       onehot=st.booleans(), as_float=st.booleans())
def test_uniform_posterior_matches_reference(load, B, L, K, seed, onehot, as_float):
    g = gen(seed)
    xt = _states(g, B, L, K)
    x0 = (torch.nn.functional.one_hot(_states(g, B, L, K), K).double() if onehot
          else probs(g, B, L, K, zeros=True))
    a_t, a_s = _alphas(g, B, as_float)
    got = load(LESSON).uniform_posterior(xt, x0, a_t, a_s)
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == (B, L, K), f"expected shape {(B, L, K)}"
    assert got.dtype == torch.float64, f"dtype {got.dtype}, expected torch.float64"
    expected = uniform.uniform_posterior(xt, x0, a_t, a_s)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12,
                               msg=lambda m: f"alpha_t={a_t}, alpha_s={a_s}\n{m}")


def _q(a: float, K: int) -> torch.Tensor:
    """Q[j, i] = q(x_t = i | x_s = j) of the uniform process with keep probability a."""
    return a * torch.eye(K, dtype=torch.float64) + (1 - a) / K


@pytest.mark.task("15.2", points=3)
def test_uniform_posterior_is_bayes_rule_by_enumeration(load):
    """Every (x_0, x_t) pair, and a probability vector p for x_0: the posterior of x_s given x_t when
    x_0 ~ p is sum_x0 p(x0) q(x_s | x0) q(x_t | x_s) / sum_x0 p(x0) q(x_t | x0), written as loops."""
    K = 4
    f = load(LESSON).uniform_posterior
    p = torch.tensor([0.1, 0.0, 0.6, 0.3], dtype=torch.float64)
    for a_t, a_s in ((0.2, 0.7), (0.0, 0.4), (0.5, 1.0), (0.35, 0.35), (0.05, 0.9)):
        Qs, Qts, Qt = _q(a_s, K), _q(a_t / a_s, K), _q(a_t, K)
        pairs = [(x0, i) for x0 in range(K) for i in range(K)]
        xt = torch.tensor([[i for _, i in pairs]])                                     # (1, K*K)
        x0 = torch.nn.functional.one_hot(torch.tensor([[x for x, _ in pairs]]), K).double()
        got = f(xt, x0, a_t, a_s)[0]
        for n, (c, i) in enumerate(pairs):
            want = torch.tensor([Qts[j, i] * Qs[c, j] / Qt[c, i] for j in range(K)], dtype=torch.float64)
            torch.testing.assert_close(got[n], want, rtol=1e-10, atol=1e-12,
                                       msg=lambda m: f"alpha_t={a_t}, alpha_s={a_s}, x_0={c}, x_t={i}\n{m}")
        got = f(torch.arange(K)[None], p.expand(1, K, K), a_t, a_s)[0]                 # (K, K): x_t = 0..K-1
        for i in range(K):
            num = torch.tensor([sum(p[c] * Qs[c, j] * Qts[j, i] for c in range(K)) for j in range(K)],
                               dtype=torch.float64)
            torch.testing.assert_close(got[i], num / num.sum(), rtol=1e-10, atol=1e-12,
                                       msg=lambda m: f"x_0 ~ {p.tolist()}, alpha_t={a_t}, alpha_s={a_s}, x_t={i}\n{m}")


@pytest.mark.task("15.2", points=2)
def test_uniform_posterior_at_the_two_ends(load):
    """alpha_s = 1 (the last step): x_s = x_0. alpha_t = 0 (t = 1): x_t says nothing, so the
    posterior is the forward marginal alpha_s x + (1 - alpha_s)/K whatever x_t is."""
    K = 5
    f = load(LESSON).uniform_posterior
    g = gen(30)
    x0_ids = _states(g, 2, 6, K)
    xt = _states(g, 2, 6, K)
    onehot = torch.nn.functional.one_hot(x0_ids, K).double()
    torch.testing.assert_close(f(xt, onehot, 0.6, 1.0), onehot, rtol=0, atol=1e-12)
    p = probs(g, 2, 6, K)
    a_s = torch.tensor([0.3, 0.8], dtype=torch.float64)
    got = f(xt, p, torch.zeros(2, dtype=torch.float64), a_s)
    torch.testing.assert_close(got, a_s[:, None, None] * p + (1 - a_s[:, None, None]) / K, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.sum(-1), torch.ones(2, 6, dtype=torch.float64), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- task 15.3
def _integrand_inputs(seed, B, L, K):
    g = gen(seed)
    x0, xt = _states(g, B, L, K), _states(g, B, L, K)
    x_theta = probs(g, B, L, K, zeros=True)
    alpha = torch.rand(B, generator=g, dtype=torch.float64) * 0.98 + 0.01
    dalpha = -(torch.rand(B, generator=g, dtype=torch.float64) * 3 + 0.1)
    return x_theta, x0, xt, alpha, dalpha


@pytest.mark.task("15.3", points=6)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 8), K=st.integers(2, 9), seed=seeds)
def test_udlm_integrand_matches_reference(load, B, L, K, seed):
    args = _integrand_inputs(seed, B, L, K)
    got = load(LESSON).udlm_integrand(*args)
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == (B, L), f"expected shape {(B, L)}"
    expected = uniform.udlm_integrand(*args)
    torch.testing.assert_close(got.double(), expected, rtol=1e-9, atol=1e-12,
                               msg=lambda m: f"alpha={args[3].tolist()}, dalpha={args[4].tolist()}\n{m}")


@pytest.mark.task("15.3", points=3)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 8), K=st.integers(2, 9), seed=seeds)
def test_udlm_integrand_is_nonnegative_and_zero_for_the_true_x0(load, B, L, K, seed):
    x_theta, x0, xt, alpha, dalpha = _integrand_inputs(seed, B, L, K)
    f = load(LESSON).udlm_integrand
    got = f(x_theta, x0, xt, alpha, dalpha).double()
    assert bool((got >= -1e-12).all()), f"negative values {got.tolist()}: a divergence is >= 0"
    perfect = torch.nn.functional.one_hot(x0, K).double()
    torch.testing.assert_close(f(perfect, x0, xt, alpha, dalpha).double(), torch.zeros(B, L, dtype=torch.float64),
                               rtol=0, atol=1e-12, msg=lambda m: f"x_theta = onehot(x_0) must cost 0\n{m}")


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return torch.where(p > 0, p * (p.clamp_min(1e-300).log() - q.log()), torch.zeros_like(p)).sum(-1)


@pytest.mark.task("15.3", points=3)
def test_udlm_integrand_is_the_limit_of_the_per_step_kl(load):
    """KL(q(x_s | x_t, x_0) || q(x_s | x_t, x_theta)) / (t - s) tends to the integrand as s -> t
    (log-linear schedule alpha = 1 - t, alpha' = -1; checked at t - s = 1e-6, where the two agree
    to about 1e-5 relative)."""
    B, L, K = 4, 6, 5
    g = gen(40)
    x0, xt = _states(g, B, L, K), _states(g, B, L, K)
    x_theta = probs(g, B, L, K)
    t = torch.tensor([0.05, 0.3, 0.6, 0.95], dtype=torch.float64)
    h = 1e-6
    a_t, a_s = 1 - t, 1 - (t - h)
    true = uniform.uniform_posterior(xt, torch.nn.functional.one_hot(x0, K).double(), a_t, a_s)
    model = uniform.uniform_posterior(xt, x_theta, a_t, a_s)
    limit = _kl(true, model) / h                                                       # (B, L)
    got = load(LESSON).udlm_integrand(x_theta, x0, xt, a_t, -torch.ones(B, dtype=torch.float64)).double()
    torch.testing.assert_close(got, limit, rtol=1e-4, atol=1e-8)


def _gauss_legendre(n: int = 100):
    """Nodes and weights for t in (0, 1): Gauss-Legendre in v with t = v^2 (the integrand behaves
    like log t near t = 0; this substitution tames it)."""
    x, w = np.polynomial.legendre.leggauss(n)
    v = torch.tensor((x + 1) / 2, dtype=torch.float64)
    return v ** 2, torch.tensor(w, dtype=torch.float64) / 2 * 2 * v


@pytest.mark.task("15.3", points=4)
def test_constant_predictor_integrates_to_minus_log_r(load):
    """A model that predicts the same r whatever x_t is reverses the forward process started from
    r exactly, so its NELBO of x_0 is -log r(x_0): the integral over t of E_{x_t ~ q_t(. | x_0)}
    of the integrand (alpha = 1 - t), by quadrature, with x_t enumerated over the K states."""
    K = 5
    f = load(LESSON).udlm_integrand
    r = torch.tensor([0.05, 0.3, 0.15, 0.4, 0.1], dtype=torch.float64)
    t, w = _gauss_legendre()
    n = len(t)
    alpha = 1 - t                                                                       # (n,)
    xt = torch.arange(K).expand(n, K)                                                  # (n, K): every x_t
    for c in (0, 3):
        x0 = torch.full((n, K), c)
        vals = f(r.expand(n, K, K), x0, xt, alpha, -torch.ones(n, dtype=torch.float64)).double()   # (n, K)
        q_t = alpha[:, None] * (xt == c).double() + (1 - alpha[:, None]) / K          # q(x_t | x_0)
        nelbo = float((w * (q_t * vals).sum(1)).sum())
        assert nelbo == pytest.approx(-math.log(float(r[c])), abs=1e-7), \
            f"x_0 = {c}: the integral is {nelbo:.8f}, expected -log r(x_0) = {-math.log(float(r[c])):.8f}"


# ----------------------------------------------------------------------------- task 15.4
V4, MASK4 = 8, 7


def _step_inputs(g, B, L, p_mask):
    x = torch.randint(MASK4, (B, L), generator=g)
    x = torch.where(torch.rand(B, L, generator=g) < p_mask, torch.full_like(x, MASK4), x)
    cand = torch.randint(MASK4, (B, L), generator=g)
    u = torch.rand(B, L, generator=g, dtype=torch.float64)
    return x, cand, u


@pytest.mark.task("15.4", points=3)
@GRADED
@given(B=st.integers(1, 4), L=st.integers(1, 16), seed=seeds, share=st.sampled_from([0.0, 1.0, None]),
       with_fixed=st.booleans())
def test_remdm_step_matches_reference(load, B, L, seed, share, with_fixed):
    g = gen(seed)
    a_t = float(torch.rand((), generator=g, dtype=torch.float64)) * 0.95
    a_s = a_t + (1 - a_t) * float(torch.rand((), generator=g, dtype=torch.float64))
    share = float(torch.rand((), generator=g, dtype=torch.float64)) if share is None else share
    sigma = share * remask.sigma_max(a_t, a_s)
    x, cand, u = _step_inputs(g, B, L, 1 - a_t)
    fixed = (torch.rand(B, L, generator=g) < 0.3) & (x != MASK4) if with_fixed else None
    before = x.clone()
    got = load(LESSON).remdm_step(x, cand, a_t, a_s, sigma, MASK4, u, fixed)
    assert torch.equal(x, before), "x must not be modified"
    expected = remask.remdm_step(x, cand, a_t, a_s, sigma, MASK4, u, fixed)
    assert_same(got, expected, f"x_s (alpha_t={a_t:.4f}, alpha_s={a_s:.4f}, sigma={sigma:.4f})")


@pytest.mark.task("15.4", points=2)
@GRADED
@given(B=st.integers(1, 4), L=st.integers(1, 16), seed=seeds)
def test_sigma_zero_is_mdlms_step(load, B, L, seed):
    """sigma = 0: no decoded token changes, and a [MASK] takes cand exactly where
    u < (alpha_s - alpha_t) / (1 - alpha_t) (lesson 07's ancestral step)."""
    g = gen(seed)
    a_t = float(torch.rand((), generator=g, dtype=torch.float64)) * 0.95
    a_s = a_t + (1 - a_t) * float(torch.rand((), generator=g, dtype=torch.float64))
    x, cand, u = _step_inputs(g, B, L, 0.5)
    got = load(LESSON).remdm_step(x, cand, a_t, a_s, 0.0, MASK4, u, None)
    reveal = (x == MASK4) & (u < (a_s - a_t) / (1 - a_t))
    assert_same(got, torch.where(reveal, cand, x), "x_s with sigma = 0")


@pytest.mark.task("15.4", points=1)
def test_fixed_positions_never_change(load):
    """u = 0 everywhere and sigma > 0: every decoded token is remasked except the fixed ones (the
    prompt), and every [MASK] is decoded."""
    x = torch.tensor([[0, 1, MASK4, 2, 3, MASK4], [4, MASK4, 5, 6, 0, 1]])
    cand = torch.tensor([[6, 6, 5, 6, 6, 4], [6, 3, 6, 6, 6, 6]])
    fixed = torch.tensor([[True, False, False, True, False, False], [True, False, False, False, False, True]])
    u = torch.zeros(2, 6, dtype=torch.float64)
    got = load(LESSON).remdm_step(x, cand, 0.4, 0.7, 0.5, MASK4, u, fixed)
    M = MASK4
    assert_same(got, torch.tensor([[0, M, 5, 2, M, 4], [4, 3, M, M, M, 1]]), "x_s")


@pytest.mark.task("15.4", points=2)
def test_the_masked_share_follows_alpha_s(load):
    """A share 1 - alpha_t masked before the step, and u spread evenly over [0, 1) within each
    group (so the result is the exact expectation to 1/N): a share 1 - alpha_s is masked after
    the step, at every valid sigma."""
    N = 20_000
    f = load(LESSON).remdm_step
    for a_t, a_s in ((0.3, 0.45), (0.0, 0.2), (0.6, 0.95), (0.75, 0.8)):
        n_mask = round((1 - a_t) * N)
        n_dec = N - n_mask
        x = torch.cat([torch.full((n_mask,), MASK4), torch.arange(n_dec) % MASK4])[None]        # (1, N)
        cand = (torch.arange(N) % MASK4)[None]
        u = torch.cat([(torch.arange(n_mask, dtype=torch.float64) + 0.5) / n_mask,
                       (torch.arange(n_dec, dtype=torch.float64) + 0.5) / max(n_dec, 1)])[None]
        top = remask.sigma_max(a_t, a_s)
        for sigma in (0.0, 0.5 * top, top):
            share = float((f(x, cand, a_t, a_s, sigma, MASK4, u, None) == MASK4).double().mean())
            assert share == pytest.approx(1 - a_s, abs=2.0 / N + 1e-12), \
                (f"alpha_t={a_t}, alpha_s={a_s}, sigma={sigma:.4f}: a share {share:.5f} is masked after the "
                 f"step, expected 1 - alpha_s = {1 - a_s:.5f}")
