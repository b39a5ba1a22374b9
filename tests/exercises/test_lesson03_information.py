"""Graded tests, lesson 03: entropy, cross-entropy, KL and the CE gradient."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from minidlm import losses
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import gen, probs, seeds

LESSON = "lesson03_information"
shapes = st.tuples(st.integers(1, 3), st.integers(1, 9))
bases = st.sampled_from([None, 2])


def close(got, expected, tol=1e-9):
    torch.testing.assert_close(torch.as_tensor(got).double(), torch.as_tensor(expected).double(), rtol=tol, atol=tol)


@pytest.mark.task("3.1", points=1)
def test_entropy_worked_example(load):
    """The review's example: p = (0.7, 0.2, 0.1) carries 1.157 bits."""
    H = load(LESSON).entropy(torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64), base=2)
    assert H.item() == pytest.approx(1.15678, abs=1e-4)
    assert load(LESSON).entropy(torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)).item() == pytest.approx(0.80182, abs=1e-4)


@pytest.mark.task("3.1", points=1)
@GRADED
@given(shape=shapes, seed=seeds, base=bases)
def test_entropy_matches_reference(load, shape, seed, base):
    p = probs(gen(seed), *shape, zeros=True)
    got = load(LESSON).entropy(p, base=base)
    assert tuple(got.shape) == shape[:-1]
    close(got, losses.entropy(p, base=base))
    assert torch.isfinite(got).all(), "0 log 0 must count as 0"


@pytest.mark.task("3.2", points=1)
@GRADED
@given(shape=shapes, seed=seeds, base=bases)
def test_cross_entropy_matches_reference(load, shape, seed, base):
    g = gen(seed)
    p, q = probs(g, *shape, zeros=True), probs(g, *shape)
    got = load(LESSON).cross_entropy(p, q, base=base)
    close(got, losses.cross_entropy(p, q, base=base))
    assert (got >= losses.entropy(p, base=base) - 1e-9).all(), "H(p, q) >= H(p)"


@pytest.mark.task("3.2", points=1)
def test_cross_entropy_known_answers(load):
    m = load(LESSON)
    onehot = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert m.cross_entropy(onehot, torch.tensor([0.9, 0.05, 0.05], dtype=torch.float64)).item() == pytest.approx(-math.log(0.9))
    # q = 0 where p = 0 costs nothing; q = 0 where p > 0 costs infinitely much
    assert m.cross_entropy(onehot, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)).item() == 0.0
    assert m.cross_entropy(torch.tensor([0.5, 0.5], dtype=torch.float64),
                           torch.tensor([1.0, 0.0], dtype=torch.float64)).item() == math.inf


@pytest.mark.task("3.3", points=1)
@GRADED
@given(shape=shapes, seed=seeds, base=bases)
def test_kl_matches_reference(load, shape, seed, base):
    g = gen(seed)
    p, q = probs(g, *shape, zeros=True), probs(g, *shape)
    got = load(LESSON).kl_divergence(p, q, base=base)
    close(got, losses.kl_divergence(p, q, base=base))
    assert (got >= -1e-12).all()
    close(load(LESSON).kl_divergence(p, p), torch.zeros(shape[:-1]))


@pytest.mark.task("3.3", points=1)
def test_kl_of_a_one_hot_target_is_the_cross_entropy(load):
    m = load(LESSON)
    p = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    q = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    assert m.kl_divergence(p, q).item() == pytest.approx(-math.log(0.2))
    assert m.kl_divergence(torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64),
                           torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64), base=2).item() == pytest.approx(0.03868, abs=1e-4)


@pytest.mark.task("3.4", points=2)
@GRADED
@given(N=st.integers(1, 6), V=st.integers(2, 12), seed=seeds)
def test_ce_gradient_matches_autograd(load, N, V, seed):
    g = gen(seed)
    logits = 3 * torch.randn(N, V, generator=g, dtype=torch.float64)
    target = torch.randint(0, V, (N,), generator=g)
    leaf = logits.clone().requires_grad_(True)
    F.cross_entropy(leaf, target, reduction="sum").backward()
    got = load(LESSON).ce_grad(logits, target)
    close(got, leaf.grad, tol=1e-10)
    close(got.sum(-1), torch.zeros(N), tol=1e-10)     # the gradient of each row sums to 0


@pytest.mark.task("3.4", points=2)
def test_ce_gradient_known_answer(load):
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64))
    got = load(LESSON).ce_grad(logits, torch.tensor([1]))
    close(got, torch.tensor([[0.7, -0.8, 0.1]], dtype=torch.float64), tol=1e-12)
