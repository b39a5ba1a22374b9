"""One Transformer for every mode: autoregressive, masked diffusion, block diffusion.

Taught in lesson 06. The same network serves all the objectives in minidlm;
only the attention pattern changes:

* bidirectional (diffusion denoiser): ``model(idx)`` -- no mask at all;
* causal (AR language model):         ``model(idx, is_causal=True)``;
* anything else (block diffusion, Eso-LM): ``model(idx, attn_mask=M)`` with a
  boolean ``M`` where True means "query i may attend to key j".

``shift_logits=True`` (Dream's AR shift, lesson 06): a diffusion model adapted from an AR model
keeps the AR head, whose output at position l predicts token l + 1; ``forward`` moves it one place
right so every caller still gets logits aligned with the positions.

Positions are encoded with RoPE (rotary embeddings on q and k), so a token's
position is an explicit input (``positions=``) rather than its index in the
tensor: samplers may reorder tokens and still tell the model where each came from.

A ``KVCache`` stores the keys/values of tokens already processed, so a sampler
can feed new tokens in chunks without recomputing the prefix.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_choice, check_positive_int, check_tensor


# ----------------------------------------------------------------------------- config

def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _compiling() -> bool:
    """True while torch.compile traces us: skip value checks that would break the graph."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


@dataclass
class ModelConfig:
    vocab_size: int                 # number of token ids, [MASK] included
    max_len: int                    # longest sequence (and RoPE position) the model accepts
    n_layer: int                    # number of Transformer blocks
    n_head: int                     # attention heads per block
    d_model: int                    # width of the residual stream
    dropout: float = 0.0            # dropout on attention weights and residual branches
    tie_embeddings: bool = True     # LM head shares its weight matrix with the token embedding
    rope_base: float = 10000.0      # RoPE frequency base (theta)
    mlp_ratio: int = 4              # MLP hidden width = mlp_ratio * d_model
    mask_id: int | None = None      # [MASK] id: its logit is forced to -inf (MDLM's SUBS); None for AR
    bias: bool = False              # biases in Linear layers
    shift_logits: bool = False      # Dream's AR shift: position l's logits come from the head at l - 1

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "n_layer", "n_head", "d_model", "mlp_ratio"):
            check_positive_int(name, getattr(self, name))
        if self.d_model % self.n_head != 0:
            raise ValueError(f"d_model: expected a multiple of n_head, got d_model={self.d_model}, "
                             f"n_head={self.n_head}")
        if (self.d_model // self.n_head) % 2 != 0:
            raise ValueError(f"d_model: head dim d_model // n_head must be even for RoPE, got "
                             f"{self.d_model} // {self.n_head} = {self.d_model // self.n_head}")
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a float in [0, 1), got {self.dropout!r}")
        if not _is_number(self.rope_base) or not self.rope_base > 1.0:
            raise ValueError(f"rope_base: expected a number > 1, got {self.rope_base!r}")
        for name in ("tie_embeddings", "bias", "shift_logits"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        if self.mask_id is not None and (isinstance(self.mask_id, bool) or not isinstance(self.mask_id, int)
                                         or not 0 <= self.mask_id < self.vocab_size):
            raise ValueError(f"mask_id: expected None or an int in [0, vocab_size={self.vocab_size}), "
                             f"got {self.mask_id!r}")
        if self.shift_logits and self.mask_id is None:
            raise ValueError("shift_logits: only for a diffusion model (bidirectional, with a mask_id); "
                             "an AR model's head already predicts the next token")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not d["shift_logits"]:
            del d["shift_logits"]  # added later: unshifted configs keep the dicts they always had
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise ValueError(f"d: expected a dict of ModelConfig fields, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"d: unknown ModelConfig keys {unknown}; known keys are {sorted(known)}")
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(required - set(d))
        if missing:
            raise ValueError(f"d: missing required ModelConfig keys {missing}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides) -> "ModelConfig":
        """A named size, e.g. ``ModelConfig.preset("nano", vocab_size=1000, mask_id=999)``."""
        check_choice("name", name, PRESETS)
        fields = {**PRESETS[name], **overrides}
        if "vocab_size" not in fields:
            raise ValueError(f"vocab_size: required, e.g. ModelConfig.preset({name!r}, vocab_size=...)")
        return cls.from_dict(fields)


# vocab_size is left to the caller: it belongs to the tokenizer, not to the size.
PRESETS = {
    # nano: what 2 CPU cores train well in an hour (~1M params); the course's shipped models.
    "nano": dict(n_layer=4, n_head=4, d_model=128, max_len=64),      # ~0.9M params at vocab 1000
    "mini": dict(n_layer=6, n_head=8, d_model=256, max_len=128),     # ~5M params: a longer CPU run
    "small": dict(n_layer=12, n_head=12, d_model=768, max_len=1024),  # GPT-2-small class
}


# The KV cache (lessons 09-10) lives in kvcache.py; importable from here as before.
from .kvcache import KVCache  # noqa: E402,F401


# ----------------------------------------------------------------------------- layers

def rope_tables(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of the rotation angles, each (..., L, head_dim/2), in float32."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions.to(torch.float32)[..., None] * inv_freq  # (..., L, hs/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[i], x[i + hs/2]) of x (B, nh, L, hs) by its position's angle."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, nh, L, hs/2) each
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, nh, L, hs)


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        if hasattr(F, "rms_norm"):  # torch >= 2.4
            return F.rms_norm(x, (x.shape[-1],), self.weight, eps=1e-6)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.n_head, self.layer_idx, self.dropout = cfg.n_head, layer_idx, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.proj.is_residual_proj = True  # scaled init, see Model._init_weights
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, attn_mask, is_causal, cache):
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)                     # 3 x (B, L, D)
        q = q.view(B, L, self.n_head, D // self.n_head).transpose(1, 2)  # (B, nh, L, hs)
        k = k.view(B, L, self.n_head, D // self.n_head).transpose(1, 2)  # (B, nh, L, hs)
        v = v.view(B, L, self.n_head, D // self.n_head).transpose(1, 2)  # (B, nh, L, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.append(self.layer_idx, k, v)              # (B, nh, n_cached + L, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, L, hs)
        y = y.transpose(1, 2).contiguous().view(B, L, D)           # (B, L, D)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.proj.is_residual_proj = True
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.d_model), SelfAttention(cfg, layer_idx)
        self.norm2, self.mlp = RMSNorm(cfg.d_model), MLP(cfg)

    def forward(self, x, cos, sin, attn_mask, is_causal, cache):
        x = x + self.attn(self.norm1(x), cos, sin, attn_mask, is_causal, cache)
        return x + self.mlp(self.norm2(x))


# ----------------------------------------------------------------------------- model

class Model(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ValueError(f"config: expected a ModelConfig, got {type(config).__name__}")
        self.config = cfg = config
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.n_layer)])
        self.norm_f = RMSNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight  # one matrix, used at input and output
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = 0.02
            if getattr(module, "is_residual_proj", False):
                std = 0.02 / math.sqrt(2 * self.config.n_layer)  # keeps the residual stream's variance flat
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def new_cache(self, batch_size: int, device=None, dtype=None, capacity: int | None = None) -> KVCache:
        """An empty KVCache for ``batch_size`` sequences of up to ``capacity`` (default max_len) tokens."""
        capacity = self.config.max_len if capacity is None else capacity
        check_positive_int("capacity", capacity)
        if capacity > self.config.max_len:
            raise ValueError(f"capacity: expected at most max_len={self.config.max_len}, got {capacity}")
        return KVCache(self.config.n_layer, batch_size=batch_size, capacity=capacity, device=device, dtype=dtype)

    def forward(self, idx, attn_mask=None, positions=None, cache=None, is_causal=False):
        """Logits (B, L, V) for token ids ``idx`` (B, L).

        attn_mask: None or bool, True = may attend; (L, Lk), (B, L, Lk) or (B, 1, L, Lk),
                   where Lk = L, or len(cache) + L with a cache.
        positions: None (0..L-1, or len(cache).. with a cache) or int64 (L,) / (B, L), each < max_len.
        cache:     None or a KVCache; the new keys/values are appended to it.
        is_causal: AR mode; with a cache, new tokens see all cached ones and causally each other.

        With ``config.shift_logits`` the head's output at l - 1 is returned at l (position 0 keeps
        its own; it is [BOS], never predicted); only for whole sequences in index order: no cache,
        no is_causal, no positions.
        """
        cfg = self.config
        check_tensor("idx", idx, ndim=2, dtype_kind="int")
        B, L = idx.shape
        if L == 0 or L > cfg.max_len:
            raise ValueError(f"idx: expected sequence length in [1, max_len={cfg.max_len}], got {L}")
        if not _compiling() and ((idx < 0) | (idx >= cfg.vocab_size)).any():  # one host sync
            raise ValueError(f"idx: token ids must lie in [0, vocab_size={cfg.vocab_size}), got min "
                             f"{idx.min().item()}, max {idx.max().item()}")
        if attn_mask is not None and is_causal:
            raise ValueError("attn_mask: give either attn_mask or is_causal=True, not both")
        if cfg.shift_logits and (is_causal or cache is not None or positions is not None):
            raise ValueError("shift_logits: the shifted model reads position l's logits from the head at "
                             "l - 1 of the same forward, so it takes whole sequences in index order: "
                             "no is_causal, cache or positions")

        n_cached = 0
        if cache is not None:
            if not isinstance(cache, KVCache) or cache.n_layer != cfg.n_layer:
                raise ValueError(f"cache: expected a KVCache with n_layer={cfg.n_layer} (see model.new_cache)")
            if cache.batch_size is None:
                cache.batch_size = B
            if cache.batch_size != B:
                raise ValueError(f"cache: holds batch size {cache.batch_size} but idx has batch size {B}")
            if cache.capacity is None:
                cache.capacity = cfg.max_len
            n_cached = len(cache)
            if n_cached + L > min(cache.capacity, cfg.max_len):
                raise ValueError(f"cache: {n_cached} cached + {L} new tokens exceed its capacity "
                                 f"{cache.capacity} (max_len={cfg.max_len})")

        # positions -> RoPE tables shared by all layers
        if positions is None:
            positions = torch.arange(n_cached, n_cached + L, device=idx.device)  # (L,)
        else:
            check_tensor("positions", positions, dtype_kind="int")
            if tuple(positions.shape) not in ((L,), (B, L)):
                raise ValueError(f"positions: expected shape ({L},) or ({B}, {L}), got {tuple(positions.shape)}")
            if not _compiling() and ((positions < 0) | (positions >= cfg.max_len)).any():
                raise ValueError(f"positions: expected values in [0, max_len={cfg.max_len})")
        cos, sin = rope_tables(positions, cfg.head_dim, cfg.rope_base)  # (L, hs/2) or (B, L, hs/2)
        if cos.dim() == 3:
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, L, hs/2): broadcast over heads

        # attention pattern
        Lk = n_cached + L
        if attn_mask is not None:
            attn_mask = self._check_mask(attn_mask, B, L, Lk)  # (B or 1, 1, L, Lk)
        elif is_causal and cache is not None:
            # SDPA's is_causal aligns the triangle top-left, which is wrong when Lq != Lk:
            # build it ourselves. Query i (absolute n_cached + i) sees keys j <= n_cached + i.
            q_pos = torch.arange(L, device=idx.device)[:, None] + n_cached  # (L, 1)
            attn_mask = torch.arange(Lk, device=idx.device)[None, :] <= q_pos  # (L, Lk)
            is_causal = False
        # otherwise: no mask at all (bidirectional) or SDPA's is_causal, so CUDA can use flash kernels

        x = self.drop(self.tok_emb(idx))  # (B, L, D)
        for block in self.blocks:
            x = block(x, cos, sin, attn_mask, is_causal, cache)
        if cache is not None:
            cache.commit(L)
        logits = self.lm_head(self.norm_f(x))  # (B, L, V)
        if cfg.shift_logits:
            # Dream: the head at l - 1 predicts token l; position 0 ([BOS]) keeps its own logits
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # (B, L, V)
        if cfg.mask_id is not None:
            # SUBS parameterization: the denoiser never predicts [MASK]
            logits[..., cfg.mask_id] = float("-inf")
        return logits

    @staticmethod
    def _check_mask(attn_mask, B, L, Lk) -> torch.Tensor:
        check_tensor("attn_mask", attn_mask, dtype_kind="bool")
        shape = tuple(attn_mask.shape)
        ok = {2: shape == (L, Lk),
              3: shape[1:] == (L, Lk) and shape[0] in (1, B),
              4: shape[1:] == (1, L, Lk) and shape[0] in (1, B)}.get(attn_mask.dim(), False)
        if not ok:
            raise ValueError(f"attn_mask: expected shape ({L}, {Lk}), ({B}, {L}, {Lk}) or ({B}, 1, {L}, {Lk}), "
                             f"got {shape}")
        # NB: a query row with no True entry makes SDPA return NaN for that row.
        if attn_mask.dim() == 2:
            return attn_mask[None, None]  # (1, 1, L, Lk)
        if attn_mask.dim() == 3:
            return attn_mask[:, None]     # (B, 1, L, Lk)
        return attn_mask

    # ------------------------------------------------------------------------- accounting

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count (shared tensors counted once).

        non_embedding=True drops the token-embedding lookup table, which costs no
        matmul FLOPs -- unless it is tied to the LM head, where it IS the output
        projection and so stays counted (as in nanoGPT)."""
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a tied tensor once
        if non_embedding and not self.config.tie_embeddings:
            n -= self.tok_emb.weight.numel()
        return n

    def flops_per_token(self, L: int) -> int:
        """Training FLOPs per token at sequence length L: 6*N + 12*n_layer*d_model*L.

        6N counts forward+backward of the weight matmuls (N = num_params(non_embedding=True));
        the second term is the attention scores/values (PaLM appendix B). This is the
        formula used for MFU."""
        check_positive_int("L", L)
        cfg = self.config
        return 6 * self.num_params(non_embedding=True) + 12 * cfg.n_layer * cfg.d_model * L

    def configure_optimizer(self, weight_decay: float, lr: float, betas=(0.9, 0.95), device_type: str = "cpu"):
        """AdamW; weight decay on 2-D weights (matmuls, embeddings) only, not on norms/biases."""
        if not _is_number(weight_decay) or weight_decay < 0:
            raise ValueError(f"weight_decay: expected a number >= 0, got {weight_decay!r}")
        if not _is_number(lr) or not lr > 0:
            raise ValueError(f"lr: expected a number > 0, got {lr!r}")
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(_is_number(b) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        check_choice("device_type", device_type, ("cpu", "cuda", "mps"))
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": float(weight_decay)},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=(device_type == "cuda"))


def pinned_sdpa(device):
    """Context for cached sampling loops: on CUDA, pin SDPA to the flash / memory-efficient
    kernels. With a KV cache the key length changes every step, and the default backend choice
    pays a large per-shape cost there (benchmarks/GPU_REFERENCE.md, trap 1: 21 vs 355
    tokens/s on an H200). A no-op elsewhere."""
    from contextlib import nullcontext
    if torch.device(device).type != "cuda":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION])
