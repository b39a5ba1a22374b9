"""Block diffusion (BD3-LM) measured three ways (lesson 14).

    python benchmarks/block_diffusion.py [--quick] [--parts block_sizes quality cache_speed]
                                         [--json benchmarks/results/block_diffusion_cpu.json]

block_sizes  the likelihood bound by block size K, BD3-LM's dial from AR (K = 1) to MDLM (K = L = 64):
             for each K, a short fine-tune of the shipped AR (``tales-ar-nano``) with the bd3lm
             objective, the same steps and batch for every K (equal compute), then the validation
             NELBO per token over the whole validation split with fixed noise seeds (``heldout_loss``).
quality      valid stories (the tiny-tales checker) against network calls per story, seed 0: the
             shipped BD3-LM (``bd3_generate``, stops at the block holding [EOS]), semi-AR LLaDA
             decoding of the shipped MDM (blocks of 9), the plain MDM, and Eso-LM at several alpha0.
cache_speed  wall time of ``bd3_generate`` with and without its KV cache at L = 128, 256, 512, batch 1,
             on an untrained nano-shaped model (max_len 512; weights do not change the time), median
             of the repeats, and the tokens fed to the network (the sum of ``BlockTrace.fed``).

A part run alone (``--parts quality``) replaces only its key in an existing JSON. Writes the JSON and
a three-panel PNG beside it. ``--quick`` (or MINIDLM_SMOKE=1) is a CI-size run of every part.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from minidlm.blocks import bd3_generate
from minidlm.checkpoint import load_model
from minidlm.data import DATA_DIR, shipped_tales_blocks
from minidlm.esolm import esolm_sample
from minidlm.evaluate import decode_samples, sample_stories, story_report
from minidlm.model import Model, ModelConfig
from minidlm.tokenizer import load_tokenizer
from minidlm.train import TrainConfig, compute_loss, train

CKPTS = DATA_DIR / "checkpoints"
ROOT = Path(__file__).resolve().parent.parent
PARTS = ("block_sizes", "quality", "cache_speed")


@torch.no_grad()
def heldout_loss(model, val: torch.Tensor, cfg: TrainConfig, mask_id: int, passes: int = 4,
                 batch: int = 50) -> float:
    """Validation loss in nats per token over every row of ``val`` (B_val, L): AR's NLL, or the
    NELBO of mdm / bd3lm averaged over ``passes`` fixed noise draws (the same draws on every call,
    so two models or two epochs are compared on the same noise)."""
    model.eval()
    total, rows = 0.0, 0
    for p in range(1 if cfg.objective == "ar" else passes):
        for i, x0 in enumerate(val.split(batch)):
            g = torch.Generator().manual_seed(10_000 * (p + 1) + i)
            total += compute_loss(model, x0, cfg, mask_id, g).item() * len(x0)
            rows += len(x0)
    model.train()
    return total / rows


# ----------------------------------------------------------------------------- block sizes

def part_block_sizes(sizes, steps, batch_size, runs: Path, init_from: str, passes: int) -> dict:
    _, val, tok = shipped_tales_blocks(64, 0)
    rows = []
    for K in sizes:
        cfg = TrainConfig(objective="bd3lm", block_size=K, init_from=init_from, steps=steps, batch_size=batch_size,
                          lr=1e-3, warmup=max(1, steps // 10), eval_every=0, ckpt_every=0, progress=False,
                          out=str(runs / f"bd3-K{K}"), overwrite=True)
        t0 = time.perf_counter()
        train(cfg)
        seconds = time.perf_counter() - t0
        model, _ = load_model(cfg.out, tag="last")
        nelbo = heldout_loss(model, val, cfg, tok.mask_id, passes)
        rows.append({"block_size": K, "val_nelbo": nelbo, "train_seconds": seconds})
        print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "steps": steps, "batch_size": batch_size, "lr": 1e-3, "init_from": rel(init_from),
            "seq_len": 64, "val_rows": len(val), "noise_passes": passes,
            "note": "each K is a short bd3lm fine-tune of the same AR init (same steps, batch and seed): "
                    "K = 1 is AR-like, K = 64 = L is MDLM-like (one block); nats per token, a NELBO bound"}


# ----------------------------------------------------------------------------- quality

def _quality_row(name, texts, calls, gen_tokens, **setting):
    rep = story_report(texts)
    return {"sampler": name, **setting, "n": len(texts), "calls_per_story": calls,
            "tokens_per_call": gen_tokens / calls, "valid": rep["valid"],
            "well_formed_sentences": rep["well_formed_sentences"], "mean_words": rep["mean_words"],
            "distinct_openings": rep["distinct_openings"], "unigram_entropy": rep["unigram_entropy"],
            "example": texts[0]}


def part_quality(n: int, bd3_dir: str, mdm_dir: str, eso_dir: str, quick: bool) -> dict:
    tok = load_tokenizer(Path(mdm_dir) / "tokenizer.json")
    bd3, bd3_info = load_model(bd3_dir)
    K = bd3_info["train_state"]["train_config"]["block_size"]
    L = bd3_info["train_state"]["train_config"]["seq_len"]                       # 64: [BOS] + 63 tokens
    rows = []
    settings = [("steps_per_block", s) for s in ((1,) if quick else (1, 2, 4, 8))] + [("threshold", 0.9)]
    for key, v in settings:
        g = torch.Generator().manual_seed(0)
        texts, calls, gen = [], [], []
        for start in range(0, n, 64):
            x, tr = bd3_generate(bd3, L, tok.mask_id, K, **{key: v}, batch_size=min(64, n - start),
                                 bos_id=tok.bos_id, eos_id=tok.eos_id, generator=g)
            texts += decode_samples(tok, x)
            calls += tr.calls.tolist()
            gen += (tr.lengths - 1).tolist()                                     # tokens after [BOS], up to [EOS]
        rows.append(_quality_row("bd3lm", texts, sum(calls) / n, sum(gen) / n, block_size=K, **{key: v}))
        print(json.dumps(rows[-1]), flush=True)
    mdm, _ = load_model(mdm_dir)
    for steps in ((7,) if quick else (7, 14, 21, 28, 63)):
        texts, calls = sample_stories(mdm, tok, n, steps=steps, block_length=9, seed=0, return_calls=True)
        rows.append(_quality_row("mdm_semi_ar", texts, calls, L - 1, steps=steps, block_length=9))
        print(json.dumps(rows[-1]), flush=True)
    texts, calls = sample_stories(mdm, tok, n, steps=16, seed=0, return_calls=True)
    rows.append(_quality_row("mdm", texts, calls, L - 1, steps=16, length_first=True))
    print(json.dumps(rows[-1]), flush=True)
    eso, eso_info = load_model(eso_dir)
    a_train = eso_info["train_state"]["train_config"]["alpha0"]
    for a0 in ((a_train,) if quick else sorted({a_train, 0.5, 1.0})):
        g = torch.Generator().manual_seed(0)
        texts, calls = [], []
        for start in range(0, n, 64):
            b = min(64, n - start)
            x, tr = esolm_sample(eso, L, tok.mask_id, a0, batch_size=b, prompt=torch.tensor([tok.bos_id]), generator=g)
            texts += decode_samples(tok, x)
            calls += [tr.nfe] * b
        rows.append(_quality_row("esolm", texts, sum(calls) / n, L - 1, alpha0=a0, trained_alpha0=a_train))
        print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "n": n, "seed": 0, "bd3lm": rel(bd3_dir), "bd3lm_card": _card(bd3_dir),
            "mdm": rel(mdm_dir), "esolm": rel(eso_dir),
            "tokens_per_call": "bd3lm: generated tokens (after [BOS], up to and including the first [EOS]) per "
                               "network call, both averaged over the stories; the others: 63 / calls per story "
                               "(fixed length)",
            "calls": "bd3lm: BlockTrace.calls (calls up to the block that ended the story); MDM: the step of a "
                     "story's last commit; Eso-LM: the trace's nfe"}


def rel(path) -> str:
    """A path as the JSON keeps it: relative to the repository when inside it."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def _card(folder) -> dict | None:
    p = Path(folder) / "card.json"
    if not p.exists():
        return None
    c = json.loads(p.read_text())
    return {k: c.get(k) for k in ("name", "steps", "val_loss", "note")}


