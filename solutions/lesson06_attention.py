"""Lesson 06 - attention masks, masked attention, the MDM training step, the AR KV cache.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer), and no task 6.x may call
torch's fused attention (F.scaled_dot_product_attention): write softmax(q k^T / sqrt(d)) v.

One Transformer serves every objective; only its attention pattern changes. A boolean mask of
shape (L_q, L_k) is True where query i MAY attend to key j (the convention of
``F.scaled_dot_product_attention`` and of ``minidlm.model.Model``).
"""
import math

import torch
import torch.nn.functional as F


def causal_mask(L):
    """Task 6.1: the autoregressive mask: query i sees keys j <= i. Returns (L, L) bool.

    Spec: mask[i, j] = (j <= i)
        L = 3:  [[T, F, F],
                 [T, T, F],
                 [T, T, T]]
    """
    i = torch.arange(L)[:, None]       # (L, 1) query index
    j = torch.arange(L)[None, :]       # (1, L) key index
    return j <= i


def bidirectional_mask(L):
    """Task 6.2: the masked-diffusion denoiser's mask: everyone sees everyone. Returns (L, L) bool."""
    return torch.ones(L, L, dtype=torch.bool)


def prefix_mask(L, prefix_len):
    """Task 6.3: a prefix LM: the first P = prefix_len tokens see each other (bidirectional) and
    nothing after them; every later token sees the whole prefix and the tokens up to itself.

    Spec: mask[i, j] = (j <= i) or (j < P)
    prefix_len = 0 gives the causal mask, prefix_len = L the bidirectional one. Returns (L, L) bool.
    """
    return causal_mask(L) | (torch.arange(L) < prefix_len)[None, :]


