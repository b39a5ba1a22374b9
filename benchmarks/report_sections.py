"""The sections of benchmarks/RESULTS.md (lesson 13): one function per benchmark part, each reading
its JSON and PNG from the results folder; nothing in them is typed by hand."""
from __future__ import annotations

import json

from report_claims import reversal_means
from report_common import CKPTS, Report, _machine, _table

def _sampler(x: dict) -> str:
    """A card's sampler setting in words."""
    if x.get("objective") == "esolm":
        return f"esolm, alpha0 = {x.get('alpha0')}"
    if x.get("objective") == "udlm":
        return "udlm, ancestral (uniform-state)"
    if x.get("objective") == "bd3lm":
        rule = f"threshold {x['threshold']}" if "threshold" in x else f"{x['steps_per_block']} calls per block"
        return f"bd3lm, blocks of {x['block_length']}, {rule}, stops at [EOS]"
    if x.get("objective") == "udlm":
        return f"udlm, uniform-state ancestral, {x['steps']} steps"
    if "remasking" not in x and "threshold" not in x:
        return "ar"
    how = f"adaptive {x['threshold']}" if "threshold" in x else x["remasking"]
    if x.get("block_length"):
        how += f", blocks of {x['block_length']}"
    if x.get("length_first"):
        how += ", length first"
    return how


def section_models(r: Report):
    cards = [json.loads((d / "card.json").read_text()) for d in sorted(CKPTS.iterdir()) if (d / "card.json").exists()]
    if not cards:
        return None
    lines = ["## Shipped models", "", "Cards in `data/checkpoints/*/card.json`; rebuilt by `python data/checkpoints/ship.py`.", ""]
    lines.append(_table(["model", "params", "steps", "train tokens", "wall time (s)", "val loss (nats/token)",
                         "above the floor", "machine"],
                        [[c["name"], c["params"], c["steps"], c["train_tokens"], c["wall_time_s"], c["val_loss"],
                          c.get("gap_to_floor", "-"), c["machine"]] for c in cards]))
    q = [(c["name"], x) for c in cards for x in c.get("quality", [])]
    if q:
        ns = sorted({x["n"] for _, x in q})
        lines += ["", f"Sample quality ({' or '.join(map(str, ns))} stories each, tiny-tales checker; "
                      "\"length first\": the first call draws where the story ends, `length.py`):", ""]
        lines.append(_table(["model", "sampler", "T", "calls per story", "valid", "well-formed sentences",
                             "names consistent", "distinct openings", "mean words", "unigram entropy"],
                            [[n, _sampler(x), x.get("steps", "-"), x.get("calls_per_story", "-"), x["valid"],
                              x["well_formed_sentences"], x["name_consistent"], x["distinct_openings"],
                              x["mean_words"], x["unigram_entropy"]] for n, x in q]))
        lines += ["", "Examples:", ""] + [f"- {n} ({_sampler(x)}, T={x.get('steps', '-')}): {x['example']}" for n, x in q]
    return "\n".join(lines)


def section_throughput(r: Report):
    rows = [x for x in (r.load("train_throughput_cpu.json"), r.load("train_throughput_gpu.json")) if x]
    if not rows:
        return None
    lines = ["## Training throughput", "", f"{r.cmd('throughput')}; AR and MDM timed in alternating rounds in one run.", "",
             _table(["preset", "params", "device", "threads", "AR tokens/s", "MDM tokens/s", "MDM / AR"],
                    [[x["preset"], x["params"], x["device_name"] or x["device"], x["threads"],
                      x["ar_tokens_per_s"], x["mdm_tokens_per_s"], x["mdm_over_ar"]] for x in rows])]
    if len(rows) == 1:
        lines += ["", "No GPU was available to this project's sessions so far: the `small`-preset GPU row "
                      "(bf16, `--compile`, MFU) has not been measured."]
    return "\n".join(lines)