# ----------------------------------------------------------------------------- cache speed

def part_cache_speed(lengths, block_sizes, repeats: int) -> dict:
    torch.manual_seed(0)
    V, MASK, BOS = 921, 3, 1
    model = Model(ModelConfig.preset("nano", vocab_size=V, max_len=max(lengths), mask_id=MASK)).eval()
    run = lambda L, K, cache: bd3_generate(model, L, MASK, K, steps_per_block=max(1, K // 4), bos_id=BOS,
                                           generator=0, use_cache=cache)
    run(32, 8, True), run(32, 8, False)                                          # warm-up
    rows = []
    for L in lengths:
        for K in block_sizes:
            row = {"L": L, "block_size": K, "steps_per_block": max(1, K // 4)}
            for name, cache in (("cached", True), ("uncached", False)):
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    _, tr = run(L, K, cache)
                    times.append(time.perf_counter() - t0)
                row[f"seconds_{name}"] = statistics.median(times)
                row[f"tokens_fed_{name}"] = sum(tr.fed)
                row[f"calls_{name}"] = tr.nfe
                row[f"fed_per_call_{name}"] = list(tr.fed) if L == min(lengths) and K == min(block_sizes) else None
            row["speedup"] = row["seconds_uncached"] / row["seconds_cached"]
            row["fed_ratio"] = row["tokens_fed_uncached"] / row["tokens_fed_cached"]
            rows.append({k: v for k, v in row.items() if v is not None})
            print(json.dumps({k: v for k, v in rows[-1].items() if not k.startswith("fed_per")}), flush=True)
    return {"rows": rows, "batch_size": 1, "repeats": repeats, "threads": torch.get_num_threads(),
            "params": model.num_params(), "model": "untrained nano (4 layers, d_model 128), max_len "
            f"{max(lengths)}, vocab {V}", "note": "ratios, not absolute times, carry over to other machines"}


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI size: 2 block sizes x 3 steps, 8 stories, short L")
    ap.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    ap.add_argument("--json", default="benchmarks/results/block_diffusion_cpu.json")
    ap.add_argument("--runs", default=None, help="scratch folder for the fine-tunes (default runs/block-sizes)")
    ap.add_argument("--steps", type=int, default=None, help="fine-tune steps per block size (default 150)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n", type=int, default=None, help="stories per quality setting (default 128)")
    ap.add_argument("--init-from", default=str(CKPTS / "tales-ar-nano"))
    ap.add_argument("--bd3", default=str(CKPTS / "tales-bd3lm-nano"))
    ap.add_argument("--mdm", default=str(CKPTS / "tales-mdm-nano"))
    ap.add_argument("--esolm", default=str(CKPTS / "tales-esolm-nano"))
    a = ap.parse_args(argv)
    quick = a.quick or os.environ.get("MINIDLM_SMOKE") == "1"
    out = Path(a.json)
    res = json.loads(out.read_text()) if out.exists() and set(a.parts) != set(PARTS) else {}
    res.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                "threads": torch.get_num_threads(), "quick": quick})
    res.setdefault("commands", {})
    command = "python benchmarks/block_diffusion.py " + " ".join(
        rel(x) if x.startswith("/") else x for x in (argv if argv is not None else sys.argv[1:]))
    for part in a.parts:
        t0 = time.perf_counter()
        if part == "block_sizes":
            runs = Path(a.runs or "runs/block-sizes")
            res[part] = part_block_sizes((8, 64) if quick else (1, 2, 4, 8, 16, 64), a.steps or (3 if quick else 150),
                                         a.batch_size, runs, a.init_from, 1 if quick else 4)
        elif part == "quality":
            res[part] = part_quality(a.n or (8 if quick else 128), a.bd3, a.mdm, a.esolm, quick)
        else:
            res[part] = part_cache_speed((32, 64) if quick else (128, 256, 512), (8,) if quick else (8, 16),
                                         1 if quick else 3)
        res[part]["seconds"] = time.perf_counter() - t0
        res["commands"][part] = command.strip()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(res, out.with_suffix(".png"))
    print(f"wrote {out}")


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    bs = res.get("block_sizes")
    if bs:
        r = bs["rows"]
        ax[0].plot([x["block_size"] for x in r], [x["val_nelbo"] for x in r], "-o")
        ax[0].set_xscale("log", base=2)
        ax[0].set_xlabel("block size K (1 = AR-like, 64 = MDLM-like)")
        ax[0].set_ylabel("validation NELBO (nats / token)")
        ax[0].set_title(f"{bs['steps']} fine-tune steps from the AR, each K", fontsize=10)
    q = res.get("quality")
    if q:
        for s, m in (("bd3lm", "o"), ("mdm_semi_ar", "s"), ("mdm", "D"), ("esolm", "^")):
            r = [x for x in q["rows"] if x["sampler"] == s]
            if r:
                ax[1].plot([x["calls_per_story"] for x in r], [x["valid"] for x in r], m + ("-" if len(r) > 1 else ""),
                           label=s)
        ax[1].set_xlabel("network calls per story")
        ax[1].set_ylabel("valid stories")
        ax[1].set_title(f"{q['n']} stories per setting", fontsize=10)
        ax[1].legend(fontsize=8)
    cs = res.get("cache_speed")
    if cs:
        for K in sorted({x["block_size"] for x in cs["rows"]}):
            r = [x for x in cs["rows"] if x["block_size"] == K]
            for name, line in (("cached", "-o"), ("uncached", "--s")):
                ax[2].plot([x["L"] for x in r], [x[f"seconds_{name}"] for x in r], line, label=f"K = {K}, {name}")
        ax[2].set_xscale("log", base=2)
        ax[2].set_yscale("log")
        ax[2].set_xlabel("tokens L")
        ax[2].set_ylabel("seconds (batch 1)")
        ax[2].set_title(f"KV cache, {cs['threads']} thread(s)", fontsize=10)
        ax[2].legend(fontsize=8)
    for a in ax:
        a.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
