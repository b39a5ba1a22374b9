"""Lesson 14's figures (minidlm.viz_blocks): each draws the data it is given (the mask, the trace,
the benchmark rows), and bad inputs raise a ValueError that names the argument."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minidlm import viz_blocks  # noqa: E402
from minidlm.blocks import bd3_generate, training_mask  # noqa: E402
from minidlm.model import Model, ModelConfig  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("L, K", [(16, 4), (6, 4), (5, 1)])
def test_training_mask_figure_shows_the_mask(L, K):
    fig = viz_blocks.training_mask_figure(L, K)
    ax = fig.axes[0]
    img = ax.images[0].get_array()
    assert np.array_equal(np.asarray(img).astype(bool), training_mask(L, K).numpy())
    assert f"L = {L}, block size {K}" in ax.get_title()
    labels = [t.get_text() for t in ax.texts]
    assert any("never" in s for s in labels) and len(labels) == 4
    with pytest.raises(ValueError, match="block_size"):
        viz_blocks.training_mask_figure(8, 0)


def test_block_trace_grid_colours_decoded_cells_by_block():
    torch.manual_seed(0)
    MASK, BOS, EOS = 15, 0, 1
    model = Model(ModelConfig(vocab_size=16, max_len=12, n_layer=1, n_head=2, d_model=16, mask_id=MASK)).eval()
    x, tr = bd3_generate(model, 12, MASK, 4, steps_per_block=2, bos_id=BOS, eos_id=None, generator=0)
    fig = viz_blocks.block_trace_grid(tr.states, MASK, 4)
    img = np.asarray(fig.axes[0].images[0].get_array())                       # (n_states, L, 3)
    assert img.shape[:2] == (len(tr.states), 12)
    masked = torch.stack([s[0] for s in tr.states]).numpy() == MASK
    assert np.all(img[masked] == 1.0)                                         # white where masked
    last = img[-1]
    assert np.allclose(last[0], last[3]) and not np.allclose(last[3], last[4])   # block 0 vs block 1
    assert np.allclose(last[0], last[8])                                      # blocks 0 and 2 share a hue
    assert f"{len(tr.states) - 1} states" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="states"):
        viz_blocks.block_trace_grid([], MASK, 4)


def test_nelbo_by_block_size_plots_the_rows_in_block_order():
    rows = [{"block_size": 16, "val_nelbo": 2.0}, {"block_size": 1, "val_nelbo": 1.2},
            {"block_size": 4, "val_nelbo": 1.5}]
    ax = viz_blocks.nelbo_by_block_size(rows).axes[0]
    x, y = ax.lines[0].get_data()
    assert list(x) == [1, 4, 16] and list(y) == [1.2, 1.5, 2.0]
    assert ax.get_xscale() == "log" and "block size" in ax.get_xlabel()
    with pytest.raises(ValueError, match="rows"):
        viz_blocks.nelbo_by_block_size([])


def test_quality_vs_calls_one_series_per_method_in_percent():
    rows = [{"method": "bd3lm", "calls_per_story": 20.0, "valid": 0.9},
            {"method": "bd3lm", "calls_per_story": 10.0, "valid": 0.5},
            {"method": "esolm", "calls_per_story": 16.0, "valid": 0.75}]
    ax = viz_blocks.quality_vs_calls(rows).axes[0]
    assert len(ax.lines) == 2
    x, y = ax.lines[0].get_data()
    assert list(x) == [10.0, 20.0] and list(y) == [50.0, 90.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["BD3-LM (block cache)", "Eso-LM (B, cache)"]


def test_cache_speed_bars_and_ratios():
    rows = [{"L": 256, "seconds_cached": 1.0, "seconds_uncached": 3.0},
            {"L": 128, "seconds_cached": 0.5, "seconds_uncached": 1.0}]
    ax = viz_blocks.cache_speed(rows).axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1.0, 3.0, 0.5, 1.0]                     # uncached bars, then cached, L sorted
    assert [t.get_text() for t in ax.texts] == ["2.0x", "3.0x"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["128", "256"]


def test_data_constrained_marks_the_best_epochs():
    curves = {"ar": [{"epoch": 1, "val_loss": 3.0}, {"epoch": 2, "val_loss": 2.5}, {"epoch": 3, "val_loss": 2.8}],
              "mdm": [{"epoch": 1, "val_loss": 4.0}, {"epoch": 3, "val_loss": 3.1}]}
    best = {"ar": {"epoch": 2, "val_loss": 2.5}, "mdm": {"epoch": 3, "val_loss": 3.1}}
    ax = viz_blocks.data_constrained(curves, best).axes[0]
    assert len(ax.lines) == 4
    star = ax.lines[1].get_data()
    assert list(star[0]) == [2] and list(star[1]) == [2.5]
    assert ax.lines[1].get_color() == ax.lines[0].get_color()
    with pytest.raises(ValueError, match="curves"):
        viz_blocks.data_constrained({})
