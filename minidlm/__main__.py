"""The command line (README): ``python -m minidlm demo | train | sample``.

``demo`` loads the shipped masked diffusion model and animates a story unmasking in the
terminal; ``train`` trains a model (one process, or N under ``torchrun``); ``sample`` draws
samples from a checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch


SHIPPED_MDM = "tales-mdm-nano"


def cmd_demo(args) -> int:
    """The classroom demo: a story unmasking step by step with the shipped MDM."""
    import time

    from .checkpoint import load_model
    from .data import DATA_DIR
    from .evaluate import decode_samples
    from .sampling import generate
    from .tokenizer import load_tokenizer
    from .viz import trace_frames_ansi

    t0 = time.time()
    ckpt = Path(args.ckpt) if args.ckpt else DATA_DIR / "checkpoints" / SHIPPED_MDM
    model, _ = load_model(ckpt)
    tok = load_tokenizer(ckpt / "tokenizer.json")
    L = model.config.max_len
    if args.steps < 1 or args.steps > L - 1:
        raise SystemExit(f"--steps: expected 1 ... {L - 1}, got {args.steps}")
    x, trace = generate(model, L, args.steps, tok.mask_id, prompt=torch.tensor([tok.bos_id]),
                        remasking=args.strategy, generator=args.seed,
                        eos_id=None if args.no_length_first or args.steps < 2 else tok.eos_id)
    text = decode_samples(tok, x)[0]
    animate = not args.no_animation and sys.stdout.isatty()
    colour = sys.stdout.isatty() and not args.no_colour
    if animate:
        frames = trace_frames_ansi(tok, trace, colour=colour)
        delay = min(0.25, args.seconds / max(1, len(frames)))
        for k, frame in enumerate(frames):
            sys.stdout.write("\033[H\033[J")                           # clear the screen
            print(f"\033[1mminidlm: a story unmasking ({args.strategy}, step {k}/{trace.steps})\033[0m\n")
            print(frame)
            sys.stdout.flush()
            time.sleep(delay)
        print()
    print(text)
    print(f"\n[{trace.steps} steps, {trace.nfe} network calls, {time.time() - t0:.1f} s; "
          f"try --strategy random or --steps 16]", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from .train import TrainConfig, train

    overrides = {k: v for k, v in (("d_model", args.d_model), ("n_layer", args.n_layer),
                                   ("n_head", args.n_head)) if v is not None}
    if args.shift_logits:
        overrides["shift_logits"] = True
    cfg = TrainConfig(objective=args.objective, preset=args.preset, model_overrides=overrides,
                      data=args.data, tokenizer=args.tokenizer, hf_max_docs=args.hf_max_docs,
                      cache_dir=args.cache_dir, seq_len=args.seq_len, batch_size=args.batch_size,
                      grad_accum=args.grad_accum, steps=args.steps, lr=args.lr, warmup=args.warmup,
                      eval_every=args.eval_every, ckpt_every=args.ckpt_every, out=args.out,
                      seed=args.seed, device=args.device, compile=args.compile, resume=args.resume,
                      peak_tflops=args.peak_tflops, progress=not args.no_progress,
                      max_seconds=args.max_seconds, alpha0=args.alpha0, variant=args.variant,
                      init_from=args.init_from, anneal_steps=args.anneal_steps)
    summary = train(cfg)
    if os.environ.get("RANK", "0") == "0":                  # under torchrun, one summary: rank 0's
        print(json.dumps(summary))
    return 0


def cmd_sample(args) -> int:
    """Sample from a checkpoint with any sampler (lessons 07-08)."""
    from .checkpoint import load_model
    from .evaluate import decode_samples
    from .sampling import ancestral, generate, generate_adaptive, generate_ar
    from .tokenizer import load_tokenizer

    ckpt = Path(args.ckpt)
    model, info = load_model(ckpt)
    tok = load_tokenizer(ckpt / "tokenizer.json")
    objective = ((info.get("train_state") or {}).get("train_config") or {}).get("objective")
    is_mdm = model.config.mask_id is not None
    kind = ("an Eso-LM model" if objective == "esolm" else "an MDM (bidirectional, has a [MASK] id)") if is_mdm \
        else "an AR model (causal, no [MASK])"
    wanted = {"ar": not is_mdm, "esolm": objective == "esolm"}.get(args.strategy, is_mdm and objective != "esolm")
    if not wanted:
        use = "ar" if not is_mdm else "esolm" if objective == "esolm" else "low_confidence, entropy, random, ancestral or adaptive"
        raise SystemExit(f"--strategy {args.strategy}: the checkpoint {ckpt} is {kind}; use --strategy {use}")
    L = args.length or (model.config.max_len // 2 if objective == "esolm" else model.config.max_len)
    prompt = [tok.bos_id] + (tok.encode(args.prompt) if args.prompt else [])
    prompt = torch.tensor(prompt)
    common = dict(batch_size=args.n, prompt=prompt, temperature=args.temperature, generator=args.seed)
    # the length drawn first (length.py) for the fixed-count and adaptive MDM samplers, without blocks
    eos = None if args.no_length_first or args.block_length else tok.eos_id
    try:
        if args.strategy == "ar":
            x, tr = generate_ar(model, L, **common)
        elif args.strategy == "esolm":
            from .esolm import esolm_sample
            alpha0 = args.alpha0 if args.alpha0 is not None else info["train_state"]["train_config"]["alpha0"]
            x, tr = esolm_sample(model, L, tok.mask_id, alpha0, **common)
        elif args.strategy == "ancestral":
            x, tr = ancestral(model, L, args.steps, tok.mask_id, **common)
        elif args.strategy == "adaptive":
            x, tr = generate_adaptive(model, L, tok.mask_id, threshold=args.threshold,
                                      block_length=args.block_length, eos_id=eos, **common)
        else:
            x, tr = generate(model, L, args.steps, tok.mask_id, remasking=args.strategy,
                             block_length=args.block_length, eos_id=eos, **common)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    for text in decode_samples(tok, x):
        print(text)
    per_story = tr.reveal_step.max(1).values.double().mean().item()      # the step of a row's last commit
    print(f"[{args.strategy}: {tr.nfe} network calls for {args.n} x {L} tokens; "
          f"{per_story:.1f} calls per story on its own]", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minidlm", description="minidlm: learn diffusion language models by building one")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="the classroom demo: watch a story unmask (lesson 00)")
    d.add_argument("--seed", type=int, default=None, help="fix the sample (default: a new one each time)")
    d.add_argument("--steps", type=int, default=63, help="denoising steps T (the story has 63 slots)")
    d.add_argument("--strategy", default="low_confidence", choices=["low_confidence", "entropy", "random"])
    d.add_argument("--no-length-first", action="store_true",
                   help="do not draw where the story ends first (LLaDA's plain order; favours short stories)")
    d.add_argument("--seconds", type=float, default=5.0, help="length of the animation")
    d.add_argument("--ckpt", help="an MDM checkpoint folder (default: the shipped one)")
    d.add_argument("--no-animation", action="store_true", help="print the final text only")
    d.add_argument("--no-colour", "--no-color", action="store_true", help="plain text output")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train a model (lesson 06)")
    t.add_argument("--objective", default="mdm", help="ar, mdm or esolm")
    t.add_argument("--preset", default="nano", help="model size: nano (CPU) or small (GPU)")
    t.add_argument("--d-model", type=int, help="override the preset's width")
    t.add_argument("--n-layer", type=int, help="override the preset's depth")
    t.add_argument("--n-head", type=int, help="override the preset's heads")
    t.add_argument("--data", help="a .txt file or folder, or a hub dataset hf:NAME[:SPLIT[:COLUMN]] "
                                  "(default: the shipped tiny tales)")
    t.add_argument("--tokenizer", help="tokenizer JSON for --data (default: train a BPE)")
    t.add_argument("--hf-max-docs", type=int, help="hf: data: the first documents only (default: all)")
    t.add_argument("--cache-dir", help="hf: data: where tokenized corpora are kept (default: ~/.cache/minidlm)")
    t.add_argument("--seq-len", type=int, default=64)
    t.add_argument("--batch-size", type=int, default=64, help="rows per step, over all processes")
    t.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per step in each process (batch-size / (processes x grad-accum) rows each)")
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
    t.add_argument("--peak-tflops", type=float, help="one accelerator's peak TFLOP/s, to log MFU")
    t.add_argument("--max-seconds", type=float, help="stop and checkpoint after this wall time")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--alpha0", type=float, default=0.25,
                   help="esolm: share of tokens decoded by diffusion (0 = AR, 1 = MDLM)")
    t.add_argument("--variant", default="B", choices=["A", "B"], help="esolm: attention variant (B has the exact KV cache)")
    t.add_argument("--init-from", metavar="CKPT",
                   help="start a fresh run from this checkpoint's weights, e.g. an AR run folder for an mdm run "
                        "(same size and tokenizer; --resume with a checkpoint wins)")
    t.add_argument("--anneal-steps", type=int, default=0,
                   help="mdm: anneal attention from causal to bidirectional over these first steps (DiffuLLaMA)")
    t.add_argument("--shift-logits", action="store_true",
                   help="mdm: keep the AR head's shift, position l predicted at l - 1 (Dream); saved in the model")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="sample from a checkpoint (lessons 07-08)")
    s.add_argument("--ckpt", required=True, help="checkpoint folder, e.g. data/checkpoints/tales-mdm-nano")
    s.add_argument("--strategy", default="low_confidence",
                   choices=["low_confidence", "entropy", "random", "ancestral", "adaptive", "esolm", "ar"])
    s.add_argument("--steps", type=int, default=32)
    s.add_argument("--no-length-first", action="store_true",
                   help="MDM: do not draw where the story ends first (LLaDA's plain order; favours short stories)")
    s.add_argument("--length", type=int, default=None, help="tokens in all (default: the model's max)")
    s.add_argument("--prompt", default=None, help="text the story starts with")
    s.add_argument("--n", type=int, default=4, help="how many samples")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--block-length", type=int, default=None, help="semi-autoregressive blocks")
    s.add_argument("--threshold", type=float, default=0.9, help="confidence threshold (adaptive)")
    s.add_argument("--alpha0", type=float, default=None, help="esolm: diffusion share (default: as trained)")
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(func=cmd_sample)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.command == "train" and (args.data or "").startswith("hf:")):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")        # only hub data needs the network
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.command in ("demo", "sample") and "OMP_NUM_THREADS" not in os.environ:
        # a nano model's call is a few ms: with 2 threads and another busy process on the machine each
        # call waits at OpenMP barriers (benchmarks/threads.py); one thread is the robust default
        torch.set_num_threads(1)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
