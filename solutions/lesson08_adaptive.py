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
    commit = eligible & (conf >= threshold)                            # (B, L)
    scores = torch.where(eligible, conf, torch.full_like(conf, float("-inf")))
    best = scores.argmax(dim=1)                                        # (B,) most confident eligible
    for b in range(conf.shape[0]):
        if eligible[b].any():
            commit[b, best[b]] = True
    return commit


def threshold_sample(model, x, mask_id, threshold, *, start=0, block_length=None, temperature=0.0,
                     generator=None):
    """Task 8.2: the whole confidence-threshold sampler (minidlm's generate_adaptive), written by you.

    x: (B, L) int64, the start state: clean ids, and mask_id at the positions to fill (for example
    a prompt in x[:, :start], then masks); it is not modified (work on a copy). Positions before
    ``start`` are never decoded.
    Blocks (semi-autoregressive, lesson 07): [start, start + block_length), the next block_length
    positions, ..., up to L, decoded one after the other; block_length=None is one block
    [start, L). You may assume block_length divides L - start.

    For each block [lo, hi), while some position of x[:, lo:hi] (any row) is still mask_id, one step:
      1. logits = model(x).float()                (B, L, V), ONE network call; then
         logits[..., mask_id] = -inf              (the sampler never proposes [MASK])
      2. candidates cand (B, L):
           temperature == 0: cand = logits.argmax(-1)            (no random draw)
           temperature >  0: Gumbel-max, the only draw of the step:
               u      = torch.rand(logits.shape, generator=generator, dtype=torch.float64)   (B, L, V)
               gumbel = -log(-log(u.clamp_min(1e-300)))
               cand   = (logits.double() / temperature + gumbel).argmax(-1)
      3. confidence conf (B, L) = softmax(logits, -1)[cand], in float32 and at temperature 1 (the
         untempered probability of the candidate)
      4. eligible (B, L) = x is mask_id AND lo <= position < hi
         commit = eligible & (conf >= threshold), plus, in every row that has an eligible position,
         the eligible position of highest conf (ties: the leftmost, as torch.argmax picks), so that
         every step commits at least one token per unfinished row (task 8.1's rule; you may call
         your threshold_commit)
      5. x = where(commit, cand, x): committed tokens never change again.
    A row whose block is finished commits nothing while the other rows finish theirs.

    model: called as model(x) on (B, L) ids, returns (B, L, V) logits; threshold: float in [0, 1];
    generator: a torch.Generator (only used when temperature > 0).
    Returns (tokens (B, L) int64, calls): calls = the number of network calls made.
    """
    x = x.clone()
    B, L = x.shape
    block_length = L - start if block_length is None else block_length
    positions = torch.arange(L)                                            # (L,)
    rows = torch.arange(B)                                                 # (B,)
    calls = 0
    for lo in range(start, L, block_length):
        in_block = (positions >= lo) & (positions < lo + block_length)   # (L,)
        while (x[:, in_block] == mask_id).any():
            logits = model(x).float()                                      # (B, L, V)
            calls += 1
            logits[..., mask_id] = float("-inf")
            if temperature == 0:
                cand = logits.argmax(-1)                                   # (B, L)
            else:
                u = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
                gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))       # (B, L, V)
                cand = (logits.double() / temperature + gumbel).argmax(-1)  # (B, L)
            conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)   # (B, L)
            eligible = (x == mask_id) & in_block                           # (B, L)
            sure = eligible & (conf >= threshold)                          # (B, L) above the threshold
            scores = torch.where(eligible, conf, torch.full_like(conf, -1.0))
            best = scores.argmax(1)                                        # (B,) most confident eligible
            has_any = eligible.any(1)                                      # (B,)
            sure[rows[has_any], best[has_any]] = True                      # at least one per row
            x = torch.where(sure, cand, x)
    return x, calls
