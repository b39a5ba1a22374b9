"""The record of a sampling run (lessons 07, 08, 11, 15): the state after every step, when each position
was committed, the confidences and the network calls; the lessons replay, plot and animate it."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Trace:
    """What a sampler did, step by step (CPU tensors).

    states:      list of (B, L) token ids after each step (states[0] is the start);
    reveal_step: (B, L) int, the step (1-based) at which each position was committed; 0 for
                 positions given from the start (prompt, infilling context);
    confidences: list of (B, L) float, the confidence of each masked position's candidate at that
                 step (nan where nothing was masked);
    nfe:         number of network calls (function evaluations); a classifier-free-guidance step
                 is one call on a doubled batch.
    revises:     True for samplers that may change a token after it appeared (uniform-state
                 diffusion and ReMDM's remasking, lesson 15); then ``reveal_step`` is the step of
                 each position's *last* change and ``changed_at`` tells the whole story.
    """
    states: list = field(default_factory=list)
    reveal_step: torch.Tensor | None = None
    confidences: list = field(default_factory=list)
    nfe: int = 0
    revises: bool = False

    @property
    def final(self) -> torch.Tensor:
        return self.states[-1]

    @property
    def steps(self) -> int:
        return len(self.states) - 1

    def changed_at(self, step: int) -> torch.Tensor:
        """(B, L) bool: the positions whose token changed at ``step`` (1-based)."""
        return self.states[step] != self.states[step - 1]

    def last_change(self, step: int) -> torch.Tensor:
        """(B, L) int: the last step <= ``step`` at which each position changed, 0 if never."""
        last = torch.zeros_like(self.states[0])
        for k in range(1, step + 1):
            last = torch.where(self.changed_at(k), torch.full_like(last, k), last)
        return last

    def state_at(self, step: int) -> torch.Tensor:
        """Rebuild the state after ``step`` from the final tokens and the reveal steps alone: equal
        to ``states[step]`` when revealed tokens never change (tested). A revising trace keeps
        every state, so it returns ``states[step]``."""
        if self.revises:
            return self.states[step]
        mask_id = self._mask_id
        keep = self.reveal_step <= step
        return torch.where(keep, self.final, torch.full_like(self.final, mask_id))

    _mask_id: int = -1
