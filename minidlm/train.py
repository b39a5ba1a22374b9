"""The training loop for every objective (lesson 06).

One readable loop: pick a device, build data, model and AdamW, then for each step draw a batch,
compute the objective's loss, clip, step, and now and then evaluate and checkpoint. Runs on a
laptop CPU and at full speed on a GPU (bf16 autocast, optional ``torch.compile``, fused AdamW).

Objectives (the model is the same; only the attention pattern and targets change):
  ar   causal attention, next-token targets, loss = mean CE;
  mdm  bidirectional attention, same-position targets, loss = MDLM NELBO per token
       (x_t masked at rate 1 - alpha(t) of ``schedule`` at antithetic times t; [BOS] is never
       masked and not counted, so the loss is per generated token, L - 1 per row, like ar's);
  esolm Eso-LM's hybrid NELBO per token (``esolm.esolm_loss``, lessons 09-10): half of each batch
       trains the diffusion phase, half the sequential phase on [z0 ; x], so the model is built
       with max_len = 2 * seq_len (RoPE positions stay < seq_len); ``alpha0`` and ``variant``
       choose the point on the AR <-> MDM spectrum and the attention variant.
  bd3lm block diffusion (``blocks.py``, lesson 14): AR over blocks of ``block_size`` tokens, MDM
       inside a block; one pass over [x_t ; x_0] (max_len = 2 * seq_len), the NELBO summed over blocks.
  udlm uniform-state diffusion (``uniform.py``, lesson 15): tokens resampled uniformly instead of
       masked, UDLM's continuous-time NELBO; the model keeps the tokenizer's mask_id only to
       exclude [MASK] from the states.

AR-to-diffusion adaptation (lesson 14, ``adapt.py``): ``init_from`` starts a fresh run from another
checkpoint's weights (an AR model for an mdm run); ``anneal_steps`` anneals mdm's attention from
causal to bidirectional (DiffuLLaMA); ``model_overrides={"shift_logits": True}`` keeps the AR head's
next-token shift (Dream).

Everything random is seeded by (seed, step), so a resumed run repeats an uninterrupted run's
losses exactly on the CPU.

Many GPUs: under ``torchrun --nproc_per_node=N -m minidlm train ...`` every process runs this same
loop on its own device, wrapped in DistributedDataParallel (``distributed.py``). The batch of a
step is the same for any N: each rank takes its N-th of the rows of ``batch_at(train, step, B)``
and, with ``grad_accum`` = k, feeds them in k micro-batches of B / (N k) rows; the gradients are
averaged over all of them, so N processes take the same optimizer steps as one (ar and mdm draw
the masking noise for the whole batch, so up to float rounding). Rank 0 alone logs, evaluates and
writes checkpoints; a checkpoint holds the plain model, so a run resumes on any N.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import distributed, runfolder
from ._validate import check_choice, check_positive_int
from .adapt import init_from_checkpoint
from .checkpoint import load_checkpoint, save_checkpoint
from .data import batch_at, load_text, pack_blocks, shipped_tales_blocks, train_val_split
from .device import check_device, pick_device
from .model import PRESETS, Model, ModelConfig
from .objectives import compute_loss, evaluate

__all__ = ["TrainConfig", "train", "lr_at", "build_data", "build_model", "seconds_per_step",
           "compute_loss", "evaluate", "pick_device", "check_device"]

OBJECTIVES = ("ar", "mdm", "esolm", "bd3lm", "udlm")
MDM_SCHEDULES = ("loglinear", "linear", "cosine")   # esolm has its own alpha0 (1 - t)


@dataclass
class TrainConfig:
    objective: str = "mdm"          # "ar", "mdm", "esolm", "bd3lm" or "udlm"
    preset: str = "nano"            # model size, see model.PRESETS
    model_overrides: dict = field(default_factory=dict)  # e.g. {"d_model": 128} on top of the preset
    data: str | None = None         # a .txt file/folder, "hf:NAME[:SPLIT[:COLUMN]]" (hub.py); None = tiny tales
    tokenizer: str | None = None    # tokenizer JSON for --data; None = train a BPE on it
    hf_max_docs: int | None = None  # hf: data: use the first documents only (None = all)
    cache_dir: str | None = None    # hf: data: where tokenized corpora are kept (None = ~/.cache/minidlm)
    seq_len: int = 64               # tokens per row (L)
    batch_size: int = 64            # rows per optimizer step, over all processes (B)
    grad_accum: int = 1             # micro-batches per step in each process: B / (processes * grad_accum) rows each
    steps: int = 2000               # optimizer steps in all
    lr: float = 3e-3                # peak learning rate
    min_lr_ratio: float = 0.1       # cosine decays to lr * min_lr_ratio
    warmup: int = 100               # linear warm-up steps
    weight_decay: float = 0.05      # AdamW decay on 2-D weights
    grad_clip: float = 1.0          # max global grad norm (0 = off)
    schedule: str = "loglinear"     # noise schedule for mdm: masks at rate 1 - alpha(t) and weights by its w(t)
    eps: float = 1e-3               # smallest t drawn
    eval_every: int = 250           # steps between validation passes (0 = only at the end)
    eval_batches: int = 8           # validation batches per pass
    ckpt_every: int = 500           # steps between "last" checkpoints
    out: str = "runs/default"       # run folder: checkpoints, log.jsonl, tokenizer.json
    seed: int = 0                   # seeds data order, masking and init
    device: str = "auto"            # "auto" (cuda > mps > cpu), or a torch device string
    compile: bool = False           # torch.compile the model (CUDA; off on CPU)
    resume: bool = False            # continue from out/last.* if present
    overwrite: bool = False         # start over in an out folder that holds a run or a model (runfolder.py)
    peak_tflops: float | None = None  # accelerator peak, for MFU in the log (None = not reported)
    progress: bool = True           # tqdm progress bar
    max_seconds: float | None = None  # stop (and checkpoint) after this much wall time
    stop_at: int | None = None      # stop (and checkpoint) after this step; resume=True goes on, same schedule
    alpha0: float = 0.25            # esolm: share of tokens decoded by diffusion (0 = AR, 1 = MDLM)
    variant: str = "B"              # esolm: attention variant, "B" (exact KV cache) or "A"
    init_from: str | None = None    # a fresh run starts from this checkpoint's weights (run or shipped folder)
    anneal_steps: int = 0           # mdm: attention causal -> bidirectional over these first steps (0 = off)
    block_size: int = 8             # bd3lm: tokens per block (1 = AR, seq_len = MDM), lesson 14

    def __post_init__(self):
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("preset", self.preset, PRESETS)
        for name in ("seq_len", "batch_size", "steps", "eval_batches", "grad_accum"):
            check_positive_int(name, getattr(self, name))
        for name in ("warmup", "eval_every", "ckpt_every"):
            check_positive_int(name, getattr(self, name), minimum=0)
        for name, low in (("lr", 0), ("max_seconds", None), ("peak_tflops", 0)):
            v = getattr(self, name)
            if v is None and name != "lr":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or (v <= low if low is not None else v < 0):
                raise ValueError(f"{name}: expected a finite number {'> 0' if low is not None else '>= 0'}, got {v!r}")
        cap = self.model_overrides.get("max_len", PRESETS[self.preset]["max_len"]) \
            if isinstance(self.model_overrides, dict) else PRESETS[self.preset]["max_len"]
        if self.seq_len > cap:
            sizes = ", ".join(f"{k} {v['max_len']}" for k, v in PRESETS.items())
            raise ValueError(f"seq_len: expected at most {cap}, the longest sequence of preset {self.preset!r} "
                             f"(presets: {sizes}), got {self.seq_len}")
        check_device(self.device, available=False)
        if isinstance(self.alpha0, bool) or not isinstance(self.alpha0, (int, float)) or not 0 <= self.alpha0 <= 1:
            raise ValueError(f"alpha0: expected a number in [0, 1], got {self.alpha0!r}")
        check_choice("variant", self.variant, ("A", "B"))
        check_positive_int("anneal_steps", self.anneal_steps, minimum=0)
        check_positive_int("block_size", self.block_size)
        if self.objective == "bd3lm" and self.block_size > self.seq_len:
            raise ValueError(f"block_size: expected at most seq_len={self.seq_len}, got {self.block_size}")
        if self.stop_at is not None:
            check_positive_int("stop_at", self.stop_at)
            if self.stop_at > self.steps:
                raise ValueError(f"stop_at: expected at most steps={self.steps}, got {self.stop_at}")
        if self.anneal_steps and self.objective != "mdm":
            raise ValueError(f"anneal_steps: attention annealing is for objective mdm, got {self.objective!r}")
        if not isinstance(self.model_overrides, dict):
            raise ValueError(f"model_overrides: expected a dict, got {type(self.model_overrides).__name__}")
        if self.model_overrides.get("shift_logits") and self.objective not in ("mdm", "udlm"):
            raise ValueError(f"shift_logits: the AR shift is for objectives mdm and udlm (bidirectional, whole sequences), "
                             f"got objective {self.objective!r}")
        if self.init_from is not None:
            if not isinstance(self.init_from, (str, Path)) or not str(self.init_from):
                raise ValueError(f"init_from: expected a checkpoint folder path or None, got {self.init_from!r}")
            self.init_from = str(self.init_from)                    # JSON-able in the checkpoint's train_config
        check_choice("schedule", self.schedule, MDM_SCHEDULES)
        if self.data is not None and self.data.startswith("hf:"):
            from .hub import parse_spec
            parse_spec(self.data)                                   # a bad spec fails here, naming data
        if self.hf_max_docs is not None:
            check_positive_int("hf_max_docs", self.hf_max_docs)
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size: expected a multiple of grad_accum = {self.grad_accum} "
                             f"(each micro-batch has batch_size / grad_accum rows), got {self.batch_size}")
        if self.objective == "esolm" and 0 < self.alpha0 < 1 and self.batch_size < 2:
            raise ValueError(f"batch_size: esolm with 0 < alpha0 < 1 splits each batch between its two terms; "
                             f"expected at least 2, got {self.batch_size}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine from lr down to lr * min_lr_ratio."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_data(cfg: TrainConfig, out: Path, save_tokenizer: bool = True):
    """(train, val, tokenizer). The tokenizer is copied into the run folder."""
    if cfg.data is None:
        train, val, tok = shipped_tales_blocks(cfg.seq_len, cfg.seed)
    elif cfg.data.startswith("hf:"):
        from .hub import hub_blocks
        from .tokenizer import load_tokenizer
        train, val, tok = hub_blocks(cfg.data, cfg.seq_len, load_tokenizer(cfg.tokenizer) if cfg.tokenizer else None,
                                     cfg.hf_max_docs, cfg.cache_dir, seed=cfg.seed, progress=cfg.progress)
    else:
        from .tokenizer import BPETokenizer, load_tokenizer
        docs = load_text(cfg.data)
        tok = load_tokenizer(cfg.tokenizer) if cfg.tokenizer else BPETokenizer.train(docs, vocab_size=4096)
        train, val = train_val_split(pack_blocks(tok.encode_batch(docs), cfg.seq_len, tok.bos_id, tok.eos_id),
                                     0.05, cfg.seed)
    if save_tokenizer:
        out.mkdir(parents=True, exist_ok=True)
        tok.save(out / "tokenizer.json")
    return train, val, tok


def build_model(cfg: TrainConfig, tok) -> Model:
    # esolm's sequential term and bd3lm's training pass run [z0 ; x] / [x_t ; x_0], twice a row
    max_len = 2 * cfg.seq_len if cfg.objective in ("esolm", "bd3lm") else cfg.seq_len
    overrides = {"max_len": max_len, **cfg.model_overrides, "vocab_size": tok.vocab_size,
                 "mask_id": tok.mask_id if cfg.objective in ("mdm", "esolm", "bd3lm", "udlm") else None}
    return Model(ModelConfig.preset(cfg.preset, **overrides))


def seconds_per_step(cfg: TrainConfig, repeats: int = 5) -> float:
    """The median wall time of one optimizer step of ``cfg`` on this machine (a fresh model, the
    run's data and batch size; one warm-up step first), to print a time estimate before a run
    that is planned by steps (lesson 06)."""
    check_positive_int("repeats", repeats)
    device = pick_device(cfg.device)
    train_data, _, tok = build_data(cfg, Path(tempfile.mkdtemp(prefix="minidlm-timing-")), save_tokenizer=False)
    model = build_model(cfg, tok).to(device)
    opt = model.configure_optimizer(cfg.weight_decay, cfg.lr, device_type=device.type)
    times = []
    for step in range(repeats + 1):
        t0 = time.perf_counter()
        x0 = batch_at(train_data, step, cfg.batch_size, cfg.seed, device)
        opt.zero_grad(set_to_none=True)
        compute_loss(model, x0, cfg, tok.mask_id, torch.Generator().manual_seed(step), step=step).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[repeats // 2]


def _check_finite(losses: list, done: int) -> None:
    """Stop the run at the first step whose loss is NaN or infinite (one device sync for them all)."""
    values = torch.stack([torch.as_tensor(v, dtype=torch.float32).reshape(()).cpu() for v in losses])
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise FloatingPointError(
            f"loss: step {done - len(losses) + i + 1} gave a loss of {values[i].item()}; the run stops here and "
            f"writes no checkpoint of it (the last one saved is untouched); try a lower --lr")


def _log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def train(cfg: TrainConfig) -> dict:
    """Train a model as ``cfg`` says; returns a summary dict (final/best val loss, tokens/s...).

    Under torchrun every rank calls this and gets a summary; only rank 0's has the val_loss."""
    n_parts = distributed.env_world_size() * cfg.grad_accum          # micro-batches per step, all ranks together
    if cfg.batch_size % n_parts:
        raise ValueError(f"batch_size: expected a multiple of processes x grad_accum = {distributed.env_world_size()} "
                         f"x {cfg.grad_accum} = {n_parts} (each micro-batch has batch_size / {n_parts} rows), "
                         f"got {cfg.batch_size}")
    if cfg.objective == "esolm" and 0 < cfg.alpha0 < 1 and cfg.batch_size < 2 * n_parts:
        raise ValueError(f"batch_size: esolm splits each micro-batch between its two terms; expected at least "
                         f"2 rows per micro-batch ({2 * n_parts} in all), got {cfg.batch_size}")
    check_device(cfg.device)                                 # before any work, as the run folder's rules
    for name in ("data", "tokenizer", "init_from"):
        path = getattr(cfg, name)
        if path is not None and not path.startswith("hf:") and not Path(path).expanduser().exists():
            raise FileNotFoundError(f"{name}: no file or folder at {path}")
    notes = runfolder.check_out(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite)
    if os.environ.get("RANK", "0") == "0":
        for note in notes:
            print(f"minidlm train: {note}", file=sys.stderr)
    device = distributed.setup(pick_device(cfg.device))      # joins the process group under torchrun
    try:
        return _train(cfg, device)
    finally:
        distributed.teardown()


def _train(cfg: TrainConfig, device: torch.device) -> dict:
    out = Path(cfg.out)
    main, rank = distributed.is_main(), distributed.rank()
    torch.manual_seed(cfg.seed)
    resuming = cfg.resume and (out / "last.json").exists()
    with distributed.main_first():    # rank 0 first: it trains the tokenizer and fills the hub cache; the others
        # then load its tokenizer (a local corpus) or the cache (hf:), so every rank holds the same tokens;
        # a resumed run keeps the tokenizer it was trained with
        local_bpe = cfg.data is not None and not cfg.data.startswith("hf:") and cfg.tokenizer is None
        reuse = local_bpe and (not main or resuming) and (out / runfolder.TOKENIZER).exists()
        data_cfg = dataclasses.replace(cfg, tokenizer=str(out / runfolder.TOKENIZER)) if reuse else cfg
        train_data, val_data, tok = build_data(data_cfg, out, save_tokenizer=False)
        if cfg.batch_size > len(train_data):
            raise ValueError(f"batch_size: expected at most the {len(train_data)} training rows, got {cfg.batch_size}")
        model = build_model(cfg, tok).to(device)
        start, best, ck = 0, float("inf"), None
        if resuming:                                          # every rank loads the same checkpoint (not init_from)
            ck = load_checkpoint(out, "last", map_location=device)
            if ck["model_config"] != model.config.to_dict():
                raise ValueError(f"resume: the checkpoint in {out} was made with another model config "
                                 f"({ck['model_config']} vs {model.config.to_dict()})")
            if main:
                runfolder.check_same_tokenizer(tok, out)
            start, best = ck["train_state"]["step"], ck["train_state"].get("best_val", float("inf"))
        elif cfg.init_from is not None:                       # a fresh run from another model's weights
            init_from_checkpoint(model, cfg.init_from, tok)
        if main:                                              # every check has passed: only now write into out
            if cfg.overwrite:
                runfolder.clear(out)
            out.mkdir(parents=True, exist_ok=True)
            if not reuse:
                tok.save(out / runfolder.TOKENIZER)
            if resuming:
                runfolder.trim_log(out, start)                # no step is logged twice
                saved = ck["train_state"].get("train_config") or {}
                for note in runfolder.resume_changes(saved, dataclasses.asdict(cfg), start):
                    print(f"minidlm train: {note}", file=sys.stderr)
            else:
                (out / runfolder.LOG).unlink(missing_ok=True)  # a fresh run starts a fresh log
    opt = model.configure_optimizer(cfg.weight_decay, cfg.lr, device_type=device.type)
    if ck is not None:
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer_state"])
    log_path = out / runfolder.LOG

    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()
    ddp = None
    if distributed.world() > 1:                             # averages the gradients over the ranks in backward
        from torch.nn.parallel import DistributedDataParallel
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    fwd = torch.compile(ddp or model) if (cfg.compile and device.type == "cuda") else (ddp or model)
    flops_tok = model.flops_per_token(cfg.seq_len)
    micro = cfg.batch_size // (distributed.world() * cfg.grad_accum)   # rows per micro-batch (b)
    whole = micro == cfg.batch_size                          # one process, no accumulation: the plain loop

    def checkpoint(tag, step, val=None):                     # the plain model: resumes on any number of ranks
        state = {"step": step, "best_val": best, "val_loss": val, "train_config": dataclasses.asdict(cfg)}
        save_checkpoint(out, model, model_config=model.config.to_dict(), train_state=state, optimizer=opt, tag=tag)

    bar = None
    if cfg.progress and main:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=start, desc=f"{cfg.objective} {cfg.preset}", unit="step")
    t_start = time.time()
    t_last, tokens_since, step, val, loss_val = time.time(), 0, start, None, float("nan")
    pending = []                                            # this step's and earlier unchecked losses
    with runfolder.stop_on_interrupt() as interrupt:       # Ctrl-C: stop after this step, checkpointed
        for step in range(start, cfg.steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            x0 = batch_at(train_data, step, cfg.batch_size, cfg.seed, device)  # (B, L): the step's batch, on every rank
            opt.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for k in range(cfg.grad_accum):
                lo = (rank * cfg.grad_accum + k) * micro
                rows = None if whole else slice(lo, lo + micro)              # this rank's k-th micro-batch
                g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # the step's noise, for any split
                # DDP averages the gradients over the ranks in the last micro-step's backward only
                sync = ddp is None or k == cfg.grad_accum - 1
                with nullcontext() if sync else ddp.no_sync():
                    with autocast:
                        loss = compute_loss(fwd, x0, cfg, tok.mask_id, g, rows, step=step)
                    (loss / cfg.grad_accum).backward()
                loss_sum = loss_sum + loss.detach()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            tokens_since += x0.numel()                          # the whole batch: tokens/s counts every rank
            done = step + 1
            pending.append(loss_sum)
            # rank 0's clock (and Ctrl-C) decides, so that every rank stops at the same step
            out_of_time = cfg.max_seconds is not None and time.time() - t_start > cfg.max_seconds
            out_of_time = distributed.agree(out_of_time or interrupt["asked"]) if distributed.world() > 1 \
                else out_of_time or interrupt["asked"]
            out_of_time = out_of_time or (cfg.stop_at is not None and done >= cfg.stop_at)
            do_eval = (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps or out_of_time
            do_ckpt = (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.steps or out_of_time
            if done % 10 == 0 or do_eval or do_ckpt:            # never log, evaluate or save a NaN model
                _check_finite(pending, done)
                pending = []
            if done % 10 == 0 or done == cfg.steps:
                loss_val = distributed.mean((loss_sum / cfg.grad_accum).item())  # syncs the device, so time is honest
                dt = time.time() - t_last
                tps = tokens_since / max(dt, 1e-9)
                rec = {"step": done, "loss": loss_val, "lr": lr_at(step, cfg), "tokens_per_s": tps}
                if cfg.peak_tflops:                             # peak_tflops is one accelerator's
                    rec["mfu"] = tps * flops_tok / (cfg.peak_tflops * 1e12 * distributed.world())
                if main:
                    _log(log_path, rec)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss_val:.3f}", tok_s=f"{tps:,.0f}")
                t_last, tokens_since = time.time(), 0
            if bar is not None:
                bar.update(1)
            if main and do_eval:
                val = evaluate(model, val_data, cfg, tok.mask_id, device, autocast)
                _log(log_path, {"step": done, "val_loss": val, "val_ppl_bound": math.exp(min(val, 50)),
                                "elapsed_s": time.time() - t_start})
                if val < best:
                    best = val
                    checkpoint("best", done, val)
            if main and do_ckpt:
                checkpoint("last", done, val)
            if do_eval or do_ckpt:
                distributed.barrier()                           # the others wait for rank 0's evaluation and checkpoint
            if out_of_time:
                break
    if bar is not None:
        bar.close()
    return {"steps": step + 1 if cfg.steps > start else start, "val_loss": val, "best_val": best,
            "seconds": time.time() - t_start, "out": str(out), "interrupted": interrupt["asked"]}
