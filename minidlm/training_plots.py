"""Training figures (lesson 06, benchmarks/valid_vs_cpu.py): learning curves against the entropy
floor, and valid stories against CPU seconds. Re-exported by ``minidlm.viz``."""
from __future__ import annotations


def _plt():
    import matplotlib.pyplot as plt
    return plt


def training_curves(logs: dict, floor: float | None = None, axes=None):
    """Lesson 06: validation loss of several runs against training tokens and against seconds.
    ``logs``: name -> dict(tokens=[...], seconds=[...], val=[...]) (lists of equal length); a run
    that started from another (an adapted MDM) may carry an offset already added to its axes.
    ``floor``: the entropy floor in nats/token, drawn dashed. Returns the two axes."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, lg in logs.items():
        axes[0].plot(lg["tokens"], lg["val"], "o-", ms=3, label=name)
        axes[1].plot(lg["seconds"], lg["val"], "o-", ms=3, label=name)
    axes[0].set_xlabel("training tokens")
    axes[1].set_xlabel("training seconds on this machine")
    for a in axes:
        if floor is not None:
            a.axhline(floor, color="gray", ls="--", lw=1, label="entropy floor")
        a.set_ylabel("validation loss (nats/token; MDM: NELBO bound)")
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    axes[0].figure.tight_layout()
    return axes


def valid_vs_seconds(result: dict, axes=None):
    """Lesson 06 and benchmarks/valid_vs_cpu.py: the share of valid stories and the validation loss
    of each recipe against its training seconds (``result``: that benchmark's JSON). Returns the axes."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for arm in result["arms"]:
        xs = [p["seconds"] for p in arm["points"]]
        axes[0].plot(xs, [100 * p["valid"] for p in arm["points"]], "o-", label=arm["name"])
        axes[1].plot(xs, [p["val_loss"] for p in arm["points"]], "o-", label=arm["name"])
    axes[0].set_ylabel(f"valid stories (%), {result['n']} samples")
    axes[1].set_ylabel("validation loss (nats/token; MDM: a bound)")
    if result.get("floor"):
        axes[1].axhline(result["floor"], color="gray", ls="--", lw=1, label="entropy floor")
    for a in axes:
        a.set_xlabel(f"training seconds, {result.get('threads', 1)} CPU thread(s)")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    axes[0].figure.suptitle("What a CPU second buys on tiny tales (MDM: T = L/2, length first)")
    axes[0].figure.tight_layout()
    return axes
