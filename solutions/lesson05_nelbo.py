"""Lesson 05 - the NELBO of masked diffusion, MDLM's and LLaDA's way.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

Only [MASK]ed positions cost anything: a clean token is copied through by the denoiser. Each
masked position costs the cross-entropy of the true token under the model,

    CE^l = -log softmax(logits^l)[x0^l]      (the [MASK] logit set to -inf first, SUBS),

weighted by how much that noise level matters. For the log-linear schedule alpha_t = 1 - t the
continuous-time weight is -alpha'_t / (1 - alpha_t) = 1/t.

Conventions: logits (B, L, V); x0, xt (B, L) int64; t (B,) float one time per sequence.
Tasks 5.3 and 5.4 compute a whole estimate: they draw the noise, call a denoiser
``model(xt) -> (B, L, V) logits`` and add up the weighted cross-entropies.
"""
import torch


def masked_ce(logits, x0, xt, mask_id):
    """-log x_theta(x_t)[x0] at masked positions, 0 at clean ones: (B, L) float32. (A helper, given.)"""
    logits = logits.float().clone()
    logits[..., mask_id] = float("-inf")
    logp = torch.log_softmax(logits, dim=-1)                          # (B, L, V)
    ce = -logp.gather(-1, x0[..., None]).squeeze(-1)                   # (B, L)
    return torch.where(xt == mask_id, ce, torch.zeros_like(ce))


def mdlm_nelbo(logits, x0, xt, t, mask_id):
    """Task 5.1: MDLM's one-sample NELBO estimate per token (log-linear schedule).

        NELBO = 1/(B L) * sum_b (1 / t_b) * sum_{l : xt[b,l] = MASK} CE[b, l]

    A bound on the negative log-likelihood per token: exp(NELBO) bounds the perplexity.
    logits: (B, L, V); x0, xt: (B, L); t: (B,) in (0, 1]. Returns a 0-d float tensor (nats).
    You may use ``masked_ce`` from this file.
    """
    B, L = x0.shape
    weight = 1.0 / torch.as_tensor(t, dtype=torch.float32)             # (B,): -alpha'/(1 - alpha) = 1/t
    per_seq = masked_ce(logits, x0, xt, mask_id).sum(dim=1)            # (B,)
    return (weight * per_seq).sum() / (B * L)


def llada_loss(logits, x0, xt, p_mask, mask_id):
    """Task 5.2: LLaDA's pretraining loss.

        loss = 1/(B L) * sum_b sum_{l masked} CE[b, l] / p_mask[b]

    Divided by ALL B*L tokens, not by the number of masked ones. With p_mask = t (log-linear)
    it is the same number as ``mdlm_nelbo``: the same objective under another name.
    logits: (B, L, V); x0, xt: (B, L); p_mask: (B,) in (0, 1]. Returns a 0-d float tensor.
    """
    B, L = x0.shape
    p = torch.as_tensor(p_mask, dtype=torch.float32)[:, None]          # (B, 1)
    return (masked_ce(logits, x0, xt, mask_id) / p).sum() / (B * L)


def power_nelbo(model, x0, k, mask_id, generator, eps=1e-3):
    """Task 5.3: one Monte Carlo estimate of the continuous-time NELBO per token, for a NEW schedule

        alpha_t = 1 - t**k            (k > 0; k = 1 is the log-linear schedule),

    the whole computation behind one training step's loss. The weight of each masked token's
    cross-entropy is the lesson's w(t) = -alpha'_t / (1 - alpha_t): work it out for THIS alpha on
    paper first (it is 1/t only when k = 1). Then

        NELBO = 1/(B L) * sum_b w(t_b) * sum_{l : xt[b,l] = MASK} CE[b, l].

    model: a callable, model(xt) -> logits (B, L, V); x0: (B, L) int64 clean tokens (no [MASK]);
    k: a float > 0; generator: a torch.Generator; eps: the smallest time. Draw from ``generator``
    in exactly this order (lesson 02's conventions):

    1. the times, antithetic: u = torch.rand(1, generator=generator, dtype=torch.float64), then
       t = ((u + b / B) mod 1) * (1 - eps) + eps for b = 0, ..., B - 1: (B,) float64;
    2. the masks: r = torch.rand(B, L, generator=generator, dtype=torch.float64); position l of
       row b becomes mask_id where r[b, l] >= alpha_{t_b} (so with probability 1 - alpha = t**k);
    3. logits = model(xt): one call.

    Returns a 0-d float tensor (nats per token). You may use ``masked_ce``.
    """
    B, L = x0.shape
    u = torch.rand(1, generator=generator, dtype=torch.float64)
    t = torch.remainder(u + torch.arange(B, dtype=torch.float64) / B, 1.0) * (1 - eps) + eps  # (B,)
    alpha = 1 - t ** k                                                 # (B,) P(still clean)
    r = torch.rand(B, L, generator=generator, dtype=torch.float64)
    xt = torch.where(r >= alpha[:, None], torch.full_like(x0, mask_id), x0)
    logits = model(xt)                                                 # (B, L, V)
    w = k / t                                                          # k t^(k-1) / t^k
    per_seq = masked_ce(logits, x0, xt, mask_id).sum(dim=1)            # (B,)
    return (w * per_seq).sum() / (B * L)


def t_step_nelbo(model, x0, T, mask_id, generator):
    """Task 5.4: the T-step NELBO per token, one KL term per reverse step (log-linear alpha_t = 1 - t).

        NELBO_T = sum_{i=1}^{T} E_{x_t ~ q(x_t | x0)} [ (alpha_s - alpha_t) / (1 - alpha_t) * sum_{l : x_t^l = MASK} CE^l ],
        t = i / T,   s = t - 1/T = (i - 1) / T.

    The prior term is 0 (x_1 is all [MASK] under q and under the model), and the i = 1 term is the
    reconstruction. Estimate every term with one fresh x_t of its own, walking the steps in the
    order a sampler meets them, i = T, T - 1, ..., 1. For each step, in this order:

    1. r = torch.rand(B, L, generator=generator, dtype=torch.float64); position l of row b becomes
       mask_id where r[b, l] >= alpha_t (alpha_t = 1 - t, the same for every row);
    2. logits = model(xt): one call per step, T calls in all;
    3. add the step's weight times the sum of ``masked_ce`` over the whole batch.

    model: a callable, model(xt) -> logits (B, L, V); x0: (B, L) int64 clean tokens; T: int >= 1;
    generator: a torch.Generator. Returns the total divided by B * L: a 0-d float tensor, nats per
    token. With T = 1 it is the cost of predicting every token from the all-[MASK] row.
    """
    B, L = x0.shape
    total = torch.zeros((), dtype=torch.float64)
    for i in range(T, 0, -1):
        t, s = i / T, (i - 1) / T
        alpha_t, alpha_s = 1 - t, 1 - s
        r = torch.rand(B, L, generator=generator, dtype=torch.float64)
        xt = torch.where(r >= alpha_t, torch.full_like(x0, mask_id), x0)
        logits = model(xt)                                             # (B, L, V)
        weight = (alpha_s - alpha_t) / (1 - alpha_t)                   # (t - s) / t = 1 / i
        total = total + weight * masked_ce(logits, x0, xt, mask_id).sum()
    return total / (B * L)
