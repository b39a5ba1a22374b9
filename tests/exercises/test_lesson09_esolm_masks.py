"""Graded tests, lesson 09: Eso-LM's sort trick and attention masks."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import forward, masks
from minidlm.model import Model, ModelConfig
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import assert_same, gen, seeds, tokens

LESSON = "lesson09_esolm_masks"
dims = dict(B=st.integers(1, 4), L=st.integers(1, 12), seed=seeds)


def _is_masked(g, B, L):
    return torch.rand(B, L, generator=g) < torch.rand(B, 1, generator=g)


@pytest.mark.task("9.1", points=2)
@GRADED
@given(**dims, shuffle=st.booleans())
def test_sort_indices_match_reference(load, B, L, seed, shuffle):
    is_masked = _is_masked(gen(seed), B, L)
    if shuffle:   # the offsets sort_indices draws: 0.9 * U(0, 1)
        offsets = forward.uniform((B, L), gen(seed + 1), "cpu") * 0.9
    else:         # natural order inside each group
        offsets = (torch.arange(L, dtype=torch.float64) / L * 0.9).expand(B, L)
    got = load(LESSON).sort_indices(is_masked, offsets)
    expected = masks.sort_indices(is_masked, shuffle=shuffle, generator=gen(seed + 1))
    assert_same(got, expected, "idx")
    # clean tokens first, then masks
    n_clean = (~is_masked).sum(1)
    sorted_masked = torch.gather(is_masked, 1, got.long())
    assert torch.equal(sorted_masked, torch.arange(L)[None, :] >= n_clean[:, None])


@pytest.mark.task("9.1", points=1)
def test_sort_indices_known_answer(load):
    is_masked = torch.tensor([[False, True, False, True]])
    natural = torch.tensor([[0.0, 0.225, 0.45, 0.675]], dtype=torch.float64)
    assert load(LESSON).sort_indices(is_masked, natural).tolist() == [[0, 2, 1, 3]]
    shuffled = torch.tensor([[0.8, 0.1, 0.3, 0.0]], dtype=torch.float64)
    assert load(LESSON).sort_indices(is_masked, shuffled).tolist() == [[2, 0, 3, 1]]


@pytest.mark.task("9.2", points=1)
@GRADED
@given(**dims)
def test_inverse_permutation_matches_reference(load, B, L, seed):
    idx = torch.stack([torch.randperm(L, generator=gen(seed + b)) for b in range(B)])
    inv = load(LESSON).inverse_permutation(idx)
    assert_same(inv, masks.inverse_permutation(idx), "inv")
    x = torch.randn(B, L, generator=gen(seed))
    assert torch.equal(masks.gather_sorted(masks.gather_sorted(x, idx), inv), x)


@pytest.mark.task("9.2", points=1)
def test_inverse_permutation_known_answer(load):
    assert load(LESSON).inverse_permutation(torch.tensor([[2, 0, 1]])).tolist() == [[1, 2, 0]]


@pytest.mark.task("9.3", points=2)
@GRADED
@given(data=st.data(), L=st.integers(1, 16), variant=st.sampled_from(["A", "B"]))
def test_esolm_diffusion_mask_matches_reference(load, data, L, variant):
    n_clean = data.draw(st.integers(0, L))
    got = load(LESSON).esolm_diffusion_mask(n_clean, L, variant)
    assert got.dtype == torch.bool and tuple(got.shape) == (L, L)
    assert_same(got, masks.esolm_diffusion_mask(n_clean, L, variant), f"mask (n_clean={n_clean}, variant {variant})")


@pytest.mark.task("9.3", points=2)
def test_esolm_diffusion_mask_known_answer(load):
    T, F = True, False
    m = load(LESSON)
    # 2 clean slots then 2 masks. B: causal. A: the two clean slots also see each other.
    assert m.esolm_diffusion_mask(2, 4, "B").tolist() == [[T, F, F, F], [T, T, F, F], [T, T, T, F], [T, T, T, T]]
    assert m.esolm_diffusion_mask(2, 4, "A").tolist() == [[T, T, F, F], [T, T, F, F], [T, T, T, F], [T, T, T, T]]


@pytest.mark.task("9.4", points=3)
@GRADED
@given(**dims, variant=st.sampled_from(["A", "B"]))
def test_unsort_mask_follows_the_tokens(load, B, L, seed, variant):
    g = gen(seed)
    is_masked = _is_masked(g, B, L)
    idx = masks.sort_indices(is_masked, generator=gen(seed + 1))
    sorted_mask = masks.esolm_diffusion_mask((~is_masked).sum(1), L, variant)       # (B, L, L)
    got = load(LESSON).unsort_mask(sorted_mask, idx)
    assert got.dtype == torch.bool and tuple(got.shape) == (B, L, L)
    inv = masks.inverse_permutation(idx)
    for b in range(B):
        for p in range(L):
            for q in range(L):
                assert got[b, p, q] == sorted_mask[b, inv[b, p], inv[b, q]]


@pytest.mark.task("9.4", points=3)
@GRADED
@given(B=st.integers(1, 2), L=st.integers(2, 8), seed=seeds)
def test_unsorted_mask_gives_the_same_logits_as_the_sorted_run(load, B, L, seed):
    """The model run in sorted order (mask_sorted, positions = idx), then un-sorted, equals the
    model run in the original order with your un-sorted mask."""
    torch.manual_seed(0)
    model = Model(ModelConfig(vocab_size=8, max_len=16, n_layer=1, n_head=2, d_model=16, mask_id=7)).eval()
    g = gen(seed)
    x = tokens(g, B, L, 8, 7, p_mask=0.5)
    is_masked = x == 7
    idx = masks.sort_indices(is_masked, generator=gen(seed + 1))
    sorted_mask = masks.esolm_diffusion_mask(L, L, "B").expand(B, L, L)
    with torch.no_grad():
        in_sorted = model(masks.gather_sorted(x, idx), attn_mask=sorted_mask, positions=idx)
        expected = masks.gather_sorted(in_sorted, masks.inverse_permutation(idx))
        got = model(x, attn_mask=load(LESSON).unsort_mask(sorted_mask, idx))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
