"""Tiny randomly initialized masked LMs, built offline, as stand-ins for pretrained ones (appendix A1).

``tiny_random_masked_lm(kind)`` builds a BERT, RoBERTa or ModernBERT masked LM of a few thousand
parameters from a config, with a tokenizer made here (nothing is downloaded), and wraps both with
``wrap_pretrained``: the same (HFDenoiser, HFTokenizer) pair that ``from_pretrained`` returns for a
real checkpoint of that family. Its weights are random, so what it writes is gibberish; it exists so
the appendix notebook, CI and tests run every cell of the real-model path without the network.

The tokenizers cover any text: the BERT one has WordPiece pieces for every lowercase letter
(``##a`` ...), so an unknown lowercase word splits into letters (no [UNK]); the RoBERTa one is
byte-level BPE. ``transformers`` and ``tokenizers`` are imported only when a model is built.
"""
from __future__ import annotations

import json
import string

import torch

from .adapters import _require_transformers, wrap_pretrained

TINY_KINDS = ("bert", "roberta", "modernbert")
# the words the tiny tokenizers know whole (everything else splits into pieces)
WORDS = ("the a an and or but of to in on at with for from by is was were be been are it he she they we you i "
         "his her their my your this that there here then when where who what one two little big small old new "
         "good happy sad day time once upon girl boy cat dog mom dad friend tree house park ball sun sky red blue "
         "green went saw said had has have did do not very so all play played run ran sat look looked like liked "
         "love loved want wanted find found go come came see help helped name named lily tom ben sue max mia "
         "paris france capital city river sea book read wrote story morning night home").split()
PUNCT = list(".,!?;:'\"-()")
_SAMPLE = ("Once upon a time, there was a little girl named Lily. She loved to play in the park with her dog. "
           "One day, Tom saw a big red ball under the tree. He was very happy! The capital of France is Paris.")


def _bert_tokenizer(tr):
    """A WordPiece BertTokenizer: specials, punctuation, letters, ##letters and WORDS (lowercased input)."""
    letters = list(string.ascii_lowercase) + list(string.digits)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + PUNCT + letters + [f"##{c}" for c in letters]
    vocab += [w for w in dict.fromkeys(WORDS) if w not in vocab]
    return tr.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def _roberta_tokenizer(tr):
    """A byte-level BPE RobertaTokenizer trained on a few sentences (any text encodes, byte by byte at worst)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    texts = [_SAMPLE, " ".join(WORDS), " ".join(w.capitalize() for w in WORDS)]
    t.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    merges = json.loads(t.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    return tr.RobertaTokenizer(vocab=t.get_vocab(), merges=merges)


def tiny_random_masked_lm(kind: str = "bert", seed: int = 0, max_len: int = 128, hidden_size: int = 32,
                          layers: int = 2):
    """A tiny random masked LM and its tokenizer as (HFDenoiser, HFTokenizer) (appendix A1), offline.

    kind: ``bert``, ``roberta`` or ``modernbert`` (a BERT tokenizer); the family of a real checkpoint
    (``bert-base-uncased``, ``distilroberta-base``, ``answerdotai/ModernBERT-base``) it stands in for.
    seed: the weights (``torch.manual_seed`` of a private generator state; the global RNG is restored).
    max_len: the longest row a sampler may ask for ([CLS] included; the adapter adds the [SEP]).
    """
    if kind not in TINY_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(TINY_KINDS)}, got {kind!r}")
    for name, v, lo in (("seed", seed, 0), ("max_len", max_len, 2), ("hidden_size", hidden_size, 2),
                        ("layers", layers, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")
    if hidden_size % 2:
        raise ValueError(f"hidden_size: expected an even int (2 attention heads), got {hidden_size}")
    tr = _require_transformers()
    size = dict(hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=2,
                intermediate_size=2 * hidden_size)
    positions = max_len + 1                                                   # room for the [SEP]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "roberta":
            tok = _roberta_tokenizer(tr)
            cfg = tr.RobertaConfig(vocab_size=len(tok), max_position_embeddings=positions + 2, type_vocab_size=1,
                                   pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                   eos_token_id=tok.eos_token_id, **size)
            model = tr.RobertaForMaskedLM(cfg)
        elif kind == "bert":
            tok = _bert_tokenizer(tr)
            cfg = tr.BertConfig(vocab_size=len(tok), max_position_embeddings=positions, **size)
            model = tr.BertForMaskedLM(cfg)
        else:
            tok = _bert_tokenizer(tr)
            cfg = tr.ModernBertConfig(vocab_size=len(tok), max_position_embeddings=positions,
                                      pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                                      eos_token_id=tok.sep_token_id, cls_token_id=tok.cls_token_id,
                                      sep_token_id=tok.sep_token_id, local_attention=16,
                                      global_attn_every_n_layers=2, attn_implementation="sdpa", **size)
            model = tr.ModernBertForMaskedLM(cfg)
    return wrap_pretrained(model, tok, kind="masked_lm")
