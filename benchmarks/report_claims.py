"""The review's claims in miniature (lesson 13): one function per claim, each reading its JSON in the
results folder and returning (claim, what was measured, verdict); the verdicts follow the numbers."""
from __future__ import annotations

from report_common import Report  # a sibling: report.py puts benchmarks/ on the path

# ------------------------------------------------------------------------------- the claims

def claim_latency(r: Report):
    lat = r.load("latency_cpu.json")
    if not lat:
        return None
    rows = lat["rows"]
    Ns = sorted({x["N"] for x in rows})
    lo, hi = Ns[0], Ns[-1]

    def full(s, N):
        return next((x["full_s"] for x in rows if x["sampler"] == s and x["N"] == N), None)
    mdm = next((s for s in sorted({x["sampler"] for x in rows}) if s.startswith("mdm") and full(s, lo) and full(s, hi)
                and "N/" not in s), None)
    if not (mdm and full("ar_cache", lo) and full("ar_cache", hi)):
        return None
    g_ar, g_mdm = full("ar_cache", hi) / full("ar_cache", lo), full(mdm, hi) / full(mdm, lo)
    ok = g_mdm < g_ar
    return ("Diffusion's latency grows with the steps, not the length",
            f"answer {lo} -> {hi} tokens ({hi // lo}x): AR's time to the full answer grew {g_ar:.1f}x, "
            f"MDM's at a fixed T ({mdm}) {g_mdm:.1f}x",
            "reproduced" if ok else "not reproduced",
            "on a CPU each step's cost still grows with the length (the work is arithmetic-bound), so "
            "MDM's time is not flat" if ok else "")


def claim_ttft(r: Report):
    lat = r.load("latency_cpu.json")
    sm = (lat or {}).get("summary") or {}
    if not sm.get("vs_ar"):
        return None
    ratios = {k: v["ttft_s"] for k, v in sm["vs_ar"].items()}
    ok = all(v > 1 for v in ratios.values())
    return ("A diffusion LM's time to first token is worse",
            f"time to the first answer token vs AR at N = {sm['N']}: "
            + ", ".join(f"{k} {v:.0f}x" for k, v in ratios.items()),
            "reproduced" if ok else "not reproduced",
            "AR's first token costs one call; a diffusion sampler fixes the first position late (median over "
            "seeds of where it lands)")


