"""Graded tests, lesson 02: the forward process."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import forward
from minidlm.schedules import CosineSchedule
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import assert_same, gen, seeds, tokens

LESSON = "lesson02_forward"
V, MASK = 7, 6


@pytest.mark.task("2.1", points=2)
@GRADED
@given(B=st.integers(1, 4), L=st.integers(1, 16), seed=seeds)
def test_mask_tokens_matches_reference(load, B, L, seed):
    """Same noise, same result as minidlm.forward.mask_tokens."""
    g = gen(seed)
    x0 = tokens(g, B, L, V, MASK)
    alpha = torch.rand(B, generator=g, dtype=torch.float64)
    u = forward.uniform((B, L), gen(seed + 1), "cpu")          # the noise mask_tokens draws
    expected = forward.mask_tokens(x0, alpha, MASK, generator=gen(seed + 1))
    x0_before = x0.clone()
    got = load(LESSON).mask_tokens(x0, alpha, u, MASK)
    assert_same(got, expected, "x_t")
    assert torch.equal(x0, x0_before), "x0 must not be modified"


@pytest.mark.task("2.1", points=2)
def test_mask_tokens_extremes(load):
    x0 = torch.tensor([[0, 1, 2, 3], [4, 5, 0, 1]])
    u = torch.tensor([[0.0, 0.3, 0.5, 0.99], [0.2, 0.2, 0.7, 0.7]], dtype=torch.float64)
    m = load(LESSON)
    assert torch.equal(m.mask_tokens(x0, torch.tensor([1.0, 1.0], dtype=torch.float64), u, MASK), x0)
    assert (m.mask_tokens(x0, torch.tensor([0.0, 0.0], dtype=torch.float64), u, MASK) == MASK).all()
    half = m.mask_tokens(x0, torch.tensor([0.5, 0.5], dtype=torch.float64), u, MASK)
    assert half.tolist() == [[0, 1, MASK, MASK], [4, 5, MASK, MASK]]


@pytest.mark.task("2.2", points=2)
@GRADED
@given(t=st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=8))
def test_cosine_schedule_matches_reference(load, t):
    t = torch.tensor(t, dtype=torch.float64)
    alpha, w = load(LESSON).cosine_schedule(t)
    ref = CosineSchedule()
    torch.testing.assert_close(alpha.double(), ref.alpha(t), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(w.double(), ref.weight(t), rtol=1e-7, atol=1e-9)


@pytest.mark.task("2.2", points=2)
def test_cosine_schedule_known_answer(load):
    alpha, w = load(LESSON).cosine_schedule(torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert alpha[0].item() == pytest.approx(math.cos(math.pi / 4), abs=1e-6)
    assert w[0].item() == pytest.approx(3.79224, abs=1e-4)
    assert alpha[1].item() == pytest.approx(0.0, abs=1e-12)
    assert w[1].item() == pytest.approx(math.pi / 2, abs=1e-9)     # alpha(1) = 0: w = -alpha'(1)


@pytest.mark.task("2.3", points=1)
@GRADED
@given(B=st.integers(1, 33), seed=seeds, eps=st.sampled_from([0.0, 1e-3, 0.05]))
def test_antithetic_times_match_reference(load, B, seed, eps):
    u = forward.uniform((1,), gen(seed), "cpu")                 # the one number sample_times draws
    expected = forward.sample_times(B, eps=eps, generator=gen(seed))
    got = load(LESSON).antithetic_times(u.item(), B, eps)
    assert tuple(got.shape) == (B,)
    torch.testing.assert_close(got.double(), expected.double(), atol=1e-6, rtol=0)
    # evenly spread: sorted, neighbours are (1 - eps)/B apart
    gaps = got.double().sort().values.diff()
    torch.testing.assert_close(gaps, torch.full_like(gaps, (1 - eps) / B), atol=1e-9, rtol=0)


@pytest.mark.task("2.3", points=1)
def test_antithetic_times_known_answer(load):
    got = load(LESSON).antithetic_times(0.25, 4, eps=0.0)
    assert got.tolist() == pytest.approx([0.25, 0.5, 0.75, 0.0])
    got = load(LESSON).antithetic_times(0.75, 2, eps=0.5)     # ((0.75 + i/2) mod 1) * 0.5 + 0.5
    assert got.tolist() == pytest.approx([0.875, 0.625])


@pytest.mark.task("2.4", points=2)
@GRADED
@given(B=st.integers(1, 4), L=st.integers(1, 16), seed=seeds)
def test_reveal_step_matches_reference(load, B, L, seed):
    """Same noise, same result as minidlm.forward.posterior_sample."""
    g = gen(seed)
    x0 = tokens(g, B, L, V, MASK)
    xt = torch.where(torch.rand(B, L, generator=g) < 0.6, torch.full_like(x0, MASK), x0)
    t = torch.rand(B, generator=g, dtype=torch.float64) * 0.9 + 0.1
    s = t * torch.rand(B, generator=g, dtype=torch.float64)
    a_t, a_s = 1 - t, 1 - s
    u = forward.uniform((B, L), gen(seed + 1), "cpu")
    expected = forward.posterior_sample(xt, x0, a_t, a_s, MASK, generator=gen(seed + 1))
    got = load(LESSON).reveal_step(xt, x0, a_t, a_s, u, MASK)
    assert_same(got, expected, "x_s")


@pytest.mark.task("2.4", points=2)
def test_reveal_step_keeps_clean_tokens_and_reaches_x0_at_s0(load):
    x0 = torch.tensor([[0, 1, 2, 3, 4]])
    xt = torch.tensor([[0, MASK, MASK, 3, MASK]])
    u = torch.tensor([[0.99, 0.99, 0.0, 0.5, 0.5]], dtype=torch.float64)
    m = load(LESSON)
    one = torch.tensor([1.0], dtype=torch.float64)
    # s = 0 (alpha_s = 1): every mask is revealed
    assert m.reveal_step(xt, x0, torch.tensor([0.2], dtype=torch.float64), one, u, MASK).tolist() == [[0, 1, 2, 3, 4]]
    # alpha_s = alpha_t: nothing is revealed
    a = torch.tensor([0.3], dtype=torch.float64)
    assert torch.equal(m.reveal_step(xt, x0, a, a, u, MASK), xt)
