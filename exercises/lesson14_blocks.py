"""Lesson 14 - block diffusion (BD3-LM): autoregressive over blocks, masked diffusion inside a block.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

A row of L tokens is cut into blocks of ``block_size`` K (the last one may be shorter): position l
belongs to block l // K. The model factorizes log p(x) = sum_b log p(x^b | x^{<b}) and bounds each
term by an MDLM NELBO of block b given the clean blocks before it. K = 1 is an AR model, K >= L is
MDLM.

Training feeds [x_t ; x_0] (2L tokens, both halves at positions 0..L-1) in one pass; sampling
denoises one block at a time over an exact KV cache of the finished blocks.
"""
import math

import torch


def training_mask(L, block_size):
    """Task 14.1: BD3-LM's (2L, 2L) attention mask for one pass over [x_t ; x_0].

    Rows are queries, columns keys, True = may attend. Indices 0..L-1 are the noisy half x_t,
    L..2L-1 the clean half x_0; position l (in either half) is in block l // block_size. For a
    query in block bq and a key in block bk:

      noisy query -> noisy key:  bk == bq   (a block is denoised as a whole, bidirectionally)
      noisy query -> clean key:  bk <  bq   (the clean blocks before it: its context)
      clean query -> clean key:  bk <= bq   (block-causal: what the sampler's cache will hold)
      clean query -> noisy key:  never      (the clean half must not see any noise)

    L, block_size: ints >= 1 (ValueError otherwise). Returns a (2L, 2L) torch.bool tensor.
    """
    raise NotImplementedError("Task 14.1")


def block_decode_cached(model, length, mask_id, block_size, steps_per_block, bos_id, eos_id, generator,
                        batch_size=1):
    """Task 14.2: BD3-LM's block-by-block sampler with an exact KV cache (LLaDA's counts in a block).

    Start from x (B, length): [BOS] at position 0, mask_id everywhere else (B = batch_size), and an
    empty cache ``cache = model.new_cache(B, capacity=length)``. For each block [lo, hi)
    (lo = 0, K, 2K, ...; hi = min(lo + K, length)):

      counts = LLaDA's schedule for the block: n = the masks in x[:, lo:hi] per row (B,);
               counts[:, i] = n // steps_per_block + (1 if i < n % steps_per_block else 0),
               (B, steps_per_block), i = 0..steps_per_block-1.
      while any position of x[:, lo:hi] is mask_id (step i = 0, 1, ...):
        1. ONE call fed from the end of the cache to the end of the block, start = len(cache):
               out = model(x[:, start:hi], attn_mask=mask, positions=torch.arange(start, hi), cache=cache)
           mask (hi - start, hi) bool, block-causal: the query at position q may see the key at
           position k iff k // K <= q // K. logits = out[:, lo - start:].float(), (B, hi - lo, V).
        2. cache.truncate(lo): keep the finished blocks only (the block's own keys were computed
           from masks). So the first call of a block feeds the previous block (now finished) and
           this one, and later calls feed this block only.
        3. logits[..., mask_id] = -inf; candidates by Gumbel-max at temperature 1:
               u    = torch.rand(logits.shape, generator=generator, dtype=torch.float64)  (B, Lb, V)
               cand = (logits.double() - log(-log(u.clamp_min(1e-300)))).argmax(-1)       (B, Lb)
           conf = softmax(logits, -1) at cand (float32), (B, Lb).
        4. per row r, commit the k = counts[r, min(i, steps_per_block - 1)] most confident positions
           among the block's masks: torch.topk(scores[r], k).indices, scores = conf at masked
           positions, -inf elsewhere (skip k = 0). Committed positions take cand; nothing else changes.
      After the block, if eos_id is not None: a row is done once x[:, :hi] contains eos_id; stop
      when every row is done (rows finished earlier keep being decoded until then).

    At the end, if eos_id is not None: in each row, every position >= 1 at or after the first
    eos_id, and every position still mask_id, becomes eos_id (variable length: the story ends at
    its first [EOS]).

    model: called as above, returns (B, W, V) logits; it has ``new_cache(B, capacity=)``; a cache
    has len(cache) and cache.truncate(n). length, block_size, steps_per_block: ints >= 1 with
    steps_per_block <= block_size; generator: a torch.Generator. Call the model under
    torch.no_grad(). Returns (x, nfe): the tokens (B, length) int64 and the number of model calls.
    """
    raise NotImplementedError("Task 14.2")


def block_nelbo(model, x0, mask_id, block_size, generator, eps=1e-3):
    """Task 14.3: BD3-LM's NELBO estimate of a clean batch x0 (B, L), nats per token.

    Draws, in this order, from ``generator`` (all float64):
      1. one time per block, antithetic over all N = B * n_blocks draws (n_blocks = ceil(L / K)):
             u = torch.rand((1,), generator=generator, dtype=torch.float64)
             t = ((u + torch.arange(N, dtype=torch.float64) / N) % 1) * (1 - eps) + eps,
             clamped to at most 1 - 2**-52, then t.view(B, n_blocks): row b's block j has t[b, j];
      2. the mask: v = torch.rand((B, L), generator=generator, dtype=torch.float64); position l of
         row b is masked iff v[b, l] >= alpha = 1 - t of its block (log-linear schedule), except
         position 0 ([BOS]), which stays clean. x_t = x0 with the masked positions set to mask_id.
    Then ONE pass over [x_t ; x_0]:
         logits = model(torch.cat([x_t, x0], 1), attn_mask=training_mask(L, K),
                        positions=torch.cat([torch.arange(L), torch.arange(L)]))[:, :L].float()
    and, with the [MASK] logit set to -inf, CE = -log_softmax(logits)[x0] at the masked positions:

        loss = sum over rows and masked positions of CE / t(block) , divided by B * (L - 1)

    (w(t) = 1/t for alpha = 1 - t; [BOS] is given, so L - 1 tokens per row are scored).
    model: as above, (B, 2L, V) logits; x0: (B, L) int64 with L >= 2, never mask_id; block_size:
    int >= 1; generator: a torch.Generator. Returns a 0-d tensor.
    """
    raise NotImplementedError("Task 14.3")
