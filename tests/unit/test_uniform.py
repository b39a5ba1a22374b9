"""Uniform-state diffusion (lesson 15): the forward process, its posterior, UDLM's NELBO and the
sampler, checked against exact enumeration on a tiny vocabulary."""
import math

import numpy as np
import pytest
import torch

from minidlm.uniform import (corrupt_uniform, n_states, udlm_integrand, udlm_loss, udlm_nelbo,
                             uniform_generate, uniform_marginal, uniform_posterior)

V, MASK = 5, 2          # ids 0..4, [MASK] = 2: K = 4 states {0, 1, 3, 4}
STATES = [0, 1, 3, 4]


def _gl(n=100):
    """Quadrature nodes and weights for t on (0, 1): Gauss-Legendre in u with t = u^2, which tames
    the integrand's logarithmic behaviour at t -> 0 (converged to 1e-9 here)."""
    x, w = np.polynomial.legendre.leggauss(n)
    u = (x + 1) / 2
    return u ** 2, w / 2 * 2 * u


def _q_matrix(a: float) -> torch.Tensor:
    """Q[j, i] = q(x_t = i | x_s = j) for the uniform process with keep probability a, over V ids."""
    K = len(STATES)
    Q = torch.zeros(V, V, dtype=torch.float64)
    for j in STATES:
        for i in STATES:
            Q[j, i] = a * (i == j) + (1 - a) / K
    return Q


def _expected_integrand(x_theta_of, x0: int, t: float) -> float:
    """E_{x_t ~ q_t(. | x0)} of UDLM's integrand, by enumeration (log-linear: alpha = 1 - t)."""
    a = 1 - t
    q = uniform_marginal(torch.tensor([[x0]]), a, V, MASK)[0, 0]
    xt = torch.tensor([STATES])                                      # (1, K): every state at once
    xth = torch.stack([x_theta_of(i) for i in STATES])[None]         # (1, K, V)
    vals = udlm_integrand(xth, torch.full_like(xt, x0), xt, torch.tensor([a]), torch.tensor([-1.0]), MASK)[0]
    return float((q[STATES] * vals).sum())


def _continuous_nelbo(x_theta_of, x0: int) -> float:
    ts, ws = _gl()
    return sum(w * _expected_integrand(x_theta_of, x0, t) for t, w in zip(ts, ws))


def _discrete_nelbo(x_theta_of, x0: int, T: int) -> float:
    """sum over the T reverse steps of E_q KL(q(x_s | x_t, x0) || p_theta(x_s | x_t)), by enumeration
    (the last step's term is the reconstruction loss -log p_theta(x0 | x_{1/T}); the prior is exact)."""
    total = 0.0
    xt = torch.tensor([STATES])                                      # (1, K)
    xth = torch.stack([x_theta_of(i) for i in STATES])[None]         # (1, K, V)
    for k in range(T, 0, -1):
        a_t, a_s = 1 - k / T, 1 - (k - 1) / T
        q = uniform_marginal(torch.tensor([[x0]]), a_t, V, MASK)[0, 0, STATES]          # (K,)
        true = uniform_posterior(xt, torch.full_like(xt, x0), a_t, a_s, MASK, vocab_size=V)[0]  # (K, V)
        model = uniform_posterior(xt, xth, a_t, a_s, MASK)[0]
        kl = torch.where(true > 0, true * (true.clamp_min(1e-300).log() - model.log()), torch.zeros_like(true)).sum(-1)
        total += float((q * kl).sum())
    return total


def _constant(r):
    return lambda i: r


@pytest.fixture
def r():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(V, generator=g, dtype=torch.float64) + 0.1
    p[MASK] = 0
    return p / p.sum()


def test_states_exclude_mask():
    assert n_states(V, MASK) == 4 and n_states(V, None) == 5


# ---------------------------------------------------------------- the forward process
def test_corrupt_frequencies_match_the_marginal():
    g = torch.Generator().manual_seed(1)
    N = 200_000
    x0 = torch.full((1, N), 3)
    for a in (0.0, 0.3, 0.8, 1.0):
        xt = corrupt_uniform(x0, a, V, g, mask_id=MASK)
        assert not bool((xt == MASK).any())
        freq = torch.bincount(xt[0], minlength=V).double() / N
        want = uniform_marginal(torch.tensor([[3]]), a, V, MASK)[0, 0]
        assert torch.allclose(freq, want, atol=4 * math.sqrt(0.25 / N)), (a, freq, want)


def test_corrupt_keeps_keep_positions_and_per_row_alpha():
    g = torch.Generator().manual_seed(2)
    x0 = torch.full((2, 5000), 4)
    keep = torch.zeros(5000, dtype=torch.bool)
    keep[:10] = True
    xt = corrupt_uniform(x0, torch.tensor([1.0, 0.0]), V, g, mask_id=MASK, keep=keep)
    assert torch.equal(xt[0], x0[0])                                  # alpha = 1: nothing changes
    assert torch.equal(xt[1, :10], x0[1, :10])                        # kept positions
    assert abs(float((xt[1, 10:] == 4).double().mean()) - 0.25) < 0.03   # alpha = 0: uniform over 4 states


