"""Attention masks as boolean (query, key) tensors, and the sort trick of Eso-LM (lesson 09).

Every mask here is True where query i MAY attend to key j, the convention of ``Model.forward``:

  ``causal_mask(L)``            AR: i sees j <= i;
  ``bidirectional_mask(L)``     MDM: everyone sees everyone;
  ``prefix_mask(L, P)``         prefix LM: the first P tokens see each other, the rest are causal;
  ``esolm_diffusion_mask``      Eso-LM's diffusion phase, variant A or B, in SORTED coordinates;
  ``esolm_sequential_mask``     Eso-LM's sequential phase over the 2L input [z0 ; x], sorted,
                                variant A (clean tokens of z0 bidirectional) or B (causal).

The sort trick. Eso-LM's attention patterns look irregular in the original token order (who is
clean depends on the sample), but become standard masks once the tokens are reordered so that all
clean tokens come first and all [MASK]s after them:

    idx = sort_indices(is_masked, ...)          # (B, L) permutation: sorted slot -> original position
    tokens_sorted = gather_sorted(tokens, idx)  # the same index for inputs, targets ...
    positions     = gather_sorted(arange(L), idx) = idx   # ... and RoPE positions
    logits = model(tokens_sorted, attn_mask=..., positions=idx)
    logits_original = gather_sorted(logits, inverse_permutation(idx))

Because RoPE positions travel with the tokens, every token keeps its original position: the model
sees the same sequence, only the attention pattern is expressed in the sorted coordinates.
"""
from __future__ import annotations

import torch

from ._validate import check_choice, check_positive_int, check_tensor, make_generator
from .forward import uniform

VARIANTS = ("A", "B")


# ----------------------------------------------------------------------------- standard masks
def causal_mask(L: int, device=None) -> torch.Tensor:
    """(L, L) bool, True where key j <= query i: autoregressive attention. Lesson 09."""
    check_positive_int("L", L)
    return torch.ones(L, L, dtype=torch.bool, device=device).tril()


def bidirectional_mask(L: int, device=None) -> torch.Tensor:
    """(L, L) bool, all True: every token sees every token (the MDM denoiser). Lesson 09."""
    check_positive_int("L", L)
    return torch.ones(L, L, dtype=torch.bool, device=device)


def prefix_mask(L: int, prefix_len: int, device=None) -> torch.Tensor:
    """(L, L) bool: the first ``prefix_len`` tokens attend to each other bidirectionally (and to
    nothing after them); every later token is causal (it sees the whole prefix and the tokens up
    to itself). prefix_len = 0 gives the causal mask, prefix_len = L the bidirectional. Lesson 09."""
    check_positive_int("L", L)
    check_positive_int("prefix_len", prefix_len, minimum=0)
    if prefix_len > L:
        raise ValueError(f"prefix_len: expected at most L={L}, got {prefix_len}")
    k_in_prefix = torch.arange(L, device=device) < prefix_len       # (L,) over keys
    return causal_mask(L, device) | k_in_prefix[None, :]           # (L, L)


# ----------------------------------------------------------------------------- Eso-LM masks
def _n_clean(n_clean, L: int, device):
    """n_clean as an int, or as an int64 (B,) tensor; checked to lie in [0, L]."""
    if isinstance(n_clean, torch.Tensor):
        check_tensor("n_clean", n_clean, ndim=1, dtype_kind="int")
        if n_clean.numel() and (int(n_clean.min()) < 0 or int(n_clean.max()) > L):
            raise ValueError(f"n_clean: expected values in [0, L={L}], got min {int(n_clean.min())}, "
                             f"max {int(n_clean.max())}")
        return n_clean.to(device if device is not None else n_clean.device)
    check_positive_int("n_clean", n_clean, minimum=0)
    if n_clean > L:
        raise ValueError(f"n_clean: expected at most L={L}, got {n_clean}")
    return n_clean


