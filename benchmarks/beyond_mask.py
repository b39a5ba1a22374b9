"""Beyond [MASK] measured (lesson 15): remasking (ReMDM) and uniform-state diffusion (UDLM / Duo)
against the shipped masked model, at equal network calls.

    python benchmarks/beyond_mask.py [--quick] [--parts remdm uniform] [--n 128]
                                     [--json benchmarks/results/beyond_mask_cpu.json]
                                     [--mdm DIR] [--udlm DIR] [--udlm-tag TAG]

remdm    the shipped MDM (``tales-mdm-nano``) sampled with MDLM's ancestral step (``remdm_generate`` with
         eta_cap = 0: the same code path, no remasking), ReMDM "cap" at several eta_cap and ReMDM "loop",
         at T = 16 ... 256 steps (T > 63 tokens: ReMDM's inference-time scaling), and LLaDA's
         low-confidence order with the length first (``sample_stories``' default) at 16, 32, 63 steps.
uniform  the uniform-state model (``--udlm``, ``tales-udlm-nano``) with its ancestral sampler at T = 4 ... 64
         steps against the shipped MDM at the same calls (low-confidence order with the length first,
         and ancestral), plus both models' validation NELBO from their cards.
verdict  recomputed after every run from the parts the JSON holds: the two claims-report rows.

Every setting: ``sample_stories`` from [BOS], seed 0, the same n stories (default 128), scored by the
tiny-tales checker (``story_report``); calls per story as ``sample_stories`` counts them. A part run
alone replaces only its key in an existing JSON. Writes the JSON and a PNG beside it
(``minidlm.viz_beyond.beyond_mask_figure``). ``--quick`` (or MINIDLM_SMOKE=1) is a CI-size run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from minidlm.checkpoint import load_model
from minidlm.data import DATA_DIR
from minidlm.evaluate import sample_stories, story_report
from minidlm.tokenizer import load_tokenizer

CKPTS = DATA_DIR / "checkpoints"
ROOT = Path(__file__).resolve().parent.parent
PARTS = ("remdm", "uniform")
ANCESTRAL = dict(strategy="cap", eta_cap=0.0)                # ReMDM with sigma = 0 is MDLM's ancestral step
LOOP = dict(strategy="loop", eta_cap=0.02, t_on=0.55, t_off=0.05)


def remdm_settings(quick: bool):
    """(label, sampler, remdm kwargs or None, steps) for the remdm part. The full run keeps about
    15 minutes on one CPU thread: eta_cap 0.01 and 0.05 stop at 64 steps (dropped: 128, 256)."""
    if quick:
        return [("MDM ancestral", "mdm_ancestral", ANCESTRAL, (4, 8)),
                ("ReMDM cap 0.02", "remdm_cap", dict(strategy="cap", eta_cap=0.02), (4, 8)),
                ("ReMDM loop 0.02", "remdm_loop", LOOP, (4, 8)),
                ("MDM low-confidence", "mdm_low_confidence", None, (4,))]
    full = (16, 32, 64, 128, 256)
    return [("MDM ancestral", "mdm_ancestral", ANCESTRAL, full),
            ("ReMDM cap 0.01", "remdm_cap", dict(strategy="cap", eta_cap=0.01), (16, 32, 64)),
            ("ReMDM cap 0.02", "remdm_cap", dict(strategy="cap", eta_cap=0.02), full),
            ("ReMDM cap 0.05", "remdm_cap", dict(strategy="cap", eta_cap=0.05), (16, 32, 64)),
            ("ReMDM loop 0.02", "remdm_loop", LOOP, full),
            ("MDM low-confidence", "mdm_low_confidence", None, (16, 32, 63))]


_MEMO: dict = {}                                              # a setting measured once per process


def measure(model, tok, key: str, label: str, sampler: str, n: int, steps: int, **kw) -> dict:
    """One row: n stories from ``sample_stories(model, tok, n, steps=steps, seed=0, **kw)`` scored by
    ``story_report``. ``key`` names the model (a second identical request is not sampled again)."""
    memo = (key, n, steps, json.dumps(kw, sort_keys=True))
    if memo not in _MEMO:
        t0 = time.perf_counter()
        texts, calls = sample_stories(model, tok, n, steps=steps, seed=0, return_calls=True, **kw)
        rep = story_report(texts)
        _MEMO[memo] = {"n": n, "steps": steps, "calls_per_story": calls,
                       **{k: rep[k] for k in ("valid", "well_formed_sentences", "name_consistent", "mean_words",
                                              "distinct_openings", "unigram_entropy")},
                       "example": texts[0], "seconds": time.perf_counter() - t0}
    params = {k: v for k, v in (kw.get("remdm") or {}).items() if k != "strategy"}
    row = {"label": label, "sampler": sampler, **params, **_MEMO[memo]}
    print(json.dumps({k: v for k, v in row.items() if k != "example"}), flush=True)
    return row


def part_remdm(mdm_dir: str, n: int, quick: bool) -> dict:
    mdm, _ = load_model(mdm_dir)
    tok = load_tokenizer(Path(mdm_dir) / "tokenizer.json")
    L = mdm.config.max_len
    rows = []
    for label, sampler, remdm, steps in remdm_settings(quick):
        for T in steps:
            kw = {"remdm": remdm} if remdm is not None else {}
            rows.append(measure(mdm, tok, rel(mdm_dir), label, sampler, n, min(T, L - 1) if remdm is None else T, **kw))
    return {"rows": rows, "n": n, "seed": 0, "L": L, "mdm": rel(mdm_dir), "temperature": 1.0,
            "dropped": None if quick else "eta_cap 0.01 and 0.05 at 128 and 256 steps",
            "calls": "ancestral / ReMDM: the calls a story needs sampled alone (the first step and every step after "
                     "one that changed it; a step that changed nothing reuses the last output); low-confidence: the "
                     "step of a story's last commit (length first: the first call places [EOS])",
            "note": "ReMDM's experiments sample OpenWebText with nucleus (top-p) sampling; here every sampler "
                    "draws at temperature 1 without top-p. loop: t_on 0.55, t_off 0.05, alpha held over the window, "
                    "eta_cap 0.02"}


def _val_nelbo(folder: str, info: dict) -> dict | None:
    """The model's validation loss (nats / token, a NELBO bound): the card's val_loss when the folder
    has a card, else the training record's (an interim run)."""
    card = Path(folder) / "card.json"
    if card.exists():
        c = json.loads(card.read_text())
        return {"nats_per_token": c.get("val_loss"), "source": "card.json", "steps": c.get("steps")}
    ts = (info or {}).get("train_state") or {}
    v = ts.get("best_val", ts.get("val_loss"))
    return None if v is None else {"nats_per_token": v, "source": "training record (no card)", "steps": ts.get("step")}


