"""Graded tests, lesson 05: the NELBO (MDLM) and LLaDA's loss; the NELBO of a new schedule
(5.3) and the T-step NELBO term by term (5.4), replayed against minidlm with the same draws."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import forward, losses
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import ToyDenoiser, gen, seeds, tokens
from tests.exercises.models_lesson05 import AllSameOracle, ContextFree, PowerSchedule

LESSON = "lesson05_nelbo"
V, MASK = 9, 8
dims = dict(B=st.integers(1, 4), L=st.integers(1, 12), seed=seeds)


def _batch(seed, B, L):
    g = gen(seed)
    x0 = tokens(g, B, L, V, MASK)
    t = torch.rand(B, generator=g) * 0.99 + 0.01
    xt = torch.where(torch.rand(B, L, generator=g) < t[:, None], torch.full_like(x0, MASK), x0)
    logits = 2 * torch.randn(B, L, V, generator=g)
    return logits, x0, xt, t


@pytest.mark.task("5.1", points=3)
@GRADED
@given(**dims)
def test_mdlm_nelbo_matches_reference(load, B, L, seed):
    logits, x0, xt, t = _batch(seed, B, L)
    got = load(LESSON).mdlm_nelbo(logits, x0, xt, t, MASK)
    expected = losses.mdlm_nelbo(logits, x0, xt, t, MASK, reduction="token")
    assert got.dim() == 0
    torch.testing.assert_close(got.double(), expected.double(), rtol=1e-5, atol=1e-6)


@pytest.mark.task("5.1", points=3)
def test_mdlm_nelbo_known_answer(load):
    """One sequence of 2 tokens at t = 0.5; position 1 masked, predicted uniformly over 4 tokens."""
    logits = torch.zeros(1, 2, 5)                  # V = 5, [MASK] = 4: uniform over the 4 real tokens
    x0 = torch.tensor([[2, 3]])
    xt = torch.tensor([[2, 4]])
    got = load(LESSON).mdlm_nelbo(logits, x0, xt, torch.tensor([0.5]), 4)
    assert got.item() == pytest.approx((1 / 0.5) * math.log(4) / 2, rel=1e-6)


@pytest.mark.task("5.2", points=2)
@GRADED
@given(**dims)
def test_llada_loss_matches_reference_and_equals_the_nelbo(load, B, L, seed):
    logits, x0, xt, t = _batch(seed, B, L)
    got = load(LESSON).llada_loss(logits, x0, xt, t, MASK)
    torch.testing.assert_close(got.double(), losses.llada_loss(logits, x0, xt, t, MASK).double(), rtol=1e-5, atol=1e-6)
    # with p_mask = t it is MDLM's per-token NELBO: the same objective
    torch.testing.assert_close(got.double(), losses.mdlm_nelbo(logits, x0, xt, t, MASK).double(), rtol=1e-5, atol=1e-6)


@pytest.mark.task("5.2", points=2)
def test_llada_loss_divides_by_all_tokens(load):
    logits = torch.zeros(1, 4, 5)
    x0 = torch.tensor([[0, 1, 2, 3]])
    xt = torch.tensor([[0, 4, 2, 3]])              # one masked token out of 4
    got = load(LESSON).llada_loss(logits, x0, xt, torch.tensor([0.25]), 4)
    assert got.item() == pytest.approx(math.log(4) / 0.25 / 4, rel=1e-6)


# ----------------------------------------------------------------------------- 5.3: alpha_t = 1 - t^k
def _power_reference(model, x0, k, seed, eps=1e-3):
    """minidlm's own pieces, the same draws: antithetic times, masks at rate t^k, the NELBO with the
    weight minidlm derives from alpha and alpha' of the schedule."""
    g = gen(seed)
    t = forward.sample_times(x0.shape[0], eps=eps, generator=g)
    xt = forward.mask_tokens(x0, 1 - t ** k, MASK, g)
    return losses.mdlm_nelbo(model(xt), x0, xt, t, MASK, schedule=PowerSchedule(k), reduction="token")


@pytest.mark.task("5.3", points=10)
@GRADED
@given(B=st.integers(1, 4), L=st.integers(1, 10), k=st.sampled_from([2.0, 1.0, 0.5, 3.0, 1.7]), seed=seeds)
def test_power_nelbo_matches_minidlm(load, B, L, k, seed):
    model = ToyDenoiser(V, L, MASK, seed)
    x0 = tokens(gen(seed + 1), B, L, V, MASK)
    got = load(LESSON).power_nelbo(model, x0, k, MASK, gen(seed))
    expected = _power_reference(model, x0, k, seed)
    assert isinstance(got, torch.Tensor) and got.dim() == 0, "expected a 0-d tensor"
    torch.testing.assert_close(got.double(), expected.double(), rtol=1e-5, atol=1e-6,
                               msg=lambda m: f"k = {k}: your NELBO differs from minidlm's with the same draws\n{m}")


