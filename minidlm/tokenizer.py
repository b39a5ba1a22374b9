"""Tokenizers with the special tokens diffusion needs (lesson 01).

Both tokenizers reserve ``[PAD] [BOS] [EOS] [MASK] [UNK]``; ``mask_id`` is the absorbing state
of the forward process. ``CharTokenizer`` maps characters; ``BPETokenizer`` wraps a byte-level
BPE from HF ``tokenizers`` (trained from an iterator of texts, saved as JSON). For both,
``decode(encode(text)) == text``.
"""
from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Iterable

from ._atomic import atomic_write

SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[MASK]", "[UNK]")


class _Specials:
    """Shared special-token ids and checks; subclasses provide ``token_to_id``."""

    def _init_specials(self):
        ids = {tok: self.token_to_id(tok) for tok in SPECIAL_TOKENS}
        if ids["[MASK]"] is None:
            raise ValueError("tokenizer: no [MASK] token in its vocabulary; a diffusion model needs one "
                             f"(expected the special tokens {' '.join(SPECIAL_TOKENS[:4])})")
        missing = [t for t in SPECIAL_TOKENS[:3] if ids[t] is None]
        if missing:
            raise ValueError(f"tokenizer: missing special tokens {missing}; expected {' '.join(SPECIAL_TOKENS[:4])}")
        self.pad_id, self.bos_id, self.eos_id, self.mask_id = (ids[t] for t in SPECIAL_TOKENS[:4])
        self.unk_id = ids["[UNK]"]
        self.special_ids = {i for i in ids.values() if i is not None}

    def encode_batch(self, texts: Iterable[str], add_special: bool = False) -> list[list[int]]:
        if isinstance(texts, str):
            raise ValueError("texts: expected a list of str, got one str (use encode for a single text)")
        return [self.encode(t, add_special=add_special) for t in texts]

    def decode_batch(self, batch, skip_special: bool = False) -> list[str]:
        rows = batch.tolist() if hasattr(batch, "tolist") else batch
        if isinstance(rows, (str, numbers.Number)) or (isinstance(rows, (list, tuple)) and any(
                isinstance(row, numbers.Number) for row in rows)):
            raise ValueError("batch: expected a batch of id sequences (B, L); use decode for one sequence")
        return [self.decode(ids, skip_special=skip_special) for ids in rows]

    def _check_id(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < self.vocab_size:
            raise ValueError(f"i: expected an integer token id in [0, {self.vocab_size}), got {i!r}")
        return int(i)

    def __len__(self) -> int:
        return self.vocab_size


def _ids_list(ids, vocab_size: int | None = None) -> list[int]:
    """A flat list of ints, each checked to lie in [0, vocab_size) when vocab_size is given; floats,
    bools and strings are refused (int() would truncate 1.7 to 1 and read "3" as 3)."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)) or any(isinstance(i, (list, tuple)) for i in ids):
        raise ValueError("ids: expected a flat sequence of token ids (one sequence); use decode_batch for (B, L)")
    wrong = [i for i in ids if isinstance(i, bool) or not isinstance(i, numbers.Integral)]
    if wrong:
        raise ValueError(f"ids: expected integer token ids, got {wrong[:5]!r}")
    ids = [int(i) for i in ids]
    bad = [i for i in ids if vocab_size is not None and not 0 <= i < vocab_size]
    if bad:
        raise ValueError(f"ids: expected ids in [0, {vocab_size}), got {bad[:5]}")
    return ids


class CharTokenizer(_Specials):
    """One token per character, after the five special tokens (ids 0-4)."""

    def __init__(self, chars: Iterable[str]):
        chars = list(dict.fromkeys(chars))
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("chars: expected single characters (str of length 1)")
        self.itos = list(SPECIAL_TOKENS) + chars
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self._init_specials()

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "CharTokenizer":
        chars = sorted({c for text in texts for c in text})
        if not chars:
            raise ValueError("texts: expected at least one non-empty text to build a vocabulary")
        return cls(chars)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def token_to_id(self, token: str):
        return self.stoi.get(token)

    def id_to_token(self, i: int) -> str:
        return self.itos[self._check_id(i)]        # itos[-1] would silently be the last character

    def encode(self, text: str, add_special: bool = False) -> list[int]:
        """Characters to ids; unknown characters become [UNK]. ``add_special`` wraps in [BOS] ... [EOS]."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, got {type(text).__name__}")
        ids = [self.stoi.get(c, self.unk_id) for c in text]
        return [self.bos_id, *ids, self.eos_id] if add_special else ids

    def decode(self, ids, skip_special: bool = False) -> str:
        ids = _ids_list(ids, self.vocab_size)
        return "".join(self.itos[i] for i in ids if not (skip_special and i in self.special_ids))

    def save(self, path) -> None:
        _atomic_write_text(path, json.dumps({"type": "minidlm-char", "chars": self.itos[len(SPECIAL_TOKENS):]}, ensure_ascii=False))


