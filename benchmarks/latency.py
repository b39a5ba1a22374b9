"""Latency: time to first token and time to the full answer against the answer length (issue 8).

    python benchmarks/latency.py [--quick] [--json benchmarks/results/latency_cpu.json]
                                 [--device auto] [--threads N] [--repeats R] [--lengths ...] [--tiny]

A prompt of P = 32 random token ids (never [MASK]) is followed by an answer of N tokens, N in
{16, 32, 64, 128, 256} ({8, 16, 32} with ``--quick`` or MINIDLM_SMOKE=1), batch 1, drawn from the
same randomly initialised ~5M-parameter Transformer as esolm_speed.py (6 layers, d_model 256,
8 heads, vocab 1024, max_len 2048; float32; ``--tiny``: 1 layer, d_model 32, for tests) -- wall
time does not depend on training, but WHICH step commits which position does (see below). Samplers:

  ar_cache      AR with a KV cache (``sampling.generate_ar``): the first call reads the prompt and
                writes position P, then one call per token; N calls.
  mdm_T16       the MDM sampler (``sampling.generate``, LLaDA low-confidence remasking) with a fixed
                budget of T = 16 steps (min(16, N)), a full bidirectional pass over P + N tokens
                per step, N / T tokens committed per step, the most confident first.
  mdm_T=N/4     the same with T = N/4 steps (4 tokens per step).
  esolm_a0.25   Eso-LM (B) with its exact KV cache (``esolm.esolm_sample``), alpha0 = 0.25, with
                the paper's schedule (``esolm_schedule``'s default ``counts="binomial"``): T =
                round(0.25 N / 4) diffusion steps from t = 1 to 0 each reveal a binomial count of the
                still-masked positions, chosen at random (about a quarter of the answer in all,
                ~4 per step; empty steps are skipped), then the rest left to right, one per call.
  esolm_a1      Eso-LM (B) cached, alpha0 = 1: every position in the diffusion phase, in a random
                order, in T = 16 steps (diffusion_steps = min(16, N)) with ``counts="even"`` (N / T
                per step): a fixed budget of T calls, like mdm_T16.

Every sampler makes exactly one network call per step, so step k = call k. Measured per sampler
and N, on the same runs (the median over the repeats of each quantity):

  full_s          wall time of the whole sampler call (time.perf_counter, CUDA synchronised);
  ttft_s          time to first token IN READING ORDER: until answer position P is final. A forward
                  pre-hook and a forward hook on the model timestamp the start and the end of every
                  call (CUDA synchronised in the hook); the step that committed position P comes
                  from the sampler's trace (``reveal_step[0, P]``, which Eso-LM's trace fills
                  too), and a token committed at step k is final when call k + 1 starts (or when
                  the sampler returns, for the last step): that includes the step's sampling work,
                  not just its forward pass;
  first_commit_s  the same for the first step that commits ANY answer position (step 1 for all five
                  samplers here), i.e. the time until something could be shown;
  nfe             network calls; ``ttft_step`` the step that committed position P.

The repeats (default 5, quick 1) are passes over all the settings, one seed each,, so that a burst of load on a
shared machine spreads over the settings. ``full_nohook_s`` is the median full time of as many runs
without the hooks, one after each hooked run (to show that the hooks cost nothing measurable), and
their tokens are asserted to be identical to the hooked runs' (same seed): the hooks only read the
clock, they return nothing and change nothing.

What the shapes should look like follows from the counts, not from this run (read the JSON for
what was measured): AR commits position P at its first call, so its time to first token is one
prompt-reading call whatever N, and its full time grows with N (N calls). At a fixed T the MDM's
full time grows only through the cost of each full pass (P + N tokens), but WHEN position P is
committed depends on the confidences: low-confidence remasking does not go left to right, so with
this random-init model ttft_step is wherever P's candidate happened to rank (a trained model ranks
differently). Eso-LM's position P is, at alpha0 = 0.25, either a diffusion position (committed
within the first few steps) or the first sequential one (committed right after the diffusion
phase); at alpha0 = 1 it is committed at a uniformly random one of the T steps. Its full time is
about one cached call per step. Each pass uses its own seed (pass r: seed r), so for the MDM and Eso-LM rows
the time to first token is the median over ``repeats`` draws of where position P lands (the steps
of every seed are kept in ``ttft_steps_by_seed``); with few repeats it is still noisy. ``summary`` (stored in the JSON) gives the ratios to AR measured in this run at the
largest N, and from which N on each sampler's full time beats AR's.
On CUDA the SDPA backends are pinned to flash / memory-efficient attention. Writes JSON and a
two-panel PNG beside it.
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

VOCAB, MASK = 1024, 1023
PROMPT_LEN = 32
SAMPLERS = ("ar_cache", "mdm_T16", "mdm_T=N/4", "esolm_a0.25", "esolm_a1")


def build_model(device, dtype, tiny: bool = False) -> Model:
    torch.manual_seed(0)
    if tiny:
        cfg = ModelConfig(vocab_size=VOCAB, max_len=2048, n_layer=1, n_head=2, d_model=32, mask_id=MASK)
    else:
        cfg = ModelConfig(vocab_size=VOCAB, max_len=2048, n_layer=6, n_head=8, d_model=256, mask_id=MASK)
    return Model(cfg).to(device=device, dtype=dtype).eval()


def make_prompt(P: int = PROMPT_LEN, seed: int = 1) -> torch.Tensor:
    """P random ids in [1, MASK): never [MASK]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, MASK, (P,), generator=g)


