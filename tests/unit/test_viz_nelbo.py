"""minidlm.viz_nelbo: the lesson 05 diagram draws the masking chain and one KL term per step."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minidlm.viz_nelbo import nelbo_chain_figure  # noqa: E402


def _parts(fig):
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, Rectangle) and (p.get_gid() or "").startswith("token")]
    rows = {}
    for b in boxes:
        rows.setdefault(round(b.get_y(), 6), []).append(b.get_gid() == "token-mask")
    masked_per_row = [sum(rows[y]) for y in sorted(rows, reverse=True)]     # top (x_0) to bottom (x_1)
    arrows = [a for a in ax.texts if a.get_gid() in ("arrow-q", "arrow-p")]
    texts = {gid: [t.get_text() for t in ax.texts if t.get_gid() == gid] for gid in ("kl-term", "prior-term", "nelbo-sum")}
    return boxes, masked_per_row, arrows, texts


@pytest.mark.parametrize("T", [1, 4, 6])
def test_chain_has_one_row_per_state_and_one_kl_per_step(T):
    words = ["a", "b", "c", "d", "e"]
    fig = nelbo_chain_figure(T=T, words=words, seed=3)
    try:
        assert isinstance(fig, Figure)
        boxes, masked, arrows, texts = _parts(fig)
        assert len(boxes) == (T + 1) * len(words)
        assert masked[0] == 0 and masked[-1] == len(words)          # x_0 clean, x_1 all [MASK]
        assert masked == sorted(masked)                             # a masked token stays masked as t grows
        assert len(arrows) == 2 * T                                 # q down and p_theta up, per step
        assert len(texts["kl-term"]) == T
        assert all(f"KL}}_{{{i}}}" in s for i, s in zip(range(1, T + 1), texts["kl-term"]))
        assert "reconstruction" in texts["kl-term"][0]
        assert len(texts["prior-term"]) == 1 and "= 0" in texts["prior-term"][0]
        assert len(texts["nelbo-sum"]) == 1
        fig.canvas.draw()                                           # the mathtext renders
    finally:
        plt.close(fig)


def test_same_seed_same_chain_and_bad_arguments_are_refused():
    a, b = nelbo_chain_figure(T=3, seed=1), nelbo_chain_figure(T=3, seed=1)
    try:
        assert _parts(a)[1] == _parts(b)[1]
    finally:
        plt.close(a)
        plt.close(b)
    with pytest.raises(ValueError, match="T"):
        nelbo_chain_figure(T=0)
    with pytest.raises(ValueError, match="words"):
        nelbo_chain_figure(words=[])