class BPETokenizer(_Specials):
    """Byte-level BPE from HF ``tokenizers``: lossless for any text (bytes are the base alphabet)."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        self._init_specials()

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2) -> "BPETokenizer":
        """Learn merges from an iterator of texts. The first ids are the special tokens."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 0:
            raise ValueError(f"min_frequency: expected an int >= 0, got {min_frequency!r}")
        if isinstance(texts, str):
            raise ValueError("texts: expected an iterable of str, got one str")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256 + len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size: expected an int >= {256 + len(SPECIAL_TOKENS)} (256 bytes + specials), got {vocab_size!r}")
        seen = [0]

        def counted():
            for t in texts:
                if not isinstance(t, str):
                    raise ValueError(f"texts: expected str items, got {type(t).__name__}")
                if t:
                    seen[0] += 1
                    yield t

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(counted(), trainer=trainer)
        if seen[0] == 0:
            raise ValueError("texts: expected at least one non-empty text to train on")
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def token_to_id(self, token: str):
        return self.hf.token_to_id(token)

    def id_to_token(self, i: int) -> str:
        return self.hf.id_to_token(self._check_id(i))    # HF returns None out of range

    def encode(self, text: str, add_special: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, got {type(text).__name__}")
        ids = self.hf.encode(text, add_special_tokens=False).ids
        return [self.bos_id, *ids, self.eos_id] if add_special else ids

    def decode(self, ids, skip_special: bool = False) -> str:
        ids = _ids_list(ids, self.vocab_size)
        if skip_special:
            ids = [i for i in ids if i not in self.special_ids]
        # Decode runs of ordinary tokens with the byte-level decoder; print specials verbatim.
        out, run = [], []
        for i in ids:
            if i in self.special_ids:
                if run:
                    out.append(self.hf.decode(run, skip_special_tokens=False))
                    run = []
                out.append(self.hf.id_to_token(i))
            else:
                run.append(i)
        if run:
            out.append(self.hf.decode(run, skip_special_tokens=False))
        return "".join(out)

    def token_strings(self, ids) -> list[str]:
        """Each id as the text it stands for (specials verbatim): what a visualization shows."""
        return [self.hf.id_to_token(i) if i in self.special_ids else self.hf.decode([i])
                for i in _ids_list(ids, self.vocab_size)]

    def save(self, path) -> None:
        _atomic_write_text(path, self.hf.to_str(pretty=False))


def _atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def load_tokenizer(path):
    """Load a tokenizer saved by ``save`` (either kind). Raises ValueError for a file that is not a
    tokenizer or lacks [MASK]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no tokenizer file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"path: {path} is not a tokenizer JSON file ({e})") from None
    if isinstance(data, dict) and data.get("type") == "minidlm-char":
        if not isinstance(data.get("chars"), list):
            raise ValueError(f"path: {path} is a minidlm-char tokenizer without its list of \"chars\"")
        return CharTokenizer(data["chars"])
    from tokenizers import Tokenizer
    try:
        hf = Tokenizer.from_str(json.dumps(data))
    except Exception as e:  # tokenizers raises its own exception type
        raise ValueError(f"path: {path} is not a HF tokenizers JSON file ({e})") from None
    return BPETokenizer(hf)
