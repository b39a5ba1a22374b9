"""Lesson 09 - Eso-LM's attention masks and the sort trick.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

Eso-LM's attention patterns look irregular in the original order (who is clean depends on the
sample) but become standard masks once the tokens are reordered: all clean tokens first, all
[MASK]s after them. A sort index idx (B, L) says which ORIGINAL position goes to each SORTED slot:
sorted[b, j] = x[b, idx[b, j]]. Tokens, targets and RoPE positions are gathered with the same idx,
so every token keeps its original position; the inverse permutation undoes the sort.
"""
import torch


def sort_indices(is_masked, offsets):
    """Task 9.1: the sort index: clean tokens first, then masks.

        idx[b] = argsort( is_masked[b] + offsets[b] )       (ascending; is_masked as 0/1)

    offsets in [0, 0.9) never move a token across the clean/mask boundary; they only order
    tokens inside each group (random offsets shuffle them, offsets = 0.9 * arange(L) / L keep the
    natural left-to-right order).
    is_masked: (B, L) bool; offsets: (B, L) float64 in [0, 0.9). Returns idx (B, L) int64.
    """
    raise NotImplementedError("Task 9.1")


def inverse_permutation(idx):
    """Task 9.2: the inverse of each row's permutation: inv[b, idx[b, j]] = j.

    Gathering with idx then with inv gives back the original order.
    idx: (B, L) int64, every row a permutation of 0..L-1. Returns inv (B, L) int64.

    Spec:
        for b in range(B):
            for j in range(L):
                inv[b, idx[b, j]] = j
    """
    raise NotImplementedError("Task 9.2")


def esolm_diffusion_mask(n_clean, L, variant="B"):
    """Task 9.3: Eso-LM's diffusion-phase mask in SORTED coordinates (n_clean clean slots first).

    variant "B" (the paper's Eso-LM): fully causal in the sorted order, mask[i, j] = (j <= i).
        A clean token sees only the clean tokens before it, so its keys/values never change when
        more tokens are decoded later: they can be cached exactly. A [MASK] sees every clean
        token, the [MASK]s before it, and itself.
    variant "A": mask[i, j] = (j <= i) or (i < n_clean and j < n_clean): the clean tokens see
        each other bidirectionally (better likelihood, no exact cache).

    n_clean: int in [0, L]; L: int; variant: "A" or "B". Returns (L, L) bool.
    """
    raise NotImplementedError("Task 9.3")


def unsort_mask(mask_sorted, idx):
    """Task 9.4: express a mask given in sorted coordinates in the ORIGINAL token order.

    Original position p sits at sorted slot inv[p] (inv = the inverse permutation of idx), so

        out[b, p, q] = mask_sorted[b, inv[b, p], inv[b, q]]

    Running the model on the original order with ``out`` gives the same logits as running it on
    the sorted order with ``mask_sorted`` (and positions = idx), then un-sorting them.
    mask_sorted: (L, L) or (B, L, L) bool; idx: (B, L) int64. Returns (B, L, L) bool.
    """
    raise NotImplementedError("Task 9.4")
