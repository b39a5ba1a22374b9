"""Pretrained ``transformers`` models as minidlm denoisers (appendix A1).

A denoiser is anything that maps token ids (B, L) to logits (B, L, V) and knows its [MASK] id.
``HFDenoiser`` wraps a model from the Hub so ``generate``, ``ancestral``, ``generate_adaptive``,
``edit``, the traces and the denoising player run on it unchanged:

  * ``kind="masked_lm"``: an encoder masked LM (BERT, RoBERTa, ModernBERT...), a bidirectional
    denoiser trained at ONE masking rate (about 15%): exactly a one-step diffusion model, small
    enough for a laptop CPU. The sequence starts with [CLS] (the tokenizer's ``bos_id``: the
    samplers' ``prompt=[bos_id]``) and the adapter closes every row with [SEP] itself, so the model
    always sees ``[CLS] ... [SEP]`` as in training whatever length the sampler asks for.
  * ``kind="llada"``: LLaDA-8B (``GSAI-ML/LLaDA-8B-Instruct``, ``GSAI-ML/LLaDA-8B-Base``), mask id
    126336, logits at position l predict token l (no shift).
  * ``kind="dream"``: Dream-7B (``Dream-org/Dream-v0-Instruct-7B``, ``Dream-org/Dream-v0-Base-7B``),
    mask id 151666, adapted from an AR model: the output at l - 1 predicts token l
    (``config.shift_logits``, as in minidlm's own ``ModelConfig``). Both run their own modeling
    code from the Hub (``trust_remote_code=True``) and want a GPU (bf16: about 16 GB).

``from_pretrained(name)`` loads a model and its tokenizer and returns ``(HFDenoiser, HFTokenizer)``.
``transformers`` is an optional extra (``pip install -e ".[hub]"``), imported only when loading.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ._validate import check_tensor, id_range_error
from .adapters_tokenizer import HFTokenizer

KINDS = ("masked_lm", "llada", "dream")
# the diffusion LMs whose modeling code lives on the Hub: their mask ids and whether logits shift
KNOWN = {"llada": {"mask_id": 126336, "shift_logits": False},   # GSAI-ML/LLaDA-8B-Instruct
         "dream": {"mask_id": 151666, "shift_logits": True}}    # Dream-org/Dream-v0-Instruct-7B
# RoBERTa-style position ids start after the padding index: max_position_embeddings - pad - 1 usable
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm",
                     "data2vec-text", "xmod", "longformer", "luke", "mpnet", "ibert"}
HUB_EXTRA = 'pip install -e ".[hub]"'


@dataclass
class HFDenoiserConfig:
    """What the samplers read from ``model.config`` (the fields of minidlm's ``ModelConfig`` they use)."""
    max_len: int                # the longest sequence the sampler may ask for
    vocab_size: int             # V, the width of the logits (may exceed the tokenizer's length)
    mask_id: int                # the [MASK] id: a denoiser, not an AR model
    shift_logits: bool = False  # Dream: the model's output at l - 1 is returned at l
    kind: str = "masked_lm"     # masked_lm | llada | dream
    close_id: int | None = None  # masked LMs: appended after every row ([SEP]); None = nothing
    pad_id: int | None = None   # masked LMs: [PAD] positions are hidden from attention


class HFDenoiser(nn.Module):
    """A ``transformers`` model as a minidlm denoiser (appendix A1): ``forward(idx)`` (B, L) int64 ->
    float32 logits (B, L, V), without gradients, on the model's device.

    ``forbid``: ids whose logits are set to -inf so a sampler never writes them: [MASK], [CLS], [PAD],
    [UNK] and ids past the tokenizer (``wrap_pretrained`` chooses them); [SEP] / [EOS] stays allowed
    (the length-first draw and ``decode_samples`` read it as the end of the text). ``close_id``
    (masked LMs): appended after every row whose last token before any [PAD]s is not already that
    id, its logits dropped; ``pad_id``: [PAD] positions get attention mask 0 (a batch of texts of
    different lengths, padded, edits like the texts alone). ``shift_logits`` (Dream): the output
    at l - 1 is returned at l, position 0 keeps its own.
    """

    def __init__(self, model: nn.Module, *, mask_id: int, max_len: int, vocab_size: int, forbid=(),
                 shift_logits: bool = False, kind: str = "masked_lm", close_id: int | None = None,
                 pad_id: int | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"model: expected a torch.nn.Module (a transformers model), got {type(model).__name__}")
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        for name, v in (("vocab_size", vocab_size), ("max_len", max_len)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        for name, v in (("mask_id", mask_id), ("close_id", close_id), ("pad_id", pad_id)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < vocab_size):
                raise ValueError(f"{name}: expected an id in [0, vocab_size={vocab_size}), got {v!r}")
        self.model = model.eval()
        self.config = HFDenoiserConfig(max_len=max_len, vocab_size=vocab_size, mask_id=mask_id,
                                       shift_logits=bool(shift_logits), kind=kind, close_id=close_id,
                                       pad_id=pad_id)
        mask = torch.zeros(vocab_size, dtype=torch.bool)                      # (V,)
        ids = sorted({int(i) for i in forbid} | {mask_id})
        if any(not 0 <= i < vocab_size for i in ids):
            raise ValueError(f"forbid: expected ids in [0, vocab_size={vocab_size}), got {ids}")
        mask[ids] = True
        self.register_buffer("forbidden", mask.to(self.device), persistent=False)

    @property
    def device(self) -> torch.device:
        p = next(iter(self.model.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        p = next(iter(self.model.parameters()), None)
        return p.dtype if p is not None else torch.float32

    def train(self, mode: bool = True):
        """Stays in eval mode: the wrapped model is a frozen denoiser (dropout off)."""
        return super().train(False)

    def _frame(self, idx: torch.Tensor):
        """The model's input and attention mask: idx (B, L) closed by ``close_id`` ([SEP]) where a row's
        last token before any [PAD]s is not already [SEP] (else by a [PAD]), and 0 over [PAD]s (None
        when nothing is padded). Returns (ids (B, L + 1) or idx, mask (B, L + 1) or None)."""
        cfg = self.config
        if cfg.close_id is not None:
            last = idx[:, -1:]                                                 # (B, 1)
            if cfg.pad_id is not None:                                         # the last token before [PAD]s
                real = (idx != cfg.pad_id).long()                              # (B, L)
                at = (real * torch.arange(1, idx.shape[1] + 1, device=idx.device)).argmax(1, keepdim=True)
                last = idx.gather(1, at)                                       # (B, 1)
            has = last == cfg.close_id
            filler = cfg.pad_id if cfg.pad_id is not None else cfg.close_id
            idx = torch.cat([idx, torch.where(has, torch.full_like(last, filler),
                                              torch.full_like(last, cfg.close_id))], 1)   # (B, L + 1)
        attn = None
        if cfg.pad_id is not None and cfg.pad_id != cfg.close_id:
            attn = (idx != cfg.pad_id).long()                                  # (B, L')
            if bool(attn.all()) or not bool(attn.any(1).all()):
                attn = None                                # nothing padded (the plain path), or a row all [PAD]
        return idx, attn

    @torch.no_grad()
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) float32 for token ids idx (B, L) in [0, V), 1 <= L <= max_len."""
        cfg = self.config
        check_tensor("idx", idx, ndim=2, dtype_kind="int")
        B, L = idx.shape
        if not 1 <= L <= cfg.max_len:
            raise ValueError(f"idx: expected sequence length in [1, max_len={cfg.max_len}], got {L}")
        if idx.numel() and bool(((idx < 0) | (idx >= cfg.vocab_size)).any()):
            raise id_range_error("idx", idx, cfg.vocab_size)
        ids, attn = self._frame(idx.to(self.device, torch.long))
        out = self.model(input_ids=ids) if attn is None else self.model(input_ids=ids, attention_mask=attn)
        logits = out.logits if hasattr(out, "logits") else (out[0] if isinstance(out, (tuple, list)) else out)
        if logits.dim() != 3 or logits.shape[:2] != ids.shape or logits.shape[-1] != cfg.vocab_size:
            raise RuntimeError(f"model: expected logits of shape {(*ids.shape, cfg.vocab_size)}, got "
                               f"{tuple(logits.shape)} (is config.vocab_size the logits' width?)")
        logits = logits[:, :L].float()                                         # (B, L, V) drop the [SEP]
        if cfg.shift_logits:
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)         # (B, L, V) Dream's shift
        return logits.masked_fill(self.forbidden, float("-inf"))               # (B, L, V)

    def extra_repr(self) -> str:
        c = self.config
        return (f"kind={c.kind}, mask_id={c.mask_id}, vocab_size={c.vocab_size}, max_len={c.max_len}, "
                f"shift_logits={c.shift_logits}, close_id={c.close_id}")


# ---------------------------------------------------------------- building one
def _max_positions(config) -> int | None:
    """The longest input the model's position embeddings allow (RoBERTa: minus pad + 1)."""
    for name in ("max_sequence_length", "max_position_embeddings", "n_positions", "max_seq_len"):
        n = getattr(config, name, None)
        if isinstance(n, int) and n > 0:
            if getattr(config, "model_type", None) in _OFFSET_POSITIONS:
                n -= (getattr(config, "pad_token_id", None) or 0) + 1
            return n
    return None


def _logits_width(model) -> int:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    V = getattr(getattr(model, "config", None), "vocab_size", None)
    if not isinstance(V, int):
        raise ValueError("model: cannot tell the logits' width (no output embeddings, no config.vocab_size)")
    return V


def resolve_kind(config) -> str:
    """``masked_lm``, ``llada`` or ``dream`` from a config (object or dict): model_type and architectures."""
    get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    model_type = str(get("model_type", "") or "").lower()
    archs = list(get("architectures", None) or [])
    if model_type in KNOWN:
        return model_type
    if any(a.endswith("ForMaskedLM") for a in archs) or model_type in _masked_lm_types():
        return "masked_lm"
    raise ValueError(f"kind: cannot tell what kind of model this is (model_type={model_type!r}, "
                     f"architectures={archs}); pass kind='masked_lm', 'llada' or 'dream'")


def _masked_lm_types() -> set:
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES
    except ImportError:                                   # transformers missing or reorganized
        return {"bert", "roberta", "modernbert", "distilbert", "xlm-roberta", "camembert", "deberta-v2"}
    return set(MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def wrap_pretrained(model: nn.Module, tokenizer, *, kind: str = "auto", mask_id: int | None = None,
                    max_len: int | None = None) -> tuple[HFDenoiser, HFTokenizer]:
    """A loaded ``transformers`` model and its tokenizer -> (HFDenoiser, HFTokenizer) (appendix A1).

    kind: ``auto`` (from ``model.config``), ``masked_lm``, ``llada`` or ``dream`` (module docstring).
    mask_id: the [MASK] id; default: LLaDA / Dream: the config's ``mask_token_id``, the tokenizer's,
    then the known id (``KNOWN``); masked LMs: the tokenizer's mask token first. max_len: default
    the model's position limit (minus the [SEP] a masked LM's adapter appends). Masked LMs forbid
    every special token but [SEP]; diffusion LMs only [MASK] (an instruct model's own end-of-turn
    tokens stay possible). Both forbid the ids past the tokenizer's length (embedding padding rows).
    """
    config = getattr(model, "config", None)
    kind = resolve_kind(config if config is not None else {}) if kind == "auto" else kind
    if kind not in KINDS:
        raise ValueError(f"kind: expected 'auto' or one of {', '.join(KINDS)}, got {kind!r}")
    known = KNOWN.get(kind, {})
    if mask_id is None:
        own = [getattr(config, "mask_token_id", None), getattr(tokenizer, "mask_token_id", None)]
        cands = (own[::-1] if kind == "masked_lm" else own) + [known.get("mask_id")]
        mask_id = next((int(i) for i in cands if i is not None), None)
    tok = HFTokenizer(tokenizer, mask_id=mask_id)
    V = _logits_width(model)
    if not 0 <= tok.mask_id < V:
        raise ValueError(f"mask_id: expected an id below the model's vocab_size={V}, got {tok.mask_id}")
    positions = _max_positions(config)
    beyond = range(tok.vocab_size, V)                                          # embedding padding rows
    if kind == "masked_lm":
        close_id = tok.eos_id
        forbid = (tok.special_ids - {tok.eos_id}) | set(beyond)
        pad_id = tok.pad_id
        limit = None if positions is None else positions - 1                   # room for the [SEP]
    else:
        close_id, pad_id, forbid, limit = None, None, set(beyond), positions
    if max_len is None:
        if limit is None:
            raise ValueError("max_len: the model's config gives no position limit; pass max_len=")
        max_len = limit
    elif limit is not None and not 1 <= max_len <= limit:
        raise ValueError(f"max_len: expected an int in [1, {limit}] (the model's position limit), got {max_len!r}")
    den = HFDenoiser(model, mask_id=tok.mask_id, max_len=max_len, vocab_size=V, forbid=forbid,
                     shift_logits=known.get("shift_logits", False), kind=kind, close_id=close_id,
                     pad_id=pad_id)
    return den, tok


# ---------------------------------------------------------------- loading from the Hub
def _require_transformers():
    try:
        import transformers
    except ImportError as e:
        raise ImportError(f"minidlm.adapters needs the optional `transformers` package: {HUB_EXTRA}") from e
    return transformers


def _dtype_kwarg(tr) -> str:
    """``dtype`` from transformers 4.56 on, ``torch_dtype`` before (the [hub] extra allows >= 4.48)."""
    major, minor = (int(p) for p in tr.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _load_error(name: str, err: Exception) -> OSError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if os.path.isdir(str(name)):
        return OSError(f"from_pretrained: cannot load {name!r}, a local folder: {first}")
    where = os.environ.get("HF_HOME") or "~/.cache/huggingface"
    if _offline():
        return OSError(f"from_pretrained: {name!r} is not in the Hugging Face cache ({where}) and HF_HUB_OFFLINE=1 "
                       "forbids downloading it; download it once online, or pass a local folder")
    return OSError(f"from_pretrained: cannot download or find {name!r} ({first}); check the id and the network, "
                   "or pass a local folder")


def from_pretrained(name_or_path, *, kind: str = "auto", device=None, dtype=None, trust_remote_code: bool = False,
                    mask_id: int | None = None, max_len: int | None = None) -> tuple[HFDenoiser, HFTokenizer]:
    """Load a Hub id or local folder as (HFDenoiser, HFTokenizer) (appendix A1).

    kind: ``auto`` reads the config (model_type ``llada`` / ``Dream``, else a ``*ForMaskedLM``);
    masked LMs load through ``AutoModelForMaskedLM``, LLaDA and Dream through ``AutoModel`` with
    their own code (``trust_remote_code=True`` required: read it first), e.g.
    ``from_pretrained("GSAI-ML/LLaDA-8B-Instruct", trust_remote_code=True, device="cuda")``.
    device: None = ``pick_device("auto")`` (cuda, mps, cpu). dtype: None = the checkpoint's own
    (bf16 for LLaDA / Dream). Offline without a cached copy: one OSError line naming the id.
    """
    from .device import pick_device

    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise ValueError(f"name_or_path: expected a Hub id or a local folder, got {name_or_path!r}")
    if kind != "auto" and kind not in KINDS:
        raise ValueError(f"kind: expected 'auto' or one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(trust_remote_code, bool):
        raise ValueError(f"trust_remote_code: expected True or False, got {trust_remote_code!r}")
    dev = pick_device("auto" if device is None else str(device))
    tr = _require_transformers()
    name = str(name_or_path)
    try:
        config_dict, _ = tr.PretrainedConfig.get_config_dict(name)
    except (OSError, ValueError) as e:                 # hub errors are OSErrors; a malformed id a ValueError
        raise _load_error(name, e) from None
    kind = resolve_kind(config_dict) if kind == "auto" else kind
    if kind in KNOWN and not trust_remote_code:
        raise ValueError(f"trust_remote_code: {name!r} ({kind}) runs its own modeling code from the Hub; "
                         "read it, then pass trust_remote_code=True")
    loader = tr.AutoModelForMaskedLM if kind == "masked_lm" else tr.AutoModel
    try:
        tokenizer = tr.AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        model = loader.from_pretrained(name, trust_remote_code=trust_remote_code,
                                       **{_dtype_kwarg(tr): "auto" if dtype is None else dtype})
    except OSError as e:
        raise _load_error(name, e) from None
    return wrap_pretrained(model.to(dev), tokenizer, kind=kind, mask_id=mask_id, max_len=max_len)
