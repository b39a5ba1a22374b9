"""Graded tests, lesson 06: attention masks and masked attention."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from minidlm import masks
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import assert_same, gen, seeds

LESSON = "lesson06_attention"
lengths = st.integers(1, 24)


def _is_bool_mask(m, L):
    assert isinstance(m, torch.Tensor) and m.dtype == torch.bool, "a mask is a bool tensor"
    assert tuple(m.shape) == (L, L)


@pytest.mark.task("6.1", points=1)
@GRADED
@given(L=lengths)
def test_causal_mask_matches_reference(load, L):
    got = load(LESSON).causal_mask(L)
    _is_bool_mask(got, L)
    assert_same(got, masks.causal_mask(L), "causal mask")


@pytest.mark.task("6.1", points=1)
def test_causal_mask_known_answer(load):
    assert load(LESSON).causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


@pytest.mark.task("6.2", points=1)
@GRADED
@given(L=lengths)
def test_bidirectional_mask_matches_reference(load, L):
    got = load(LESSON).bidirectional_mask(L)
    _is_bool_mask(got, L)
    assert_same(got, masks.bidirectional_mask(L), "bidirectional mask")


@pytest.mark.task("6.3", points=1)
@GRADED
@given(data=st.data(), L=lengths)
def test_prefix_mask_matches_reference(load, data, L):
    P = data.draw(st.integers(0, L))
    got = load(LESSON).prefix_mask(L, P)
    _is_bool_mask(got, L)
    assert_same(got, masks.prefix_mask(L, P), f"prefix mask (prefix_len={P})")


@pytest.mark.task("6.3", points=1)
def test_prefix_mask_interpolates_causal_and_bidirectional(load):
    m = load(LESSON)
    assert torch.equal(m.prefix_mask(5, 0), masks.causal_mask(5))
    assert torch.equal(m.prefix_mask(5, 5), masks.bidirectional_mask(5))


def _random_mask(g, *shape):
    m = torch.rand(*shape, generator=g) < 0.5
    m[..., 0] = True                                    # every query row may attend somewhere
    return m


@pytest.mark.task("6.4", points=3)
@GRADED
@given(B=st.integers(1, 3), h=st.integers(1, 3), Lq=st.integers(1, 8), Lk=st.integers(1, 8),
       d=st.integers(1, 8), seed=seeds, batched=st.booleans())
def test_masked_attention_matches_sdpa(load, B, h, Lq, Lk, d, seed, batched):
    g = gen(seed)
    q, k, v = (torch.randn(B, h, n, d, generator=g, dtype=torch.float64) for n in (Lq, Lk, Lk))
    mask = _random_mask(g, B, 1, Lq, Lk) if batched else _random_mask(g, Lq, Lk)
    got = load(LESSON).masked_attention(q, k, v, mask)
    assert tuple(got.shape) == (B, h, Lq, d)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), rtol=1e-9, atol=1e-10)


@pytest.mark.task("6.4", points=3)
@GRADED
@given(L=st.integers(1, 10), seed=seeds)
def test_masked_attention_causal_and_bidirectional(load, L, seed):
    g = gen(seed)
    q, k, v = (torch.randn(2, 2, L, 4, generator=g, dtype=torch.float64) for _ in range(3))
    m = load(LESSON)
    torch.testing.assert_close(m.masked_attention(q, k, v, masks.causal_mask(L)),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(m.masked_attention(q, k, v, masks.bidirectional_mask(L)),
                               F.scaled_dot_product_attention(q, k, v), rtol=1e-9, atol=1e-10)
    # with the causal mask the first output is v's first row: it can only look at itself
    torch.testing.assert_close(m.masked_attention(q, k, v, masks.causal_mask(L))[..., 0, :], v[..., 0, :])