def esolm_diffusion_mask(n_clean, L: int, variant: str = "B", device=None) -> torch.Tensor:
    """Eso-LM's diffusion-phase attention in SORTED coordinates (the n_clean clean tokens first,
    the L - n_clean [MASK]s after them). Lesson 09.

    variant "B" (the paper's final Eso-LM): fully causal in the sorted order. A clean token sees only
        the clean tokens before it (so its keys/values never depend on anything decoded later:
        they can be cached exactly); a [MASK] sees every clean token, the [MASK]s before it and itself.
        It does not depend on n_clean at all.
    variant "A": causal OR (q < n_clean AND k < n_clean): clean tokens see each other
        bidirectionally (better likelihood, but a clean token's K/V change when more tokens become
        clean, so there is no exact cache); [MASK]s as in B.

    n_clean: an int, giving an (L, L) mask, or an int64 (B,) tensor (one count per row), giving
    (B, L, L).
    """
    check_positive_int("L", L)
    check_choice("variant", variant, VARIANTS)
    n = _n_clean(n_clean, L, device)
    if isinstance(n, torch.Tensor):
        device = n.device if device is None else device
    causal = causal_mask(L, device)                                    # (L, L)
    ar = torch.arange(L, device=device)
    if isinstance(n, torch.Tensor):
        if variant == "B":
            return causal.expand(n.shape[0], L, L).clone()             # (B, L, L)
        clean = ar[None, :] < n[:, None]                               # (B, L): sorted slot is clean
        return causal[None] | (clean[:, :, None] & clean[:, None, :])  # (B, L, L)
    if variant == "B":
        return causal
    clean = ar < n                                                     # (L,)
    return causal | (clean[:, None] & clean[None, :])                  # (L, L)


def esolm_sequential_mask(L: int, device=None, *, variant: str = "B", n_clean=None) -> torch.Tensor:
    """Eso-LM's sequential-phase training mask over the 2L input [z0 ; x], both halves in the same
    SORTED order (z0's clean tokens first, its [MASK]s left to right). Lesson 09.

    Rows/columns 0..L-1 are the z0 half, L..2L-1 the x half (the clean sequence), sorted slot j of
    either half at index j resp. L + j.

      z0 query j -> itself, and the x keys at sorted slots strictly before j.
                   For a [MASK] this is exactly "z0 with every position decoded before l made
                   clean": all clean tokens of z0 and the true tokens of the earlier [MASK]s.
                   z0's clean tokens follow the same rule (they carry no loss; giving them the
                   same rule keeps the mask independent of the sample, and no row is empty);
      x query j  -> variant "B": the x keys at sorted slots <= j (causal), never the z0 half;
                    variant "A": causal OR (j < n_clean AND k < n_clean): the n_clean tokens that
                    are clean in z0 (sorted first) see each other both ways, the x tokens of z0's
                    [MASK]s stay causal; never the z0 half.

    Variant A is the paper's Eso-LM (A) (official code: ``sequential_attn_mode=mixed``, used with
    ``sequential_shuffle=False`` in scripts/esolm/train_owt_esolma_alpha0_*.sh of s-sahoo/Eso-LMs).
    In its models/dit.py, ``_block_diff_mask_prefix_lm`` is the B mask (``_block_diff_mask`` with
    block_size 1) OR a prefix block on the x half only, (n <= q < n + cutoff) AND (n <= k < n + cutoff)
    with cutoff = the number of clean tokens of z0 (``EsoLMDiT._sequential_features``). Only the
    x -> x block changes: the z0-half queries (and so every [MASK]'s view, "itself + x before it")
    are the same as in B, and the x half still never sees z0. A [MASK] at slot j >= n_clean thus
    reads clean tokens that were encoded bidirectionally, as in A's diffusion phase
    (``esolm_diffusion_mask(n_clean, L, "A")`` is exactly this x -> x block). With n_clean <= 1 the
    two variants coincide.

    n_clean: required for variant "A" (ignored by "B" except for the shape): an int, giving a
    (2L, 2L) mask, or an int64 (B,) tensor (one count per row), giving (B, 2L, 2L). Without it
    (variant "B") the result is (2L, 2L).
    """
    check_positive_int("L", L)
    check_choice("variant", variant, VARIANTS)
    if variant == "A" and n_clean is None:
        raise ValueError("n_clean: variant 'A' needs the number of clean tokens of z0 (an int or a (B,) tensor)")
    n = None if n_clean is None else _n_clean(n_clean, L, device)
    if isinstance(n, torch.Tensor) and device is None:
        device = n.device
    eye = torch.eye(L, dtype=torch.bool, device=device)                    # z0 -> itself
    before = torch.ones(L, L, dtype=torch.bool, device=device).tril(-1)    # z0 j -> x k < j
    none = torch.zeros(L, L, dtype=torch.bool, device=device)              # x -> z0: never
    top = torch.cat([eye, before], 1)                                       # (L, 2L) z0 queries
    if variant == "B":
        full = torch.cat([top, torch.cat([none, causal_mask(L, device)], 1)], 0)  # (2L, 2L)
        return full.expand(n.shape[0], 2 * L, 2 * L).clone() if isinstance(n, torch.Tensor) else full
    x_x = esolm_diffusion_mask(n, L, "A", device)                          # (L, L) or (B, L, L)
    if isinstance(n, torch.Tensor):
        Bn = n.shape[0]
        bottom = torch.cat([none.expand(Bn, L, L), x_x], 2)                # (B, L, 2L)
        return torch.cat([top.expand(Bn, L, 2 * L), bottom], 1)             # (B, 2L, 2L)
    return torch.cat([top, torch.cat([none, x_x], 1)], 0)                  # (2L, 2L)


