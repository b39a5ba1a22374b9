"""Test-side models for lesson 14's graded tests, in plain torch (no minidlm code runs in them).

``TinyBlockLM`` is lesson 10's two-layer ``TinyCausalLM`` (any boolean attention mask, explicit
positions, a KV cache with ``truncate``, every call logged) plus what ``minidlm.blocks.bd3_generate``
reads from a real model (``config.mask_id``, ``config.max_len``, ``parameters()``), so the reference
sampler and the learner's loop run on the same numbers. ``ZeroLM`` returns all-zero logits.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from tests.exercises.models_lesson10 import TinyCausalLM


class TinyBlockLM(TinyCausalLM):
    """Two attention layers, so a cached key of the second layer depends on what its token saw in
    the first: a finished block cached while it still held masks gives different logits."""

    def __init__(self, V: int, max_len: int, mask_id: int, seed: int = 0, log: bool = True):
        super().__init__(V, max_len, mask_id, seed)
        self.config = SimpleNamespace(mask_id=mask_id, max_len=max_len, vocab_size=V)
        self.keep_log = log

    def parameters(self):
        yield self.E

    def __call__(self, idx, attn_mask=None, positions=None, cache=None, is_causal=False):
        logits = super().__call__(idx, attn_mask=attn_mask, positions=positions, cache=cache, is_causal=is_causal)
        if not self.keep_log:
            self.log.clear()
        return logits


class ZeroLM:
    """Logits 0 for every token: after the [MASK] logit is set to -inf, every masked token costs
    exactly log(V - 1) nats."""

    def __init__(self, V: int):
        self.V = V

    def __call__(self, idx, attn_mask=None, positions=None, cache=None, is_causal=False):
        return torch.zeros(*idx.shape, self.V)
