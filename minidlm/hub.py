"""Real corpora from the Hugging Face hub, tokenized once and cached on disk (lessons 01 and 06).

``TrainConfig(data="hf:NAME[:SPLIT[:COLUMN]]")`` trains on a hub dataset, e.g.
``hf:roneneldan/TinyStories`` (split ``train``, column ``text`` by default) or
``hf:Skylion007/openwebtext:train:text``. The documents are streamed
(``datasets.load_dataset(NAME, split=SPLIT, streaming=True)``: nothing but the text is kept),
tokenized with the BPE tokenizer given, or with one trained here on the first documents, and
saved as one token stream ``[BOS] doc [EOS] [BOS] doc [EOS] ...`` under the cache folder
(``~/.cache/minidlm`` unless ``cache_dir`` or ``$MINIDLM_CACHE`` says otherwise), keyed by the
dataset, split, column, ``max_docs`` and the tokenizer. The next run, or every rank of a
``torchrun`` job after rank 0, reads that file and needs no network.

With ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` set and no cached copy, loading fails at once
with an error that says so. ``prepare`` fills the cache from documents you already have (a
machine without network, tests).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from itertools import chain, islice
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from ._atomic import atomic_write

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
TOKENIZER_DOCS = 20_000       # documents the BPE tokenizer is trained on when none is given
VOCAB_SIZE = 4096             # its vocabulary (the same as for a local --data file)
CHUNK = 10_000                # documents tokenized at a time


def parse_spec(spec: str) -> tuple[str, str, str]:
    """``"hf:NAME[:SPLIT[:COLUMN]]"`` -> (NAME, SPLIT, COLUMN); SPLIT defaults to ``train`` and
    COLUMN to ``text``."""
    if not isinstance(spec, str) or not spec.startswith("hf:"):
        raise ValueError(f"data: expected 'hf:NAME[:SPLIT[:COLUMN]]' for a hub dataset, got {spec!r}")
    parts = spec[3:].split(":")
    if len(parts) > 3 or not all(p.strip() for p in parts):
        raise ValueError(f"data: expected 'hf:NAME[:SPLIT[:COLUMN]]' with non-empty parts, "
                         f"e.g. 'hf:roneneldan/TinyStories:train:text', got {spec!r}")
    name = parts[0]
    split = parts[1] if len(parts) > 1 else "train"
    column = parts[2] if len(parts) > 2 else "text"
    return name, split, column


def default_cache_dir() -> Path:
    """``$MINIDLM_CACHE``, else ``$XDG_CACHE_HOME/minidlm``, else ``~/.cache/minidlm``."""
    if os.environ.get("MINIDLM_CACHE"):
        return Path(os.environ["MINIDLM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minidlm"


def corpus_dir(spec: str, max_docs: int | None = None, cache_dir=None) -> Path:
    """The cache folder of one corpus: one per (dataset, split, column, max_docs)."""
    name, split, column = parse_spec(spec)
    key = json.dumps([name, split, column, max_docs])
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}-{split}-{column}-{max_docs or 'all'}")
    return Path(cache_dir or default_cache_dir()) / "hub" / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _fingerprint(tok) -> str:
    """A short hash of the tokenizer's saved JSON: the token cache is only valid for that tokenizer."""
    with tempfile.TemporaryDirectory() as d:
        tok.save(Path(d) / "tokenizer.json")
        return hashlib.sha256((Path(d) / "tokenizer.json").read_bytes()).hexdigest()[:16]


