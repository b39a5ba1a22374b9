"""Lesson 12 - score entropy: learning ratios instead of probabilities.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

SEDD (and Mercury's objective family) trains a model to output, at every position, a positive
"score" s(y) ~ p_t(y) / p_t(x_t): how much more likely token y is than the current token. For
the absorbing ([MASK]) process with total noise sigma (alpha = e^{-sigma}), the true ratio at a
masked position whose clean token is x0 is

    s*(x0) = alpha / (1 - alpha) = 1 / (e^sigma - 1),      s*(y) = 0 for y != x0.

The model outputs log s (any real number), so s = exp(log s) is always positive.
"""
import torch


def score_entropy(log_score, x0, xt, sigma, mask_id):
    """Task 12.1: the score-entropy loss of the absorbing process, per position.

    At a masked position (xt = MASK) with true token x0, with a = 1 / (e^sigma - 1):

        l = sum_{y != MASK} s(y)  -  a log s(x0)  +  K(a),         K(a) = a (log a - 1)

    and l = 0 at clean positions. l >= 0, with equality exactly at the true ratios
    (s(x0) = a, s(y) -> 0 otherwise). Use torch.expm1(sigma) for e^sigma - 1.
    log_score: (B, L, V) float (log s; the [MASK] entry is ignored); x0, xt: (B, L) int64;
    sigma: (B,) float > 0. Returns (B, L) float.
    """
    raise NotImplementedError("Task 12.1")
