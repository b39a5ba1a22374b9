"""Editing an existing text in place (lesson 11): re-mask some positions and denoise only those.

Gemini's Instant Edit in miniature: choose what to change (a span, an explicit mask, or the
positions the model itself finds least likely), then run the ordinary sampler (``sampling.generate``)
from that partly masked state. Tokens outside the edited positions never change.
"""
from __future__ import annotations

import torch

from ._validate import check_positive_int, check_tensor
from .sampling import generate


@torch.no_grad()
def least_confident_positions(model, tokens: torch.Tensor, k: int, mask_id: int,
                              protect: torch.Tensor | None = None) -> torch.Tensor:
    """The k positions of an existing text the model finds least likely, p(x_i | the text with x_i
    masked), computed in one batched pass per position chunk. Returns a (B, L) bool mask."""
    check_tensor("tokens", tokens, ndim=2, dtype_kind="int")
    B, L = tokens.shape
    check_positive_int("k", k)
    scores = torch.empty(B, L, device=tokens.device)
    for i in range(L):
        probe = tokens.clone()
        probe[:, i] = mask_id
        logits = model(probe).float()[:, i]                                           # (B, V)
        logits[:, mask_id] = float("-inf")
        scores[:, i] = torch.log_softmax(logits, -1).gather(-1, tokens[:, i:i + 1]).squeeze(-1)
    if protect is not None:
        scores = scores.masked_fill(protect.to(tokens.device), float("inf"))
    idx = torch.topk(scores, min(k, L), dim=1, largest=False).indices
    out = torch.zeros(B, L, dtype=torch.bool, device=tokens.device)
    out.scatter_(1, idx, True)
    return out


@torch.no_grad()
def edit(model, tokens: torch.Tensor, mask_id: int, *, span: tuple[int, int] | None = None,
         positions: torch.Tensor | None = None, k_least_confident: int | None = None,
         protect: torch.Tensor | None = None, steps: int | None = None, **sampler_kwargs):
    """Edit an existing text in place (lesson 11, Gemini's Instant Edit in miniature): re-mask a span
    [i, j), an explicit (B, L) bool ``positions`` mask, or the ``k_least_confident`` positions, then
    denoise only those with ``generate``. Tokens outside the edited positions never change.
    Returns (new tokens, Trace, edited positions)."""
    check_tensor("tokens", tokens, ndim=2, dtype_kind="int")
    B, L = tokens.shape
    chosen = [span is not None, positions is not None, k_least_confident is not None]
    if sum(chosen) != 1:
        raise ValueError("span, positions, k_least_confident: give exactly one of them")
    if span is not None:
        i, j = span
        if not (0 <= i < j <= L):
            raise ValueError(f"span: expected 0 <= i < j <= {L}, got {span}")
        where = torch.zeros(B, L, dtype=torch.bool, device=tokens.device)
        where[:, i:j] = True
    elif positions is not None:
        check_tensor("positions", positions, dtype_kind="bool")
        where = positions.to(tokens.device).expand(B, L).clone()
    else:
        where = least_confident_positions(model, tokens, k_least_confident, mask_id, protect)
    if protect is not None:
        where &= ~protect.to(tokens.device)
    given = torch.where(where, torch.full_like(tokens, mask_id), tokens)
    n = int(where.sum(1).max())
    if n == 0:
        raise ValueError("positions: nothing to edit (every chosen position is protected)")
    out, tr = generate(model, L, min(steps or n, n), mask_id, given=given, **sampler_kwargs)
    return out, tr, where