# ---------------------------------------------------------------- the posterior
def test_posterior_is_bayes_rule_by_enumeration():
    for a_t, a_s in ((0.2, 0.7), (0.0, 0.4), (0.5, 1.0), (0.3, 0.3)):
        Qs = _q_matrix(a_s)                                   # q(x_s | x0) rows indexed by x0
        Qts = _q_matrix(a_t / a_s)                           # q(x_t | x_s)
        Qt = _q_matrix(a_t)
        for x0 in STATES:
            for i in STATES:
                want = Qts[:, i] * Qs[x0] / Qt[x0, i]          # (V,) over x_s
                got = uniform_posterior(torch.tensor([[i]]), torch.tensor([[x0]]), a_t, a_s, MASK, vocab_size=V)[0, 0]
                assert torch.allclose(got, want, atol=1e-12), (a_t, a_s, x0, i)


def test_posterior_limits():
    xt, x0 = torch.tensor([[1, 3]]), torch.tensor([[4, 3]])
    last = uniform_posterior(xt, x0, 0.6, 1.0, MASK, vocab_size=V)[0]          # the step to t = 0
    assert torch.allclose(last, torch.nn.functional.one_hot(x0[0], V).double())
    first = uniform_posterior(xt, x0, 0.0, 0.5, MASK, vocab_size=V)[0]          # from t = 1: x_t says nothing
    assert torch.allclose(first, uniform_marginal(x0, 0.5, V, MASK)[0])


def test_posterior_bad_inputs():
    xt = torch.tensor([[1]])
    with pytest.raises(ValueError, match="alpha_s"):
        uniform_posterior(xt, torch.tensor([[0]]), 0.6, 0.5, MASK, vocab_size=V)
    with pytest.raises(ValueError, match="vocab_size"):
        uniform_posterior(xt, torch.tensor([[0]]), 0.2, 0.5, MASK)
    bad = torch.full((1, 1, V), 1.0 / V, dtype=torch.float64)                    # puts mass on [MASK]
    with pytest.raises(ValueError, match="MASK"):
        uniform_posterior(xt, bad, 0.2, 0.5, MASK)


# ---------------------------------------------------------------- the NELBO
def test_constant_predictor_nelbo_is_minus_log_r(r):
    """With x_theta = r for every x_t, the model's reverse process is the exact reverse of the
    forward process started from r, so the NELBO of x0 is exactly -log r(x0): continuous time and
    every T-step sum alike."""
    for x0 in (0, 3):
        want = -math.log(float(r[x0]))
        assert _continuous_nelbo(_constant(r), x0) == pytest.approx(want, abs=1e-8)
        for T in (1, 3, 20):
            assert _discrete_nelbo(_constant(r), x0, T) == pytest.approx(want, abs=1e-10)


def test_continuous_nelbo_is_the_limit_of_the_t_step_sums():
    """A predictor that depends on x_t: the T-step KL sums approach UDLM's continuous integral."""
    g = torch.Generator().manual_seed(3)
    table = torch.randn(V, V, generator=g, dtype=torch.float64)
    table[:, MASK] = -math.inf
    x_theta_of = lambda i: torch.softmax(table[i], -1)                            # noqa: E731
    cont = _continuous_nelbo(x_theta_of, 1)
    gaps = [abs(_discrete_nelbo(x_theta_of, 1, T) - cont) for T in (1, 100, 1000)]
    # one step is a visibly different bound; many steps agree with the integral to ~1e-5 relative
    assert gaps[0] > 1e-3 and gaps[1] < 2e-5 * cont and gaps[2] < 2e-5 * cont, (cont, gaps)


def test_integrand_is_nonnegative_and_zero_for_a_perfect_denoiser():
    g = torch.Generator().manual_seed(4)
    B, L = 6, 7
    x0 = torch.tensor(STATES)[torch.randint(4, (B, L), generator=g)]
    xt = torch.tensor(STATES)[torch.randint(4, (B, L), generator=g)]
    logits = torch.randn(B, L, V, generator=g, dtype=torch.float64)
    logits[..., MASK] = -math.inf
    a = torch.rand(B, generator=g, dtype=torch.float64) * 0.98 + 0.01
    vals = udlm_integrand(torch.softmax(logits, -1), x0, xt, a, -torch.ones(B), MASK)
    assert bool((vals >= 0).all()) and bool((vals > 0).any())
    perfect = torch.nn.functional.one_hot(x0, V).double()
    assert torch.allclose(udlm_integrand(perfect, x0, xt, a, -torch.ones(B), MASK), torch.zeros(B, L, dtype=torch.float64), atol=1e-12)