def _offline_vars() -> list[str]:
    return [v for v in OFFLINE_VARS if os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")]


def stream_documents(spec: str) -> Iterator[str]:
    """The documents of a hub dataset, one string at a time, streamed (never the whole dataset
    on disk). Fails at once, before any network call, when HF_HUB_OFFLINE / HF_DATASETS_OFFLINE
    switch the hub off."""
    name, split, column = parse_spec(spec)
    offline = _offline_vars()
    if offline:
        raise RuntimeError(f"data: {spec} (dataset {name}, split {split!r}) is not in the minidlm cache, and downloads "
                           f"are switched off ({' and '.join(f'{v}={os.environ[v]}' for v in offline)}); "
                           f"set {' and '.join(f'{v}=0' for v in offline)} on a machine with network, "
                           f"or fill the cache with minidlm.hub.prepare")
    try:
        import datasets  # imported lazily: the GPU machines of the course may not have it
    except ImportError:
        raise RuntimeError(f"data: {spec} is not in the minidlm cache, and streaming it needs the datasets "
                           "package (pip install datasets), or fill the cache with minidlm.hub.prepare") from None

    ds = datasets.load_dataset(name, split=split, streaming=True)

    def documents():
        for batch in ds.iter(batch_size=1000):
            if column not in batch:
                raise ValueError(f"data: the dataset {name} (split {split!r}) has no column {column!r}; its columns "
                                 f"are {sorted(batch)}; name one as hf:{name}:{split}:COLUMN")
            yield from (text for text in batch[column] if text and text.strip())
    return documents()


def _encode(tok, texts: list[str]) -> list[list[int]]:
    hf = getattr(tok, "hf", None)                  # a BPETokenizer: HF tokenizers encodes in parallel
    if hf is not None:
        return [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    return tok.encode_batch(texts)


def prepare(spec: str, docs: Iterable[str], tokenizer=None, max_docs: int | None = None, cache_dir=None,
            progress: bool = False):
    """Tokenize ``docs`` as the corpus ``spec`` and write it to the cache (what ``load_corpus``
    does with the streamed documents on a cache miss). Without a tokenizer, a byte-level BPE with
    VOCAB_SIZE tokens is trained on the first TOKENIZER_DOCS documents and cached too.
    Returns (tokens, tokenizer): tokens is the 1-D int32 stream [BOS] doc [EOS] [BOS] doc [EOS] ..."""
    from .tokenizer import BPETokenizer

    folder = corpus_dir(spec, max_docs, cache_dir)
    docs = iter(docs) if max_docs is None else islice(docs, max_docs)
    if tokenizer is None:
        head = list(islice(docs, TOKENIZER_DOCS))
        tokenizer = BPETokenizer.train(head, vocab_size=VOCAB_SIZE)
        tokenizer.save(folder / "tokenizer.json")
        docs = chain(head, docs)
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.int32      # half the disk for small vocabularies
    parts, n_docs = [], 0
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(desc=f"tokenizing {spec}", unit="doc", total=max_docs)
    while chunk := list(islice(docs, CHUNK)):
        ids = _encode(tokenizer, chunk)
        parts.append(np.fromiter(chain.from_iterable((bos, *d, eos) for d in ids), dtype=dtype))
        n_docs += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    if n_docs == 0:
        raise ValueError(f"data: {spec} gave no documents (the corpus is empty)")
    stream = np.concatenate(parts)
    fp = _fingerprint(tokenizer)
    atomic_write(folder / f"tokens-{fp}.npy", lambda f: np.save(f, stream))
    meta = {"spec": spec, "max_docs": max_docs, "documents": n_docs, "tokens": int(stream.size),
            "tokenizer": fp, "vocab_size": tokenizer.vocab_size, "dtype": str(stream.dtype)}
    atomic_write(folder / f"tokens-{fp}.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
    return torch.from_numpy(stream.astype(np.int32)), tokenizer


def load_corpus(spec: str, tokenizer=None, max_docs: int | None = None, cache_dir=None, progress: bool = False):
    """(tokens, tokenizer) of a hub corpus: from the cache when it is there, else streamed from
    the hub and cached (``prepare``). ``tokenizer``: a tokenizer object, or None for the BPE
    trained on the corpus's first documents (itself cached)."""
    from .tokenizer import load_tokenizer

    if max_docs is not None and (isinstance(max_docs, bool) or not isinstance(max_docs, int) or max_docs < 1):
        raise ValueError(f"max_docs: expected None (every document) or an integer >= 1, got {max_docs!r}")
    folder = corpus_dir(spec, max_docs, cache_dir)
    tok = tokenizer
    if tok is None and (folder / "tokenizer.json").is_file():
        tok = load_tokenizer(folder / "tokenizer.json")
    cached = folder / f"tokens-{_fingerprint(tok)}.npy" if tok is not None else None
    if cached is not None and cached.is_file():
        return torch.from_numpy(np.load(cached).astype(np.int32)), tok
    return prepare(spec, stream_documents(spec), tok, max_docs, cache_dir, progress)


def hub_blocks(spec: str, L: int, tokenizer=None, max_docs: int | None = None, cache_dir=None,
               val_fraction: float = 0.05, seed: int = 0, progress: bool = False):
    """A hub corpus packed into rows of L tokens (like ``data.pack_blocks``) and split:
    (train, val, tokenizer), train and val (N, L) int32 (``data.batch_at`` returns int64)."""
    from .data import train_val_split

    tokens, tok = load_corpus(spec, tokenizer, max_docs, cache_dir, progress)
    n = tokens.numel() // L
    if n < 2:
        raise ValueError(f"data: {spec} has {tokens.numel()} tokens, fewer than 2 rows of L={L}")
    return (*train_val_split(tokens[: n * L].view(n, L), val_fraction, seed), tok)
