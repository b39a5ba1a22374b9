"""Confidence-threshold decoding (lesson 08): as many tokens per network call as the model is sure of.

Fast-dLLM's rule and Mercury's easy-first idea: commit every masked position whose candidate has
probability >= threshold, and at least the most confident one, so easy stretches of text take few
calls and hard ones more. The number of calls is not fixed in advance; it is what the model's
confidence makes it. The helpers it shares with the fixed-count samplers live in sampling.py.
"""
from __future__ import annotations

import numbers

import torch

from ._validate import check_eos_id, check_positive_int, make_generator
from .sampling import (_check_common, _device_of, _forbid, _init_state, _length_step, _new_trace,
                       _record, draw_candidates, filter_logits)


@torch.no_grad()
def generate_adaptive(model, length: int, mask_id: int, *, threshold: float = 0.9, batch_size: int = 1,
                      prompt=None, given: torch.Tensor | None = None, block_length: int | None = None,
                      temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
                      max_steps: int | None = None, generator=None, device=None,
                      eos_id: int | None = None):
    """Confidence-threshold decoding (lesson 08; Fast-dLLM's rule, Mercury's easy-first idea):
    at each step commit every masked position whose candidate has probability >= ``threshold``,
    and at least the single most confident one, so easy inputs take few steps and hard ones more.
    With ``block_length`` it works block by block, left to right. ``eos_id``: the first call draws
    where the text ends, as in ``generate`` (not with block_length). threshold 0 commits every
    position in one call per block; 1 (unreachable but for certain tokens) one position per call.
    ``max_steps``: a budget of network calls (RuntimeError when it does not suffice). Returns (tokens, Trace)."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold: expected a number in [0, 1], got {threshold!r}")
    V = _check_common(model, 1, temperature, mask_id, length, top_k, top_p)
    check_eos_id(eos_id, V, mask_id)
    if max_steps is not None:
        check_positive_int("max_steps", max_steps)
    device = _device_of(model, device)
    g = make_generator(generator)
    x, start = _init_state(length, batch_size, mask_id, prompt, given, device, V)
    B, L = x.shape
    block_length = L - start if block_length is None else block_length
    check_positive_int("block_length", block_length)
    if (L - start) % block_length:
        raise ValueError(f"block_length: expected a divisor of the generated length {L - start}, got {block_length}")
    tr = _new_trace(x, mask_id)
    step, no_eos = 0, None
    if eos_id is not None:
        if block_length != L - start:
            raise ValueError("eos_id: the length-first draw works on the whole row; pass block_length=None")
        x, no_eos = _length_step(model, x, x != mask_id, mask_id, 0.0, eos_id, g, tr)
        step = 1
    for lo in range(start, L, block_length):
        hi = lo + block_length
        while (x[:, lo:hi] == mask_id).any():
            if max_steps is not None and step >= max_steps:
                raise RuntimeError(f"max_steps: {max_steps} steps were not enough to unmask everything")
            step += 1
            is_mask = x == mask_id
            logits = model(x).float()
            tr.nfe += 1
            logits[..., mask_id] = float("-inf")
            _forbid(logits, no_eos, eos_id)
            cand = draw_candidates(filter_logits(logits, top_k, top_p), temperature, g)
            conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)     # (B, L)
            eligible = is_mask.clone()
            eligible[:, :lo] = False
            eligible[:, hi:] = False
            scored = torch.where(eligible, conf, torch.full_like(conf, -1.0))
            commit = eligible & (conf >= threshold)
            best = scored.argmax(1)                                                      # (B,)
            has_any = eligible.any(1)
            commit[torch.arange(B, device=x.device)[has_any], best[has_any]] = True       # at least one
            x = torch.where(commit, cand, x)
            _record(tr, x, commit, conf, is_mask, step)
    return x, tr
