"""Test-side pieces for lesson 05's graded tests: a new schedule written in minidlm's own terms,
and two toy denoisers whose NELBO is known exactly. Plain torch callables: a learner's function
that calls them is not calling minidlm."""
from __future__ import annotations

import torch

from minidlm.schedules import Schedule


class PowerSchedule(Schedule):
    """alpha(t) = 1 - t^k, alpha'(t) = -k t^(k-1). minidlm's base class derives the NELBO weight
    -alpha'/(1 - alpha) from these two, so minidlm.losses.mdlm_nelbo(..., schedule=PowerSchedule(k))
    is the reference for task 5.3 without the test writing the answer k/t down."""

    name = "power"

    def __init__(self, k: float):
        self.k = float(k)

    def alpha(self, t):
        return 1.0 - self._t(t) ** self.k

    def dalpha(self, t):
        return -self.k * self._t(t) ** (self.k - 1)


class ContextFree:
    """Logits that ignore the input: one fixed (L, V) table ([MASK] never predicted). Under it a
    token costs the same wherever it is masked, so the NELBO equals the exact negative
    log-likelihood per token, sum_l -log p_l(x0^l) / L, whatever the schedule."""

    def __init__(self, L: int, V: int, mask_id: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.table = 2 * torch.randn(L, V, generator=g)
        self.mask_id = mask_id
        self.calls = 0

    def __call__(self, xt):
        self.calls += 1
        return self.table.expand(xt.shape[0], -1, -1).clone()

    def nll_per_token(self, x0) -> float:
        logits = self.table.clone()
        logits[:, self.mask_id] = float("-inf")
        logp = torch.log_softmax(logits.double(), -1)                 # (L, V)
        return -logp.gather(-1, x0.T).T.mean().item()                  # x0 (B, L)


class AllSameOracle:
    """The ideal denoiser of lesson 05's toy: every row is L copies of one of K tokens (ids 0..K-1,
    [MASK] = K). It copies any visible token everywhere; with none visible it is uniform over K."""

    def __init__(self, K: int):
        self.K = K
        self.calls = 0

    def __call__(self, xt):
        self.calls += 1
        B, L = xt.shape
        K = self.K
        visible = xt != K
        first = torch.where(visible, xt, torch.full_like(xt, K)).min(1).values        # (B,) a visible token or K
        logits = torch.zeros(B, L, K + 1)
        logits[..., K] = float("-inf")
        known = first < K
        onehot = torch.nn.functional.one_hot(first[known], K + 1).float()          # (n, K + 1)
        logits[known] = torch.log(onehot)[:, None, :].expand(-1, L, -1)
        return logits

    def nelbo_T(self, L: int, T: int) -> float:
        """The exact T-step NELBO per TOKEN: (log K / T) sum_i (i/T)^(L-1) (lesson 05, section 4)."""
        import math
        return math.log(self.K) / T * sum((i / T) ** (L - 1) for i in range(1, T + 1))