def samplers(model, prompt: torch.Tensor, N: int, seed: int = 0) -> dict:
    """name -> (planned steps T or None, a call returning (tokens (1, P+N), trace)). Seeded by ``seed``:
    the same tokens at every call with the same seed."""
    L = prompt.shape[0] + N
    T16 = min(16, N)
    return {
        "ar_cache": (N, lambda: generate_ar(CausalView(model), L, prompt=prompt, generator=seed)),
        "mdm_T16": (T16, lambda: generate(model, L, T16, MASK, prompt=prompt, generator=seed)),
        "mdm_T=N/4": (max(1, N // 4), lambda: generate(model, L, max(1, N // 4), MASK, prompt=prompt, generator=seed)),
        "esolm_a0.25": (None, lambda: esolm_sample(model, L, MASK, 0.25, prompt=prompt, generator=seed)),
        "esolm_a1": (T16, lambda: esolm_sample(model, L, MASK, 1.0, prompt=prompt, diffusion_steps=T16,
                                               counts="even", generator=seed)),
    }


class CallClock:
    """Forward pre-hook + forward hook on ``model`` that append time.perf_counter() at the start and at
    the end of every call (after a CUDA synchronise). The hooks return None: inputs and outputs pass
    through untouched. Use as a context manager; the hooks are removed on exit."""

    def __init__(self, model: torch.nn.Module, device):
        self.model, self.sync = model, torch.device(device).type == "cuda"
        self.starts: list[float] = []
        self.ends: list[float] = []
        self._handles = []

    def _now(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _pre(self, module, args):
        self.starts.append(self._now())

    def _post(self, module, args, output):
        self.ends.append(self._now())

    def __enter__(self):
        self._handles = [self.model.register_forward_pre_hook(self._pre),
                         self.model.register_forward_hook(self._post)]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_once(model, fn, device, P: int) -> dict:
    """One timed, hooked run: full time, time until position P is final, time until the first commit."""
    clock = CallClock(model, device)
    _sync(device)
    t0 = time.perf_counter()
    with clock, pinned_sdpa(device):
        tokens, tr = fn()
    _sync(device)
    t_end = time.perf_counter()
    n_calls = len(clock.starts)
    if n_calls != tr.nfe or len(clock.ends) != n_calls:
        raise AssertionError(f"expected one forward per step: {n_calls} calls, nfe {tr.nfe}")

    def final_at(step: int) -> float:            # a token committed at step k is final when call k+1 starts
        if not 1 <= step <= n_calls:
            raise AssertionError(f"commit step {step} outside 1..{n_calls}")
        return (clock.starts[step] if step < n_calls else t_end) - t0

    reveal = tr.reveal_step[0, P:]                # (N,) 1-based commit steps of the answer
    ttft_step, first_step = int(reveal[0]), int(reveal.min())
    return {"tokens": tokens.cpu(), "nfe": tr.nfe, "ttft_step": ttft_step, "first_step": first_step,
            "ttft_s": final_at(ttft_step), "first_commit_s": final_at(first_step), "full_s": t_end - t0,
            "n_diffusion": getattr(tr, "n_diffusion", None)}


def measure_plain(fn, device) -> tuple[torch.Tensor, float]:
    """One timed run without hooks: (tokens, seconds)."""
    _sync(device)
    t0 = time.perf_counter()
    with pinned_sdpa(device):
        tokens, _ = fn()
    _sync(device)
    return tokens.cpu(), time.perf_counter() - t0


def to_row(name: str, T, N: int, runs: list[dict], plain: list[float]) -> dict:
    """Median over the hooked runs of one setting (one run per seed: steps and times are medians over
    the seeds' draws)."""
    first = runs[0]
    med = lambda k: statistics.median(r[k] for r in runs)
    nfe = int(statistics.median_low(r["nfe"] for r in runs))
    row = {"sampler": name, "N": N, "T": nfe if T is None else T, "nfe": nfe,
           "ttft_step": int(statistics.median_low(r["ttft_step"] for r in runs)),
           "first_commit_step": int(statistics.median_low(r["first_step"] for r in runs)),
           "ttft_steps_by_seed": [r["ttft_step"] for r in runs],
           "ttft_s": med("ttft_s"), "first_commit_s": med("first_commit_s"), "full_s": med("full_s"),
           "full_nohook_s": statistics.median(plain)}
    if first["n_diffusion"] is not None:
        row["n_diffusion"] = first["n_diffusion"]
    return row


def run_all(model, prompt, lengths, device, repeats: int) -> list[dict]:
    """Every (N, sampler) setting once per pass, ``repeats`` passes (so that a burst of load on a shared
    machine spreads over the settings instead of hitting one); each hooked run is followed by a plain
    run (``full_nohook_s``) whose tokens must equal the hooked run's."""
    P = prompt.shape[0]
    runs, plain = {}, {}
    for rep in range(repeats):                     # pass r uses seed r: a new draw of every random choice
        for N in lengths:
            for name, (T, fn) in samplers(model, prompt, N, seed=rep).items():
                r = measure_once(model, fn, device, P)
                runs.setdefault((N, name), []).append(r)
                tokens, sec = measure_plain(fn, device)
                plain.setdefault((N, name), []).append(sec)
                if not torch.equal(tokens, r["tokens"]):
                    raise AssertionError(f"{name} N={N}: the timing hooks changed the sampled tokens")
                print(json.dumps({"pass": rep + 1, "sampler": name, "N": N, "ttft_s": r["ttft_s"],
                                  "full_s": r["full_s"]}), flush=True)
    return [to_row(name, T, N, runs[(N, name)], plain[(N, name)])
            for N in lengths for name, (T, _) in samplers(model, prompt, N).items()]


def summary(rows: list[dict]) -> dict:
    """Ratios to AR measured in one run: at the largest N, each sampler's full time, time to first
    token (reading order) and time to first commit divided by AR's; ttft / full per sampler; and the
    smallest N from which on (at every larger N too) a sampler's full time is below AR's (None if never)."""
    Ns = sorted({r["N"] for r in rows})
    get = {(r["sampler"], r["N"]): r for r in rows}
    names = [s for s in SAMPLERS if any(r["sampler"] == s for r in rows)]
    Nmax = Ns[-1]
    ar = get[("ar_cache", Nmax)]
    out = {"N": Nmax, "vs_ar": {}, "ttft_over_full": {}, "full_faster_than_ar_from_N": {}}
    for s in names:
        r = get[(s, Nmax)]
        out["ttft_over_full"][s] = r["ttft_s"] / r["full_s"]
        if s == "ar_cache":
            continue
        out["vs_ar"][s] = {k: r[k] / ar[k] for k in ("full_s", "ttft_s", "first_commit_s")}
        faster = [get[(s, N)]["full_s"] < get[("ar_cache", N)]["full_s"] for N in Ns]
        from_N = None
        for i in range(len(Ns) - 1, -1, -1):
            if not faster[i]:
                break
            from_N = Ns[i]
        out["full_faster_than_ar_from_N"][s] = from_N
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small lengths, one repeat (CI size)")
    ap.add_argument("--json", default=None, help="output JSON (default benchmarks/results/latency_<device>.json)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per setting (median); default 5, quick 1")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")
    ap.add_argument("--lengths", type=int, nargs="*", default=None, help="override the answer lengths N")
    ap.add_argument("--prompt-len", type=int, default=PROMPT_LEN)
    ap.add_argument("--tiny", action="store_true", help="1 layer, d_model 32 (for tests)")
    a = ap.parse_args(argv)
    quick = a.quick or os.environ.get("MINIDLM_SMOKE") == "1"
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    dtype = getattr(torch, a.dtype)
    lengths = a.lengths or ([8, 16, 32] if quick else [16, 32, 64, 128, 256])
    repeats = a.repeats or (1 if quick else 5)
    P = a.prompt_len
    out = Path(a.json or f"benchmarks/results/latency_{device.type}.json")

    model = build_model(device, dtype, a.tiny)
    prompt = make_prompt(P).to(device)
    t_start = time.perf_counter()
    for _, fn in samplers(model, prompt, 8).values():                    # warm-up (allocator, kernels)
        measure_plain(fn, device)
    rows = run_all(model, prompt, lengths, device, repeats)

    res = {
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__,
                    "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                    "dtype": a.dtype, "threads": torch.get_num_threads()},
        "settings": {"prompt_len": P, "lengths": lengths, "batch_size": 1, "repeats": repeats, "quick": quick,
                     "tiny": a.tiny, "params": model.num_params(), "samplers": list(SAMPLERS),
                     "temperature": 1.0, "mdm_remasking": "low_confidence", "seeds": list(range(repeats))},
        "summary": summary(rows),
        "wall_s": time.perf_counter() - t_start,
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(rows, out.with_suffix(".png"), res["machine"]["device"], P)
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
    return res


def plot(rows, path, device_name, P):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    styles = {"ar_cache": "^-", "mdm_T16": "s-", "mdm_T=N/4": "s--", "esolm_a0.25": "o-", "esolm_a1": "o--"}
    for ax, key, title in ((axes[0], "ttft_s", f"time to first token (position {P}, reading order)"),
                           (axes[1], "full_s", "time to the full answer")):
        for name, style in styles.items():
            pts = sorted((r["N"], r[key]) for r in rows if r["sampler"] == name)
            if pts:
                ax.plot(*zip(*pts), style, label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("answer length N (tokens)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("seconds (batch 1)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Latency after a {P}-token prompt: AR vs MDM (fixed T) vs Eso-LM ({device_name})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