def test_float32_agrees_with_float64():
    g = torch.Generator().manual_seed(5)
    B, L, Vb, m = 4, 16, 300, 3
    x0, xt = torch.randint(4, Vb, (B, L), generator=g), torch.randint(4, Vb, (B, L), generator=g)
    logits = 3 * torch.randn(B, L, Vb, generator=g)
    logits[..., m] = -math.inf
    xth = torch.softmax(logits, -1)
    a = torch.tensor([0.999, 0.5, 0.05, 0.002], dtype=torch.float64)
    v32 = udlm_integrand(xth, x0, xt, a, -torch.ones(B), m).double()
    v64 = udlm_integrand(xth.double(), x0, xt, a, -torch.ones(B), m)
    assert torch.allclose(v32, v64, rtol=1e-4, atol=1e-6)


class _Constant(torch.nn.Module):
    """A 'model' whose logits are log r at every position, whatever its input."""

    def __init__(self, r, L):
        super().__init__()
        self.logr = r.float().clamp_min(1e-30).log()
        self.config = type("C", (), {"vocab_size": len(r), "max_len": L, "mask_id": MASK})()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, **_):
        return self.logr.expand(*x.shape, -1).clone() + 0 * self.w


def test_udlm_loss_is_unbiased_for_the_constant_model(r):
    """The Monte-Carlo loss (random t, random corruption) averages to -log r(x0) per token."""
    L = 9
    x0 = torch.tensor([[1] + [0, 3, 4, 1, 3, 0, 4, 3]])                         # [BOS]-like first token kept
    model = _Constant(r, L)
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        draws = torch.stack([udlm_loss(model, x0.expand(256, -1), MASK, g) for _ in range(100)])
    want = float(-r[x0[0, 1:]].log().mean())
    se = float(draws.std()) / 10                          # heavy-tailed (rare corruptions at small t)
    assert abs(float(draws.mean()) - want) < 4 * se and se < 0.05 * want, (float(draws.mean()), want, se)


def test_udlm_nelbo_bad_times():
    x0 = torch.tensor([[0, 1]])
    with pytest.raises(ValueError, match="t"):
        udlm_nelbo(torch.zeros(1, 2, V), x0, x0, torch.tensor([1.0]), MASK)


# ---------------------------------------------------------------- the sampler
def test_sampler_marginals_follow_the_forward_process(r):
    """With the constant predictor r, the state after the step to s has the forward marginal
    alpha_s r + (1 - alpha_s) / K at every position: the sampler runs the forward process backwards."""
    T, N = 4, 40_000
    _, tr = uniform_generate(_Constant(r, 1), 1, T, MASK, batch_size=N, generator=0)
    K = n_states(V, MASK)
    for k in range(T + 1):
        a = 1 - (T - k) / T
        freq = torch.bincount(tr.states[k][:, 0], minlength=V).double() / N
        want = a * r + (1 - a) / K
        want[MASK] = 0
        assert torch.allclose(freq, want, atol=4 * math.sqrt(0.25 / N)), (k, freq, want)


class _Knows(torch.nn.Module):
    """A denoiser certain of one target row."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.config = type("C", (), {"vocab_size": V, "max_len": target.numel(), "mask_id": MASK})()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, **_):
        out = torch.full((*x.shape, V), -30.0)
        out.scatter_(-1, self.target.expand(x.shape[0], -1)[..., None], 30.0)
        return out


def test_sampler_prompt_fixed_and_revisions_recorded():
    target = torch.tensor([1, 0, 3, 4, 4, 0, 1, 3])
    x, tr = uniform_generate(_Knows(target), 8, 6, MASK, batch_size=5, prompt=torch.tensor([1, 0]), generator=7)
    assert tr.revises and tr.nfe == 6 and tr.steps == 6
    assert torch.equal(x, target.expand(5, -1))                     # the last step lands on x_theta
    for k in range(1, 7):
        assert torch.equal(tr.states[k][:, :2], torch.tensor([[1, 0]]).expand(5, -1))   # the prompt never moves
        assert not bool((tr.states[k] == MASK).any())
    last = tr.last_change(6)
    for b in range(5):
        for p in range(8):
            changes = [k for k in range(1, 7) if tr.states[k][b, p] != tr.states[k - 1][b, p]]
            assert int(last[b, p]) == (changes[-1] if changes else 0)


def test_sampler_bad_inputs():
    with pytest.raises(ValueError, match="steps"):
        uniform_generate(_Knows(torch.tensor([1, 0])), 2, 0, MASK)
    with pytest.raises(ValueError, match="prompt"):
        uniform_generate(_Knows(torch.tensor([1, 0])), 2, 2, MASK, prompt=torch.tensor([1, 0, 1]))
