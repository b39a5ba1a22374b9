"""The command line (README): ``python -m minidlm demo | train | sample | export``.

``demo`` loads the shipped masked diffusion model and animates a story unmasking in the
terminal; ``train`` trains a model (one process, or N under ``torchrun``); ``sample`` draws
samples from a checkpoint; ``export`` writes a checkpoint in the Hugging Face Hub layout (appendix A1).

A mistake on the command line is answered with one line, ``error: --option: what was expected``,
and exit status 2; never a Python traceback (``main`` turns minidlm's ValueErrors into that line).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

import torch


SHIPPED_MDM = "tales-mdm-nano"
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


# ----------------------------------------------------------------------------- checked option types
def _number(kind, low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a finite ``kind`` in [low, high] (open ends as asked), or a clear error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        bounds = f"in {lo}{low}, {high}{hi}" if low is not None and high is not None else \
            f"{'>' if low_open else '>='} {low}" if low is not None else ""
        bad = not math.isfinite(value) or \
            (low is not None and (value <= low if low_open else value < low)) or \
            (high is not None and (value >= high if high_open else value > high))
        if bad:
            raise argparse.ArgumentTypeError(f"expected a finite {'integer' if kind is int else 'number'} {bounds}, "
                                             f"got {text!r}")
        return value
    parse.__name__ = kind.__name__                          # argparse names the type in its messages
    return parse


COUNT = _number(int, 1)                  # steps, rows, samples...
NONNEG = _number(int, 0)
POSITIVE = _number(float, 0, low_open=True)
SECONDS = _number(float, 0)
FRACTION = _number(float, 0, 1)          # alpha0
THRESHOLD = _number(float, 0, 1, low_open=True)


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake prints one line (``error: argument --x: ...``), not the whole usage."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _as_option(message: str, parser) -> str:
    """"seq_len: expected ..." -> "--seq-len: expected ..." when the subcommand has that option."""
    m = re.match(r"(\w+): ", message)
    if m and parser is not None:
        option = "--" + m.group(1).replace("_", "-")
        if any(option in a.option_strings for a in parser._actions):
            return option + message[len(m.group(1)):]
    return message


def _checkpoint_folder(path: str, option: str = "--ckpt") -> Path:
    """A folder holding a minidlm checkpoint and its tokenizer.json, or a ValueError naming ``option``.

    A folder in the Hub layout (``python -m minidlm export``) or a Hub id ``owner/name`` (from the Hub cache;
    offline without a cached copy: a one-line error) is accepted too; for an id the cache's folder is returned."""
    from .checkpoint import _tags_in
    from .checkpoint_read import _is_hub_source

    p = Path(path).expanduser()
    if not p.exists() and _is_hub_source(path):
        from .hub_format import snapshot_folder
        try:
            p = snapshot_folder(path)
        except (ValueError, FileNotFoundError) as e:
            raise ValueError(f"{option}: {str(e).removeprefix('folder_or_id: ')}") from None
    elif not p.exists():
        raise ValueError(f"{option}: no such folder: {path}")
    if not p.is_dir():
        raise ValueError(f"{option}: expected a checkpoint folder, but {path} is a file")
    if not _tags_in(p) and not _is_hub_source(p):
        raise ValueError(f"{option}: {path} holds no minidlm checkpoint (a NAME.json beside NAME-*.safetensors) "
                         f"and no Hub-layout model (config.json + model.safetensors)")
    if not (p / "tokenizer.json").is_file():
        raise ValueError(f"{option}: {path} has no tokenizer.json beside its checkpoint")
    return p


def _kind(model, info) -> str:
    """"ar", "mdm", "esolm" or "bd3lm": what a checkpoint's model is, from its config and train state."""
    objective = ((info.get("train_state") or {}).get("train_config") or {}).get("objective")
    if model.config.mask_id is None:
        return "ar"
    return objective if objective in ("esolm", "bd3lm", "udlm") else "mdm"


