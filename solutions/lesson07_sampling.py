"""Lesson 07 - sampling: the ancestral step, LLaDA's transfer schedule, low confidence first,
semi-autoregressive blocks.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

A sampler starts from all [MASK] and commits masked positions to tokens, step by step; a committed
token never changes. Candidates are drawn by the Gumbel-max trick: argmax_v (logits_v + g_v) with
g_v = -log(-log U_v) is a sample from softmax(logits). The noise is GIVEN to you, so every answer
is a deterministic function of its inputs.
"""
import torch


def ancestral_step(logits, xt, alpha_t, alpha_s, gumbel, u, mask_id):
    """Task 7.1: one MDLM ancestral step t -> s.

    1. candidates: cand[b, l] = argmax_v (logits[b, l, v] + gumbel[b, l, v]), with the [MASK]
       logit set to -inf (compute in float64: logits.double() + gumbel);
    2. reveal each masked position independently with probability p = (alpha_s - alpha_t)/(1 - alpha_t):
       position (b, l) is revealed when xt[b, l] is [MASK] and u[b, l] < p;
    3. revealed positions take their candidate; every other position keeps xt.

    logits: (B, L, V) float; xt: (B, L) int64; alpha_t, alpha_s: floats (the whole batch is at the
    same time), alpha_t < 1; gumbel: (B, L, V) float64; u: (B, L) float64. Returns x_s (B, L).
    """
    scores = logits.double().clone()
    scores[..., mask_id] = float("-inf")
    cand = (scores + gumbel).argmax(dim=-1)                            # (B, L)
    p = (alpha_s - alpha_t) / (1 - alpha_t)
    reveal = (xt == mask_id) & (u < p)                                 # (B, L)
    return torch.where(reveal, cand, xt)


def transfer_counts(n_masked, steps):
    """Task 7.2: LLaDA's schedule: how many tokens to commit at each step.

    Commit floor(n / steps) per step, and one more in each of the first (n mod steps) steps, so
    that all n masked tokens are committed after ``steps`` steps.
    n_masked: (B,) int64; steps: int >= 1. Returns (B, steps) int64; row b sums to n_masked[b].
    Known answer: n = 10, steps = 4 -> [3, 3, 2, 2].
    """
    base = n_masked // steps                                           # (B,)
    remainder = n_masked % steps                                       # (B,)
    step = torch.arange(steps)[None, :]                                # (1, steps)
    return base[:, None] + (step < remainder[:, None]).long()          # (B, steps)


def low_confidence_commit(conf, is_mask, k):
    """Task 7.3: choose which positions to commit: the k[b] most confident MASKED positions of row b.

    conf[b, l] is the model's probability of the candidate it drew at (b, l) ("low_confidence"
    remasking keeps the least confident ones masked for later). Only masked positions may be
    chosen; k[b] <= the number of masked positions in row b.
    conf: (B, L) float; is_mask: (B, L) bool; k: (B,) int64. Returns commit: (B, L) bool with
    exactly k[b] True entries in row b.

    Spec:
        for b in range(B):
            order = positions l with is_mask[b, l], sorted by conf[b, l] from high to low
            commit[b, order[:k[b]]] = True
    """
    B, L = conf.shape
    scores = torch.where(is_mask, conf.double(), torch.full_like(conf, float("-inf"), dtype=torch.float64))
    commit = torch.zeros(B, L, dtype=torch.bool)
    for b in range(B):
        top = torch.topk(scores[b], int(k[b])).indices                 # the k most confident
        commit[b, top] = True
    return commit


def block_eligible(is_mask, block, block_length, start=0):
    """Task 7.4: semi-autoregressive decoding: which positions may be committed in block ``block``?

    The generated part (positions start, start+1, ..., L-1; a prompt occupies 0..start-1) is cut
    into blocks of ``block_length`` decoded left to right. In block b only the masked positions
    in [start + b * block_length, start + (b + 1) * block_length) are eligible.
    is_mask: (B, L) bool. Returns (B, L) bool.
    """
    B, L = is_mask.shape
    lo = start + block * block_length
    hi = lo + block_length
    pos = torch.arange(L)[None, :]                                     # (1, L)
    return is_mask & (pos >= lo) & (pos < hi)
