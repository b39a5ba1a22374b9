"""A ``transformers`` tokenizer behind the minidlm tokenizer interface (appendix A1).

``HFTokenizer`` gives a Hugging Face tokenizer the attributes the samplers, ``decode_samples``, the
traces and the denoising player read from a minidlm tokenizer: ``encode`` (a list of ids), ``decode``,
``mask_id``, ``bos_id``, ``eos_id``, ``pad_id``, ``special_ids``, ``vocab_size``, ``id_to_token`` and
``token_strings``. A BERT-style tokenizer's [CLS] is the minidlm [BOS] and its [SEP] the [EOS]
(RoBERTa: ``<s>`` and ``</s>``), so the samplers' ``prompt=torch.tensor([tok.bos_id])`` starts a
sequence the way the masked LM was trained. ``transformers`` itself is never imported here: any
object with the tokenizer methods used below works.
"""
from __future__ import annotations

from .tokenizer import _ids_list, _Specials


def _first_id(*ids):
    """The first of ``ids`` that is not None (None when all are)."""
    return next((int(i) for i in ids if i is not None), None)


class HFTokenizer(_Specials):
    """A ``transformers`` tokenizer with the minidlm interface (appendix A1).

    mask_id, bos_id, eos_id, pad_id: override the tokenizer's own ids (LLaDA's tokenizer has no mask
    token: its mask id 126336 is given here). Defaults: mask = ``mask_token_id``; bos = ``cls_token_id``,
    else ``bos_token_id``; eos = ``sep_token_id``, else ``eos_token_id``; pad = ``pad_token_id``.
    ``vocab_size`` is the tokenizer's length (every id it can decode), which may be smaller than the
    model's logits width (LLaDA, Dream and BERT checkpoints pad the embedding matrix).
    """

    def __init__(self, hf_tokenizer, *, mask_id: int | None = None, bos_id: int | None = None,
                 eos_id: int | None = None, pad_id: int | None = None):
        for method in ("encode", "decode", "convert_ids_to_tokens"):
            if not callable(getattr(hf_tokenizer, method, None)):
                raise ValueError(f"hf_tokenizer: expected a transformers tokenizer (with .{method}), "
                                 f"got {type(hf_tokenizer).__name__}")
        self.hf = hf_tokenizer
        get = lambda name: getattr(hf_tokenizer, name, None)
        self.mask_id = _first_id(mask_id, get("mask_token_id"))
        if self.mask_id is None:
            raise ValueError("mask_id: this tokenizer has no mask token; pass the model's mask id "
                             "(LLaDA: 126336)")
        self.bos_id = _first_id(bos_id, get("cls_token_id"), get("bos_token_id"))
        self.eos_id = _first_id(eos_id, get("sep_token_id"), get("eos_token_id"))
        self.pad_id = _first_id(pad_id, get("pad_token_id"))
        self.unk_id = _first_id(get("unk_token_id"))
        if self.bos_id is None or self.eos_id is None:
            raise ValueError(f"hf_tokenizer: expected [CLS]/[SEP] or BOS/EOS tokens, got bos_id={self.bos_id}, "
                             f"eos_id={self.eos_id}; pass bos_id= and eos_id=")
        own = [self.mask_id, self.bos_id, self.eos_id, self.pad_id, self.unk_id]
        self.special_ids = {int(i) for i in list(get("all_special_ids") or []) + own if i is not None}
        self._vocab_size = max([len(hf_tokenizer)] + [i + 1 for i in self.special_ids])

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def token_to_id(self, token: str):
        i = self.hf.convert_tokens_to_ids(token)
        return None if i is None or i == self.unk_id and token != self.hf.unk_token else int(i)

    def id_to_token(self, i: int) -> str:
        return self.hf.convert_ids_to_tokens(self._check_id(i))

    def encode(self, text: str, add_special: bool = False) -> list[int]:
        """Text to ids without the tokenizer's own framing; ``add_special`` wraps in [BOS] ... [EOS]
        (BERT: [CLS] ... [SEP])."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, got {type(text).__name__}")
        ids = [int(i) for i in self.hf.encode(text, add_special_tokens=False)]
        return [self.bos_id, *ids, self.eos_id] if add_special else ids

    def decode(self, ids, skip_special: bool = False) -> str:
        """Ids to text; specials ([CLS], [MASK]...) print verbatim unless ``skip_special``."""
        ids = _ids_list(ids, self.vocab_size)
        if skip_special:
            ids = [i for i in ids if i not in self.special_ids]
        return self.hf.decode(ids, skip_special_tokens=False)

    def token_strings(self, ids) -> list[str]:
        """Each id as the text it adds to the decoded sequence, with its leading space: what the
        player shows. Read off the growing decode, so WordPiece (##ing), byte-level BPE (Ġ) and
        SentencePiece (▁) all come out right; an id where the decode is not prefix-stable falls back
        to decoding it alone."""
        ids = _ids_list(ids, self.vocab_size)
        pieces, before = [], ""
        for k in range(len(ids)):
            now = self.hf.decode(ids[: k + 1], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            if now.startswith(before) and len(now) > len(before):
                pieces.append(now[len(before):])
            else:
                alone = self.hf.decode([ids[k]], skip_special_tokens=False, clean_up_tokenization_spaces=False)
                pieces.append(alone if k == 0 or alone.startswith(" ") else " " + alone)
            before = now
        return pieces

    def __repr__(self) -> str:
        return (f"HFTokenizer({type(self.hf).__name__}, vocab_size={self.vocab_size}, mask_id={self.mask_id}, "
                f"bos_id={self.bos_id}, eos_id={self.eos_id}, pad_id={self.pad_id})")
