"""The objectives' losses and the validation loss of the training loop (lesson 06).

``compute_loss`` is one step's loss for any objective (ar, mdm, esolm) of a ``TrainConfig``;
``evaluate`` is the validation loss with fixed seeds. Both are re-exported by ``minidlm.train``.
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


def compute_loss(model, x0, cfg: TrainConfig, mask_id: int, generator, rows: slice | None = None,
                 step: int | None = None) -> torch.Tensor:
    """The objective's loss for a clean batch x0 (B, L): a scalar, nats per token.

    ``rows``: the loss of these rows only, one micro-batch of a batch split over processes or
    gradient-accumulation steps. mdm draws the noise for the whole batch before taking the rows, so
    a row's noise does not depend on the split and the micro-batch losses average to the batch's
    loss; esolm, which splits a batch between its two terms, splits each micro-batch and draws its
    noise per micro-batch (the same estimate in expectation, not the same numbers).

    ``step``: the optimizer step, for mdm's attention annealing (``cfg.anneal_steps``); its (L, L)
    mask is drawn after the noise, for the whole batch. None (evaluation): bidirectional."""
    if cfg.objective == "ar":
        x0 = x0 if rows is None else x0[rows]                                       # (b, L)
        return ar_loss(model(x0, is_causal=True), x0)
    B, L = x0.shape
    if cfg.objective == "esolm":
        if rows is not None:                    # this micro-batch's own noise, seeded by the batch's and its first row
            seed = int(torch.randint(2**62, (1,), generator=generator)) + rows.start
            generator, x0 = torch.Generator().manual_seed(seed), x0[rows]           # (b, L)
        keep = torch.zeros(L, dtype=torch.bool, device=x0.device)
        keep[0] = True                                                              # [BOS] stays clean
        # alpha0 = 1 (resp. 0) makes the sequential (resp. diffusion) term identically 0: give every
        # row to the other term instead of wasting half the batch
        kappa = 1.0 if cfg.alpha0 == 1 else 0.0 if cfg.alpha0 == 0 else 0.5
        loss, _ = esolm_loss(model, x0, cfg.alpha0, cfg.variant, kappa, generator, keep, eps=cfg.eps,
                             mask_id=mask_id)
        return loss
    sched = get_schedule(cfg.schedule)
    t = sample_times(B, cfg.eps, generator=generator, device=x0.device)           # (B,) float64
    keep = torch.zeros(L, dtype=torch.bool, device=x0.device)
    keep[0] = True                                                                  # [BOS] stays clean
    xt = mask_tokens(x0, sched.alpha(t), mask_id, generator, keep=keep)            # (B, L): the schedule's own alpha(t)
    attn = anneal_mask(step, cfg.anneal_steps, L, generator, x0.device) if step is not None else None  # (L, L)
    if rows is not None:
        x0, xt, t = x0[rows], xt[rows], t[rows]                                     # (b, L), (b, L), (b,)
    logits = model(xt) if attn is None else model(xt, attn_mask=attn)             # (b, L, V)
    # per token the model produces: [BOS] is never masked, so it is not counted (L - 1 per row)
    return mdlm_nelbo(logits, x0, xt, t, mask_id, sched, reduction="token", keep=keep)


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
