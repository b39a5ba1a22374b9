"""The command line (README): ``python -m minidlm demo | train | sample``.

``demo`` needs no trained model yet: it shows the forward process of lesson 02 on a story from
the shipped corpus, masked at t = 0.1 ... 1.0 (each token is [MASK] with probability t).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch


def _colour(enabled: bool):
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if enabled else text
    return paint


def render_masked(pieces: list[str], masked: list[bool], paint) -> str:
    """Show a token sequence with each [MASK] drawn as a block as wide as the hidden word."""
    out = []
    for p, m in zip(pieces, masked):
        if m:
            lead = " " if p.startswith(" ") else ""
            out.append(lead + paint("▒" * max(1, len(p.strip())), "90"))
        else:
            out.append(p)
    return "".join(out)


def cmd_demo(args) -> int:
    from .data import load_tales, load_tales_tokenizer

    tok = load_tales_tokenizer("bpe")
    stories = load_tales()
    g = torch.Generator().manual_seed(args.seed)
    story = stories[int(torch.randint(len(stories), (1,), generator=g))]
    ids = torch.tensor(tok.encode(story))
    pieces = tok.token_strings(ids)
    # One uniform number per token, masked when u < t: the same marginals as q(x_t | x_0)
    # (P(mask) = t = 1 - alpha_t), coupled so that a token hidden at t stays hidden later.
    u = torch.rand(len(ids), generator=g)
    paint = _colour(sys.stdout.isatty() and not args.no_colour)
    print(paint("The forward process: each token becomes [MASK] with probability t (alpha_t = 1 - t)", "1"))
    print(paint("t = 0.0  ", "36") + story)
    for k in range(1, 11):
        t = k / 10
        masked = (u < t).tolist()
        print(paint(f"t = {t:.1f}  ", "36") + render_masked(pieces, masked, paint) +
              paint(f"   ({sum(masked)}/{len(ids)} masked)", "90"))
    print("\nA diffusion LM learns to run this film backwards: from all [MASK] to a story.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minidlm", description="minidlm: learn diffusion language models by building one")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="the classroom demo (lesson 00)")
    d.add_argument("--seed", type=int, default=0, help="which story and which masks")
    d.add_argument("--no-colour", "--no-color", action="store_true", help="plain text output")
    d.set_defaults(func=cmd_demo)
    return ap


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