@pytest.mark.task("5.3", points=6)
def test_power_nelbo_averages_to_the_exact_nll(load):
    """A denoiser that ignores its input: every schedule's NELBO is then its exact NLL per token
    (times (1 - eps^k)/(1 - eps) ~ 1 for times drawn in [eps, 1)). 65536 tokens: ~1% noise."""
    B, L = 16384, 4
    model = ContextFree(L, V, MASK, seed=5)
    x0 = tokens(gen(6), B, L, V, MASK)
    for k in (2.0, 3.0):
        got = load(LESSON).power_nelbo(model, x0, k, MASK, gen(7)).item()
        exact = model.nll_per_token(x0) * (1 - 1e-3 ** k) / (1 - 1e-3)
        assert got == pytest.approx(exact, rel=0.04), (
            f"k = {k}: your estimate {got:.4f} nats/token, the model's exact NLL {exact:.4f}: is the weight "
            "-alpha'/(1 - alpha) of THIS schedule?")


# ----------------------------------------------------------------------------- 5.4: the T-step NELBO
def _t_step_reference(model, x0, T, seed):
    """The same walk with minidlm: mask_tokens for each step's x_t, discrete_nelbo for its term
    (discrete_nelbo multiplies one step by T, the sum over all T steps divides it back)."""
    g = gen(seed)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(T, 0, -1):
        xt = forward.mask_tokens(x0, 1 - i / T, MASK, g)
        total += losses.discrete_nelbo(model(xt), x0, xt, i / T, (i - 1) / T, T, MASK, reduction="token").double() / T
    return total


@pytest.mark.task("5.4", points=10)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 8), T=st.integers(1, 6), seed=seeds)
def test_t_step_nelbo_matches_minidlm(load, B, L, T, seed):
    model = ToyDenoiser(V, L, MASK, seed)
    x0 = tokens(gen(seed + 1), B, L, V, MASK)
    got = load(LESSON).t_step_nelbo(model, x0, T, MASK, gen(seed))
    assert model.calls == T, f"T = {T} steps: expected {T} calls of the model (one per step), got {model.calls}"
    model.calls = 0
    expected = _t_step_reference(model, x0, T, seed)
    assert isinstance(got, torch.Tensor) and got.dim() == 0, "expected a 0-d tensor"
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6,
                               msg=lambda m: f"T = {T}: your NELBO_T differs from minidlm's with the same draws\n{m}")


@pytest.mark.task("5.4", points=3)
def test_one_step_nelbo_is_the_prior_cost(load):
    """T = 1: x_1 is all [MASK] (no randomness left), the weight is 1: every token's CE from nothing."""
    B, L = 3, 7
    model = ToyDenoiser(V, L, MASK, seed=11)
    x0 = tokens(gen(12), B, L, V, MASK)
    got = load(LESSON).t_step_nelbo(model, x0, 1, MASK, gen(13))
    empty = torch.full_like(x0, MASK)
    expected = losses.masked_cross_entropy(model(empty), x0, empty, MASK).double().mean()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.task("5.4", points=3)
def test_t_step_nelbo_on_the_toy_falls_to_the_continuous_value(load):
    """Lesson 05's toy (rows of L copies of one of K tokens, the ideal denoiser): per token
    NELBO_T = (log K / T) sum_i (i/T)^(L-1), falling towards log K / L as T grows."""
    K, L, B = 4, 3, 4000
    oracle = AllSameOracle(K)
    x0 = torch.randint(0, K, (B, 1), generator=gen(21)).expand(B, L).contiguous()
    t_step = load(LESSON).t_step_nelbo
    got = {T: t_step(oracle, x0, T, K, gen(22 + T)).item() for T in (1, 2, 4, 32)}
    for T, value in got.items():
        assert value == pytest.approx(oracle.nelbo_T(L, T), rel=0.04), (
            f"T = {T}: yours {value:.4f} nats/token, the exact NELBO_T {oracle.nelbo_T(L, T):.4f}")
    assert got[1] > got[2] > got[4] > got[32] > math.log(K) / L * 0.97, got
