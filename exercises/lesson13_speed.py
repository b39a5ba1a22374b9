"""Lesson 13 - speed, latency and the review's claims.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

A sampler's trace records the network call at which each answer position became final; a clock
records when each call ended. From the two follows when a reader can see every prefix of the
answer (time to first token is the first prefix, the full answer the last). Comparing samplers
then means comparing (time, quality) points: only the ones no other point beats on both matter.
"""
import torch


def prefix_ready_times(reveal_step, call_times):
    """Task 13.1: the time at which each prefix of the answer is final.

    The first k + 1 tokens can be shown once every one of them is final, i.e. after call
    max_{j <= k} reveal_step[b, j]:

        ready[b, k] = call_times[ max_{j <= k} reveal_step[b, j] - 1 ]

    reveal_step: (B, N) int64, 1-based call numbers; call_times: (C,) float seconds at the end of
    each call. Returns (B, N) float64. (Hint: torch.cummax.)
    """
    raise NotImplementedError("Task 13.1")


def pareto_front(cost, loss):
    """Task 13.2: indices of the settings that no other setting dominates, sorted by cost.

    j dominates i when cost[j] <= cost[i] and loss[j] <= loss[i], one of the two strictly.
    Lower is better for both. Identical points do not dominate each other (keep both).
    cost, loss: sequences or 1-D tensors of the same length n >= 1. Returns a list of ints,
    sorted by (cost, loss, index).
    """
    raise NotImplementedError("Task 13.2")
