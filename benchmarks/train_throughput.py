"""Training throughput: tokens/s of AR and MDM at the same preset, measured in one run.

    python benchmarks/train_throughput.py --preset nano --json benchmarks/results/train_throughput_cpu.json
    python benchmarks/train_throughput.py --preset small --batch-size 16 --compile --peak-tflops 989 --json ...

AR and MDM steps are timed in alternating rounds so that machine noise hits both alike; the
headline is the ratio of their medians (MDM adds only the masking, so the goal is >= 0.9).
MFU = tokens/s * flops_per_token / peak, flops_per_token = 6 N + 12 n_layer d_model L (model.py).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from minidlm.model import Model, ModelConfig
from minidlm.train import TrainConfig, compute_loss, pick_device


def make(objective, args, device):
    mask_id = args.vocab_size - 1
    cfg = ModelConfig.preset(args.preset, vocab_size=args.vocab_size, max_len=args.seq_len,
                             mask_id=mask_id if objective == "mdm" else None)
    model = Model(cfg).to(device)
    opt = model.configure_optimizer(0.05, 3e-4, device_type=device.type)
    fwd = torch.compile(model) if args.compile else model
    return model, fwd, opt, TrainConfig(objective=objective, preset=args.preset, seq_len=args.seq_len,
                                        batch_size=args.batch_size, progress=False)


def run_steps(state, x0, n, autocast, device):
    model, fwd, opt, cfg = state
    g = torch.Generator().manual_seed(0)
    mask_id = model.config.mask_id if model.config.mask_id is not None else 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        with autocast:
            loss = compute_loss(fwd, x0, cfg, mask_id, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    else:
        loss.item()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="nano")
    ap.add_argument("--vocab-size", type=int, default=None, help="default 1024 (nano) / 50304 (small)")
    ap.add_argument("--seq-len", type=int, default=None, help="default: the preset's max_len")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps-per-round", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak of the accelerator, for MFU")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from minidlm.model import PRESETS
    args.vocab_size = args.vocab_size or (50304 if args.preset == "small" else 1024)
    args.seq_len = args.seq_len or PRESETS[args.preset]["max_len"]
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    x0 = torch.randint(0, args.vocab_size - 1, (args.batch_size, args.seq_len), device=device)
    states = {o: make(o, args, device) for o in ("ar", "mdm")}
    for o in states:                                    # warm-up: compilation, allocator, autotuning
        run_steps(states[o], x0, 3, autocast, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = {o: [] for o in states}
    for _ in range(args.rounds):
        for o in states:
            times[o].append(run_steps(states[o], x0, args.steps_per_round, autocast, device))
    tokens = args.batch_size * args.seq_len * args.steps_per_round
    res = {"preset": args.preset, "batch_size": args.batch_size, "seq_len": args.seq_len,
           "vocab_size": args.vocab_size, "device": str(device),
           "device_name": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "compile": args.compile, "torch": torch.__version__,
           "params": states["ar"][0].num_params(), "flops_per_token": states["ar"][0].flops_per_token(args.seq_len),
           "flops_formula": "6*N + 12*n_layer*d_model*L"}
    for o in states:
        tps = [tokens / t for t in times[o]]
        res[f"{o}_tokens_per_s"] = statistics.median(tps)
        res[f"{o}_tokens_per_s_all"] = tps
        if args.peak_tflops:
            res[f"{o}_mfu"] = statistics.median(tps) * res["flops_per_token"] / (args.peak_tflops * 1e12)
    res["mdm_over_ar"] = res["mdm_tokens_per_s"] / res["ar_tokens_per_s"]
    if device.type == "cuda":
        res["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    else:
        res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
