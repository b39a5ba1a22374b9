"""Lesson 06 - attention masks and masked attention.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer), and masked_attention may
not call torch's F.scaled_dot_product_attention.

One Transformer serves every objective; only its attention pattern changes. A boolean mask of
shape (L_q, L_k) is True where query i MAY attend to key j (the convention of
``F.scaled_dot_product_attention`` and of ``minidlm.model.Model``).
"""
import math

import torch


def causal_mask(L):
    """Task 6.1: the autoregressive mask: query i sees keys j <= i. Returns (L, L) bool.

    Spec: mask[i, j] = (j <= i)
        L = 3:  [[T, F, F],
                 [T, T, F],
                 [T, T, T]]
    """
    i = torch.arange(L)[:, None]       # (L, 1) query index
    j = torch.arange(L)[None, :]       # (1, L) key index
    return j <= i


def bidirectional_mask(L):
    """Task 6.2: the masked-diffusion denoiser's mask: everyone sees everyone. Returns (L, L) bool."""
    return torch.ones(L, L, dtype=torch.bool)


def prefix_mask(L, prefix_len):
    """Task 6.3: a prefix LM: the first P = prefix_len tokens see each other (bidirectional) and
    nothing after them; every later token sees the whole prefix and the tokens up to itself.

    Spec: mask[i, j] = (j <= i) or (j < P)
    prefix_len = 0 gives the causal mask, prefix_len = L the bidirectional one. Returns (L, L) bool.
    """
    return causal_mask(L) | (torch.arange(L) < prefix_len)[None, :]


def masked_attention(q, k, v, mask):
    """Task 6.4: scaled dot-product attention with a boolean mask.

        scores = q k^T / sqrt(d)                (B, h, L_q, L_k)
        scores[~mask] = -inf                     (forbidden keys get probability 0)
        out    = softmax(scores, dim=-1) v       (B, h, L_q, d)

    q: (B, h, L_q, d); k, v: (B, h, L_k, d); mask: bool, broadcastable to (B, h, L_q, L_k)
    (e.g. (L_q, L_k)). Every query row allows at least one key. Must match
    ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask)``.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                    # (B, h, L_q, L_k)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)                            # (B, h, L_q, L_k)
    return weights @ v                                                 # (B, h, L_q, d)
