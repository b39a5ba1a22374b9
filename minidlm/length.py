"""Where the text ends: drawing a sample's length first (lessons 07-08).

A model trained on rows padded with [EOS] (``data.pad_documents``: ``[BOS] story [EOS] [EOS] ...``)
predicts, at every masked position k of a row whose tail is still masked,

    p_k = p(x^k = [EOS] | visible tokens) = P(the text has ended by position k),

because every position after the end holds [EOS]. So one network call gives the whole length
distribution: F(k) = max_{j <= k} p_j is its cumulative distribution (the running max repairs small
non-monotone errors of the model), P(end = k) = F(k) - F(k - 1), and 1 - F(L - 1) is the chance that
the text fills the row.

Why bother: a confidence-ordered sampler (low-confidence, adaptive) commits the most probable
candidates first, and far to the right [EOS] is the most probable token everywhere. Once the last
position is [EOS], the one before it is [EOS] with probability P(end < k | end <= k), high for every
k above the shortest stories, so the sampler marches [EOS] leftwards and writes the SHORTEST
stories (a mode-seeking bias, not the model's fault). Drawing the end from F first, then filling
the rest in any order, samples the length the model believes in.
"""
from __future__ import annotations

import torch

from ._validate import check_int, check_tensor


def _check(p_eos, x, mask_id) -> None:
    check_tensor("x", x, ndim=2, dtype_kind="int")
    check_tensor("p_eos", p_eos, dtype_kind="float")
    if p_eos.shape != x.shape:
        raise ValueError(f"p_eos: expected the shape of x {tuple(x.shape)}, got {tuple(p_eos.shape)}")
    check_int("mask_id", mask_id, minimum=0)


def end_distribution(p_eos: torch.Tensor, x: torch.Tensor, mask_id: int) -> torch.Tensor:
    """The cumulative distribution F (B, L) of where the text ends, from the [EOS] probabilities
    p_eos (B, L) of one network call on the state x (B, L): F(k) = max of p_eos over the positions
    j <= k whose whole tail j..L-1 is still [MASK] (0 elsewhere), so the end can only fall where
    nothing is written after it."""
    _check(p_eos, x, mask_id)
    masked = (x == mask_id).long()                                            # (B, L)
    tail_free = masked.flip(1).cumprod(1).flip(1).bool()                      # (B, L) all [MASK] from k on
    p = torch.where(tail_free, p_eos.double(), torch.zeros_like(p_eos, dtype=torch.float64))
    return torch.cummax(p.clamp(0, 1), dim=1).values                          # (B, L)


def draw_end(p_eos: torch.Tensor, x: torch.Tensor, mask_id: int, generator=None) -> torch.Tensor:
    """Draw where each row's text ends and return the positions to fill with [EOS]: a bool (B, L)
    that is True from the drawn end to the last position (all False when the draw says the text
    fills the row, probability 1 - F(L - 1)). Inverse-CDF sampling: end = first k with F(k) > u."""
    F = end_distribution(p_eos, x, mask_id)                                   # (B, L)
    u = torch.rand(x.shape[0], generator=generator, dtype=torch.float64,
                   device=generator.device if generator is not None else x.device).to(x.device)  # (B,)
    past = F > u[:, None]                                                     # (B, L) monotone in k
    return past & (x == mask_id)