def claim_confidence(r: Report):
    s = r.load("sampling_cpu.json")
    if not s:
        return None
    L = max(x["L"] for x in s["rows"])
    few = sorted({x["T"] for x in s["rows"] if x["L"] == L and x["sampler"] == "random" and x["T"] <= L // 4})
    pairs = []
    for T in few:
        lc = next(x for x in s["rows"] if x["L"] == L and x["sampler"] == "low_confidence" and x["T"] == T)
        rd = next(x for x in s["rows"] if x["L"] == L and x["sampler"] == "random" and x["T"] == T)
        pairs.append((T, lc["gen_ppl"], rd["gen_ppl"], lc["unigram_entropy"], rd["unigram_entropy"]))
    if not pairs:
        return None
    ok = all(p[1] < p[2] for p in pairs)
    return ("Confidence-ordered unmasking beats random at few steps",
            f"generative perplexity at L = {L} (AR judge), low-confidence vs random: "
            + ", ".join(f"T = {T}: {a:.1f} vs {b:.1f}" for T, a, b, _, _ in pairs),
            "reproduced" if ok else "not reproduced",
            f"at a cost in diversity: unigram entropy {pairs[-1][3]:.2f} vs {pairs[-1][4]:.2f} bits at T = {pairs[-1][0]}")


def claim_spectrum(r: Report):
    rows = r.load("spectrum/spectrum.json")
    if not rows:
        return None
    b = sorted((x for x in rows if x["variant"] == "B"), key=lambda x: x["alpha0"])
    ar = [x for x in rows if x["variant"] == "AR"]
    chain = ar + b
    inversions = sum(p["val_nelbo"] > q["val_nelbo"] for p, q in zip(chain, chain[1:]))
    names = [("AR" if x["variant"] == "AR" else f"{x['alpha0']:g}") for x in chain]
    ok = inversions == 0
    a1 = [x for x in rows if x["variant"] == "A" and x["alpha0"] == 1.0]
    b1 = [x for x in b if x["alpha0"] == 1.0]
    extra = (f"; at alpha0 = 1, A {a1[0]['ppl_bound']:.2f} vs B {b1[0]['ppl_bound']:.2f}" if a1 and b1 else "")
    return ("Eso-LM interpolates between AR and MDM in likelihood",
            "perplexity bound from AR to MDLM (variant B, by alpha0): "
            + ", ".join(f"{n}: {x['ppl_bound']:.2f}" for n, x in zip(names, chain)) + extra,
            "reproduced" if ok else f"partly ({inversions} inversion{'s' * (inversions != 1)})",
            f"{chain[0]['steps']} steps of batch {chain[0]['batch_size']} per model: a short budget")


def claim_cache(r: Report):
    e = r.load("esolm_speed_cpu.json")
    if not e:
        return None
    by_L = e["speedup_vs_mdlm_by_L"]
    Lmax = max(by_L, key=int)
    ok = list(by_L.values()) == sorted(by_L.values()) and by_L[Lmax] > 2
    return ("Eso-LM's KV cache makes diffusion sampling fast",
            "cached Eso-LM (B) vs uncached MDLM at equal NFE: " + ", ".join(f"{v:.1f}x at L = {k}" for k, v in by_L.items())
            + f"; Eso-LM / AR time {e['esolm_time_vs_ar']:.2f}",
            "reproduced" if ok else "not reproduced",
            "the paper's 14x at L = 2048 and 65x at 8192 are longer sequences on a GPU; the ratio grows with L here too")


def reversal_means(rv) -> dict:
    """objective -> each final accuracy averaged over the seeds that were run."""
    out = {}
    for obj in dict.fromkeys(x["objective"] for x in rv["runs"]):
        finals = [x["final"] for x in rv["runs"] if x["objective"] == obj]
        keys = [k for k in finals[0] if k not in ("step", "loss")]
        out[obj] = {k: sum(f[k] for f in finals) / len(finals) for k in keys}
    return out


def claim_reversal(r: Report):
    rv = r.load("reversal_cpu.json")
    if not rv:
        return None
    fin = reversal_means(rv)
    seeds = len({x["seed"] for x in rv["runs"]})
    if not {"ar", "mdm"} <= fin.keys():
        return None
    ar, mdm = fin["ar"], fin["mdm"]
    margin = mdm["reverse"] - ar["reverse"]
    if margin >= 0.1:
        verdict = "reproduced"
    elif mdm.get("infill", 0) - ar["reverse"] >= 0.5:
        verdict = ("partly: inside the seen sentence; weakly in a new one" if margin > 0.02 else
                   "partly: inside the seen sentence only")
    else:
        verdict = "not reproduced"
    return ("Bidirectional models escape the reversal curse",
            f"held-out facts, AR vs MDM ({seeds} seed{'s' * (seeds > 1)}): forward {ar['forward']:.0%} vs {mdm['forward']:.0%}, reversed question "
            f"{ar['reverse']:.0%} vs {mdm['reverse']:.0%} (MDM by seed: "
            + ", ".join(f"{x['final']['reverse']:.0%}" for x in rv["runs"] if x["objective"] == "mdm")
            + "); the reversed question as a blank in the seen sentence: "
            f"MDM {mdm['infill']:.0%}" + (f", AR by ranking every name {ar['infill_by_ranking']:.0%}"
                                           if "infill_by_ranking" in ar else ""),
            verdict, "" if verdict == "reproduced" else
            "a bidirectional loss trains p(person given the rest of the seen sentence); a new sentence form needs more "
            "than that (see the reversal section)")


def claim_block_sizes(r: Report):
    bd = (r.load("block_diffusion_cpu.json") or {}).get("block_sizes")
    if not bd:
        return None
    rows = sorted(bd["rows"], key=lambda x: x["block_size"])
    inversions = sum(p["val_nelbo"] > q["val_nelbo"] for p, q in zip(rows, rows[1:]))
    return ("BD3-LM interpolates between AR and MDM likelihood",
            "validation NELBO (nats / token) by block size K: "
            + ", ".join(f"K = {x['block_size']}: {x['val_nelbo']:.3f}" for x in rows),
            "reproduced" if inversions == 0 else f"partly ({inversions} inversion{'s' * (inversions != 1)})",
            f"{bd['steps']} fine-tune steps of batch {bd['batch_size']} from the same AR for each K: short runs, so "
            "K = 1 also starts closest to its init")


def claim_block_cache(r: Report):
    cs = (r.load("block_diffusion_cpu.json") or {}).get("cache_speed")
    if not cs:
        return None
    L = max(x["L"] for x in cs["rows"])
    rows = [x for x in cs["rows"] if x["L"] == L]
    ok = all(x["speedup"] > 1 and x["tokens_fed_cached"] < x["tokens_fed_uncached"] for x in rows)
    return ("Block diffusion keeps an exact KV cache",
            f"at L = {L}, batch 1, cached vs uncached: "
            + ", ".join(f"K = {x['block_size']}: {x['fed_ratio']:.1f}x fewer tokens fed, {x['speedup']:.1f}x faster"
                        for x in rows),
            "reproduced" if ok else "not reproduced",
            f"{cs['threads']} CPU thread(s); the cached logits equal the uncached ones (tests/unit, 1e-5)")


def claim_data_constrained(r: Report):
    d = r.load("data_constrained_cpu.json")
    if not d or not d.get("verdict"):
        return None
    s, v = d["settings"], d["verdict"]
    return ("Diffusion keeps improving on repeated data where AR overfits",
            f"{s['stories']:,} stories for {s['epochs']} epochs, from scratch: {v['text']}", v["claim"],
            "Prabhudesai et al. 2025 report it at far larger scale; a tiny model on a tiny budget here")


def _beyond_verdict(r: Report, key: str):
    b = r.load("beyond_mask_cpu.json") or {}
    v = (b.get("verdict") or {}).get(key)
    return (b, v, {"yes": "reproduced", "no": "not reproduced"}.get(v["claim"], f"partly: {v['short']}") if v else None)


def claim_uniform(r: Report):
    b, v, verdict = _beyond_verdict(r, "uniform")
    if not v:
        return None
    u = b["uniform"]
    nelbo = u.get("val_nelbo") or {}
    nu, nm = ((nelbo.get(k) or {}).get("nats_per_token") for k in ("udlm", "mdm"))
    interim = (nelbo.get("udlm") or {}).get("source") != "card.json"
    vals = f"; validation NELBO UDLM {nu:.3f} vs MDM {nm:.3f} nats / token" if None not in (nu, nm) else ""
    return ("Uniform-state diffusion beats masked diffusion when sampling in few steps (Duo)",
            f"valid stories (well-formed sentences) at equal calls, UDLM vs the better masked sampler (low-confidence "
            f"or ancestral), {u['n']} stories: "
            + ", ".join(f"{p['steps']} calls {p['udlm_valid']:.0%} vs {p['masked_valid']:.0%} "
                        f"({p['udlm_well_formed']:.0%} vs {p['masked_well_formed']:.0%})" for p in v["per_steps"]) + vals,
            verdict, f"few steps: T <= {v['few_steps_max']}; level = within two standard errors (then well-formed "
                     "sentences decide); Duo adds distillation, not done here"
            + ("; an interim uniform-state model (no card)" if interim else ""))


def claim_remdm(r: Report):
    b, v, verdict = _beyond_verdict(r, "remdm")
    if not v:
        return None
    return ("Remasking improves a masked model's samples at equal or more network calls (ReMDM)",
            f"the shipped MDM, ReMDM vs ancestral at the same steps, {b['remdm']['n']} stories: {v['text']}", verdict,
            "ReMDM's experiments sample OpenWebText (1024 tokens) with nucleus (top-p) sampling; temperature 1 without "
            "top-p and L = 64 here")


CLAIMS = (claim_latency, claim_ttft, claim_confidence, claim_spectrum, claim_cache, claim_reversal, claim_block_sizes,
          claim_block_cache, claim_data_constrained, claim_uniform, claim_remdm)


def headline_table(r: Report) -> str:
    rows = [c for c in (f(r) for f in CLAIMS) if c]
    if not rows:
        return "No results yet: run `python benchmarks/report.py`."
    out = ["| the review's claim | what our miniature measured | verdict | note |", "|---|---|---|---|"]
    esc = lambda text: text.replace("|", "\\|")                          # a "|" would split a cell
    out += [f"| {esc(a)} | {esc(b)} | **{esc(c)}** | {esc(d)} |" for a, b, c, d in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------------- sections
