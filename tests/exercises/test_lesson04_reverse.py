"""Graded tests, lesson 04: the factorized reverse process."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import forward, losses
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import gen, probs, seeds, tokens

LESSON = "lesson04_reverse"
V, MASK = 6, 5
dims = dict(B=st.integers(1, 3), L=st.integers(1, 10), seed=seeds)


def _times(g, B):
    t = torch.rand(B, generator=g, dtype=torch.float64) * 0.9 + 0.1
    s = t * torch.rand(B, generator=g, dtype=torch.float64)
    return 1 - t, 1 - s


def _spec_reverse_probs(logits, xt, a_t, a_s):
    """Plain loops: the spec of Task 4.1."""
    B, L, V = logits.shape
    out = torch.zeros(B, L, V, dtype=torch.float64)
    for b in range(B):
        r = (a_s[b] - a_t[b]) / (1 - a_t[b])
        for l in range(L):
            if xt[b, l] != MASK:
                out[b, l, xt[b, l]] = 1.0
                continue
            row = logits[b, l].double().clone()
            row[MASK] = -math.inf
            out[b, l] = r * torch.softmax(row, -1)
            out[b, l, MASK] += 1 - r
    return out


@pytest.mark.task("4.1", points=2)
@GRADED
@given(**dims)
def test_reverse_probs_equal_the_true_posterior_when_the_model_knows_x0(load, B, L, seed):
    """Logits that put all mass on x0 turn the model's step into q(x_s | x_t, x_0) exactly."""
    g = gen(seed)
    x0 = tokens(g, B, L, V, MASK)
    xt = torch.where(torch.rand(B, L, generator=g) < 0.5, torch.full_like(x0, MASK), x0)
    a_t, a_s = _times(g, B)
    knows_x0 = torch.log(torch.nn.functional.one_hot(x0, V).float())      # 0 at x0, -inf elsewhere
    got = load(LESSON).reverse_probs(knows_x0, xt, a_t, a_s, MASK)
    torch.testing.assert_close(got.double(), forward.posterior_probs(xt, x0, a_t, a_s, MASK, V), rtol=1e-9, atol=1e-12)


@pytest.mark.task("4.1", points=2)
@GRADED
@given(**dims)
def test_reverse_probs_match_the_spec(load, B, L, seed):
    g = gen(seed)
    logits = 2 * torch.randn(B, L, V, generator=g)
    xt = tokens(g, B, L, V, MASK, p_mask=0.6)
    a_t, a_s = _times(g, B)
    got = load(LESSON).reverse_probs(logits, xt, a_t, a_s, MASK)
    assert tuple(got.shape) == (B, L, V)
    torch.testing.assert_close(got.double(), _spec_reverse_probs(logits, xt, a_t, a_s), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got.double().sum(-1), torch.ones(B, L, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.task("4.2", points=2)
def test_mutual_information_known_answers(load):
    m = load(LESSON)
    swap = torch.tensor([[0.0, 0.5], [0.5, 0.0]], dtype=torch.float64)     # "AB" or "BA"
    assert m.mutual_information(swap, base=2).item() == pytest.approx(1.0)
    assert m.mutual_information(swap).item() == pytest.approx(math.log(2))
    indep = torch.outer(torch.tensor([0.2, 0.8], dtype=torch.float64), torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    assert m.mutual_information(indep).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.task("4.2", points=2)
@GRADED
@given(V1=st.integers(1, 6), V2=st.integers(1, 6), seed=seeds)
def test_mutual_information_matches_reference_kl(load, V1, V2, seed):
    joint = probs(gen(seed), V1 * V2, zeros=True).view(V1, V2)
    product = torch.outer(joint.sum(1), joint.sum(0))
    expected = losses.kl_divergence(joint.flatten(), product.flatten())
    got = load(LESSON).mutual_information(joint)
    assert got.item() == pytest.approx(expected.item(), abs=1e-9)
    # never more than the smaller entropy: a factorized step loses at most what one position says about the other
    assert got.item() <= min(losses.entropy(joint.sum(1)).item(), losses.entropy(joint.sum(0)).item()) + 1e-9
