"""Lesson 03 - entropy, cross-entropy, KL, and the gradient of the cross-entropy.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

p and q are probability vectors along the LAST dimension: shape (..., V), every row sums to 1.
Results have the shape of the leading dimensions (...). Natural logarithms (nats) unless
``base`` is given: base=2 gives bits, since log_2 x = ln x / ln 2.
Convention: 0 * log 0 = 0 (an impossible outcome costs nothing on average).
"""
import math

import torch


def _in_base(x, base):
    """Convert a quantity in nats to the given base (None: keep nats)."""
    return x if base is None else x / math.log(base)


def entropy(p, base=None):
    """Task 3.1: H(p) = - sum_k p_k log p_k, with 0 log 0 = 0.

    The average surprise of an outcome drawn from p; the fewest bits per symbol any code can use.
    p: (..., V) probabilities. Returns (...).
    Known answer: p = [0.7, 0.2, 0.1] -> 1.157 bits (0.8018 nats).
    """
    p = torch.as_tensor(p, dtype=torch.float64)
    # p * log p is 0 * (-inf) = nan where p = 0: use 0 there instead
    terms = torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))
    return _in_base(-terms.sum(-1), base)


def cross_entropy(p, q, base=None):
    """Task 3.2: H(p, q) = - sum_k p_k log q_k, with 0 log q = 0 (even for q = 0).

    The average code length when outcomes come from p but the code was built for q. Infinite when
    q gives probability 0 to an outcome that p can produce. H(p, q) >= H(p).
    p, q: (..., V) probabilities of the same shape. Returns (...).
    """
    p = torch.as_tensor(p, dtype=torch.float64)
    q = torch.as_tensor(q, dtype=torch.float64)
    terms = torch.where(p > 0, p * torch.log(q), torch.zeros_like(p))
    return _in_base(-terms.sum(-1), base)


def kl_divergence(p, q, base=None):
    """Task 3.3: D_KL(p || q) = sum_k p_k log(p_k / q_k) = H(p, q) - H(p) >= 0.

    The extra code length paid for using q instead of p; 0 exactly when q = p. When p is one-hot
    (a training target), H(p) = 0 and the KL equals the cross-entropy.
    p, q: (..., V) probabilities. Returns (...).
    """
    return cross_entropy(p, q, base) - entropy(p, base)


def ce_grad(logits, target):
    """Task 3.4: the gradient of the cross-entropy with respect to the logits.

        loss = sum_n -log softmax(logits_n)[target_n]
        d loss / d logits_n = softmax(logits_n) - onehot(target_n)

    (Push the true token's logit up by 1 - p, every other logit down by its probability.)
    logits: (N, V) float; target: (N,) int64. Returns (N, V), the same dtype as logits.
    Do not use autograd: the point is the formula.
    """
    probs = torch.softmax(logits, dim=-1)                                      # (N, V)
    onehot = torch.nn.functional.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return probs - onehot