def part_uniform(udlm_dir: str, udlm_tag: str | None, mdm_dir: str, n: int, quick: bool) -> dict:
    udlm, u_info = load_model(udlm_dir, tag=udlm_tag)
    mdm, m_info = load_model(mdm_dir)
    tok = load_tokenizer(Path(mdm_dir) / "tokenizer.json")
    u_tok = load_tokenizer(Path(udlm_dir) / "tokenizer.json")
    if u_tok.vocab_size != tok.vocab_size or udlm.config.max_len != mdm.config.max_len:
        raise ValueError("udlm: expected the MDM's tokenizer and length, got vocab "
                         f"{u_tok.vocab_size} vs {tok.vocab_size}, L {udlm.config.max_len} vs {mdm.config.max_len}")
    L = mdm.config.max_len
    rows = []
    for T in ((2, 4) if quick else (4, 8, 16, 32, 64)):
        rows.append(measure(udlm, u_tok, f"{rel(udlm_dir)}:{udlm_tag}", "UDLM ancestral", "udlm", n, T,
                            objective="udlm"))
        rows.append(measure(mdm, tok, rel(mdm_dir), "MDM low-confidence", "mdm_low_confidence", n, min(T, L - 1)))
        rows.append(measure(mdm, tok, rel(mdm_dir), "MDM ancestral", "mdm_ancestral", n, T, remdm=ANCESTRAL))
    return {"rows": rows, "n": n, "seed": 0, "L": L, "udlm": rel(udlm_dir), "udlm_tag": udlm_tag, "mdm": rel(mdm_dir),
            "val_nelbo": {"udlm": _val_nelbo(udlm_dir, u_info), "mdm": _val_nelbo(mdm_dir, m_info)},
            "calls": "UDLM: one network call per step (every step may change every token); MDM ancestral: the "
                     "calls a story needs sampled alone (at most one per step); low-confidence: the step of a "
                     "story's last commit, at min(T, 63) steps (63 tokens after [BOS])"}


# ----------------------------------------------------------------------------- verdicts

def compare(a: dict, b: dict) -> int:
    """+1 when row a beats row b beyond sampling noise, -1 when it is behind, 0 when level: on valid
    stories, and where those are level, on well-formed sentences. Level = within two standard errors
    of the difference of two shares (and at least one story)."""
    n = min(a["n"], b["n"])
    for key in ("valid", "well_formed_sentences"):
        pa, pb = a[key], b[key]
        margin = max(2 * math.sqrt(pa * (1 - pa) / a["n"] + pb * (1 - pb) / b["n"]), 1 / n)
        if abs(pa - pb) > margin:
            return 1 if pa > pb else -1
    return 0


