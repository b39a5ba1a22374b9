"""Figures of lesson 13 (speed, latency and the review's claims): the break-even number of steps,
readable prefixes against time, latency against the answer length, the Pareto plane, Eso-LM's
likelihood spectrum and speed, and the reversal-curse learning curves. Each takes the numbers the
lesson measured or loaded (benchmarks/results/*.json) and only draws them."""
from __future__ import annotations

from .viz import _plt


def _finish(axes, legend_on=None):
    for ax in axes:
        ax.grid(alpha=0.3)
    for ax in (axes if legend_on is None else legend_on):
        ax.legend(fontsize=8)
    axes[0].figure.tight_layout()


def break_even_panels(lengths, batches, c_full: dict, c_1: dict, T_star: dict, axes=None):
    """Left: a full pass in cached steps, c_full(L) / c_1; right: the break-even steps T* (N = L);
    one line per batch size, against L. Dicts keyed by (batch, L). Returns the Figure."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for B in batches:
        axes[0].plot(lengths, [c_full[B, n] / c_1[B, n] for n in lengths], "o-", label=f"batch {B}")
        axes[1].plot(lengths, [T_star[B, n] for n in lengths], "o-", label=f"batch {B}")
    axes[0].set_ylabel(r"$c_{full}(L)\,/\,c_1$: a full pass in cached steps")
    axes[1].set_ylabel(r"break-even steps $T^*$ for $N = L$")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tokens in the row L")
    _finish(axes)
    return axes[0].figure


def prefix_ready_curves(runs, ax=None):
    """How many answer tokens a reader can see against seconds since the request, one step curve
    per sampler: ``runs`` is a list of dicts with "name" and "ready" ((N,) seconds at which the
    prefix of length 1..N is final). Returns the Axes."""
    import torch

    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for r in runs:
        ready = torch.as_tensor(r["ready"])
        ax.step(ready.numpy(), torch.arange(1, len(ready) + 1).numpy(), where="post", label=r["name"])
    ax.set_xlabel("seconds since the request")
    ax.set_ylabel("answer tokens a reader can see")
    _finish([ax])
    return ax


def latency_panels(rows, axes=None):
    """Time to first token (left) and to the full answer (right) against the answer length N, one
    line per sampler, log-log; ``rows`` as in benchmarks/results/latency_cpu.json. Returns the
    Figure."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for s in sorted({r["sampler"] for r in rows}):
        pts = sorted((r for r in rows if r["sampler"] == s), key=lambda r: r["N"])
        axes[0].plot([r["N"] for r in pts], [r["ttft_s"] for r in pts], "o-", label=s)
        axes[1].plot([r["N"] for r in pts], [r["full_s"] for r in pts], "o-", label=s)
    for ax, title in zip(axes, ("time to first token", "time to the full answer")):
        ax.set_xscale("log", base=2)
        ax.set(yscale="log", xlabel="answer tokens N", title=title)
    axes[0].set_ylabel("seconds")
    _finish(axes, legend_on=[axes[1]])
    return axes[0].figure


def pareto_plane(points, front, xlabel: str = "seconds", ax=None):
    """Samplers on the (time, generative perplexity) plane, log-log: ``points`` is a list of dicts
    with "sampler", "seconds" and "gen_ppl" (a sampler's settings joined by a line), ``front`` the
    indices of the Pareto front, dashed. Returns the Axes."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    for name in dict.fromkeys(p["sampler"] for p in points):
        pts = [p for p in points if p["sampler"] == name]
        ax.plot([p["seconds"] for p in pts], [p["gen_ppl"] for p in pts], "o-", label=name)
    ax.plot([points[i]["seconds"] for i in front], [points[i]["gen_ppl"] for i in front], "k--", lw=1,
            label="Pareto front")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="generative perplexity (AR judge)")
    _finish([ax])
    return ax


def spectrum_and_speed(spec, speed, axes=None):
    """Left: Eso-LM's perplexity bound against alpha0 (variants B and A; AR and MDM as single
    markers), from benchmarks/results/spectrum/spectrum.json; right: sampling time against the
    length for uncached MDLM, cached Eso-LM and cached AR, from esolm_speed_cpu.json. A missing
    result (None) shows the command that makes it. Returns the Figure."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    if spec:
        for variant, style in (("B", "o-"), ("A", "s--")):
            pts = sorted((r for r in spec if r["variant"] == variant), key=lambda r: r["alpha0"])
            axes[0].plot([r["alpha0"] for r in pts], [r["ppl_bound"] for r in pts], style, label=f"Eso-LM {variant}")
        for variant, marker in (("AR", "*"), ("MDM", "D")):
            for r in (r for r in spec if r["variant"] == variant):
                axes[0].plot([r["alpha0"]], [r["ppl_bound"]], marker, ms=11, label=variant)
        axes[0].set(xlabel=r"$\alpha_0$", ylabel="perplexity bound exp(NELBO)")
        axes[0].set_title(f"likelihood, {spec[0]['steps']} steps per model", fontsize=10)
        axes[0].legend(fontsize=8)
        axes[0].grid(alpha=0.3)
    else:
        axes[0].text(0.5, 0.5, "run: python benchmarks/report.py --rerun spectrum", ha="center")
    if speed:
        for s in ("mdlm_uncached", "esolm_cached", "ar_cache"):
            pts = [r for r in speed["rows"] if r["sampler"] == s and r["budget"] == "T=L"]
            axes[1].plot([r["L"] for r in pts], [r["seconds"] for r in pts], "o-", label=s)
        axes[1].set_xscale("log", base=2)
        axes[1].set(yscale="log", xlabel="tokens L (NFE = L)", ylabel="seconds, batch 1")
        axes[1].set_title("sampling time against length", fontsize=10)
        axes[1].legend(fontsize=8)
        axes[1].grid(alpha=0.3)
    else:
        axes[1].text(0.5, 0.5, "run: python benchmarks/report.py --rerun esolm_speed", ha="center")
    axes[0].figure.tight_layout()
    return axes[0].figure


def reversal_curves(runs, axes=None):
    """Exact-match accuracy on the held-out facts against the training step, one panel per run
    (the first two of benchmarks/results/reversal_cpu.json's "runs"), one line per query kind.
    Returns the Figure."""
    plt = _plt()
    runs = list(runs)[:2]
    if not runs:
        raise ValueError("runs: expected at least one run")
    if axes is None:
        _, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.6), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, run in zip(axes, runs):
        for j, key in enumerate(("forward", "reverse", "infill", "reverse_seen")):
            if key in run["curve"][0]:
                ax.plot([c["step"] for c in run["curve"]], [c[key] for c in run["curve"]], color=f"C{j}", label=key)
        ax.set_title(f"{run['objective'].upper()}, seed {run['seed']}: held-out facts", fontsize=10)
        ax.set_xlabel("training step")
    axes[0].set_ylabel("exact-match accuracy")
    _finish(list(axes))
    return axes[0].figure