KIND_NAMES = {"ar": "an AR model (causal, no [MASK])", "esolm": "an Eso-LM model",
              "bd3lm": "a block diffusion model (BD3-LM)",
              "udlm": "a uniform-state diffusion model (UDLM)",
              "mdm": "an MDM (bidirectional, has a [MASK] id)"}


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
    ckpt = _checkpoint_folder(args.ckpt) if args.ckpt else DATA_DIR / "checkpoints" / SHIPPED_MDM
    model, info = load_model(ckpt)
    if (kind := _kind(model, info)) != "mdm":
        raise ValueError(f"--ckpt: the demo animates a masked diffusion model, but {ckpt} is {KIND_NAMES[kind]}; "
                         f"try python -m minidlm sample --ckpt {ckpt} --strategy {kind}")
    tok = load_tokenizer(ckpt / "tokenizer.json")
    L = model.config.max_len
    if args.steps < 1 or args.steps > L - 1:
        raise ValueError(f"--steps: expected 1 ... {L - 1} (the story has {L - 1} slots), got {args.steps}")
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
                      init_from=args.init_from, anneal_steps=args.anneal_steps, overwrite=args.overwrite,
                      block_size=args.block_size)
    summary = train(cfg)
    if os.environ.get("RANK", "0") == "0":                  # under torchrun, one summary: rank 0's
        print(json.dumps(summary))
        if summary.get("interrupted"):
            print(f"interrupted after step {summary['steps']}: the checkpoint is saved in {cfg.out}; "
                  f"go on with the same command and --resume", file=sys.stderr)
            return 130
    return 0