WORD = {1: "ahead", 0: "level", -1: "behind"}


def _pct(row) -> str:
    return f"{row['valid']:.0%} valid, {row['well_formed_sentences']:.0%} well-formed"


def verdict_uniform(rows: list, L: int) -> dict | None:
    """Duo's claim, uniform-state beats masked diffusion in few steps: at each T the uniform-state
    model against the better masked sampler at the same T (low-confidence at min(T, L - 1) steps,
    or ancestral). Few steps: T <= L / 8. 'yes': ahead at every few-step T and not behind at the
    largest T; 'partly': ahead at some few-step T (or behind at the largest); 'no': otherwise."""
    udlm = {r["steps"]: r for r in rows if r["sampler"] == "udlm"}
    few_max = L // 8
    per = []
    for T in sorted(udlm):
        masked = [r for r in rows if (r["sampler"] == "mdm_ancestral" and r["steps"] == T)
                  or (r["sampler"] == "mdm_low_confidence" and r["steps"] == min(T, L - 1))]
        if not masked:
            continue
        best = max(masked, key=lambda r: (r["valid"], r["well_formed_sentences"]))
        per.append({"steps": T, "udlm": udlm[T], "masked": best, "cmp": compare(udlm[T], best)})
    few = [p for p in per if p["steps"] <= few_max]
    if not few:
        return None
    last = per[-1] if per[-1]["steps"] > few_max else None
    ahead = sum(p["cmp"] == 1 for p in few)
    if ahead == len(few) and (last is None or last["cmp"] >= 0):
        claim, short = "yes", "ahead in few steps" + ("" if last is None else f", not behind at {last['steps']}")
    elif ahead:
        claim = "partly"
        short = (f"ahead in few steps, behind at {last['steps']} calls" if ahead == len(few)
                 else f"ahead at {ahead} of {len(few)} few-step counts")
    else:
        claim, short = "no", "not ahead in few steps"
    text = "; ".join(f"{p['steps']} calls: UDLM {_pct(p['udlm'])} vs masked ({p['masked']['label']}) "
                     f"{_pct(p['masked'])}, {WORD[p['cmp']]}" for p in per)
    return {"claim": claim, "short": short, "few_steps_max": few_max, "text": text,
            "per_steps": [{"steps": p["steps"], "cmp": p["cmp"], "masked": p["masked"]["label"],
                           "udlm_valid": p["udlm"]["valid"], "masked_valid": p["masked"]["valid"],
                           "udlm_well_formed": p["udlm"]["well_formed_sentences"],
                           "masked_well_formed": p["masked"]["well_formed_sentences"]} for p in per]}