def section_curves(r: Report):
    for name in ("curves_ship/curves.json", "curves/curves.json"):
        c = r.load(name)
        if c:
            fl = r.load("tales_floor.json")
            floor = fl["floor"]["nats_per_token"] if fl else None
            rows = [[x.get("label", x["objective"]), x["tokens"][-1], x["val_loss"][-1], min(x["val_loss"])]
                    + ([min(x["val_loss"]) - floor] if floor is not None else []) for x in c]
            head = ["run", "tokens seen", "final val loss", "best val loss"] + (["best - floor"] if floor is not None else [])
            floor_line = [] if floor is None else [
                "", f"The floor is tiny tales' own entropy, {floor:.4f} nats per counted token at L = {fl['floor']['L']} "
                    f"(`python benchmarks/tales_floor.py`: exact log p of each story from the generator's grammar, "
                    f"averaged over {fl['story_entropy']['n_samples']:,} stories): no model's expected loss can go "
                    "below it. The MDM's number is a NELBO, an upper bound on its own loss, so its gap may overstate "
                    "how far the model itself is from the floor."]
            return "\n".join(["## Learning curves (lesson 06)", "",
                              "`python benchmarks/learning_curves.py --from-runs runs/ship-ar runs/ship-mdm --out "
                              "benchmarks/results/curves_ship`, then `--from-runs runs/adapt-mdm --append` for the MDM "
                              "adapted from the AR: the shipped models' own training logs (not re-run by the report).", "",
                              _table(head, rows), *floor_line,
                              "", r.img(name.replace(".json", ".png"), "curves")])
    return None


def section_valid_vs_cpu(r: Report):
    v = r.load("valid_vs_cpu.json")
    if not v:
        return None
    rows = [[arm["name"], p["steps"], p["seconds"], p["val_loss"], p["valid"], p["mean_words"], p["distinct_openings"]]
            for arm in v["arms"] for p in arm["points"]]
    return "\n".join(["## What a CPU second buys (lesson 06)", "",
                      f"`{v['command']}`: three recipes trained on one thread and stopped at {v['stops']} steps "
                      f"(one cosine schedule each), {v['n']} stories graded at each stop ({v['sampler']}). The MDM "
                      f"from AR starts from the AR run's checkpoint at step {v['ar_start']}; its seconds include the "
                      "AR's." + (f" Note: {v['note']}." if v.get("note") else ""), "",
                      _table(["recipe", "steps", "seconds", "val loss", "valid", "mean words", "distinct openings"], rows),
                      "", r.img("valid_vs_cpu.png", "valid stories against CPU seconds")])


