"""Lesson 08 - adaptive schedules: commit every token the model is sure about.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

A fixed count per step wastes steps on easy text and rushes hard text. Confidence-threshold
decoding (Fast-dLLM's rule; Mercury's easy-first idea) commits, at each step, every eligible
position whose candidate has probability >= threshold -- and always at least one, the most
confident, so that decoding always moves forward.
"""
import torch


def threshold_commit(conf, eligible, threshold):
    """Task 8.1: which positions to commit this step.

        commit[b, l] = eligible[b, l] and conf[b, l] >= threshold
        plus, in every row with at least one eligible position, the eligible position of highest conf

    conf: (B, L) float; eligible: (B, L) bool; threshold: float in [0, 1].
    Returns (B, L) bool. A row with nothing eligible commits nothing.
    """
    raise NotImplementedError("Task 8.1")
