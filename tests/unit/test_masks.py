import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidlm.masks import (bidirectional_mask, causal_mask, esolm_diffusion_mask, esolm_sequential_mask,
                           gather_sorted, inverse_permutation, prefix_mask, sort_indices)


def T(rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_esolm_lesson_standard_masks_truth_tables():
    assert torch.equal(causal_mask(3), T([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
    assert torch.equal(bidirectional_mask(2), T([[1, 1], [1, 1]]))
    assert torch.equal(prefix_mask(4, 2), T([[1, 1, 0, 0],
                                             [1, 1, 0, 0],
                                             [1, 1, 1, 0],
                                             [1, 1, 1, 1]]))
    assert torch.equal(prefix_mask(4, 0), causal_mask(4))
    assert torch.equal(prefix_mask(4, 4), bidirectional_mask(4))


def test_esolm_diffusion_masks_truth_tables():
    # sorted: slots 0, 1 clean; 2, 3 masked
    B = T([[1, 0, 0, 0],
           [1, 1, 0, 0],
           [1, 1, 1, 0],
           [1, 1, 1, 1]])
    A = T([[1, 1, 0, 0],   # clean <-> clean both ways
           [1, 1, 0, 0],
           [1, 1, 1, 0],   # a mask: all clean, earlier masks, itself
           [1, 1, 1, 1]])
    assert torch.equal(esolm_diffusion_mask(2, 4, "B"), B)
    assert torch.equal(esolm_diffusion_mask(2, 4, "A"), A)
    assert torch.equal(esolm_diffusion_mask(0, 4, "A"), causal_mask(4))
    assert torch.equal(esolm_diffusion_mask(4, 4, "A"), bidirectional_mask(4))
    # per-row counts give (B, L, L), row r equal to the int version
    n = torch.tensor([0, 2, 3])
    for variant in "AB":
        m = esolm_diffusion_mask(n, 4, variant)
        assert m.shape == (3, 4, 4)
        for r in range(3):
            assert torch.equal(m[r], esolm_diffusion_mask(int(n[r]), 4, variant))


def test_esolm_sequential_mask_truth_table():
    # [z0 ; x], L = 3: z0 j -> itself + x slots < j; x causal; x never sees z0
    expected = T([[1, 0, 0, 0, 0, 0],
                  [0, 1, 0, 1, 0, 0],
                  [0, 0, 1, 1, 1, 0],
                  [0, 0, 0, 1, 0, 0],
                  [0, 0, 0, 1, 1, 0],
                  [0, 0, 0, 1, 1, 1]])
    assert torch.equal(esolm_sequential_mask(3), expected)
    assert torch.equal(esolm_sequential_mask(3, variant="B", n_clean=2), expected)   # B ignores n_clean
    assert esolm_sequential_mask(5).any(1).all()          # no empty row (SDPA would give NaN)


def test_esolm_sequential_mask_variant_a_truth_table():
    # [z0 ; x], L = 4, 2 clean tokens (sorted slots 0, 1): the z0 half is as in B (itself + x before
    # it); the x half is causal except that its two clean tokens see each other both ways.
    expected = T([[1, 0, 0, 0, 0, 0, 0, 0],
                  [0, 1, 0, 0, 1, 0, 0, 0],
                  [0, 0, 1, 0, 1, 1, 0, 0],
                  [0, 0, 0, 1, 1, 1, 1, 0],
                  [0, 0, 0, 0, 1, 1, 0, 0],   # clean x slot 0 sees clean x slot 1
                  [0, 0, 0, 0, 1, 1, 0, 0],
                  [0, 0, 0, 0, 1, 1, 1, 0],   # x of z0's [MASK]s: causal
                  [0, 0, 0, 0, 1, 1, 1, 1]])
    got = esolm_sequential_mask(4, variant="A", n_clean=2)
    assert got.dtype == torch.bool and torch.equal(got, expected)
    B = esolm_sequential_mask(4)
    # only the x -> x block differs from B, and it is A's diffusion mask
    assert torch.equal(got[:4], B[:4]) and torch.equal(got[4:, :4], B[4:, :4])
    assert torch.equal(got[4:, 4:], esolm_diffusion_mask(2, 4, "A"))
    # n_clean <= 1: A is B; n_clean = L: the x half is bidirectional
    for n in (0, 1):
        assert torch.equal(esolm_sequential_mask(4, variant="A", n_clean=n), B)
    assert esolm_sequential_mask(4, variant="A", n_clean=4)[4:, 4:].all()
    assert all(esolm_sequential_mask(5, variant="A", n_clean=n).any(1).all() for n in range(6))
    # per-row counts give (B, 2L, 2L), row r equal to the int version; B expands to the same shape
    n = torch.tensor([0, 1, 2, 4])
    m = esolm_sequential_mask(4, variant="A", n_clean=n)
    assert m.shape == (4, 8, 8)
    for r in range(4):
        assert torch.equal(m[r], esolm_sequential_mask(4, variant="A", n_clean=int(n[r])))
    mb = esolm_sequential_mask(4, n_clean=n)
    assert mb.shape == (4, 8, 8) and all(torch.equal(mb[r], B) for r in range(4))


def test_esolm_sort_puts_clean_first_and_keeps_orders_as_asked():
    g = torch.Generator().manual_seed(0)
    is_m = torch.rand(6, 20, generator=g) < 0.5
    n_clean = (~is_m).sum(1)
    for shuffle, in_order in [(True, False), (True, True), (False, False)]:
        idx = sort_indices(is_m, shuffle=shuffle, keep_masks_in_order=in_order, generator=1)
        sorted_m = gather_sorted(is_m, idx)
        for r in range(6):
            k = int(n_clean[r])
            assert not sorted_m[r, :k].any() and sorted_m[r, k:].all()
            masks_pos = idx[r, k:]
            clean_pos = idx[r, :k]
            if in_order or not shuffle:
                assert torch.equal(masks_pos, masks_pos.sort().values)
            if not shuffle:
                assert torch.equal(clean_pos, clean_pos.sort().values)
    # shuffling really shuffles, and the generator reproduces it
    a = sort_indices(is_m, generator=3)
    assert torch.equal(a, sort_indices(is_m, generator=3))
    assert not torch.equal(a, sort_indices(is_m, shuffle=False))


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 4), st.integers(1, 24), st.integers(0, 2**31 - 1), st.booleans())
def test_esolm_sort_inverse_round_trip(B, L, seed, in_order):
    g = torch.Generator().manual_seed(seed)
    is_m = torch.rand(B, L, generator=g) < 0.5
    idx = sort_indices(is_m, keep_masks_in_order=in_order, generator=g)
    inv = inverse_permutation(idx)
    x = torch.randint(0, 100, (B, L), generator=g)
    assert torch.equal(gather_sorted(gather_sorted(x, idx), inv), x)
    assert torch.equal(gather_sorted(idx, inv), torch.arange(L).expand(B, L))
    assert torch.equal(gather_sorted(torch.arange(L), idx), idx)   # positions travel with the tokens
    logits = torch.randn(B, L, 3, generator=g)
    assert torch.equal(gather_sorted(gather_sorted(logits, idx), inv), logits)


def test_esolm_masks_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="variant"):
        esolm_diffusion_mask(2, 4, "C")
    with pytest.raises(ValueError, match="n_clean"):
        esolm_diffusion_mask(5, 4, "A")
    with pytest.raises(ValueError, match="n_clean"):
        esolm_diffusion_mask(torch.tensor([1, 7]), 4, "A")
    with pytest.raises(ValueError, match="n_clean"):
        esolm_sequential_mask(4, variant="A")                        # A needs the clean count
    with pytest.raises(ValueError, match="n_clean"):
        esolm_sequential_mask(4, variant="A", n_clean=5)
    with pytest.raises(ValueError, match="variant"):
        esolm_sequential_mask(4, variant="C")
    with pytest.raises(ValueError, match="prefix_len"):
        prefix_mask(4, 5)
    with pytest.raises(ValueError, match="L"):
        causal_mask(0)
    with pytest.raises(ValueError, match="is_masked"):
        sort_indices(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shuffle"):
        sort_indices(torch.zeros(2, 3, dtype=torch.bool), shuffle=1)
    with pytest.raises(ValueError, match="idx"):
        inverse_permutation(torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match="x"):
        gather_sorted(torch.zeros(3, 4), torch.zeros(2, 4, dtype=torch.long))