def verdict_remdm(rows: list) -> dict | None:
    """ReMDM's claim, remasking improves a masked model's samples at equal or more calls: every
    remasking setting against ancestral sampling (no remasking) at the same T. The best setting is
    the one ahead at the most T (fewest behind on ties). 'yes': ahead at half the T or more,
    behind at none, and ahead at its largest T; 'partly': some setting is ahead somewhere; 'no'."""
    base = {r["steps"]: r for r in rows if r["sampler"] == "mdm_ancestral"}
    settings = {}
    for r in rows:
        if r["sampler"].startswith("remdm") and r["steps"] in base:
            settings.setdefault(r["label"], []).append((r["steps"], compare(r, base[r["steps"]]), r))
    if not base or not settings:
        return None
    score = lambda s: (sum(c == 1 for _, c, _ in s[1]), -sum(c == -1 for _, c, _ in s[1]), max(s[1])[1])
    label, res = max(settings.items(), key=score)
    res.sort(key=lambda x: x[0])
    ahead = [T for T, c, _ in res if c == 1]
    behind = [T for T, c, _ in res if c == -1]
    Tmax, cmax, rmax = res[-1]
    if len(ahead) * 2 >= len(res) and not behind and cmax == 1:
        claim, short = "yes", f"{label} ahead at {', '.join(map(str, ahead))} steps, behind at none"
    elif any(c == 1 for s in settings.values() for _, c, _ in s):
        claim = "partly"
        short = (f"{label} ahead at {', '.join(map(str, ahead))} steps" if ahead else "ahead only in some settings") \
            + (f", behind at {', '.join(map(str, behind))}" if behind else "")
    else:
        claim, short = "no", "no remasking setting ahead of ancestral"
    best_anc = max(base.values(), key=lambda r: (r["valid"], r["well_formed_sentences"]))
    llada = [r for r in rows if r["sampler"] == "mdm_low_confidence"]
    text = (f"best setting {label}: " + ", ".join(f"{T} steps {WORD[c]} ({r['valid']:.0%} vs {base[T]['valid']:.0%} "
                                                  "valid)" for T, c, r in res)
            + f"; ancestral's best {best_anc['valid']:.0%} valid at {best_anc['steps']} steps, {label} at {Tmax} "
              f"steps {rmax['valid']:.0%}")
    # equal calls: a remasking row against the ancestral row whose calls per story are closest (within 15%)
    near = [(r, min(base.values(), key=lambda a: abs(a["calls_per_story"] - r["calls_per_story"]))) for _, _, r in res]
    near = [(r, a) for r, a in near if a["steps"] != r["steps"]
            and abs(a["calls_per_story"] - r["calls_per_story"]) <= 0.15 * r["calls_per_story"]]
    if near:
        text += "; at about equal calls: " + ", ".join(
            f"{label} {r['steps']} steps ({r['calls_per_story']:.0f} calls) {r['valid']:.0%} vs ancestral {a['steps']} "
            f"steps ({a['calls_per_story']:.0f} calls) {a['valid']:.0%} valid" for r, a in near)
    if llada:
        top = max(llada, key=lambda r: r["steps"])
        text += (f"; LLaDA's low-confidence order {top['valid']:.0%} at {top['steps']} steps "
                 f"({top['calls_per_story']:.0f} calls)")
    per = {lab: [{"steps": T, "cmp": c} for T, c, _ in sorted(s, key=lambda x: x[0])] for lab, s in settings.items()}
    return {"claim": claim, "short": short, "best_setting": label, "text": text, "per_setting": per}


def verdicts(res: dict) -> dict:
    u, r = res.get("uniform") or {}, res.get("remdm") or {}
    return {"uniform": verdict_uniform(u["rows"], u["L"]) if u.get("rows") else None,
            "remdm": verdict_remdm(r["rows"]) if r.get("rows") else None}


# ----------------------------------------------------------------------------- main

def rel(path) -> str:
    """A path as the JSON keeps it: relative to the repository when inside it."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI size: 8 stories, two step counts per setting")
    ap.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    ap.add_argument("--json", default="benchmarks/results/beyond_mask_cpu.json")
    ap.add_argument("--n", type=int, default=None, help="stories per setting (default 128)")
    ap.add_argument("--mdm", default=str(CKPTS / "tales-mdm-nano"))
    ap.add_argument("--udlm", default=str(CKPTS / "tales-udlm-nano"), help="the uniform-state model's folder")
    ap.add_argument("--udlm-tag", default=None, help="its checkpoint tag (a training run: best)")
    a = ap.parse_args(argv)
    quick = a.quick or os.environ.get("MINIDLM_SMOKE") == "1"
    n = a.n or (8 if quick else 128)
    out = Path(a.json)
    res = json.loads(out.read_text()) if out.exists() and set(a.parts) != set(PARTS) else {}
    if a.parts:                                               # no parts: redo the verdict and the figure only
        res.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                    "threads": torch.get_num_threads(), "quick": quick})
    res.setdefault("commands", {})
    command = "python benchmarks/beyond_mask.py " + " ".join(
        rel(x) if x.startswith("/") else x for x in (argv if argv is not None else sys.argv[1:]))
    for part in a.parts:
        t0 = time.perf_counter()
        if part == "remdm":
            res[part] = part_remdm(a.mdm, n, quick)
        elif not (Path(a.udlm) / "tokenizer.json").exists():
            if not quick:
                raise SystemExit(f"--udlm: no uniform-state model in {a.udlm} (train one: python -m minidlm train "
                                 "--objective udlm; or pass --parts remdm)")
            print(f"uniform: skipped, no model in {a.udlm}", flush=True)
            res.pop(part, None)
            continue
        else:
            res[part] = part_uniform(a.udlm, a.udlm_tag, a.mdm, n, quick)
        res[part]["seconds"] = time.perf_counter() - t0
        res["commands"][part] = command.strip()
    res["verdict"] = verdicts(res)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    if res.get("remdm") or res.get("uniform"):
        plot(res, out.with_suffix(".png"))
    print(json.dumps({k: v and {"claim": v["claim"], "short": v["short"]} for k, v in res["verdict"].items()}))
    print(f"wrote {out}")


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from minidlm.viz_beyond import beyond_mask_figure
    fig = beyond_mask_figure(res)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
