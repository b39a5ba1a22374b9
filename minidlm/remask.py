"""Remasking: a masked-diffusion sampler that can take back a committed token (lesson 15).

ReMDM (Wang et al., 2025, "Remasking Discrete Diffusion Models with Inference-Time Scaling")
changes one line of MDLM's ancestral step t -> s. With a remasking probability sigma_t:

  a token already decoded stays with probability 1 - sigma_t and goes back to [MASK] otherwise;
  a [MASK] becomes the model's token with probability (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t).

The two rates are chosen so the marginal q(x_s | x_0) is still the forward process's at s, so
the same trained MDM can be used; it is a valid step when 0 <= sigma_t <= sigma_max =
min(1, (1 - alpha_s) / alpha_t). sigma_t = 0 is MDLM's sampler (``sampling.ancestral``). Schedules
named as in the paper:

  "cap":     sigma_t = min(eta_cap, sigma_max);
  "rescale": sigma_t = eta_rescale * sigma_max;
  "loop":    MDLM until t_on, then alpha held at alpha(t_on) while tokens are remasked with
             sigma = min(eta_cap, sigma_max) and redrawn (a corrector loop), then MDLM from
             alpha(t_on) to 1 over the last t_off of the time grid.

The model is not time-conditioned, so a step that changed nothing reuses the last network
output, as ``ancestral`` does: ``trace.nfe`` counts real calls.
"""
from __future__ import annotations

import torch

from ._validate import check_choice, check_positive_int, make_generator
from .sampling import (_check_common, _device_of, _init_state, _new_trace, draw_candidates, filter_logits)
from .schedules import get_schedule

STRATEGIES = ("cap", "rescale", "loop")


def sigma_max(alpha_t: float, alpha_s: float) -> float:
    """The largest valid remasking probability of the step t -> s: min(1, (1 - alpha_s) / alpha_t)."""
    return 1.0 if alpha_t <= 0 else min(1.0, (1.0 - alpha_s) / alpha_t)


def remasking_sigma(strategy: str, alpha_t: float, alpha_s: float, *, eta_cap: float = 0.02,
                    eta_rescale: float = 0.02) -> float:
    """sigma_t of the step t -> s for the "cap" or "rescale" schedule (lesson 15)."""
    check_choice("strategy", strategy, ("cap", "rescale"))
    top = sigma_max(alpha_t, alpha_s)
    return min(eta_cap, top) if strategy == "cap" else eta_rescale * top


def remdm_step(x: torch.Tensor, cand: torch.Tensor, alpha_t: float, alpha_s: float, sigma: float,
               mask_id: int, u: torch.Tensor, fixed: torch.Tensor | None = None) -> torch.Tensor:
    """One ReMDM step t -> s (lesson 15). x: (B, L) current tokens; cand: (B, L) the model's drawn
    tokens; u: (B, L) uniform noise in [0, 1); fixed: (B, L) bool, positions never remasked (the
    prompt). A decoded token is remasked when u < sigma; a [MASK] is decoded when
    u < (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t). Returns the new tokens (B, L)."""
    is_mask = x == mask_id                                                      # (B, L)
    p_unmask = 1.0 if alpha_t >= 1 else (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)
    unmask = is_mask & (u < p_unmask)
    remask = ~is_mask & (u < sigma)
    if fixed is not None:
        remask &= ~fixed
    x = torch.where(unmask, cand, x)
    return torch.where(remask, torch.full_like(x, mask_id), x)


def _alpha_path(sched, steps: int, strategy: str, t_on: float, t_off: float) -> list[float]:
    """alpha at the grid times 1, (T-1)/T, ..., 0; for "loop", alpha is held at alpha(t_on) over
    [t_off, t_on] and rises linearly to 1 after t_off."""
    times = [i / steps for i in range(steps, -1, -1)]
    if strategy != "loop":
        return [float(sched.alpha(t)) for t in times]
    a_on = float(sched.alpha(t_on))
    out = []
    for t in times:
        if t >= t_on:
            out.append(float(sched.alpha(t)))
        elif t >= t_off:
            out.append(a_on)
        else:
            out.append(a_on + (1 - a_on) * (1 - t / t_off))
    return out


@torch.no_grad()
def remdm_generate(model, length: int, steps: int, mask_id: int, *, strategy: str = "cap",
                   eta_cap: float = 0.02, eta_rescale: float = 0.02, t_on: float = 0.55, t_off: float = 0.05,
                   schedule="loglinear", batch_size: int = 1, prompt=None, temperature: float = 1.0,
                   top_k: int | None = None, top_p: float | None = None, generator=None, device=None):
    """ReMDM sampling (lesson 15): MDLM's ancestral sampler whose decoded tokens may go back to
    [MASK] and be drawn again, so the model can revise its earlier choices. ``steps`` may exceed
    the length (more steps, more chances to fix a token: ReMDM's inference-time scaling). The
    last step (alpha_s = 1) decodes every [MASK] left and remasks nothing. Returns (tokens, Trace)
    with ``trace.revises`` True."""
    V = _check_common(model, steps, temperature, mask_id, length, top_k, top_p)
    check_choice("strategy", strategy, STRATEGIES)
    check_positive_int("steps", steps)
    for name, v in (("eta_cap", eta_cap), ("eta_rescale", eta_rescale), ("t_on", t_on), ("t_off", t_off)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"{name}: expected a number in [0, 1], got {v!r}")
    if strategy == "loop" and not 0 < t_off < t_on < 1:
        raise ValueError(f"t_on, t_off: expected 0 < t_off < t_on < 1 for the loop, got t_on={t_on}, t_off={t_off}")
    sched = get_schedule(schedule)
    device = _device_of(model, device)
    g = make_generator(generator)
    x, _ = _init_state(length, batch_size, mask_id, prompt, None, device, V)
    fixed = x != mask_id                                                        # (B, L) the prompt
    tr = _new_trace(x, mask_id)
    tr.revises = True
    alphas = _alpha_path(sched, steps, strategy, t_on, t_off)
    logits, changed = None, True
    for k in range(steps):
        a_t, a_s = alphas[k], alphas[k + 1]
        if strategy == "loop":
            sigma = min(eta_cap, sigma_max(a_t, a_s)) if a_t == a_s else 0.0
        else:
            sigma = remasking_sigma(strategy, a_t, a_s, eta_cap=eta_cap, eta_rescale=eta_rescale)
        if a_s >= 1:
            sigma = 0.0                                                         # the last step decodes, never remasks
        if logits is None or changed:
            logits = model(x).float()
            logits[..., mask_id] = float("-inf")
            tr.nfe += 1
        cand = draw_candidates(filter_logits(logits, top_k, top_p), temperature, g)   # (B, L)
        u = torch.rand(x.shape, generator=g, dtype=torch.float64,
                       device=g.device if g is not None else x.device).to(x.device)
        new = remdm_step(x, cand, a_t, a_s, sigma, mask_id, u, fixed)
        changed = bool((new != x).any())
        conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)
        tr.states.append(new.cpu().clone())
        tr.confidences.append(conf.float().cpu())
        x = new
    tr.reveal_step = tr.last_change(steps)
    return x, tr
