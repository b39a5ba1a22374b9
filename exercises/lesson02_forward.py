"""Lesson 02 - the forward process.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

Masked diffusion destroys a sentence by replacing tokens with [MASK]. At time t in [0, 1] each
token is still clean with probability alpha_t (alpha_0 = 1: nothing masked; alpha_1 = 0: all
masked), independently of the others:

    q(x_t^l | x_0^l) = alpha_t * [x_t^l = x_0^l] + (1 - alpha_t) * [x_t^l = MASK]

Conventions: x0 (B, L) clean token ids, xt (B, L) noised ids, alpha_t (B,) one value per sequence.
Every random choice is made from noise you are GIVEN (a uniform tensor u), so your answer is a
plain function of its inputs and can be compared with the reference exactly.
"""
import math

import torch


def mask_tokens(x0, alpha_t, u, mask_id):
    """Task 2.1: draw x_t ~ q(x_t | x_0) from the uniform noise u.

    Position l of sequence b is masked when u[b, l] >= alpha_t[b]. With u ~ U(0, 1) that happens
    with probability 1 - alpha_t[b], exactly the forward process above.

    x0:      (B, L) int64 clean ids
    alpha_t: (B,)   float64, the clean probability of each sequence
    u:       (B, L) float64 in [0, 1)
    mask_id: int, the id of [MASK]
    returns  x_t: (B, L) int64 (x0 itself is left unchanged)

    Spec:
        for b in range(B):
            for l in range(L):
                xt[b, l] = mask_id if u[b, l] >= alpha_t[b] else x0[b, l]
    """
    raise NotImplementedError("Task 2.1")


def cosine_schedule(t):
    """Task 2.2: the cosine schedule and its NELBO weight.

        alpha(t)  = cos(pi t / 2)
        alpha'(t) = -(pi / 2) sin(pi t / 2)
        w(t)      = -alpha'(t) / (1 - alpha(t))        (the weight of each masked token's loss)

    t: (B,) float64 in (0, 1]. Returns (alpha_t, w_t), both (B,) float64.
    Known answer: t = 0.5 -> alpha = 0.70711, w = 3.79224. (For log-linear alpha = 1 - t, w = 1/t.)
    """
    raise NotImplementedError("Task 2.2")


def antithetic_times(u, batch_size, eps=1e-3):
    """Task 2.3: low-discrepancy ("antithetic") times for a batch, from ONE uniform number u.

        t_i = ((u + i / B)  mod 1) * (1 - eps) + eps,      i = 0, ..., B - 1

    The B times are evenly spread over [eps, 1] (one in each interval of width (1 - eps)/B), so
    the batch's loss estimate has lower variance than with B independent times. (MDLM writes the
    same set as (u' + i)/B mod 1 with u' = frac(u B), also uniform.)

    u: a float in [0, 1) (or a 0-d / (1,) tensor); batch_size: B; eps: the smallest time.
    Returns t: (B,) float64.
    Known answer: u = 0.25, B = 4, eps = 0 -> [0.25, 0.5, 0.75, 0.0].

    Spec:
        t = [((u + i / B) % 1.0) * (1 - eps) + eps for i in range(B)]
    """
    raise NotImplementedError("Task 2.3")


def reveal_step(xt, x0, alpha_t, alpha_s, u, mask_id):
    """Task 2.4: one step back in time with the exact posterior q(x_s | x_t, x_0), s < t.

    A clean token stays as it is. A [MASK] becomes its true token x0 with probability

        p = (alpha_s - alpha_t) / (1 - alpha_t)        ( = (t - s) / t for alpha = 1 - t )

    and stays [MASK] otherwise. Reveal position (b, l) when xt[b, l] is [MASK] and u[b, l] < p[b].

    xt, x0: (B, L) int64; alpha_t, alpha_s: (B,) float64 with alpha_s >= alpha_t, alpha_t < 1;
    u: (B, L) float64 in [0, 1). Returns x_s: (B, L) int64.
    """
    raise NotImplementedError("Task 2.4")
