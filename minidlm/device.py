"""Which device a run uses, checked before any work is done (lesson 06)."""
from __future__ import annotations

import torch


def check_device(name, available: bool = True) -> None:
    """A ValueError naming ``device`` for a string torch cannot parse or (``available``) a device
    this machine does not have, before any work is done."""
    if name == "auto":
        return
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected auto, cpu, cuda, cuda:N or mps, got {name!r}") from None
    if not available or dev.type == "cpu":
        return
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"device: {name} was asked for, but this torch ({torch.__version__}) sees no CUDA "
                             f"device; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"device: {name} was asked for, but this machine has {n} CUDA device(s)")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device: {name} was asked for, but MPS is not available here; use --device cpu")


def pick_device(name: str = "auto") -> torch.device:
    """cuda, then mps, then cpu (``"auto"``), or the device named."""
    if name != "auto":
        check_device(name)
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