def masked_attention(q, k, v, mask):
    """Task 6.4: scaled dot-product attention with a boolean mask.

        scores = q k^T / sqrt(d)                (B, h, L_q, L_k)
        scores[~mask] = -inf                     (forbidden keys get probability 0)
        out    = softmax(scores, dim=-1) v       (B, h, L_q, d)

    q: (B, h, L_q, d); k, v: (B, h, L_k, d); mask: bool, broadcastable to (B, h, L_q, L_k)
    (e.g. (L_q, L_k)). Every query row allows at least one key. Must match
    ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask)``.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                    # (B, h, L_q, L_k)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)                            # (B, h, L_q, L_k)
    return weights @ v                                                 # (B, h, L_q, d)


def mdm_train_step(model, x0, optimizer, mask_id, generator, eps=1e-3):
    """Task 6.5: one training step of a masked diffusion model, written whole: noise a clean batch,
    score the denoiser with the NELBO, and take one optimizer step. Returns the loss, a Python
    float in nats per token: exactly what minidlm.objectives.mdm_loss computes for the log-linear
    schedule alpha_t = 1 - t (no annealing), so the grader compares yours with it number for number.

    x0: (B, L) int64 clean tokens (never mask_id); x0[:, 0] is [BOS]. model(x_t) returns logits
    (B, L, V) (no SUBS applied). generator: a torch.Generator; draw from it exactly twice, in this
    order, with these shapes and dtypes:

    1. Times, one per row, antithetic: u = torch.rand((1,), generator=generator, dtype=torch.float64),
           t_b = ((u + b / B) mod 1) * (1 - eps) + eps,   b = 0, ..., B - 1,
       with b / B = torch.arange(B, dtype=torch.float64) / B; then clamp t to at most 1 - 2**-52.
       t: (B,) float64.
    2. Masking: r = torch.rand((B, L), generator=generator, dtype=torch.float64); token (b, l)
       becomes mask_id where r[b, l] >= alpha_b = 1 - t_b, so with probability t_b; except
       position 0 ([BOS]), which always stays clean. x_t: (B, L); do not change x0.
    3. logits = model(x_t), cast to float32, with the [MASK] logit set to -inf (SUBS, lesson 05).
    4. ce[b, l] = -log softmax(logits[b, l])[x0[b, l]] (F.cross_entropy with reduction="none") and
           loss = ( sum over MASKED (b, l) of w_b * ce[b, l] ) / ( B * (L - 1) ),   w_b = 1 / t_b,
       w cast to float32: the NELBO per token, divided by ALL B (L - 1) tokens after [BOS], masked
       or not (the expectation over t then counts each token once).
    5. optimizer.zero_grad(); loss.backward(); optimizer.step(); return loss.item().
    """
    B, L = x0.shape
    u = torch.rand((1,), generator=generator, dtype=torch.float64)
    t = torch.remainder(u + torch.arange(B, dtype=torch.float64) / B, 1.0)
    t = (t * (1 - eps) + eps).clamp(max=1 - 2**-52)                     # (B,) float64 in [eps, 1)
    r = torch.rand((B, L), generator=generator, dtype=torch.float64)     # (B, L)
    masked = r >= (1 - t)[:, None]                                       # (B, L): P(masked) = 1 - alpha_t = t
    masked[:, 0] = False                                                 # [BOS] stays clean
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)           # (B, L)
    logits = model(xt).float()                                           # (B, L, V)
    is_mask_id = torch.arange(logits.shape[-1], device=logits.device) == mask_id
    logits = logits.masked_fill(is_mask_id, float("-inf"))               # SUBS: never predict [MASK]
    ce = F.cross_entropy(logits.reshape(B * L, -1), x0.reshape(B * L), reduction="none").view(B, L)
    w = (1 / t).float()[:, None]                                         # (B, 1): the NELBO weight
    loss = (w * torch.where(masked, ce, torch.zeros_like(ce))).sum() / (B * (L - 1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def generate_ar_cached(model, prompt, length, temperature=0.0, generator=None):
    """Task 6.6: autoregressive sampling with a KV cache: one network call per new token, each call
    feeding only the tokens not yet in the cache and attending over the cached keys and values.

    prompt: (B, P) int64, P >= 1; length > P. Returns (x, cache): x (B, length) int64, the prompt
    followed by the sampled tokens; cache: a list with one (K, V) pair per layer, each
    (B, n_head, length - 1, head_dim): the keys and values of every token but the last (which was
    sampled, never fed).

    The model comes in pieces, and you keep the cache yourself. One network call on L_new new tokens:
        h = model.embed(ids, positions)       ids (B, L_new), positions (L_new,) int64 -> (B, L_new, D)
        for layer in range(model.n_layer):
            q, k, v = model.qkv(layer, h)     each (B, model.n_head, L_new, model.head_dim): NEW tokens only
            a = attention of q over the layer's keys and values (cached + new), (B, n_head, L_new, head_dim)
            h = model.finish_block(layer, h, a)
        logits = model.head(h)                (B, L_new, V) float32

    The loop, with n = the number of positions already in the cache (0 at first):
    1. Feed new = x[:, n:] (the whole prompt in the first call, the prefill; then the one token
       sampled last) at their absolute positions n, ..., n + L_new - 1.
    2. In each layer append k, v to that layer's cached K, V (dim 2), and let the new queries attend
       over all n + L_new keys causally: query i (position n + i) sees key j iff j <= n + i.
       You may call your masked_attention (Task 6.4). Then n grows by L_new.
    3. Read the last position's logits, model.head(h)[:, -1] (B, V), and pick the next token:
       temperature == 0: argmax (no draw). Otherwise Gumbel-max with ONE draw per call:
           u = torch.rand((B, V), generator=generator, dtype=torch.float64)
           next = argmax(logits.double() / temperature - log(-log(u.clamp_min(1e-300))))
    Stop when x has length tokens: length - P calls in all. Same tokens as
    minidlm.sampling.generate_ar(model, length, prompt=prompt, temperature=..., use_cache=False).
    """
    x = prompt.clone()                                                   # (B, P): the sequence so far
    cache = [None] * model.n_layer                                       # per layer (K, V): (B, nh, n, hs)
    n = 0                                                                # positions already in the cache
    while x.shape[1] < length:
        new = x[:, n:]                                                   # (B, L_new): prompt, then 1 token
        L_new = new.shape[1]
        pos = torch.arange(n, n + L_new)                                 # (L_new,) absolute positions
        mask = torch.ones(L_new, n + L_new, dtype=torch.bool).tril(n)    # query n + i sees keys j <= n + i
        h = model.embed(new, pos)                                        # (B, L_new, D)
        for layer in range(model.n_layer):
            q, k, v = model.qkv(layer, h)                                # each (B, nh, L_new, hs)
            if cache[layer] is not None:
                k = torch.cat([cache[layer][0], k], dim=2)               # (B, nh, n + L_new, hs)
                v = torch.cat([cache[layer][1], v], dim=2)
            cache[layer] = (k, v)
            h = model.finish_block(layer, h, masked_attention(q, k, v, mask))
        n += L_new
        logits = model.head(h)[:, -1]                                    # (B, V): the next token's
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            u = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
            nxt = (logits.double() / temperature + gumbel).argmax(-1)   # (B,)
        x = torch.cat([x, nxt[:, None]], dim=1)
    return x, cache
