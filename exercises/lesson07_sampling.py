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
    raise NotImplementedError("Task 7.1")


def transfer_counts(n_masked, steps):
    """Task 7.2: LLaDA's schedule: how many tokens to commit at each step.

    Commit floor(n / steps) per step, and one more in each of the first (n mod steps) steps, so
    that all n masked tokens are committed after ``steps`` steps.
    n_masked: (B,) int64; steps: int >= 1. Returns (B, steps) int64; row b sums to n_masked[b].
    Known answer: n = 10, steps = 4 -> [3, 3, 2, 2].
    """
    raise NotImplementedError("Task 7.2")


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
    raise NotImplementedError("Task 7.3")


def block_eligible(is_mask, block, block_length, start=0):
    """Task 7.4: semi-autoregressive decoding: which positions may be committed in block ``block``?

    The generated part (positions start, start+1, ..., L-1; a prompt occupies 0..start-1) is cut
    into blocks of ``block_length`` decoded left to right. In block b only the masked positions
    in [start + b * block_length, start + (b + 1) * block_length) are eligible.
    is_mask: (B, L) bool. Returns (B, L) bool.
    """
    raise NotImplementedError("Task 7.4")


def llada_generate(model, length, steps, mask_id, generator, prompt=None, batch_size=1, block_length=None,
                   temperature=1.0):
    """Task 7.5: LLaDA's sampler, the whole loop: low confidence first, in semi-autoregressive blocks.

    model(x) maps a (B, L) int64 state to (B, L, V) float logits (call it once per step, under
    torch.no_grad()). Returns (x, states): the final tokens (B, L) int64 and the list of the
    ``steps + 1`` states (each a (B, L) clone): states[0] the start, states[k] the state after step k.
    You may call your own transfer_counts (7.2), low_confidence_commit (7.3), block_eligible (7.4).

    Start: x = all [MASK], shape (batch_size, length); a prompt (P,) int64 is written into
    x[:, :P] of every row (start = P; start = 0 without a prompt). Generated part: positions
    start..L-1, cut into n_blocks = (L - start) // block_length blocks (block_length None = one
    block of L - start). Assume block_length divides L - start, n_blocks divides steps, and
    per_block = steps // n_blocks is at most block_length.

        for b in range(n_blocks):                              # left to right
            counts = transfer_counts(number of [MASK] in x[:, lo:lo + block_length], per_block)
                     with lo = start + b * block_length         # (B, per_block), fixed for the block
            for i in range(per_block):                         # one step
                logits = model(x).float();  logits[..., mask_id] = -inf       # (B, L, V) float32
                candidates (B, L):
                  temperature == 0: cand = logits.argmax(-1) (no random draw);
                  else: U = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
                        gumbel = -log(-log(U.clamp_min(1e-300)))             # (B, L, V) float64
                        cand = argmax_v (logits.double() / temperature + gumbel)
                conf[b, l] = softmax(logits, -1)[b, l, cand[b, l]]   # float32, UNtempered logits
                commit the counts[:, i] most confident positions among the masked positions of
                block b (the others stay [MASK]); x = where(commit, cand, x); record x.

    This is exactly the draw order of minidlm.sampling.generate(..., remasking="low_confidence"):
    one (B, L, V) float64 draw per step and nothing else, so the same generator gives the same
    tokens. A committed token never changes; positions of later blocks wait for their block.
    """
    raise NotImplementedError("Task 7.5")


def ancestral_generate(model, length, steps, mask_id, generator, prompt=None, batch_size=1):
    """Task 7.6: MDLM's ancestral sampler, the whole loop, with the no-change cache.

    model(x) maps a (B, L) int64 state to (B, L, V) float logits (call it under torch.no_grad());
    it does not take t (the denoiser is not time-conditioned). Returns (x, calls): the final tokens (B, L) int64 and the
    number of times you called model. You may call your own ancestral_step (7.1).

    Start: x = all [MASK], shape (batch_size, length), with a prompt (P,) int64 written into
    x[:, :P] of every row. Log-linear schedule, alpha(t) = 1 - t. For i = T, T-1, ..., 1
    (T = steps): t = i / T, s = (i - 1) / T, one step t -> s:

        logits: logits = model(x).float(), at the first step and again only when the previous
                step changed x (any token of any row); otherwise reuse the previous logits (same
                input, same output: the cache saves the call, the sample is the same);
        noise:  EVERY step, cached or not, in this order:
                U = torch.rand((B, L, V), generator=generator, dtype=torch.float64)
                gumbel = -log(-log(U.clamp_min(1e-300)))                 # (B, L, V)
                u = torch.rand((B, L), generator=generator, dtype=torch.float64)
        step:   x = ancestral_step(logits, x, 1 - t, 1 - s, gumbel, u, mask_id)
                (reveal probability (alpha_s - alpha_t)/(1 - alpha_t) = (t - s)/t; 1 at the last step).

    This is exactly minidlm.sampling.ancestral(..., cache_no_change=True) at temperature 1, so the
    same generator gives the same tokens. calls = 1 + the number of steps among the first T - 1
    that changed x: with T much larger than L most steps change nothing, and the calls stop growing.
    """
    raise NotImplementedError("Task 7.6")
