"""Data: local text through HF ``datasets``, packing into (N, L) blocks, splits and batches
(lesson 01). The synthetic corpora live in ``tales.py`` (stories) and ``reversal.py`` (the
reversal-curse task); the files the lessons use are shipped in ``data/``.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch

from ._validate import check_choice, check_int, check_positive_int, check_tensor

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TALES_PATH = DATA_DIR / "tiny_tales.txt"
TALES_BPE_PATH = DATA_DIR / "tokenizers" / "tales_bpe.json"
TALES_CHAR_PATH = DATA_DIR / "tokenizers" / "tales_char.json"


def _text_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.txt") if p.is_file())
    raise FileNotFoundError(f"path: no file or folder at {path}")


def _check_text_file(f: Path) -> None:
    """A ValueError naming ``f`` if it is empty, binary (NUL bytes) or not UTF-8."""
    data = f.read_bytes()
    if not data:
        raise ValueError(f"path: {f} is empty; expected UTF-8 text")
    if b"\x00" in data:
        raise ValueError(f"path: {f} looks binary (it holds NUL bytes at offset {data.index(0)}); expected UTF-8 text")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"path: {f} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
                         "convert it, e.g. iconv -f latin1 -t utf-8") from None


def load_text(path, sample_by: str = "line") -> list[str]:
    """Read a local .txt file, or every .txt file under a folder, into a list of documents.

    ``sample_by``: ``"line"`` (one document per non-empty line), ``"paragraph"`` (split on blank
    lines) or ``"document"`` (one per file). Uses HF ``datasets`` (its local ``text`` builder: no
    network) when installed, plain Python otherwise. Lesson 01. An empty, binary (NUL bytes) or
    non-UTF-8 file is refused with a ValueError naming it; in a folder, empty files are skipped.
    """
    check_choice("sample_by", sample_by, ("line", "paragraph", "document"))
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a file or folder path (str or Path), got {type(path).__name__}")
    files = _text_files(Path(path))
    if not files:
        raise ValueError(f"path: expected .txt files under {path}, found none")
    if len(files) > 1:
        files = [f for f in files if f.stat().st_size > 0] or files[:1]  # empty files add nothing
    if files[0].stat().st_size == 0:
        _check_text_file(files[0])
    try:
        import datasets  # imported lazily: the GPU machines of the course may not have it
    except ImportError:
        docs = _load_plain(files, sample_by)
    else:
        try:
            docs = _load_with_datasets(datasets, files, sample_by)
        except Exception:  # datasets wraps a decoding error in its DatasetGenerationError: name the file
            for f in files:
                _check_text_file(f)
            raise
    if any("\x00" in d for d in docs):                     # valid UTF-8, yet binary
        for f in files:
            _check_text_file(f)
    docs = [d.strip() for d in docs if d and d.strip()]
    if not docs:
        raise ValueError(f"path: {path} contains no text (the corpus is empty)")
    return docs


def _load_with_datasets(datasets, files, sample_by):
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")   # local files never need the hub
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()                     # keep notebooks and the demo quiet
    try:
        ds = datasets.load_dataset("text", data_files=[str(f) for f in files], split="train",
                                   sample_by=sample_by, keep_in_memory=True)
    finally:
        if bars:
            datasets.enable_progress_bars()
    return ds["text"] if len(ds) else []


def _load_plain(files, sample_by):
    docs = []
    for f in files:
        _check_text_file(f)
        text = f.read_text(encoding="utf-8")
        if sample_by == "line":
            docs += text.splitlines()
        elif sample_by == "paragraph":
            docs += text.split("\n\n")
        else:
            docs.append(text)
    return docs


def load_tales(path=None) -> list[str]:
    """The shipped tiny-tales corpus (one story per line)."""
    return load_text(path or TALES_PATH, sample_by="line")


def load_tales_tokenizer(kind: str = "bpe"):
    """The shipped tokenizer trained on tiny tales: ``"bpe"`` (default) or ``"char"``."""
    from .tokenizer import load_tokenizer
    check_choice("kind", kind, ("bpe", "char"))
    return load_tokenizer(TALES_BPE_PATH if kind == "bpe" else TALES_CHAR_PATH)


# ---------------------------------------------------------------- packing into (N, L)
def _as_docs(docs, bos_id, eos_id) -> list[list[int]]:
    """docs as lists of token ids >= 0 (texts must be encoded first); bos_id, eos_id: ids >= 0."""
    check_int("bos_id", bos_id, minimum=0)
    check_int("eos_id", eos_id, minimum=0)
    if isinstance(docs, (str, bytes)) or not hasattr(docs, "__iter__"):
        raise ValueError(f"docs: expected a list of token-id sequences, got {type(docs).__name__}")
    out = []
    for i, d in enumerate(docs):
        d = d.tolist() if hasattr(d, "tolist") else d
        if isinstance(d, (str, bytes)) or not hasattr(d, "__iter__") or not all(
                isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 0 for t in d):
            raise ValueError(f"docs: document {i} is not a sequence of token ids >= 0 (encode texts first), "
                             f"got {str(d)[:40]!r}")
        out.append(list(d))
    return out


def pack_blocks(docs: Sequence[Sequence[int]], L: int, bos_id: int, eos_id: int) -> torch.Tensor:
    """Concatenate ``[BOS] doc [EOS]`` for every document and cut the stream into rows of L
    tokens (the tail shorter than L is dropped). Best for long text. Returns (N, L) int64."""
    check_positive_int("L", L, minimum=2)
    docs = _as_docs(docs, bos_id, eos_id)
    stream = [tok for d in docs for tok in (bos_id, *d, eos_id)]
    n = len(stream) // L
    if n == 0:
        raise ValueError(f"docs: expected at least L={L} tokens in all, got {len(stream)}")
    return torch.tensor(stream[: n * L], dtype=torch.long).view(n, L)  # (N, L)


def pad_documents(docs: Sequence[Sequence[int]], L: int, bos_id: int, eos_id: int,
                  too_long: str = "error") -> torch.Tensor:
    """One document per row: ``[BOS] doc [EOS] [EOS] ...`` padded to L with [EOS].

    Padding with [EOS] (LLaDA's choice) and training on it teaches the model where a story ends,
    so samples end cleanly. ``too_long``: ``"error"``, ``"skip"`` or ``"truncate"``. Returns (N, L)."""
    check_positive_int("L", L, minimum=2)
    check_choice("too_long", too_long, ("error", "skip", "truncate"))
    docs = _as_docs(docs, bos_id, eos_id)
    rows = []
    for i, d in enumerate(docs):
        row = [bos_id, *d, eos_id]
        if len(row) > L:
            if too_long == "error":
                raise ValueError(f"docs: document {i} needs {len(row)} tokens with [BOS]/[EOS], more than L={L} "
                                 "(use too_long='skip' or 'truncate', or pack_blocks)")
            if too_long == "skip":
                continue
            row = row[:L]
        rows.append(row + [eos_id] * (L - len(row)))
    if not rows:
        raise ValueError("docs: expected at least one document that fits")
    return torch.tensor(rows, dtype=torch.long)  # (N, L)


def train_val_split(data: torch.Tensor, val_fraction: float = 0.05, seed: int = 0):
    """Shuffle rows with ``seed`` and split into (train, val); val gets at least one row."""
    check_tensor("data", data, ndim=2, dtype_kind="int")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction!r}")
    check_int("seed", seed)
    if data.shape[0] < 2:
        raise ValueError(f"data: expected at least 2 rows to split, got {data.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.shape[0], generator=g)
    n_val = max(1, int(round(val_fraction * data.shape[0])))
    return data[perm[n_val:]], data[perm[:n_val]]


def batch_at(data: torch.Tensor, step: int, batch_size: int, seed: int = 0, device=None) -> torch.Tensor:
    """The batch for training step ``step``: epochs are seeded permutations of the rows, so any
    step's batch can be recomputed (exact resume). Returns (B, L) int64 on ``device``."""
    check_tensor("data", data, ndim=2, dtype_kind="int")
    check_positive_int("batch_size", batch_size)
    check_int("step", step, minimum=0)
    check_int("seed", seed)
    N = data.shape[0]
    if batch_size > N:
        raise ValueError(f"batch_size: expected at most the number of rows ({N}), got {batch_size}")
    per_epoch = N // batch_size
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    idx = torch.randperm(N, generator=g)[k * batch_size:(k + 1) * batch_size]
    x = data[idx]                      # int64, or int32 for a big corpus (hub.py): made int64 below
    if device is not None and torch.device(device).type == "cuda":
        return x.pin_memory().to(device, non_blocking=True).long()
    return (x.to(device) if device is not None else x).long()


def iterate_batches(data: torch.Tensor, batch_size: int, seed: int = 0, device=None,
                    start_step: int = 0, steps: int | None = None) -> Iterator[torch.Tensor]:
    """Yield ``batch_at(data, step, ...)`` for step = start_step, start_step + 1, ... (forever
    when ``steps`` is None)."""
    check_int("start_step", start_step, minimum=0)
    if steps is not None:
        check_int("steps", steps, minimum=0)
    step = start_step
    while steps is None or step < start_step + steps:
        yield batch_at(data, step, batch_size, seed, device)
        step += 1


def tales_blocks(tokenizer=None, L: int = 64, path=None, val_fraction: float = 0.05, seed: int = 0):
    """The tiny-tales corpus tokenized, one story per row padded with [EOS]: (train, val)."""
    tok = tokenizer or load_tales_tokenizer("bpe")
    rows = pad_documents(tok.encode_batch(load_tales(path)), L, tok.bos_id, tok.eos_id, too_long="skip")
    return train_val_split(rows, val_fraction, seed)


_SHIPPED: dict = {}


def shipped_tales_blocks(L: int = 64, seed: int = 0):
    """(train, val, tokenizer): the shipped corpus with the shipped BPE tokenizer, as ``tales_blocks``
    gives it, tokenized once per process (about 5 s on a CPU) and copied on every call. Lesson 06
    builds the same data for three runs and their step-time estimates; the files' sizes and
    modification times are part of the key, so a regenerated corpus is tokenized again."""
    key = (L, seed, *((p.stat().st_size, p.stat().st_mtime_ns) for p in (TALES_PATH, TALES_BPE_PATH)))
    if key not in _SHIPPED:
        tok = load_tales_tokenizer("bpe")
        _SHIPPED[key] = (*tales_blocks(tok, L=L, seed=seed), tok)
    train, val, tok = _SHIPPED[key]
    return train.clone(), val.clone(), tok
