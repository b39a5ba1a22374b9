"""The command line (README): ``python -m minidlm demo | train | sample``.

``demo`` needs no trained model yet: it shows the forward process of lesson 02 on a story from
the shipped corpus, masked at t = 0.1 ... 1.0 (each token is [MASK] with probability t).
"""
from __future__ import annotations

import argparse
import json
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


def cmd_train(args) -> int:
    from .train import TrainConfig, train

    overrides = {k: v for k, v in (("d_model", args.d_model), ("n_layer", args.n_layer),
                                   ("n_head", args.n_head)) if v is not None}
    cfg = TrainConfig(objective=args.objective, preset=args.preset, model_overrides=overrides,
                      data=args.data, tokenizer=args.tokenizer, seq_len=args.seq_len,
                      batch_size=args.batch_size, steps=args.steps, lr=args.lr, warmup=args.warmup,
                      eval_every=args.eval_every, ckpt_every=args.ckpt_every, out=args.out,
                      seed=args.seed, device=args.device, compile=args.compile, resume=args.resume,
                      peak_tflops=args.peak_tflops, progress=not args.no_progress,
                      max_seconds=args.max_seconds)
    summary = train(cfg)
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minidlm", description="minidlm: learn diffusion language models by building one")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="the classroom demo (lesson 00)")
    d.add_argument("--seed", type=int, default=0, help="which story and which masks")
    d.add_argument("--no-colour", "--no-color", action="store_true", help="plain text output")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train a model (lesson 06)")
    t.add_argument("--objective", default="mdm", help="ar or mdm")
    t.add_argument("--preset", default="nano", help="model size: nano (CPU) or small (GPU)")
    t.add_argument("--d-model", type=int, help="override the preset's width")
    t.add_argument("--n-layer", type=int, help="override the preset's depth")
    t.add_argument("--n-head", type=int, help="override the preset's heads")
    t.add_argument("--data", help="a .txt file or folder (default: the shipped tiny tales)")
    t.add_argument("--tokenizer", help="tokenizer JSON for --data (default: train a BPE)")
    t.add_argument("--seq-len", type=int, default=64)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--eval-every", type=int, default=250)
    t.add_argument("--ckpt-every", type=int, default=500)
    t.add_argument("--out", default="runs/default", help="run folder")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA only)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.*")
    t.add_argument("--peak-tflops", type=float, help="accelerator peak TFLOP/s, to log MFU")
    t.add_argument("--max-seconds", type=float, help="stop and checkpoint after this wall time")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)
    return ap


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
