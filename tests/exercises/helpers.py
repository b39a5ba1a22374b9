"""Small shared pieces for the graded tests: seeded random inputs and a toy denoiser.

Random inputs are built from a seed that Hypothesis draws, so a failing example is reported as a
few integers a learner can paste into a notebook to reproduce it.
"""
from __future__ import annotations

import torch
from hypothesis import strategies as st

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def tokens(g, B, L, V, mask_id=None, p_mask=0.0):
    """(B, L) ids in [0, V) avoiding mask_id; with p_mask > 0 some are replaced by mask_id."""
    n = V - (mask_id is not None)
    x = torch.randint(0, n, (B, L), generator=g)
    if mask_id is not None:
        x = torch.where(x >= mask_id, x + 1, x)          # skip the [MASK] id
        if p_mask:
            m = torch.rand(B, L, generator=g) < p_mask
            x = torch.where(m, torch.full_like(x, mask_id), x)
    return x


def probs(g, *shape, zeros: bool = False):
    """Random probability vectors along the last dim, float64; with zeros, some exact 0 entries."""
    logits = 2 * torch.randn(*shape, generator=g, dtype=torch.float64)
    if zeros and shape[-1] > 1:
        drop = torch.rand(*shape, generator=g) < 0.3
        drop[..., 0] = False                              # keep at least one outcome possible
        logits = logits.masked_fill(drop, float("-inf"))
    return torch.softmax(logits, -1)


class ToyDenoiser:
    """A fixed random 'model' for sampler tests: logits depend on each token, its left neighbour,
    its position and the number of masks in the row, so confidences differ and change as tokens
    are committed. Deterministic; returns a fresh float32 (B, L, V) tensor each call."""

    def __init__(self, V: int, max_len: int, mask_id: int, seed: int = 0):
        g = gen(seed)
        self.V, self.mask_id = V, mask_id
        self.E = 2 * torch.randn(V, V, generator=g)
        self.N = torch.randn(V, V, generator=g)
        self.P = torch.randn(max_len, V, generator=g)
        self.C = torch.randn(V, generator=g)
        self.calls = 0

    def __call__(self, x, **kwargs):
        self.calls += 1
        B, L = x.shape
        left = torch.roll(x, 1, dims=1)
        n_mask = (x == self.mask_id).sum(1).float()[:, None, None]              # (B, 1, 1)
        return (self.E[x] + 0.5 * self.N[left] + self.P[:L] + 0.1 * n_mask * self.C).float()


def assert_same(yours, reference, what: str = "result"):
    """Exact equality, with a Tensor-Puzzles style message: yours vs the reference."""
    assert isinstance(yours, torch.Tensor), f"{what}: expected a torch.Tensor, got {type(yours).__name__}"
    if tuple(yours.shape) != tuple(reference.shape):
        raise AssertionError(f"{what}: shape {tuple(yours.shape)}, expected {tuple(reference.shape)}")
    if not torch.equal(yours.to(reference.dtype), reference):
        raise AssertionError(f"{what} differs from the reference\n  yours:     {yours.tolist()}\n"
                             f"  reference: {reference.tolist()}")