def cmd_sample(args) -> int:
    """Sample from a checkpoint with any sampler (lessons 07-08)."""
    from .checkpoint import load_model
    from .evaluate import decode_samples
    from .sampling import ancestral, generate, generate_adaptive, generate_ar
    from .tokenizer import load_tokenizer

    ckpt = _checkpoint_folder(args.ckpt)
    model, info = load_model(ckpt)
    tok = load_tokenizer(ckpt / "tokenizer.json")
    kind = _kind(model, info)
    if {"ar": "ar", "esolm": "esolm", "bd3lm": "bd3lm", "uniform": "udlm"}.get(args.strategy, "mdm") != kind:
        use = {"mdm": "low_confidence, entropy, random, ancestral, remdm or adaptive",
               "udlm": "uniform"}.get(kind, kind)
        raise ValueError(f"--strategy: {args.strategy} does not fit {ckpt}, which is {KIND_NAMES[kind]}; "
                         f"use --strategy {use}")
    longest = model.config.max_len // 2 if kind in ("esolm", "bd3lm") else model.config.max_len
    if args.length is not None and args.length > longest:
        raise ValueError(f"--length: expected at most {longest} for this model, got {args.length}")
    L = args.length or longest
    if args.strategy in ("low_confidence", "entropy", "random") and args.steps > L - 1:
        raise ValueError(f"--steps: expected at most {L - 1} (one token per step at least, {L} tokens with [BOS]), "
                         f"got {args.steps}")
    prompt = [tok.bos_id] + (tok.encode(args.prompt) if args.prompt else [])
    prompt = torch.tensor(prompt)
    common = dict(batch_size=args.n, prompt=prompt, temperature=args.temperature, generator=args.seed)
    # the length drawn first (length.py) for the fixed-count and adaptive MDM samplers, without blocks
    eos = None if args.no_length_first or args.block_length else tok.eos_id
    if args.strategy == "ar":
        x, tr = generate_ar(model, L, **common)
    elif args.strategy == "esolm":
        from .esolm import esolm_sample
        alpha0 = args.alpha0 if args.alpha0 is not None else info["train_state"]["train_config"]["alpha0"]
        x, tr = esolm_sample(model, L, tok.mask_id, alpha0, **common)
    elif args.strategy == "bd3lm":
        from .blocks import bd3_generate
        K = args.block_length or info["train_state"]["train_config"]["block_size"]
        rule = dict(threshold=args.threshold) if args.steps_per_block is None else \
            dict(steps_per_block=min(args.steps_per_block, K))
        x, tr = bd3_generate(model, L, tok.mask_id, K, eos_id=tok.eos_id, **rule, **common)
    elif args.strategy == "ancestral":
        x, tr = ancestral(model, L, args.steps, tok.mask_id, **common)
    elif args.strategy == "uniform":
        from .uniform import uniform_generate
        x, tr = uniform_generate(model, L, args.steps, tok.mask_id, **common)
    elif args.strategy == "remdm":
        from .remask import remdm_generate
        x, tr = remdm_generate(model, L, args.steps, tok.mask_id, strategy=args.remask, eta_cap=args.eta_cap,
                               eta_rescale=args.eta_cap, **common)
    elif args.strategy == "adaptive":
        x, tr = generate_adaptive(model, L, tok.mask_id, threshold=args.threshold,
                                  block_length=args.block_length, eos_id=eos, **common)
    else:
        x, tr = generate(model, L, args.steps, tok.mask_id, remasking=args.strategy,
                         block_length=args.block_length, eos_id=eos, **common)
    for text in decode_samples(tok, x):
        print(text)
    per_story = tr.reveal_step.max(1).values.double().mean().item()      # the step of a row's last commit
    if getattr(tr, "revises", False):                                   # uniform, remdm: every step a call
        per_story = float(tr.nfe)
    if getattr(tr, "calls", None) is not None:                          # bd3lm: the calls until its last block
        per_story = tr.calls.double().mean().item()
    print(f"[{args.strategy}: {tr.nfe} network calls for {args.n} x {L} tokens; "
          f"{per_story:.1f} calls per story on its own]", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    """A checkpoint folder -> the Hugging Face Hub layout (appendix A1)."""
    from .hub_format import export_checkpoint

    out = export_checkpoint(args.ckpt, args.out, tag=args.tag, overwrite=args.overwrite)
    print(out)
    print(f"[exported {args.ckpt} to {out} (config.json, model.safetensors, tokenizer.json, README.md); try "
          f"python -m minidlm sample --ckpt {out}; upload it with: hf upload OWNER/NAME {out}]", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m minidlm", description="minidlm: learn diffusion language models by building one")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="the classroom demo: watch a story unmask (lesson 00)")
    d.add_argument("--seed", type=int, default=None, help="fix the sample (default: a new one each time)")
    d.add_argument("--steps", type=COUNT, default=63, help="denoising steps T (the story has 63 slots)")
    d.add_argument("--strategy", default="low_confidence", choices=["low_confidence", "entropy", "random"])
    d.add_argument("--no-length-first", action="store_true",
                   help="do not draw where the story ends first (LLaDA's plain order; favours short stories)")
    d.add_argument("--seconds", type=SECONDS, default=5.0, help="length of the animation")
    d.add_argument("--ckpt", help="an MDM checkpoint folder (default: the shipped one)")
    d.add_argument("--no-animation", action="store_true", help="print the final text only")
    d.add_argument("--no-colour", "--no-color", action="store_true", help="plain text output")
    d.set_defaults(func=cmd_demo, parser=d)

    t = sub.add_parser("train", help="train a model (lesson 06)")
    t.add_argument("--objective", default="mdm", choices=["ar", "mdm", "esolm", "bd3lm", "udlm"])
    t.add_argument("--preset", default="nano", choices=["nano", "mini", "small"],
                   help="model size: nano (CPU), mini (a longer CPU run) or small (GPU)")
    t.add_argument("--d-model", type=COUNT, help="override the preset's width")
    t.add_argument("--n-layer", type=COUNT, help="override the preset's depth")
    t.add_argument("--n-head", type=COUNT, help="override the preset's heads")
    t.add_argument("--data", help="a .txt file or folder, or a hub dataset hf:NAME[:SPLIT[:COLUMN]] "
                                  "(default: the shipped tiny tales)")
    t.add_argument("--tokenizer", help="tokenizer JSON for --data (default: train a BPE)")
    t.add_argument("--hf-max-docs", type=COUNT, help="hf: data: the first documents only (default: all)")
    t.add_argument("--cache-dir", help="hf: data: where tokenized corpora are kept (default: ~/.cache/minidlm)")
    t.add_argument("--seq-len", type=COUNT, default=64, help="tokens per row, at most the preset's max_len")
    t.add_argument("--batch-size", type=COUNT, default=64, help="rows per step, over all processes")
    t.add_argument("--grad-accum", type=COUNT, default=1,
                   help="micro-batches per step in each process (batch-size / (processes x grad-accum) rows each)")
    t.add_argument("--steps", type=COUNT, default=2000)
    t.add_argument("--lr", type=POSITIVE, default=3e-3)
    t.add_argument("--warmup", type=NONNEG, default=100)
    t.add_argument("--eval-every", type=NONNEG, default=250)
    t.add_argument("--ckpt-every", type=NONNEG, default=500)
    t.add_argument("--out", default="runs/default",
                   help="run folder; one that holds a run or a model needs --resume or --overwrite")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA only)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.* (the same settings)")
    t.add_argument("--overwrite", action="store_true",
                   help="start over in an OUT that holds a run or a model (its checkpoints and log are deleted)")
    t.add_argument("--peak-tflops", type=POSITIVE, help="one accelerator's peak TFLOP/s, to log MFU")
    t.add_argument("--max-seconds", type=SECONDS, help="stop and checkpoint after this wall time")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--alpha0", type=FRACTION, default=0.25,
                   help="esolm: share of tokens decoded by diffusion (0 = AR, 1 = MDLM)")
    t.add_argument("--variant", default="B", choices=["A", "B"], help="esolm: attention variant (B has the exact KV cache)")
    t.add_argument("--init-from", metavar="CKPT",
                   help="start a fresh run from this checkpoint's weights, e.g. an AR run folder for an mdm run "
                        "(same size and tokenizer; --resume with a checkpoint wins)")
    t.add_argument("--anneal-steps", type=NONNEG, default=0,
                   help="mdm: anneal attention from causal to bidirectional over these first steps (DiffuLLaMA)")
    t.add_argument("--block-size", type=COUNT, default=8,
                   help="bd3lm: tokens per block, 1 (AR) ... seq-len (MDM) (lesson 14)")
    t.add_argument("--shift-logits", action="store_true",
                   help="mdm, udlm: keep the AR head's shift, position l predicted at l - 1 (Dream); saved in the model")
    t.set_defaults(func=cmd_train, parser=t)

    s = sub.add_parser("sample", help="sample from a checkpoint (lessons 07-08, 14-15)")
    s.add_argument("--ckpt", required=True, help="checkpoint folder, e.g. data/checkpoints/tales-mdm-nano")
    s.add_argument("--strategy", default="low_confidence",
                   choices=["low_confidence", "entropy", "random", "ancestral", "adaptive", "remdm", "esolm", "bd3lm",
                            "uniform", "ar"])
    s.add_argument("--steps", type=COUNT, default=32)
    s.add_argument("--steps-per-block", type=COUNT, default=None,
                   help="bd3lm: calls per block, LLaDA's count (default: the --threshold rule)")
    s.add_argument("--no-length-first", action="store_true",
                   help="MDM: do not draw where the story ends first (LLaDA's plain order; favours short stories)")
    s.add_argument("--length", type=_number(int, 2), default=None, help="tokens in all (default: the model's max)")
    s.add_argument("--prompt", default=None, help="text the story starts with")
    s.add_argument("--n", type=COUNT, default=4, help="how many samples")
    s.add_argument("--temperature", type=POSITIVE, default=1.0)
    s.add_argument("--block-length", type=COUNT, default=None,
                   help="semi-autoregressive blocks (bd3lm: the block size, default as trained)")
    s.add_argument("--threshold", type=THRESHOLD, default=0.9, help="confidence threshold (adaptive)")
    s.add_argument("--remask", default="cap", choices=["cap", "rescale", "loop"],
                   help="remdm: the remasking schedule (ReMDM's cap, rescale or loop)")
    s.add_argument("--eta-cap", type=FRACTION, default=0.02,
                   help="remdm: eta_cap (cap, loop) or eta_rescale (rescale), the remasking strength")
    s.add_argument("--alpha0", type=FRACTION, default=None, help="esolm: diffusion share (default: as trained)")
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(func=cmd_sample, parser=s)

    e = sub.add_parser("export", help="write a checkpoint in the Hugging Face Hub layout (appendix A1)")
    e.add_argument("--ckpt", required=True, help="checkpoint folder, e.g. data/checkpoints/tales-mdm-nano")
    e.add_argument("--out", required=True, help="the new folder, e.g. hub/tales-mdm-nano")
    e.add_argument("--tag", default=None, help="which checkpoint of the folder (default: last, or its only one)")
    e.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    e.set_defaults(func=cmd_export, parser=e)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    hub_id = (args.command in ("demo", "sample") and bool(args.ckpt) and not Path(args.ckpt).expanduser().exists()
              and re.fullmatch(r"[\w.-]+/[\w.-]+", args.ckpt) is not None)  # owner/name: the Hub, or its cache
    if not (args.command == "train" and (args.data or "").startswith("hf:")) and not hub_id:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")        # only hub data needs the network
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.command in ("demo", "sample") and "OMP_NUM_THREADS" not in os.environ:
        # a nano model's call is a few ms: with 2 threads and another busy process on the machine each
        # call waits at OpenMP barriers (benchmarks/threads.py); one thread is the robust default
        torch.set_num_threads(1)
    try:
        return args.func(args)
    except USER_ERRORS as e:                                # a mistake in the options: one line, no traceback
        if os.environ.get("MINIDLM_TRACEBACK"):             # for debugging minidlm itself
            raise
        print(f"error: {_as_option(str(e), args.parser)}", file=sys.stderr)
        return 2
    except FloatingPointError as e:                         # a run that diverged (train.py names the step)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
