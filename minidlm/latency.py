"""Latency and trade-offs: when is an answer readable, and which settings are worth it (lesson 13).

A sampler's trace says at which network call each position became final (``Trace.reveal_step``);
a clock around the model says when each call ended (``CallClock``). Together they give the time at
which every *prefix* of the answer can be shown to a reader:

    ready[k] = time of call  max_{j <= k} reveal_step[j]

so time to first token = ready[0] and time to the full answer = ready[-1]. An AR model makes its
first token final after one call; a diffusion model may fix position 0 late, so its first token
can arrive long after its first commit. ``pareto_front`` picks the settings that no other setting
beats on both time and quality.
"""
from __future__ import annotations

import dataclasses
import time

import torch

from ._validate import check_tensor


class CausalView(torch.nn.Module):
    """The same network read as an AR model: ``generate_ar`` refuses a denoiser (a config with a
    [MASK] id), so a speed comparison times the AR baseline on the very weights the diffusion
    samplers use through this view. Calls go straight to ``model`` (hooks and clocks still see them).

        x, trace = generate_ar(CausalView(model), L, bos_id=BOS)
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.config = dataclasses.replace(model.config, mask_id=None, shift_logits=False)

    def new_cache(self, *args, **kwargs):
        return self.model.new_cache(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)


class CallClock(torch.nn.Module):
    """Wrap a model so that every call's end time is recorded (seconds since ``start()``), with the
    CUDA queue drained before reading the clock. The wrapped model's outputs are unchanged.

        clock = CallClock(model); clock.start(); x, trace = generate(clock, ...); clock.times
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.config = getattr(model, "config", None)
        self.times: list[float] = []
        self._t0 = time.perf_counter()

    def start(self) -> None:
        self.times, self._t0 = [], time.perf_counter()

    def new_cache(self, *args, **kwargs):
        return self.model.new_cache(*args, **kwargs)

    def forward(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        if out.is_cuda:
            torch.cuda.synchronize(out.device)
        self.times.append(time.perf_counter() - self._t0)
        return out


def prefix_ready_times(reveal_step: torch.Tensor, call_times) -> torch.Tensor:
    """When each prefix of the answer is final (lesson 13, task 13.1).

    reveal_step: (B, N) int, the 1-based call at which each answer position became final;
    call_times: (C,) seconds at the end of each call (C >= the largest reveal step).
    Returns (B, N) float64: ready[b, k] = call_times[max_{j <= k} reveal_step[b, j] - 1].
    """
    check_tensor("reveal_step", reveal_step, ndim=2, dtype_kind="int")
    call_times = torch.as_tensor(call_times, dtype=torch.float64)
    if reveal_step.numel() and (int(reveal_step.min()) < 1 or int(reveal_step.max()) > call_times.numel()):
        raise ValueError(f"reveal_step: expected calls in [1, {call_times.numel()}] (the number of call_times), "
                         f"got values in [{int(reveal_step.min())}, {int(reveal_step.max())}]")
    last = torch.cummax(reveal_step, dim=1).values                # (B, N) latest call needed so far
    return call_times[last - 1]                                   # (B, N)


def pareto_front(cost, loss) -> list[int]:
    """Indices of the settings no other setting dominates (lesson 13, task 13.2), sorted by cost.

    Setting j dominates i when cost[j] <= cost[i] and loss[j] <= loss[i] with one of them strictly
    smaller. Lower is better for both (e.g. seconds and generative perplexity). Of two identical
    points both are kept.
    """
    cost = torch.as_tensor(cost, dtype=torch.float64).flatten()
    loss = torch.as_tensor(loss, dtype=torch.float64).flatten()
    if cost.shape != loss.shape:
        raise ValueError(f"loss: expected as many values as cost ({cost.numel()}), got {loss.numel()}")
    c_le = cost[None, :] <= cost[:, None]                         # (i, j): cost[j] <= cost[i]
    l_le = loss[None, :] <= loss[:, None]
    strict = (cost[None, :] < cost[:, None]) | (loss[None, :] < loss[:, None])
    dominated = (c_le & l_le & strict).any(1)                      # (n,)
    keep = [i for i in range(cost.numel()) if not dominated[i]]
    return sorted(keep, key=lambda i: (float(cost[i]), float(loss[i]), i))
