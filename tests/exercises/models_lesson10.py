"""A tiny causal Transformer and its KV cache for lesson 10's graded tests, in plain torch.

It takes the arguments minidlm's ``Model`` takes in a cached sampler (``model(idx, attn_mask=,
positions=, cache=)``, ``model.new_cache``, ``len(cache)``, ``cache.truncate``), so
``minidlm.esolm.esolm_sample`` runs on it as on a real model, while a learner's function that
calls it calls no minidlm code. Two layers, so that a key/value of the second layer depends on
what its token attended to in the first: feeding a clean token together with a [MASK] it must not
see changes the cached numbers. Every call is logged (tokens already cached, tokens fed, their
positions, the logits returned).
"""
from __future__ import annotations

import math

import torch

from tests.exercises.helpers import gen


class TinyCache:
    """Per layer, keys and values (B, capacity, d) behind a fill pointer ``len(cache)``."""

    def __init__(self, n_layer: int, capacity: int):
        self.n_layer, self.capacity = n_layer, capacity
        self.k: list = [None] * n_layer
        self.v: list = [None] * n_layer
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        B, W, d = k.shape
        n = self.length
        if n + W > self.capacity:
            raise ValueError(f"cache: {n} cached + {W} new tokens exceed its capacity {self.capacity}")
        if self.k[layer] is None:
            self.k[layer] = torch.zeros(B, self.capacity, d)
            self.v[layer] = torch.zeros(B, self.capacity, d)
        self.k[layer][:, n:n + W] = k
        self.v[layer][:, n:n + W] = v
        return self.k[layer][:, :n + W], self.v[layer][:, :n + W]

    def truncate(self, n: int) -> None:
        """Forget every position >= n."""
        if not 0 <= n <= self.length:
            raise ValueError(f"truncate: expected 0 <= n <= len(cache) = {self.length}, got {n}")
        self.length = n

    def nbytes(self) -> int:
        return sum(4 * b.shape[0] * b.shape[2] * self.length for b in self.k + self.v if b is not None)


class TinyCausalLM:
    """Logits (B, W, V) float32 for ids (B, W): token + position embeddings, two attention layers
    (a residual tanh branch each), a linear head. The [MASK] logit is finite (a sampler must set it
    to -inf itself) and tilted upwards, so forgetting to do so shows."""

    def __init__(self, V: int, max_len: int, mask_id: int, seed: int = 0, d: int = 8, n_layer: int = 2):
        g = gen(seed)
        self.V, self.max_len, self.mask_id, self.d, self.n_layer = V, max_len, mask_id, d, n_layer
        self.E = torch.randn(V, d, generator=g)
        self.P = torch.randn(max_len, d, generator=g)
        self.W = [[torch.randn(d, d, generator=g) / math.sqrt(d) for _ in range(4)] for _ in range(n_layer)]
        self.out = 2 * torch.randn(d, V, generator=g) / math.sqrt(d)
        self.out[:, mask_id] = 0.0
        self.bias = torch.zeros(V)
        self.bias[mask_id] = 3.0
        self.log: list[dict] = []

    def new_cache(self, batch_size: int, device=None, capacity: int | None = None) -> TinyCache:
        return TinyCache(self.n_layer, self.max_len if capacity is None else capacity)

    def __call__(self, idx, attn_mask=None, positions=None, cache=None, is_causal=False):
        B, W = idx.shape
        n = 0 if cache is None else len(cache)
        Lk = n + W
        if positions is None:
            positions = torch.arange(n, Lk)
        positions = positions.expand(B, W)
        if attn_mask is None:
            if is_causal:      # query i (absolute n + i) sees keys j <= n + i
                attn_mask = torch.arange(Lk)[None, :] <= torch.arange(n, Lk)[:, None]
            else:
                attn_mask = torch.ones(W, Lk, dtype=torch.bool)
        elif is_causal:
            raise ValueError("attn_mask: give either attn_mask or is_causal=True, not both")
        if attn_mask.dtype != torch.bool or tuple(attn_mask.shape[-2:]) != (W, Lk):
            raise ValueError(f"attn_mask: expected a bool mask of shape ({W}, {Lk}) (tokens fed, len(cache) + "
                             f"tokens fed), got {attn_mask.dtype} {tuple(attn_mask.shape)}")
        h = self.E[idx] + self.P[positions]                                         # (B, W, d)
        for layer, (Wq, Wk, Wv, Wo) in enumerate(self.W):
            q, k, v = h @ Wq, h @ Wk, h @ Wv                                        # (B, W, d) each
            if cache is not None:
                k, v = cache.append(layer, k, v)                                    # (B, Lk, d)
            scores = (q @ k.transpose(1, 2)) / math.sqrt(self.d)                    # (B, W, Lk)
            scores = scores.masked_fill(~attn_mask, float("-inf"))
            h = h + torch.tanh(torch.softmax(scores, -1) @ v @ Wo)                  # (B, W, d)
        if cache is not None:
            cache.length += W
        logits = (h @ self.out + self.bias).float()                                 # (B, W, V)
        self.log.append({"cached": n, "fed": W, "positions": positions.clone(), "logits": logits.clone()})
        return logits
