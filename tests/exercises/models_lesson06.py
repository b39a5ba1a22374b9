"""Test-side models for lesson 06's whole-algorithm tasks (6.5 and 6.6).

Plain ``torch.nn.Module`` s with attention written by hand (matmul + softmax): the learner's
function calls them, and the grader forbids both minidlm's code and torch's fused attention inside
a task 6.x function.

* ``TinyDenoiser``: a bidirectional one-layer Transformer (embedding + learned positions, one
  attention layer, a linear head) for the training step of task 6.5. It returns raw float32 logits
  (B, L, V): no SUBS, which the learner applies.
* ``TinyCausalLM``: a small causal Transformer in float64 whose pieces (``embed``, ``qkv``,
  ``finish_block``, ``head``) a cached sampler calls one by one (task 6.6). Every piece records
  what it was fed, so the tests can see how the learner used the cache; ``model(ids)`` is the
  whole causal forward without a cache (the reference) and records nothing.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def _attention(q, k, v, mask):
    """softmax(q k^T / sqrt(d), forbidden keys -inf) v; q (B, h, Lq, d), k, v (B, h, Lk, d)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])              # (B, h, Lq, Lk)
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v                               # (B, h, Lq, d)


def _rms(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


class TinyDenoiser(nn.Module):
    """x_t (B, L) -> logits (B, L, V), float32, bidirectional; deterministic given ``seed``."""

    def __init__(self, V: int, max_len: int, d_model: int = 16, n_head: int = 2, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.n_head = n_head
        self.tok = nn.Parameter(0.5 * torch.randn(V, d_model, generator=g))
        self.pos = nn.Parameter(0.5 * torch.randn(max_len, d_model, generator=g))
        self.qkv = nn.Parameter(torch.randn(d_model, 3 * d_model, generator=g) / math.sqrt(d_model))
        self.proj = nn.Parameter(torch.randn(d_model, d_model, generator=g) / math.sqrt(d_model))
        self.out = nn.Parameter(torch.randn(d_model, V, generator=g) / math.sqrt(d_model))

    def forward(self, xt, **kwargs):
        B, L = xt.shape
        D, nh = self.tok.shape[1], self.n_head
        h = self.tok[xt] + self.pos[:L]                                       # (B, L, D)
        q, k, v = (_rms(h) @ self.qkv).split(D, dim=-1)                       # 3 x (B, L, D)
        q, k, v = (z.view(B, L, nh, D // nh).transpose(1, 2) for z in (q, k, v))  # (B, nh, L, hs)
        a = _attention(q, k, v, torch.ones(L, L, dtype=torch.bool))           # (B, nh, L, hs)
        h = h + a.transpose(1, 2).reshape(B, L, D) @ self.proj                # (B, L, D)
        return _rms(h) @ self.out                                             # (B, L, V)


class TinyCausalLM(nn.Module):
    """A causal Transformer in pieces, float64 inside, float32 logits out.

    embed(ids, positions) -> h           ids (B, L) int64, positions (L,) int64 -> (B, L, D)
    qkv(layer, h) -> (q, k, v)           each (B, n_head, L, head_dim), for the L tokens of h
    finish_block(layer, h, a) -> h       a: the attention output (B, n_head, L, head_dim)
    head(h) -> logits                    (B, L, V) float32
    model(ids) -> logits                 the whole causal forward of ids (B, L), no cache
    """

    def __init__(self, V: int, max_len: int, d_model: int = 16, n_head: int = 2, n_layer: int = 2,
                 seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        f64 = dict(generator=g, dtype=torch.float64)
        self.n_layer, self.n_head, self.head_dim = n_layer, n_head, d_model // n_head
        self.tok = nn.Parameter(torch.randn(V, d_model, **f64))
        self.pos = nn.Parameter(torch.randn(max_len, d_model, **f64))
        s = 1.5 / math.sqrt(d_model)
        self.w_qkv = nn.ParameterList([nn.Parameter(s * torch.randn(d_model, 3 * d_model, **f64)) for _ in range(n_layer)])
        self.w_proj = nn.ParameterList([nn.Parameter(s * torch.randn(d_model, d_model, **f64)) for _ in range(n_layer)])
        self.w_fc = nn.ParameterList([nn.Parameter(s * torch.randn(d_model, 2 * d_model, **f64)) for _ in range(n_layer)])
        self.w_out = nn.ParameterList([nn.Parameter(s * torch.randn(2 * d_model, d_model, **f64)) for _ in range(n_layer)])
        self.w_head = nn.Parameter(2 * s * torch.randn(d_model, V, **f64))
        self.reset_records()

    def reset_records(self):
        self.fed_positions: list[list[int]] = []                    # one entry per embed call
        self.qkv_lengths = [[] for _ in range(self.n_layer)]        # tokens fed to each layer, per call
        self.head_logits: list[torch.Tensor] = []                   # what head returned, per call

    # ---- the pieces (no recording)
    def _embed(self, ids, positions):
        return self.tok[ids] + self.pos[positions]                                   # (B, L, D)

    def _qkv(self, layer, h):
        B, L, D = h.shape
        q, k, v = (_rms(h) @ self.w_qkv[layer]).split(D, dim=-1)                   # 3 x (B, L, D)
        return tuple(z.view(B, L, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))

    def _finish_block(self, layer, h, a):
        B, L, D = h.shape
        h = h + a.transpose(1, 2).reshape(B, L, D) @ self.w_proj[layer]            # (B, L, D)
        return h + torch.tanh(_rms(h) @ self.w_fc[layer]) @ self.w_out[layer]      # (B, L, D)

    def _head(self, h):
        return (_rms(h) @ self.w_head).float()                                      # (B, L, V)

    # ---- the pieces a cached sampler calls (recorded)
    def embed(self, ids, positions):
        self.fed_positions.append([int(p) for p in torch.as_tensor(positions).reshape(-1)])
        return self._embed(ids, positions)

    def qkv(self, layer, h):
        self.qkv_lengths[layer].append(int(h.shape[1]))
        return self._qkv(layer, h)

    def finish_block(self, layer, h, a):
        return self._finish_block(layer, h, a)

    def head(self, h):
        logits = self._head(h)
        self.head_logits.append(logits.detach().clone())
        return logits

    # ---- the reference: the whole causal forward
    def forward(self, ids, is_causal=True, **kwargs):
        L = ids.shape[1]
        mask = torch.ones(L, L, dtype=torch.bool).tril()                             # key j <= query i
        h = self._embed(ids, torch.arange(L))
        for layer in range(self.n_layer):
            q, k, v = self._qkv(layer, h)
            h = self._finish_block(layer, h, _attention(q, k, v, mask))
        return self._head(h)

    def uncached_kv(self, ids):
        """The keys and values of every layer for ids (B, L), computed without a cache."""
        L = ids.shape[1]
        mask = torch.ones(L, L, dtype=torch.bool).tril()
        h, out = self._embed(ids, torch.arange(L)), []
        for layer in range(self.n_layer):
            q, k, v = self._qkv(layer, h)
            out.append((k, v))
            h = self._finish_block(layer, h, _attention(q, k, v, mask))
        return out
