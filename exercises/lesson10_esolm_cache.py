"""Lesson 10 - the KV cache, and Eso-LM's hybrid loss across the alpha0 spectrum.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

A KV cache keeps the keys and values of tokens already processed, so a sampler feeds only the new
tokens. minidlm preallocates one buffer per layer, (B, heads, capacity, head_dim), plus a fill
pointer ``length``: nothing is re-allocated while decoding, and attention reads buf[:, :, :length].

Eso-LM (variant B) is causal in its sorted order, so a token's keys/values never change once it is
clean: the cache is exact. Its training loss has one term per generation phase, each normalized
per token of its own rows.
"""
import torch


def kv_cache_update(k_buf, v_buf, length, k_new, v_new):
    """Task 10.1: append new keys/values to preallocated cache buffers.

    Write k_new into k_buf[:, :, length : length + n] IN PLACE (n = k_new.shape[2]), the same for v,
    and return views of everything cached so far, k_buf[:, :, :length + n] and v_buf[...], and the
    new length. No new buffer is allocated: the returned tensors share k_buf's and v_buf's memory.

    k_buf, v_buf: (B, h, capacity, d); length: int, positions already filled;
    k_new, v_new: (B, h, n, d). Raise ValueError if length + n > capacity.
    Returns (k_all, v_all, new_length): (B, h, length + n, d) twice and an int.
    """
    raise NotImplementedError("Task 10.1")


def esolm_hybrid_loss(diff_ce, t, seq_ce, alpha0, diff_counted, seq_counted):
    """Task 10.2: combine Eso-LM's two terms into one loss per token.

    A batch is split: some rows estimate the diffusion term, the others the sequential term.

      diffusion rows: diff_ce[b, l] = -log x_theta(z_t)[x^l] at masked positions of z_t (0 elsewhere),
                      weighted by w(t_b) = -alpha'_t / (1 - alpha_t) = alpha0 / (1 - alpha0 (1 - t_b))
                      (the schedule alpha_t = alpha0 (1 - t));
      sequential rows: seq_ce[b, l] = the CE of each [MASK] of z0, decoded left to right (0 elsewhere).

        loss = sum(seq_ce) / #counted seq tokens  +  sum_b w(t_b) sum_l diff_ce[b, l] / #counted diff tokens

    Each part is normalized by the counted tokens OF ITS OWN ROWS, so each estimates its term per
    token and the sum estimates the whole bound per token. A count of 0 (no rows) counts as 1.
    diff_ce: (Bd, L) float; t: (Bd,) float; seq_ce: (Bs, L) float; alpha0: float in [0, 1];
    diff_counted: (Bd, L) bool; seq_counted: (Bs, L) bool. Returns a 0-d tensor.
    """
    raise NotImplementedError("Task 10.2")


def esolm_decode_cached(model, xs, order, sizes, start, mask_id, cache, temperature=1.0, generator=None):
    """Task 10.3: Eso-LM's sampling loop with the exact KV cache (variant B), both phases.

    The tokens are kept in DECODE ORDER: xs[:, j] is the token of slot j, at original position
    order[:, j]. Slots [0, start) are clean (the prompt); slots [start, L) are mask_id. ``sizes``
    lists how many slots each step decodes: the diffusion steps (several slots each, k >= 1), then
    the sequential phase (1 each), sum(sizes) = L - start. Step by step, with a = the first slot of
    the step, b = a + k, and fed = the slots already in the cache (0 at the start):

      1. ONE network call on the window xs[:, fed:b], i.e. the slots decoded at the previous step
         (clean now, not yet cached; at the first step, the prompt) followed by the k masks of
         this step (W = b - fed tokens):
             out = model(xs[:, fed:b], attn_mask=mask, positions=order[:, fed:b], cache=cache)
         positions: the ORIGINAL positions (RoPE / position embeddings), not the slot numbers;
         mask (W, fed + W) bool, True = may attend: every cached slot, and causally inside the
         window (window token i sees window tokens 0..i), the causal attention of variant B in
         decode order. The call appends the window's keys/values to the cache: len(cache) = b.
      2. logits = out[:, a - fed:].float(), the k masks (B, k, V); logits[..., mask_id] = -inf.
      3. candidates (B, k): temperature == 0: logits.argmax(-1), no random draw; temperature > 0:
             u    = torch.rand(logits.shape, generator=generator, dtype=torch.float64)   (B, k, V)
             cand = (logits.double() / temperature - log(-log(u.clamp_min(1e-300)))).argmax(-1)
         and xs[:, a:b] = cand.
      4. cache.truncate(a): forget the masks' keys/values (they were fed as [MASK]; next step feeds
         these slots again with their sampled tokens). fed = a, a = b.
    So every clean token goes through the network once, and each sequential step feeds two tokens
    (the previous one and the new mask) while the cache grows by one.

    model: called as above, returns (B, W, V) logits; cache: an empty KV cache for it (len(cache)
    is the number of cached slots; cache.truncate(n) keeps slots < n); xs, order: (B, L) int64
    (xs is not modified: work on a copy); sizes: list of ints; start: int; generator: a
    torch.Generator. Returns the tokens (B, L) in ORIGINAL order: x[b, order[b, j]] = xs[b, j].
    """
    raise NotImplementedError("Task 10.3")