# ----------------------------------------------------------------------------- the sort trick
def sort_indices(is_masked: torch.Tensor, shuffle: bool = True, keep_masks_in_order: bool = False,
                 generator=None) -> torch.Tensor:
    """The permutation that puts clean tokens first and [MASK]s after them. Lesson 09.

    is_masked: (B, L) bool. Returns idx (B, L) int64 with idx[b, j] = the original position that
    goes to sorted slot j, computed as argsort(is_masked + offsets) with offsets in [0, 0.9):
    random offsets shuffle the tokens within each group (``shuffle=True``), linspace offsets keep
    the natural left-to-right order (``shuffle=False``). ``keep_masks_in_order=True`` uses the
    linspace offsets for the [MASK] group only (the sequential phase decodes masks left to right)
    while the clean group follows ``shuffle``.
    """
    check_tensor("is_masked", is_masked, ndim=2, dtype_kind="bool")
    for name, v in (("shuffle", shuffle), ("keep_masks_in_order", keep_masks_in_order)):
        if not isinstance(v, bool):
            raise ValueError(f"{name}: expected a bool, got {v!r}")
    B, L = is_masked.shape
    device = is_masked.device
    linear = (torch.arange(L, device=device, dtype=torch.float64) / L * 0.9).expand(B, L)  # (B, L)
    if shuffle:
        offsets = uniform((B, L), make_generator(generator), device) * 0.9                  # (B, L)
        if keep_masks_in_order:
            offsets = torch.where(is_masked, linear, offsets)
    else:
        offsets = linear
    return torch.argsort(is_masked.double() + offsets, dim=1, stable=True)               # (B, L)


def inverse_permutation(idx: torch.Tensor) -> torch.Tensor:
    """inv with inv[b, idx[b, j]] = j, so ``gather_sorted(gather_sorted(x, idx), inv) == x``. Lesson 09."""
    check_tensor("idx", idx, ndim=2, dtype_kind="int")
    B, L = idx.shape
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= L):
        raise ValueError(f"idx: expected a permutation of 0..{L - 1} in every row")
    inv = torch.empty_like(idx)
    inv.scatter_(1, idx, torch.arange(L, device=idx.device, dtype=idx.dtype).expand(B, L))
    return inv


def gather_sorted(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Reorder x along its sequence axis: out[b, j, ...] = x[b, idx[b, j], ...]. Lesson 09.

    x: (B, L, ...) (token ids, logits, positions) or (L,) shared by every row (e.g. arange(L),
    giving the original positions = idx). Returns (B, L, ...).
    """
    check_tensor("idx", idx, ndim=2, dtype_kind="int")
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    B, L = idx.shape
    if x.dim() == 1:
        x = x.expand(B, -1)                                             # (B, L)
    if x.dim() < 2 or x.shape[0] != B or x.shape[1] != L:
        raise ValueError(f"x: expected shape (L,) or (B, L, ...) with B={B}, L={L}, got {tuple(x.shape)}")
    index = idx.reshape(B, L, *([1] * (x.dim() - 2))).expand(x.shape)   # (B, L, ...) like x
    return torch.gather(x, 1, index)
