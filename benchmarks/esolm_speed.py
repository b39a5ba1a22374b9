"""Eso-LM's exact KV cache: sampling wall time against the length (lesson 10).

    python benchmarks/esolm_speed.py [--quick] [--json benchmarks/results/esolm_speed_cpu.json]
                                     [--batch-size 1] [--device auto]

Three samplers draw L tokens (after [BOS]) from the same randomly initialised ~5M-parameter
Transformer (6 layers, d_model 256, 8 heads, vocab 1024, max_len 2048) -- speed does not depend on
training, so no checkpoint is needed:

  mdlm_uncached  the MDM sampler (``sampling.generate``), a full bidirectional forward over all L
                 tokens at every step, one token revealed per step: NFE = L, O(L^2) token-forwards;
  esolm_cached   Eso-LM (B) with alpha0 = 1 and its KV cache (``esolm.esolm_sample``): NFE = L,
                 but each step feeds only the token revealed last step plus the one to decode;
  ar_cache       AR with a KV cache (``sampling.generate_ar``): NFE = L, one token per call.

A second pair of rows uses a fixed step budget T = L/4 (4 tokens per step) for mdlm_uncached and
esolm_cached. esolm_cached uses ``counts="even"`` (the same number of tokens every step), so that it
makes exactly T calls, as the MDM sampler does (the paper's binomial counts skip empty steps).
Reported: the median wall time of the repeats (time.perf_counter, CUDA synchronised before each
clock read), tokens per second, and ``speedup_vs_mdlm`` = mdlm_uncached / esolm_cached
at the largest L. On CUDA the SDPA backends are pinned to flash / memory-efficient attention.
Writes JSON and a PNG plot next to it. ``--quick`` (or MINIDLM_SMOKE=1) runs small lengths once.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from minidlm.esolm import esolm_sample
from minidlm.latency import CausalView
from minidlm.model import Model, ModelConfig, pinned_sdpa
from minidlm.sampling import generate, generate_ar

VOCAB, MASK, BOS = 1024, 1023, 0


def timed(fn, device, repeats: int) -> float:
    """Median wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with pinned_sdpa(device):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build_model(device, dtype) -> Model:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=VOCAB, max_len=2048, n_layer=6, n_head=8, d_model=256, mask_id=MASK)
    return Model(cfg).to(device=device, dtype=dtype).eval()


def samplers(model, L: int, B: int, T: int):
    """name -> a call drawing B sequences of L tokens ([BOS] + L-1 generated) in T steps."""
    bos = torch.tensor([BOS])
    return {
        "mdlm_uncached": lambda: generate(model, L, T, MASK, batch_size=B, prompt=bos, remasking="random",
                                          generator=0),
        "esolm_cached": lambda: esolm_sample(model, L, MASK, 1.0, batch_size=B, prompt=bos, diffusion_steps=T,
                                             counts="even", generator=0),
        "ar_cache": lambda: generate_ar(CausalView(model), L, batch_size=B, bos_id=BOS, generator=0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small lengths, one repeat (CI size)")
    ap.add_argument("--json", default=None, help="output JSON (default benchmarks/results/esolm_speed_<device>.json)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per setting (median)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--lengths", type=int, nargs="*", default=None, help="override the lengths")
    a = ap.parse_args()
    quick = a.quick or os.environ.get("MINIDLM_SMOKE") == "1"
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    lengths = a.lengths or ([64, 128, 256] if quick else [128, 256, 512, 1024])
    repeats = a.repeats or (1 if quick else 3)
    B = a.batch_size
    out = Path(a.json or f"benchmarks/results/esolm_speed_{device.type}.json")

    model = build_model(device, dtype)
    for fn in samplers(model, 16, B, 15).values():                        # warm-up (allocator, kernels)
        timed(fn, device, 1)
    rows = []
    for L in lengths:
        for budget, T in (("T=L", L - 1), ("T=L/4", L // 4)):
            for name, fn in samplers(model, L, B, T).items():
                if name == "ar_cache" and budget != "T=L":
                    continue                                             # AR always takes one call per token
                sec = timed(fn, device, repeats)
                rows.append({"L": L, "budget": budget, "sampler": name, "nfe": L - 1 if name == "ar_cache" else T,
                             "batch": B, "seconds": sec, "tokens_per_s": B * (L - 1) / sec})
                print(json.dumps(rows[-1]), flush=True)

    def sec(L, name, budget="T=L"):
        return next(r["seconds"] for r in rows if r["L"] == L and r["sampler"] == name and r["budget"] == budget)

    Lmax = max(lengths)
    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "dtype": str(dtype).replace("torch.", ""), "quick": quick,
        "batch_size": B, "repeats": repeats, "params": model.num_params(),
        "speedup_vs_mdlm": sec(Lmax, "mdlm_uncached") / sec(Lmax, "esolm_cached"),
        "speedup_vs_mdlm_T_L4": sec(Lmax, "mdlm_uncached", "T=L/4") / sec(Lmax, "esolm_cached", "T=L/4"),
        "esolm_time_vs_ar": sec(Lmax, "esolm_cached") / sec(Lmax, "ar_cache"),
        "speedup_vs_mdlm_by_L": {L: sec(L, "mdlm_uncached") / sec(L, "esolm_cached") for L in lengths},
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(rows, out.with_suffix(".png"), res["device"], B)
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))


def plot(rows, path, device_name, B):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {"mdlm_uncached": "s", "esolm_cached": "o", "ar_cache": "^"}
    for budget, line in (("T=L", "-"), ("T=L/4", "--")):
        for name, marker in styles.items():
            pts = sorted((r["L"], r["seconds"]) for r in rows if r["sampler"] == name and r["budget"] == budget)
            if pts:
                ax.plot(*zip(*pts), line + marker, label=f"{name} ({budget})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens generated L")
    ax.set_ylabel(f"seconds per batch of {B}")
    ax.set_title(f"Eso-LM KV cache vs MDLM vs AR ({device_name})", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
