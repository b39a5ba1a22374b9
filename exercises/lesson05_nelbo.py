"""Lesson 05 - the NELBO of masked diffusion, MDLM's and LLaDA's way.

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

Only [MASK]ed positions cost anything: a clean token is copied through by the denoiser. Each
masked position costs the cross-entropy of the true token under the model,

    CE^l = -log softmax(logits^l)[x0^l]      (the [MASK] logit set to -inf first, SUBS),

weighted by how much that noise level matters. For the log-linear schedule alpha_t = 1 - t the
continuous-time weight is -alpha'_t / (1 - alpha_t) = 1/t.

Conventions: logits (B, L, V); x0, xt (B, L) int64; t (B,) float one time per sequence.
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
    raise NotImplementedError("Task 5.1")


def llada_loss(logits, x0, xt, p_mask, mask_id):
    """Task 5.2: LLaDA's pretraining loss.

        loss = 1/(B L) * sum_b sum_{l masked} CE[b, l] / p_mask[b]

    Divided by ALL B*L tokens, not by the number of masked ones. With p_mask = t (log-linear)
    it is the same number as ``mdlm_nelbo``: the same objective under another name.
    logits: (B, L, V); x0, xt: (B, L); p_mask: (B,) in (0, 1]. Returns a 0-d float tensor.
    """
    raise NotImplementedError("Task 5.2")
