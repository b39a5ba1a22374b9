"""Several processes, one model: the process-group plumbing behind ``torchrun`` (lesson 06).

``torchrun --nproc_per_node=N -m minidlm train ...`` starts N copies of the same command and tells
each one its place through environment variables: ``WORLD_SIZE`` (N), ``RANK`` (0 ... N-1) and
``LOCAL_RANK`` (which GPU of this machine is its own), plus ``MASTER_ADDR``/``MASTER_PORT`` to
meet at. ``setup`` joins the group (NCCL between GPUs, gloo between CPU processes); the helpers
below are no-ops in a single process, so the training loop reads the same either way.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

_state = {"device": None, "owned": False}    # the device collectives use; whether setup() made the group
TIMEOUT = timedelta(hours=1)   # how long a rank waits in a collective: rank 0 may be tokenizing a corpus (main_first)


def env_world_size() -> int:
    """The number of processes torchrun started (``WORLD_SIZE``, 1 when unset)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"WORLD_SIZE: expected a positive integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"WORLD_SIZE: expected a positive integer, got {value!r}")
    return n


def setup(device: torch.device) -> torch.device:
    """Join the process group when ``WORLD_SIZE`` > 1 and return this process's device: on CUDA
    ``cuda:LOCAL_RANK`` with the NCCL backend, on the CPU gloo. In one process, ``device`` as given."""
    if env_world_size() == 1:
        return device
    if device.type not in ("cuda", "cpu"):
        raise ValueError(f"device: multi-process training runs on cuda (NCCL) or cpu (gloo), got {device}")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        _state["owned"] = True
    _state["device"] = device
    return device


def teardown() -> None:
    """Leave the process group if ``setup`` made it (a group made by the caller stays)."""
    if _state["owned"] and dist.is_initialized():
        dist.destroy_process_group()
    _state.update(device=None, owned=False)


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world() -> int:
    """How many processes train together (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's place, 0 ... world() - 1 (0 without a process group)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Rank 0: the one process that logs, evaluates and writes checkpoints."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


@contextmanager
def main_first():
    """Rank 0 runs the block first (it trains the tokenizer, fills the corpus cache), then the
    others run it and find that work done."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def mean(x: float) -> float:
    """The mean of ``x`` over all ranks (``x`` itself in one process)."""
    if not active():
        return x
    t = torch.tensor([x], dtype=torch.float64, device=_state["device"] or "cpu")
    dist.all_reduce(t)
    return t.item() / world()


def agree(flag: bool) -> bool:
    """Rank 0's value of ``flag`` on every rank, so that all stop at the same step."""
    if not active():
        return flag
    t = torch.tensor([int(flag)], device=_state["device"] or "cpu")
    dist.broadcast(t, src=0)
    return bool(t.item())
