"""Lesson 04 - the factorized reverse process.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

The true reverse step q(x_s | x_t, x_0) needs the clean sentence x_0, which is what we want to
find. A denoiser x_theta(x_t) predicts, at every position, a distribution over the clean token;
plugging it in for x_0 gives the model's reverse step, which FACTORIZES over positions: every
masked position is revealed, and its token drawn, independently of the others.

Conventions: logits (B, L, V) from the denoiser; xt (B, L); alpha_t, alpha_s (B,) float64.
"""
import torch


def reverse_probs(logits, xt, alpha_t, alpha_s, mask_id):
    """Task 4.1: the model's factorized reverse step p_theta(x_s | x_t) as probabilities.

    For each position l (independently):
      x_t^l clean:  p(x_s^l) = onehot(x_t^l)                          (revealed tokens never change)
      x_t^l = MASK: p(x_s^l) = (1 - r) onehot(MASK) + r * softmax(logits^l)
          with r = (alpha_s - alpha_t) / (1 - alpha_t) and the MASK logit set to -inf first
          (the SUBS parameterization: the denoiser never predicts [MASK]).

    When the logits put all mass on the true x_0 this is exactly q(x_s | x_t, x_0).
    logits: (B, L, V) float; xt: (B, L) int64; alpha_t, alpha_s: (B,) float64.
    Returns (B, L, V) float64; each row sums to 1.
    """
    raise NotImplementedError("Task 4.1")


def mutual_information(joint, base=None):
    """Task 4.2: what a factorized step cannot express, in one number.

    Two masked positions whose true joint distribution is joint[a, b] = P(x^1 = a, x^2 = b).
    A factorized step predicts them independently; the best it can do is the product of the
    marginals p1(a) p2(b), and the information it loses is

        I = D_KL( joint || p1 (x) p2 ) = sum_{a,b} joint[a,b] log( joint[a,b] / (p1[a] p2[b]) )

    (0 log 0 = 0). Known answers: joint = [[0, .5], [.5, 0]] ("AB" or "BA", never "AA"/"BB")
    -> 1 bit; any independent joint -> 0.
    joint: (V1, V2) probabilities summing to 1. Returns a 0-d tensor (nats, or ``base``).
    """
    raise NotImplementedError("Task 4.2")
