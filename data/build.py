"""Regenerate every file in data/ that the lessons use (deterministic: same seed, same bytes).

    python data/build.py [--out data] [--n 10000] [--seed 0]

Writes tiny_tales.txt (one story per line), tokenizers/tales_bpe.json (byte-level BPE, 1024
merges budget: on this corpus every word becomes one token) and tokenizers/tales_char.json.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from minidlm.tales import generate_tales
from minidlm.tokenizer import BPETokenizer, CharTokenizer

BPE_VOCAB = 1024


def build(out: Path, n: int = 10000, seed: int = 0) -> dict:
    out = Path(out)
    (out / "tokenizers").mkdir(parents=True, exist_ok=True)
    stories = generate_tales(n, seed)
    text = "\n".join(stories) + "\n"
    tmp = out / ".tiny_tales.txt.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out / "tiny_tales.txt")
    BPETokenizer.train(stories, vocab_size=BPE_VOCAB).save(out / "tokenizers" / "tales_bpe.json")
    CharTokenizer.from_texts(stories).save(out / "tokenizers" / "tales_char.json")
    files = ["tiny_tales.txt", "tokenizers/tales_bpe.json", "tokenizers/tales_char.json"]
    return {f: hashlib.sha256((out / f).read_bytes()).hexdigest()[:16] for f in files}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    for f, h in build(Path(a.out), a.n, a.seed).items():
        size = (Path(a.out) / f).stat().st_size
        print(f"{f:28s} {size / 1e6:6.2f} MB  sha256 {h}")
    print(f"built in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
