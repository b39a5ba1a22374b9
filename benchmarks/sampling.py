"""Samplers compared: wall time, network calls and quality at several lengths and step counts.

    python benchmarks/sampling.py [--quick] [--json benchmarks/results/sampling_cpu.json]

For each length L (tokens after [BOS]) and step budget T from L/16 to L, every MDM sampler draws
a batch of stories from the shipped MDM; AR-with-KV-cache (the shipped AR model) draws the same
batch at the same L in the same run. Reported per setting: wall time and its ratio to AR's,
network calls, generative perplexity under the AR judge, unigram entropy (collapse), and for full
stories (L = 63) the tiny-tales checker's validity. Writes JSON and a Pareto plot (PNG).
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

from minidlm.checkpoint import load_model
from minidlm.data import DATA_DIR
from minidlm.esolm import esolm_sample
from minidlm.evaluate import decode_samples, generative_perplexity, story_report, unigram_entropy
from minidlm.sampling import ancestral, generate, generate_adaptive, generate_ar
from minidlm.tokenizer import load_tokenizer

CKPTS = DATA_DIR / "checkpoints"


def timed(fn, repeats=1):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mdm", default=str(CKPTS / "tales-mdm-nano"))
    ap.add_argument("--ar", default=str(CKPTS / "tales-ar-nano"))
    ap.add_argument("--esolm", default=str(CKPTS / "tales-esolm-nano"), help="an Eso-LM checkpoint ('' to skip)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="a CI-size run")
    ap.add_argument("--json", default="benchmarks/results/sampling_cpu.json")
    a = ap.parse_args()
    quick = a.quick or os.environ.get("MINIDLM_SMOKE") == "1"
    mdm, _ = load_model(a.mdm)
    ar, _ = load_model(a.ar)
    eso, eso_info = load_model(a.esolm) if a.esolm else (None, None)
    eso_alpha0 = eso_info["train_state"]["train_config"]["alpha0"] if eso is not None else None
    tok = load_tokenizer(Path(a.mdm) / "tokenizer.json")
    B = 4 if quick else a.batch_size
    lengths = [15, 63] if quick else [15, 31, 63]
    bos = torch.tensor([tok.bos_id])
    rows = []
    for gen in lengths:
        L = gen + 1
        x_ar, t_ar = timed(lambda: generate_ar(ar, L, batch_size=B, bos_id=tok.bos_id, generator=0)[0])
        base = {"L": gen, "batch": B}
        rows.append({**base, "sampler": "ar_cache", "T": gen, "nfe": gen, "seconds": t_ar, "time_vs_ar": 1.0,
                     **quality(x_ar, ar, tok, gen)})
        budgets = sorted({max(1, gen // d) for d in (16, 8, 4, 2)} | {gen})
        if quick:
            budgets = [max(1, gen // 8), gen]
        for T in budgets:
            for name, fn in (
                ("low_confidence", lambda: generate(mdm, L, T, tok.mask_id, batch_size=B, prompt=bos, generator=0)),
                ("random", lambda: generate(mdm, L, T, tok.mask_id, batch_size=B, prompt=bos, remasking="random", generator=0)),
                ("ancestral", lambda: ancestral(mdm, L, T, tok.mask_id, batch_size=B, prompt=bos, generator=0)),
            ):
                (x, tr), sec = timed(fn)
                rows.append({**base, "sampler": name, "T": T, "nfe": tr.nfe, "seconds": sec,
                             "time_vs_ar": sec / t_ar, **quality(x, ar, tok, gen)})
                print(json.dumps(rows[-1]), flush=True)
        for thr in ([0.9] if quick else [0.5, 0.7, 0.9]):
            (x, tr), sec = timed(lambda: generate_adaptive(mdm, L, tok.mask_id, threshold=thr, batch_size=B,
                                                           prompt=bos, generator=0, temperature=1.0))
            rows.append({**base, "sampler": f"adaptive_{thr}", "T": tr.steps, "nfe": tr.nfe, "seconds": sec,
                         "time_vs_ar": sec / t_ar, **quality(x, ar, tok, gen)})
            print(json.dumps(rows[-1]), flush=True)
        for d_steps in (([1] if quick else [1, 2, 4]) if eso is not None else []):
            # Eso-LM: about alpha0 * gen tokens by diffusion in d_steps steps, the rest one by one (KV cache)
            (x, tr), sec = timed(lambda: esolm_sample(eso, L, tok.mask_id, eso_alpha0, batch_size=B, prompt=bos,
                                                      diffusion_steps=d_steps, generator=0))
            rows.append({**base, "sampler": f"esolm_{eso_alpha0}", "T": tr.nfe, "nfe": tr.nfe, "seconds": sec,
                         "diffusion_steps": d_steps, "time_vs_ar": sec / t_ar, **quality(x, ar, tok, gen)})
            print(json.dumps(rows[-1]), flush=True)
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
           "threads": torch.get_num_threads(), "quick": quick, "rows": rows}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    plot(rows, Path(a.json).with_suffix(".png"))


def quality(x, judge, tok, gen):
    texts = decode_samples(tok, x)
    q = {"gen_ppl": generative_perplexity(judge, x, tok.eos_id), "unigram_entropy": unigram_entropy(texts)}
    if gen == 63:
        rep = story_report(texts)
        q.update(valid=rep["valid"], well_formed=rep["well_formed_sentences"], distinct_openings=rep["distinct_openings"])
    return q


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    Ls = sorted({r["L"] for r in rows})
    for s in sorted({r["sampler"] for r in rows}):
        rs = [r for r in rows if r["sampler"] == s and r["L"] == Ls[-1]]
        ax[0].plot([r["seconds"] for r in rs], [r["gen_ppl"] for r in rs], marker="o", label=s)
    ax[0].set_xscale("log"); ax[0].set_xlabel(f"seconds per batch (L = {Ls[-1]})"); ax[0].set_ylabel("gen. perplexity (AR judge)")
    ax[0].legend(fontsize=7); ax[0].grid(alpha=0.3)
    for s, style in (("ar_cache", "-o"), ("low_confidence", "--s")):
        for T_of_L in (("T=L/8", lambda L: max(1, L // 8)), ("T=L", lambda L: L)) if s != "ar_cache" else (("", None),):
            label, f = T_of_L
            pts = sorted([r for r in rows if r["sampler"] == s and (f is None or r["T"] == f(r["L"]))], key=lambda r: r["L"])
            ax[1].plot([r["L"] for r in pts], [r["seconds"] for r in pts], style, label=f"{s} {label}".strip())
    ax[1].set_xlabel("tokens generated L"); ax[1].set_ylabel("seconds per batch"); ax[1].legend(fontsize=7); ax[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
