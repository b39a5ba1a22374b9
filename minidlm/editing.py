"""Editing an existing text in place (lesson 11): re-mask some positions and denoise only those.

Gemini's Instant Edit in miniature: choose what to change (a span, an explicit mask, or the
positions the model itself finds least likely), then run the ordinary sampler (``sampling.generate``)
from that partly masked state. Tokens outside the edited positions never change.
"""
from __future__ import annotations

import torch

import numbers

from ._validate import check_denoiser, check_ids, check_positive_int, check_tensor
from .sampling import generate


def _check_text(model, tokens, mask_id):
    """tokens (B, L): int ids in [0, V) with no [MASK], L within the model's max_len."""
    check_tensor("tokens", tokens, ndim=2, dtype_kind="int")
    V = check_denoiser(model, mask_id)
    max_len = getattr(getattr(model, "config", None), "max_len", None)
    if tokens.shape[1] == 0 or (max_len is not None and tokens.shape[1] > max_len):
        raise ValueError(f"tokens: expected 1 to max_len={max_len} tokens per row, got shape {tuple(tokens.shape)}")
    check_ids("tokens", tokens, V, mask_id=mask_id)       # a [MASK] outside the edit would be rewritten
    return tokens.shape


def _bool_rows(name, m, B, L):
    """A (L,), (1, L) or (B, L) bool mask (None stays None)."""
    if m is None:
        return None
    check_tensor(name, m, dtype_kind="bool")
    if tuple(m.shape) not in ((L,), (1, L), (B, L)):
        raise ValueError(f"{name}: expected a bool mask of shape ({L},) or ({B}, {L}), got {tuple(m.shape)}")
    return m


@torch.no_grad()
def least_confident_positions(model, tokens: torch.Tensor, k: int, mask_id: int,
                              protect: torch.Tensor | None = None) -> torch.Tensor:
    """The k positions of an existing text the model finds least likely, p(x_i | the text with x_i
    masked), computed in one batched pass per position chunk. Returns a (B, L) bool mask."""
    B, L = _check_text(model, tokens, mask_id)
    check_positive_int("k", k)
    protect = _bool_rows("protect", protect, B, L)
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
    B, L = _check_text(model, tokens, mask_id)
    chosen = [span is not None, positions is not None, k_least_confident is not None]
    if sum(chosen) != 1:
        raise ValueError("span, positions, k_least_confident: give exactly one of them")
    protect = _bool_rows("protect", protect, B, L)
    if steps is not None:
        check_positive_int("steps", steps)
    clash = sorted({"given", "prompt", "length", "mask_id", "batch_size"} & set(sampler_kwargs))
    if clash:
        raise ValueError(f"sampler_kwargs: edit sets {clash} itself (the start state is the text with the "
                         "edited positions masked)")
    if span is not None:
        ok = isinstance(span, (tuple, list)) and len(span) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in span)
        if not ok or not (0 <= span[0] < span[1] <= L):
            raise ValueError(f"span: expected two ints (i, j) with 0 <= i < j <= {L}, got {span!r}")
        i, j = span
        where = torch.zeros(B, L, dtype=torch.bool, device=tokens.device)
        where[:, i:j] = True
    elif positions is not None:
        where = _bool_rows("positions", positions, B, L)
        where = where.to(tokens.device).expand(B, L).clone()
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
