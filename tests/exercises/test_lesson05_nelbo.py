"""Graded tests, lesson 05: the NELBO (MDLM) and LLaDA's loss."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import losses
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import gen, seeds, tokens

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
