"""Graded tests, lesson 12: score entropy (absorbing case)."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import losses
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import gen, seeds, tokens

LESSON = "lesson12_score_entropy"
V, MASK = 7, 6


@pytest.mark.task("12.1", points=3)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 10), seed=seeds)
def test_score_entropy_matches_reference(load, B, L, seed):
    g = gen(seed)
    x0 = tokens(g, B, L, V, MASK)
    xt = torch.where(torch.rand(B, L, generator=g) < 0.6, torch.full_like(x0, MASK), x0)
    log_score = torch.randn(B, L, V, generator=g, dtype=torch.float64)
    sigma = torch.rand(B, generator=g, dtype=torch.float64) * 4 + 0.01
    got = load(LESSON).score_entropy(log_score, x0, xt, sigma, MASK)
    assert tuple(got.shape) == (B, L)
    expected = losses.score_entropy(log_score, x0, xt, sigma, MASK)
    torch.testing.assert_close(got.double(), expected.double(), rtol=1e-5, atol=1e-5)
    assert (got >= -1e-6).all()


@pytest.mark.task("12.1", points=3)
def test_score_entropy_is_zero_at_the_true_ratio(load):
    sigma = torch.tensor([0.7], dtype=torch.float64)
    a = 1 / math.expm1(0.7)
    x0, xt = torch.tensor([[2, 4]]), torch.tensor([[MASK, 4]])
    log_score = torch.full((1, 2, V), -math.inf, dtype=torch.float64)
    log_score[0, 0, 2] = math.log(a)
    got = load(LESSON).score_entropy(log_score, x0, xt, sigma, MASK)
    assert got[0].tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    # double the ratio at x0: l = 2a - a log 2a + a (log a - 1) = a (1 - log 2) > 0
    log_score[0, 0, 2] = math.log(2 * a)
    got = load(LESSON).score_entropy(log_score, x0, xt, sigma, MASK)
    assert got[0, 0].item() == pytest.approx(a * (1 - math.log(2)), rel=1e-9)
