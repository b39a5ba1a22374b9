"""Lesson 11 - editing and infilling (Gemini's Instant Edit, in miniature).

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

A masked diffusion model can rewrite part of an existing text: mask the span to change, keep the
rest as fixed context on both sides, and denoise only the masked positions. Tokens outside the
edited span never change, and a "protected" token (the prompt, a name that must stay) is never
masked.
"""
import torch


def remask_span(tokens, span, mask_id, protect=None):
    """Task 11.1: prepare an edit: mask the positions [i, j) of every row, except protected ones.

        where[b, l] = (i <= l < j) and not protect[b, l]
        given[b, l] = mask_id if where[b, l] else tokens[b, l]

    tokens: (B, L) int64; span: (i, j) with 0 <= i < j <= L; protect: None or (B, L) / (L,) bool.
    Returns (given, where): (B, L) int64 and (B, L) bool. ``given`` is the start state the sampler
    denoises; ``where`` the positions it may change.
    """
    raise NotImplementedError("Task 11.1")
