"""The training loop for every objective (lesson 06).

One readable loop: pick a device, build data, model and AdamW, then for each step draw a batch,
compute the objective's loss, clip, step, and now and then evaluate and checkpoint. Runs on a
laptop CPU and at full speed on a GPU (bf16 autocast, optional ``torch.compile``, fused AdamW).

Objectives (the model is the same; only the attention pattern and targets change):
  ar   causal attention, next-token targets, loss = mean CE;
  mdm  bidirectional attention, same-position targets, loss = MDLM NELBO per token
       (x_t from the forward process at antithetic times t; [BOS] is never masked);
  esolm Eso-LM's hybrid NELBO per token (``esolm.esolm_loss``, lessons 09-10): half of each batch
       trains the diffusion phase, half the sequential phase on [z0 ; x], so the model is built
       with max_len = 2 * seq_len (RoPE positions stay < seq_len); ``alpha0`` and ``variant``
       choose the point on the AR <-> MDM spectrum and the attention variant.

Everything random is seeded by (seed, step), so a resumed run repeats an uninterrupted run's
losses exactly on the CPU.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._validate import check_choice, check_positive_int
from .checkpoint import load_checkpoint, save_checkpoint
from .data import batch_at, load_tales_tokenizer, load_text, pack_blocks, tales_blocks, train_val_split
from .forward import mask_tokens, sample_times
from .esolm import esolm_loss
from .losses import ar_loss, mdlm_nelbo
from .model import PRESETS, Model, ModelConfig

OBJECTIVES = ("ar", "mdm", "esolm")


@dataclass
class TrainConfig:
    objective: str = "mdm"          # "ar", "mdm" or "esolm"
    preset: str = "nano"            # model size, see model.PRESETS
    model_overrides: dict = field(default_factory=dict)  # e.g. {"d_model": 128} on top of the preset
    data: str | None = None         # a .txt file/folder; None = the shipped tiny-tales corpus
    tokenizer: str | None = None    # tokenizer JSON for --data; None = train a BPE on it
    seq_len: int = 64               # tokens per row (L)
    batch_size: int = 64            # rows per step (B)
    steps: int = 2000               # optimizer steps in all
    lr: float = 3e-3                # peak learning rate
    min_lr_ratio: float = 0.1       # cosine decays to lr * min_lr_ratio
    warmup: int = 100               # linear warm-up steps
    weight_decay: float = 0.05      # AdamW decay on 2-D weights
    grad_clip: float = 1.0          # max global grad norm (0 = off)
    schedule: str = "loglinear"     # noise schedule for mdm
    eps: float = 1e-3               # smallest t drawn
    eval_every: int = 250           # steps between validation passes (0 = only at the end)
    eval_batches: int = 8           # validation batches per pass
    ckpt_every: int = 500           # steps between "last" checkpoints
    out: str = "runs/default"       # run folder: checkpoints, log.jsonl, tokenizer.json
    seed: int = 0                   # seeds data order, masking and init
    device: str = "auto"            # "auto" (cuda > mps > cpu), or a torch device string
    compile: bool = False           # torch.compile the model (CUDA; off on CPU)
    resume: bool = False            # continue from out/last.* if present
    peak_tflops: float | None = None  # accelerator peak, for MFU in the log (None = not reported)
    progress: bool = True           # tqdm progress bar
    max_seconds: float | None = None  # stop (and checkpoint) after this much wall time
    alpha0: float = 0.25            # esolm: share of tokens decoded by diffusion (0 = AR, 1 = MDLM)
    variant: str = "B"              # esolm: attention variant, "B" (exact KV cache) or "A"

    def __post_init__(self):
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("preset", self.preset, PRESETS)
        for name in ("seq_len", "batch_size", "steps", "eval_batches"):
            check_positive_int(name, getattr(self, name))
        for name in ("warmup", "eval_every", "ckpt_every"):
            check_positive_int(name, getattr(self, name), minimum=0)
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if isinstance(self.alpha0, bool) or not isinstance(self.alpha0, (int, float)) or not 0 <= self.alpha0 <= 1:
            raise ValueError(f"alpha0: expected a number in [0, 1], got {self.alpha0!r}")
        check_choice("variant", self.variant, ("A", "B"))
        if self.objective == "esolm" and 0 < self.alpha0 < 1 and self.batch_size < 2:
            raise ValueError(f"batch_size: esolm with 0 < alpha0 < 1 splits each batch between its two terms; "
                             f"expected at least 2, got {self.batch_size}")


def pick_device(name: str = "auto") -> torch.device:
    """cuda, then mps, then cpu (``"auto"``), or the device named."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine from lr down to lr * min_lr_ratio."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_data(cfg: TrainConfig, out: Path):
    """(train, val, tokenizer). The tokenizer is copied into the run folder."""
    if cfg.data is None:
        tok = load_tales_tokenizer("bpe")
        train, val = tales_blocks(tok, L=cfg.seq_len, seed=cfg.seed)
    else:
        from .tokenizer import BPETokenizer, load_tokenizer
        docs = load_text(cfg.data)
        tok = load_tokenizer(cfg.tokenizer) if cfg.tokenizer else BPETokenizer.train(docs, vocab_size=4096)
        train, val = train_val_split(pack_blocks(tok.encode_batch(docs), cfg.seq_len, tok.bos_id, tok.eos_id),
                                     0.05, cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(out / "tokenizer.json")
    return train, val, tok


def build_model(cfg: TrainConfig, tok) -> Model:
    # esolm's sequential term runs [z0 ; x], twice as long as a row
    max_len = 2 * cfg.seq_len if cfg.objective == "esolm" else cfg.seq_len
    overrides = {"max_len": max_len, **cfg.model_overrides, "vocab_size": tok.vocab_size,
                 "mask_id": tok.mask_id if cfg.objective in ("mdm", "esolm") else None}
    return Model(ModelConfig.preset(cfg.preset, **overrides))


def compute_loss(model, x0, cfg: TrainConfig, mask_id: int, generator) -> torch.Tensor:
    """The objective's loss for a clean batch x0 (B, L): a scalar, nats per token."""
    if cfg.objective == "ar":
        return ar_loss(model(x0, is_causal=True), x0)
    B, L = x0.shape
    if cfg.objective == "esolm":
        keep = torch.zeros(L, dtype=torch.bool, device=x0.device)
        keep[0] = True                                                              # [BOS] stays clean
        # alpha0 = 1 (resp. 0) makes the sequential (resp. diffusion) term identically 0: give every
        # row to the other term instead of wasting half the batch
        kappa = 1.0 if cfg.alpha0 == 1 else 0.0 if cfg.alpha0 == 0 else 0.5
        loss, _ = esolm_loss(model, x0, cfg.alpha0, cfg.variant, kappa, generator, keep, eps=cfg.eps,
                             mask_id=mask_id)
        return loss
    t = sample_times(B, cfg.eps, generator=generator, device=x0.device)           # (B,)
    keep = torch.zeros(L, dtype=torch.bool, device=x0.device)
    keep[0] = True                                                                  # [BOS] stays clean
    xt = mask_tokens(x0, 1 - t.double(), mask_id, generator, keep=keep)            # (B, L)
    return mdlm_nelbo(model(xt), x0, xt, t, mask_id, cfg.schedule, reduction="token")


@torch.no_grad()
def evaluate(model, val: torch.Tensor, cfg: TrainConfig, mask_id: int, device, autocast) -> float:
    """Validation loss in nats per token (a NELBO bound for mdm, the hybrid NELBO for esolm), with fixed seeds so two calls on
    the same weights agree exactly."""
    model.eval()
    total = 0.0
    n = min(cfg.eval_batches, max(1, len(val) // cfg.batch_size))
    bs = min(cfg.batch_size, len(val))
    for i in range(n):
        x0 = batch_at(val, i, bs, seed=12345, device=device)
        g = torch.Generator().manual_seed(10_000 + i)
        with autocast:
            total += compute_loss(model, x0, cfg, mask_id, g).item()
    model.train()
    return total / n


def _log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def train(cfg: TrainConfig) -> dict:
    """Train a model as ``cfg`` says; returns a summary dict (final/best val loss, tokens/s...)."""
    out = Path(cfg.out)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    train_data, val_data, tok = build_data(cfg, out)
    if cfg.batch_size > len(train_data):
        raise ValueError(f"batch_size: expected at most the {len(train_data)} training rows, got {cfg.batch_size}")
    model = build_model(cfg, tok).to(device)
    opt = model.configure_optimizer(cfg.weight_decay, cfg.lr, device_type=device.type)
    start, best = 0, float("inf")
    log_path = out / "log.jsonl"

    if cfg.resume and (out / "last.json").exists():
        ck = load_checkpoint(out, "last", map_location=device)
        if ck["model_config"] != model.config.to_dict():
            raise ValueError(f"resume: the checkpoint in {out} was made with another model config "
                             f"({ck['model_config']} vs {model.config.to_dict()})")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer_state"])
        start, best = ck["train_state"]["step"], ck["train_state"].get("best_val", float("inf"))
    elif log_path.exists():
        log_path.unlink()                                   # a fresh run starts a fresh log

    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()
    fwd = torch.compile(model) if (cfg.compile and device.type == "cuda") else model
    flops_tok = model.flops_per_token(cfg.seq_len)

    def checkpoint(tag, step, val=None):
        state = {"step": step, "best_val": best, "val_loss": val, "train_config": dataclasses.asdict(cfg)}
        save_checkpoint(out, model, model_config=model.config.to_dict(), train_state=state, optimizer=opt, tag=tag)

    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=start, desc=f"{cfg.objective} {cfg.preset}", unit="step")
    t_start = time.time()
    t_last, tokens_since, step, val, loss_val = time.time(), 0, start, None, float("nan")
    for step in range(start, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x0 = batch_at(train_data, step, cfg.batch_size, cfg.seed, device)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        with autocast:
            loss = compute_loss(fwd, x0, cfg, tok.mask_id, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        tokens_since += x0.numel()
        done = step + 1
        if done % 10 == 0 or done == cfg.steps:
            loss_val = loss.item()                          # syncs the device, so time is honest
            dt = time.time() - t_last
            tps = tokens_since / max(dt, 1e-9)
            rec = {"step": done, "loss": loss_val, "lr": lr_at(step, cfg), "tokens_per_s": tps}
            if cfg.peak_tflops:
                rec["mfu"] = tps * flops_tok / (cfg.peak_tflops * 1e12)
            _log(log_path, rec)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_val:.3f}", tok_s=f"{tps:,.0f}")
            t_last, tokens_since = time.time(), 0
        if bar is not None:
            bar.update(1)
        out_of_time = cfg.max_seconds is not None and time.time() - t_start > cfg.max_seconds
        if (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps or out_of_time:
            val = evaluate(model, val_data, cfg, tok.mask_id, device, autocast)
            _log(log_path, {"step": done, "val_loss": val, "val_ppl_bound": math.exp(min(val, 50)),
                            "elapsed_s": time.time() - t_start})
            if val < best:
                best = val
                checkpoint("best", done, val)
        if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.steps or out_of_time:
            checkpoint("last", done, val)
        if out_of_time:
            break
    if bar is not None:
        bar.close()
    return {"steps": step + 1 if cfg.steps > start else start, "val_loss": val, "best_val": best,
            "seconds": time.time() - t_start, "out": str(out)}
