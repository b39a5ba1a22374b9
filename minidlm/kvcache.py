"""The KV cache: keys and values of tokens already processed, one (K, V) pair per layer (lessons
09-10; ``Model.forward(..., cache=...)`` fills it). ``model`` re-exports ``KVCache``.
"""
from __future__ import annotations

import torch

from ._validate import check_positive_int


class KVCache:
    """Keys and values of already-processed tokens, one (K, V) pair per layer.

    Storage is a PREALLOCATED buffer per layer of shape (B, nh, capacity, hs)
    plus a fill pointer ``len(cache)``: memory is bounded, nothing is
    re-allocated while decoding, and attention reads the view ``[:, :, :n]``.
    Buffers are allocated lazily on the first forward, on the device and with
    the dtype of the keys (unless ``device``/``dtype`` were given).

    Protocol used by ``Model.forward``: every layer calls ``append(layer, k, v)``
    (writes past the fill pointer and returns all keys/values up to the new
    tokens), then the model calls ``commit(L)`` once to advance the pointer.
    A forward that fails half-way therefore leaves the cache unchanged.
    """

    def __init__(self, n_layer: int, batch_size: int | None = None, capacity: int | None = None,
                 device=None, dtype: torch.dtype | None = None):
        self.n_layer = check_positive_int("n_layer", n_layer)
        self.batch_size = None if batch_size is None else check_positive_int("batch_size", batch_size)
        self.capacity = None if capacity is None else check_positive_int("capacity", capacity)
        self.device = None if device is None else torch.device(device)
        self.dtype = dtype
        self.k: list[torch.Tensor | None] = [None] * n_layer  # each (B, nh, capacity, hs)
        self.v: list[torch.Tensor | None] = [None] * n_layer
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, nh, L, hs) after the cached positions; return (B, nh, n + L, hs) views."""
        B, nh, L, hs = k.shape
        if self.k[layer] is None:
            if self.capacity is None:
                raise ValueError("cache: capacity unknown; create it with model.new_cache(...)")
            shape = (B, nh, self.capacity, hs)
            device, dtype = self.device or k.device, self.dtype or k.dtype
            self.k[layer] = torch.empty(shape, device=device, dtype=dtype)
            self.v[layer] = torch.empty(shape, device=device, dtype=dtype)
        n = self.length
        self.k[layer][:, :, n:n + L] = k
        self.v[layer][:, :, n:n + L] = v
        # cast to the activations' dtype in case the cache stores another one
        return self.k[layer][:, :, :n + L].to(k.dtype), self.v[layer][:, :, :n + L].to(v.dtype)

    def commit(self, n_new: int) -> None:
        self.length += n_new

    def truncate(self, n: int) -> None:
        """Forget every position >= n (they will be overwritten by the next forward)."""
        check_positive_int("n", n, minimum=0)
        if n > self.length:
            raise ValueError(f"n: expected at most len(cache)={self.length}, got {n}")
        self.length = n

    def nbytes(self, allocated: bool = False) -> int:
        """Bytes held by the cached positions (or, with allocated=True, by the whole buffers)."""
        total = 0
        for buf in self.k + self.v:
            if buf is not None:
                per_pos = buf.numel() // buf.shape[2] * buf.element_size()
                total += per_pos * (buf.shape[2] if allocated else self.length)
        return total

    def __repr__(self) -> str:
        return (f"KVCache(n_layer={self.n_layer}, batch_size={self.batch_size}, "
                f"len={self.length}, capacity={self.capacity})")