def section_sampling(r: Report):
    s = r.load("sampling_cpu.json")
    if not s:
        return None
    Lmax = max(y["L"] for y in s["rows"])
    rows = [x for x in s["rows"] if x["L"] == Lmax]
    t = _table(["sampler", "T", "network calls", "seconds / batch", "time vs AR", "gen. PPL (AR judge)",
                "unigram entropy", "valid stories"],
               [[x["sampler"], x["T"], x["nfe"], x["seconds"], x["time_vs_ar"], x["gen_ppl"], x["unigram_entropy"],
                 x.get("valid")] for x in rows])
    by_L = _table(["L", "sampler", "T", "seconds / batch", "time vs AR"],
                  [[x["L"], x["sampler"], x["T"], x["seconds"], x["time_vs_ar"]] for x in s["rows"]
                   if x["sampler"] in ("ar_cache", "low_confidence")
                   and (x["sampler"] == "ar_cache" or x["T"] in (max(1, x["L"] // 8), x["L"]))])
    return "\n".join(["## Steps against quality and time: the Pareto view (lessons 07, 08, 13)", "",
                      f"{r.cmd('sampling')}: {s['machine']}, batch {s['rows'][0]['batch']}, the shipped MDM, AR and "
                      "Eso-LM models; times relative to AR with a KV cache in the same run. Generative perplexity is "
                      "the AR model's perplexity on the samples (lower is more fluent, but a collapsed sampler also "
                      "scores well: read it with the unigram entropy), valid stories = the tiny-tales checker.", "",
                      t, "", "Time against length:", "", by_L, "", r.img("sampling_cpu.png", "sampling")])


def section_esolm(r: Report):
    e = r.load("esolm_speed_cpu.json")
    if not e:
        return None
    rows = [[x["L"], x["budget"], x["sampler"], x["nfe"], x["seconds"], x["tokens_per_s"]] for x in e["rows"]]
    return "\n".join(["## Cache speed-up against length (lesson 10; the shape of Eso-LM's Table 11)", "",
                      f"{r.cmd('esolm_speed')}: {e['machine']}, {e['threads']} threads, {e['dtype']}, batch "
                      f"{e['batch_size']}, a random-init {e['params']:,}-parameter model (speed does not depend on "
                      "training).", "",
                      "Speed-up of cached Eso-LM (B) over uncached MDLM at equal NFE, by L: "
                      + ", ".join(f"L={k}: {v:.1f}x" for k, v in e["speedup_vs_mdlm_by_L"].items())
                      + f". At T = L/4: {e['speedup_vs_mdlm_T_L4']:.1f}x. Eso-LM / AR time: {e['esolm_time_vs_ar']:.2f}. "
                      "Eso-LM's Table 11 (one GPU, batch 1): AR 13.3 s, MDLM 201.3 s, Eso-LM (B) 14.6 s at L = 2048; "
                      "54.0 / 5438.3 / 82.1 s at L = 8192.", "",
                      _table(["L", "budget", "sampler", "NFE", "seconds", "tokens/s"], rows), "",
                      r.img("esolm_speed_cpu.png", "esolm speed")])


def section_latency(r: Report):
    lat = r.load("latency_cpu.json")
    if not lat:
        return None
    rows = sorted(lat["rows"], key=lambda x: (x["sampler"], x["N"]))
    st = lat.get("settings", {})
    head = (f"{r.cmd('latency')}: {_machine(lat.get('machine'))}; a prompt of {st.get('prompt_len', '?')} tokens, "
            f"batch 1, a random-init {st.get('params', 0):,}-parameter model, median of {st.get('repeats', '?')} "
            "repeats, one seed each. Time to first token = until the first answer token in reading order is final; "
            "first commit = until any answer token is final. For the diffusion samplers the step at which the "
            "first token lands is a random draw (a median over the seeds here), so their time-to-first-token "
            "column is noisy.")
    lines = ["## Latency: time to first token and to the full answer (lesson 13)", "", head, ""]
    sm = lat.get("summary") or {}
    if sm.get("vs_ar"):
        lines += [f"Against AR at N = {sm['N']} (ratios measured in one run; > 1 means slower than AR):", "",
                  _table(["sampler", "full answer / AR", "first token / AR", "first commit / AR",
                          "faster than AR from N ="],
                         [[k, v["full_s"], v["ttft_s"], v["first_commit_s"],
                           (sm.get("full_faster_than_ar_from_N") or {}).get(k) or "never"]
                          for k, v in sm["vs_ar"].items()]), ""]
    lines += [_table(["sampler", "answer tokens N", "T", "NFE", "first commit (s)", "time to first token (s)",
                      "full answer (s)"],
                     [[x["sampler"], x["N"], x.get("T"), x["nfe"], x["first_commit_s"], x["ttft_s"], x["full_s"]]
                      for x in rows]), "", r.img("latency_cpu.png", "latency")]
    return "\n".join(lines)


def section_spectrum(r: Report):
    rows = r.load("spectrum/spectrum.json")
    if not rows:
        return None
    label = {"AR": "AR", "MDM": "MDM (MDLM)"}
    return "\n".join(["## The likelihood spectrum: AR, Eso-LM, MDM (lessons 10 and 13)", "",
                      f"{r.cmd('spectrum')}. Same data, steps and batch for every model.", "",
                      _table(["model", "alpha0", "variant", "val loss (nats/token)", "perplexity bound", "steps", "seconds"],
                             [[label.get(x["variant"], "Eso-LM"), x["alpha0"] if x["variant"] not in label else "-",
                               x["variant"] if x["variant"] not in label else "-", x["val_nelbo"], x["ppl_bound"],
                               x["steps"], x["seconds"]] for x in rows]),
                      "", spectrum_words(rows), "", r.img("spectrum/spectrum.png", "spectrum")])


def spectrum_words(rows) -> str:
    """Compare the measured ordering with Eso-LM's Table 1, in words, from the numbers."""
    b = sorted((x for x in rows if x["variant"] == "B"), key=lambda x: x["alpha0"])
    mono = all(p["val_nelbo"] <= q["val_nelbo"] for p, q in zip(b, b[1:]))
    out = ["Eso-LM's Table 1 (LM1B perplexity) orders AR 21.86 < alpha0 0.125 (26.29) < 0.25 (29.23) < "
           "0.5 (32.53) < 1 (36.12, B) and A 30.96 at alpha0 = 1, MDLM 31.78. Here, variant B over alpha0 = "
           + ", ".join(f"{x['alpha0']:g}" for x in b)
           + (": the same monotone ordering." if mono else ": NOT monotone, unlike the paper.")]
    for v in ("AR", "MDM"):
        x = [y for y in rows if y["variant"] == v]
        if x:
            out.append(f"{v}: {x[0]['ppl_bound']:.3f}.")
    pairs = [(a, next((y for y in b if y["alpha0"] == a["alpha0"]), None)) for a in rows if a["variant"] == "A"]
    pairs = [(a, bb) for a, bb in pairs if bb]
    if pairs:
        wins = sum(a["val_nelbo"] < bb["val_nelbo"] for a, bb in pairs)
        out.append(f"Variant A beats B at {wins} of {len(pairs)} alpha0 values ("
                   + ", ".join(f"{a['alpha0']:g}: {a['ppl_bound']:.3f} vs {bb['ppl_bound']:.3f}" for a, bb in pairs)
                   + "); the paper has A ahead at alpha0 = 1 (30.96 vs 36.12), the price of B's exact cache.")
    out.append(f"These are short runs ({rows[0]['steps']} steps of batch {rows[0]['batch_size']}) of a ~0.9M-parameter "
               "model: the ordering mixes how fast each objective learns with its converged likelihood.")
    return " ".join(out)


def section_reversal(r: Report):
    rv = r.load("reversal_cpu.json")
    if not rv:
        return None
    keys = ("forward", "reverse", "infill", "infill_by_ranking", "reverse_seen")
    rows = [[x["objective"].upper(), x["seed"], x["steps"], *[x["final"].get(k) for k in keys], x["seconds"]]
            for x in rv["runs"]]
    fin = reversal_means(rv)
    lines = ["## The reversal curse (lesson 13; the shape of LLaDA's Table 4)", "",
             f"{r.cmd('reversal')}: {rv['machine']}; {rv['facts']} made-up facts \"Pelo has a pet named Rudy.\", "
             f"{rv['test_facts']} of them only ever stated forward; both models are the same nano Transformer on "
             f"{rv.get('tokenizer', 'word')} tokens (every name one token), same steps and batch. Exact-match accuracy "
             "on the held-out facts (greedy):", "",
             _table(["model", "seed", "steps", "forward", "reverse", "infill (blank first)", "infill by ranking",
                     "reverse, facts also seen reversed", "seconds"], rows), "",
             "LLaDA's Table 4 (poem lines, forward / reversal): GPT-4o 82.7% / 34.3%, Qwen2.5-7B Instruct 75.9% / 38.0%, "
             "LLaDA 8B Instruct 51.8% / 45.6% (the latest arXiv version of 2502.09992; an earlier version printed "
             "48.8% / 42.4% for LLaDA).", "",
             "This part was run before issue 13's loss fix (the MDM loss then divided by all L positions instead of the "
             "L - 1 after [BOS]: a constant factor, which Adam's update normalizes away up to gradient clipping) and was "
             "not run again.", ""]
    if {"ar", "mdm"} <= fin.keys():
        lines.append("Averaged over the seeds: " + reversal_words(fin["ar"], fin["mdm"]))
    lines += ["", r.img("reversal_cpu.png", "reversal")]
    return "\n".join(lines)


def reversal_words(ar, mdm) -> str:
    """The reversal result in words, from the seed-averaged accuracies."""
    out = [f"AR answers the seen direction ({ar['forward']:.0%}) and fails the reversed question ({ar['reverse']:.0%}): "
           "the reversal curse." if ar["reverse"] < 0.1 else
           f"AR reaches {ar['reverse']:.0%} on reversed questions."]
    margin = mdm["reverse"] - ar["reverse"]
    gap = (f"far below its {mdm['infill']:.0%} on the same facts asked inside the seen sentence, and it varies a lot "
           "from seed to seed (see the table): a new sentence form needs the fact stored in a direction-free way, "
           "which bidirectional training gives only sometimes at this scale")
    if margin >= 0.1:
        out.append(f"The MDM answers the reversed question {mdm['reverse']:.0%} of the time: the claim holds here, "
                   f"but {gap}.")
    elif margin > 0.02:
        out.append(f"The MDM does only a little better on the reversed sentence ({mdm['reverse']:.0%}), {gap}.")
    else:
        out.append(f"The MDM does no better on the reversed sentence ({mdm['reverse']:.0%}): a new sentence form "
                   "needs the fact stored in a direction-free way, and bidirectional training alone does not give "
                   "that here.")
    out.append(f"Asked as a blank inside the sentence it saw (\"____ has a pet named Rudy.\"), the MDM answers "
               f"{mdm['infill']:.0%}: it learned p(person | pet) from the forward sentence, which an AR model cannot "
               "generate" + (f" (though ranking all names under the AR model finds {ar['infill_by_ranking']:.0%})."
                             if "infill_by_ranking" in ar else "."))
    return " ".join(out)


def section_block_diffusion(r: Report):
    b = r.load("block_diffusion_cpu.json")
    if not b:
        return None
    lines = ["## Block diffusion, BD3-LM (lesson 14)", ""]
    cmds = b.get("commands", {})
    bs = b.get("block_sizes")
    if bs:
        lines += [f"Likelihood by block size (`{cmds.get('block_sizes', '')}`, {bs['seconds']:.0f} s on {b['machine']}): "
                  f"{bs['note']}. {bs['steps']} steps of batch {bs['batch_size']} at lr {bs['lr']} each; the NELBO over "
                  f"all {bs['val_rows']} validation rows, {bs['noise_passes']} fixed noise draws.", "",
                  _table(["block size K", "val NELBO (nats/token)", "fine-tune seconds"],
                         [[x["block_size"], x["val_nelbo"], x["train_seconds"]] for x in bs["rows"]]), ""]
    q = b.get("quality")
    if q:
        def setting(x):
            keys = ("steps_per_block", "threshold", "steps", "block_length", "alpha0")
            return ", ".join(f"{k} {x[k]}" for k in keys if k in x)
        card = q.get("bd3lm_card") or {}
        lines += [f"Quality against network calls (`{cmds.get('quality', '')}`, {q['seconds']:.0f} s): {q['n']} "
                  f"stories per setting, seed {q['seed']}, the BD3-LM in `{q['bd3lm']}`"
                  + (f" ({card.get('steps')} steps)" if card.get("steps") else "")
                  + (f"; its card says: {card['note']}" if "interim" in (card.get("note") or "").lower() else "")
                  + ". Calls: " + q["calls"]
                  + ". Tokens per call: " + q["tokens_per_call"] + ".", "",
                  _table(["sampler", "setting", "calls per story", "tokens per call", "valid", "well-formed sentences",
                          "mean words", "unigram entropy"],
                         [[x["sampler"], setting(x), x["calls_per_story"], x["tokens_per_call"], x["valid"],
                           x["well_formed_sentences"], x["mean_words"], x["unigram_entropy"]] for x in q["rows"]]), ""]
    cs = b.get("cache_speed")
    if cs:
        lines += [f"The exact KV cache (`{cmds.get('cache_speed', '')}`): {cs['model']}, batch {cs['batch_size']}, "
                  f"{cs['threads']} thread(s), median of {cs['repeats']}; tokens fed = the sum over calls of the "
                  "tokens given to the network.", "",
                  _table(["L", "block size", "steps per block", "calls", "tokens fed (cached)", "tokens fed (uncached)",
                          "fewer tokens", "seconds cached", "seconds uncached", "speed-up"],
                         [[x["L"], x["block_size"], x["steps_per_block"], x["calls_cached"], x["tokens_fed_cached"],
                           x["tokens_fed_uncached"], x["fed_ratio"], x["seconds_cached"], x["seconds_uncached"],
                           x["speedup"]] for x in cs["rows"]]), ""]
    lines.append(r.img("block_diffusion_cpu.png", "block diffusion"))
    return "\n".join(lines)


def section_data_constrained(r: Report):
    d = r.load("data_constrained_cpu.json")
    if not d:
        return None
    s = d["settings"]
    rows = [[{"bd3lm": "BD3-LM"}.get(k, k.upper()), x["params"], x["steps"], x["best_epoch"], x["best_val_loss"], x["final_val_loss"], x["seconds"]]
            for k, x in d["runs"].items()]
    return "\n".join(["## Repeated data: AR against diffusion (lesson 14; Prabhudesai et al. 2025)", "",
                      f"`{d['command']}` on {d['machine']}, {d['threads']} thread(s): {s['stories']:,} training stories "
                      f"({s['train_tokens_per_epoch']:,} tokens) seen {s['epochs']} times, batch {s['batch_size']}, "
                      f"lr {s['lr']}, every model from scratch; {s['loss']}, on {s['val_rows']} validation rows.", "",
                      _table(["model", "params", "steps", "best epoch", "best held-out loss", "final held-out loss",
                              "seconds"], rows), "",
                      f"What the curves show: {d['verdict']['text']}" if d.get("verdict") else "", "",
                      r.img("data_constrained_cpu.png", "data-constrained")])


def section_beyond_mask(r: Report):
    b = r.load("beyond_mask_cpu.json")
    if not b or not (b.get("remdm") or b.get("uniform")):
        return None
    cmds, v = b.get("commands", {}), b.get("verdict") or {}
    keys = ("eta_cap", "t_on", "t_off")
    head = ["sampler", "setting", "steps", "calls per story", "valid", "well-formed sentences", "names consistent",
            "mean words", "unigram entropy"]
    table = lambda rows: _table(head, [[x["label"], ", ".join(f"{k} {x[k]}" for k in keys if k in x) or "-", x["steps"],
                                        x["calls_per_story"], x["valid"], x["well_formed_sentences"],
                                        x["name_consistent"], x["mean_words"], x["unigram_entropy"]] for x in rows])
    lines = ["## Beyond [MASK]: remasking and uniform-state diffusion (lesson 15)", ""]
    q = b.get("remdm")
    if q:
        lines += [f"Remasking (`{cmds.get('remdm', '')}`, {q['seconds']:.0f} s on {b['machine']}, {b['threads']} "
                  f"thread(s)): the shipped MDM in `{q['mdm']}`, {q['n']} stories per setting, seed {q['seed']}, "
                  f"L = {q['L']}. Ancestral = ReMDM with eta_cap 0 (the same code, no remasking). Calls: {q['calls']}. "
                  f"{q['note']}." + (f" Dropped for time: {q['dropped']}." if q.get("dropped") else ""), "",
                  table(q["rows"]), ""]
        if v.get("remdm"):
            lines += [f"Verdict: **{v['remdm']['claim']}** ({v['remdm']['short']}): {v['remdm']['text']}.", ""]
    u = b.get("uniform")
    if u:
        nel = u.get("val_nelbo") or {}
        words = "; ".join(f"{k.upper()} {x['nats_per_token']:.3f} nats / token ({x['source']}"
                          + (f", {x['steps']} steps" if x.get("steps") else "") + ")"
                          for k, x in nel.items() if x and x.get("nats_per_token") is not None)
        lines += [f"Uniform-state against masked (`{cmds.get('uniform', '')}`, {u['seconds']:.0f} s): the model in "
                  f"`{u['udlm']}`" + (f" (tag {u['udlm_tag']})" if u.get("udlm_tag") else "")
                  + f" against `{u['mdm']}`, {u['n']} stories per setting, seed {u['seed']}. Calls: {u['calls']}."
                  + (f" Validation NELBO (both are bounds on the same data, L = {u['L']}): {words}." if words else ""),
                  "", table(u["rows"]), ""]
        if v.get("uniform"):
            lines += [f"Verdict: **{v['uniform']['claim']}** ({v['uniform']['short']}; few steps: T <= "
                      f"{v['uniform']['few_steps_max']}): {v['uniform']['text']}.", ""]
        top = max((x for x in u["rows"] if x["sampler"] == "udlm"), key=lambda x: x["steps"], default=None)
        if top:
            lines += [f"A uniform-state story at {top['steps']} calls: {top['example']}", ""]
    lines.append(r.img("beyond_mask_cpu.png", "beyond [MASK]"))
    return "\n".join(lines)


SECTIONS = (section_models, section_throughput, section_curves, section_valid_vs_cpu, section_sampling, section_esolm, section_latency,
            section_spectrum, section_reversal, section_block_diffusion, section_data_constrained, section_beyond_mask)
