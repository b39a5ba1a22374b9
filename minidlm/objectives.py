"""The objectives' losses and the validation loss of the training loop (lesson 06).

One function per objective, each readable on its own: ``mdm_loss`` (masked diffusion, lesson 06),
``ar_objective`` (next-token prediction, lesson 06), ``esolm_objective`` (the AR/MDM hybrid,
lessons 09-10), block diffusion (``blocks.bd3_loss``, lesson 14) and uniform-state diffusion
(``uniform.udlm_loss``, lesson 15). ``compute_loss`` picks one from a ``TrainConfig``; ``evaluate`` is the validation
loss with fixed seeds. ``compute_loss`` and ``evaluate`` are re-exported by ``minidlm.train``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .adapt import anneal_mask
from .data import batch_at
from .esolm import esolm_loss
from .forward import mask_tokens, sample_times
from .losses import ar_loss, mdlm_nelbo
from .schedules import get_schedule

if TYPE_CHECKING:
    from .train import TrainConfig


def mdm_loss(model, x0, mask_id: int, generator, schedule="loglinear", eps: float = 1e-3,
             step: int | None = None, anneal_steps: int = 0, rows: slice | None = None) -> torch.Tensor:
    """The masked-diffusion loss of a clean batch x0 (B, L): MDLM's NELBO estimate, nats per token.

    Draw one time t per row, mask each token (but [BOS] at position 0) with probability
    1 - alpha(t), let the bidirectional denoiser fill in the blanks, and average
    w(t) * (-log p(x0 | x_t)) at the masked positions over the L - 1 tokens after [BOS]
    (w(t) = 1/t for the log-linear schedule).

    ``step`` and ``anneal_steps``: AR-to-diffusion adaptation (lesson 06, section 5), attention
    opened gradually over the first anneal_steps optimizer steps; its (L, L) mask is drawn after
    the noise. ``rows``: the loss of these rows only (a micro-batch of train.py's split batch); the
    noise is drawn for the whole batch first, so a row's noise does not depend on the split."""
    sched = get_schedule(schedule)
    B, L = x0.shape
    t = sample_times(B, eps, generator=generator, device=x0.device)               # (B,) float64 in [eps, 1)
    keep = torch.zeros(L, dtype=torch.bool, device=x0.device)
    keep[0] = True                                                                  # [BOS] stays clean
    xt = mask_tokens(x0, sched.alpha(t), mask_id, generator, keep=keep)            # (B, L): masked at rate 1 - alpha(t)
    attn = anneal_mask(step, anneal_steps, L, generator, x0.device) if step is not None else None  # (L, L) or None
    if rows is not None:
        x0, xt, t = x0[rows], xt[rows], t[rows]                                     # (b, L), (b, L), (b,)
    logits = model(xt) if attn is None else model(xt, attn_mask=attn)             # (b, L, V): bidirectional
    # per token the model produces: [BOS] is never masked, so it is not counted (L - 1 per row)
    return mdlm_nelbo(logits, x0, xt, t, mask_id, sched, reduction="token", keep=keep)


def ar_objective(model, x0) -> torch.Tensor:
    """The autoregressive loss of a clean batch x0 (B, L): causal attention, and the logits at
    position i scored against the next token x0[i + 1]; the mean over the L - 1 predicted tokens,
    nats per token."""
    return ar_loss(model(x0, is_causal=True), x0)


def esolm_objective(model, x0, mask_id: int, generator, alpha0: float, variant: str, eps: float = 1e-3,
                    rows: slice | None = None) -> torch.Tensor:
    """Eso-LM's hybrid NELBO of a clean batch x0 (B, L) (lessons 09-10). It splits a batch between
    its two terms, so ``rows`` (a micro-batch) gets its own noise, seeded by the batch's generator
    and its first row: the same estimate in expectation as the whole batch, not the same numbers."""
    if rows is not None:                    # this micro-batch's own noise, seeded by the batch's and its first row
        seed = int(torch.randint(2**62, (1,), generator=generator)) + rows.start
        generator, x0 = torch.Generator().manual_seed(seed), x0[rows]               # (b, L)
    L = x0.shape[1]
    keep = torch.zeros(L, dtype=torch.bool, device=x0.device)
    keep[0] = True                                                                  # [BOS] stays clean
    # alpha0 = 1 (resp. 0) makes the sequential (resp. diffusion) term identically 0: give every
    # row to the other term instead of wasting half the batch
    kappa = 1.0 if alpha0 == 1 else 0.0 if alpha0 == 0 else 0.5
    loss, _ = esolm_loss(model, x0, alpha0, variant, kappa, generator, keep, eps=eps, mask_id=mask_id)
    return loss


def compute_loss(model, x0, cfg: TrainConfig, mask_id: int, generator, rows: slice | None = None,
                 step: int | None = None) -> torch.Tensor:
    """The objective's loss for a clean batch x0 (B, L): a scalar, nats per token.

    ``rows``: the loss of these rows only, one micro-batch of a batch split over processes or
    gradient-accumulation steps (mdm's micro-batch losses average to the batch's loss; esolm's
    are the same estimate in expectation). ``step``: the optimizer step, for mdm's attention
    annealing (``cfg.anneal_steps``); None (evaluation): bidirectional."""
    if cfg.objective == "ar":
        return ar_objective(model, x0 if rows is None else x0[rows])
    if cfg.objective == "bd3lm":
        from .blocks import bd3_loss
        return bd3_loss(model, x0, mask_id, cfg.block_size, generator, cfg.schedule, cfg.eps, rows)
    if cfg.objective == "udlm":
        from .uniform import udlm_loss
        return udlm_loss(model, x0, mask_id, generator, cfg.schedule, cfg.eps, rows)
    if cfg.objective == "esolm":
        return esolm_objective(model, x0, mask_id, generator, cfg.alpha0, cfg.variant, cfg.eps, rows)
    return mdm_loss(model, x0, mask_id, generator, cfg.schedule, cfg.eps, step, cfg.anneal_steps, rows)


@torch.no_grad()
def evaluate(model, val: torch.Tensor, cfg: TrainConfig, mask_id: int, device, autocast) -> float:
    """Validation loss in nats per token (a NELBO bound for mdm, the hybrid NELBO for esolm), with fixed seeds so two calls on
    the same weights agree exactly."""
    model.eval()
    total = 0.0
    n = min(cfg.eval_batches, max(1, len(val) // cfg.batch_size))
    bs = min(cfg.batch_size, len(val))
    for i in range(n):
        x0 = batch_at(val, i, bs, seed=12345, device=device)
        g = torch.Generator().manual_seed(10_000 + i)
        with autocast:
            total += compute_loss(model, x0, cfg, mask_id, g).item()
    model.train()
    return total / n
