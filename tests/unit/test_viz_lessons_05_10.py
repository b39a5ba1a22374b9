"""The plotting functions that lessons 05, 06, 07, 08 and 10 call instead of writing matplotlib in
their code cells (viz_nelbo, viz_training, viz_sampling, viz_threshold, viz_esolm_spectrum): each
draws the numbers it is given, with the panels, lines, labels and titles of the lesson's figure,
and returns the Figure."""
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from minidlm import masks, viz_esolm_spectrum, viz_nelbo, viz_sampling, viz_threshold, viz_training  # noqa: E402
from minidlm.model import Model, ModelConfig  # noqa: E402
from minidlm.sampling import ancestral, generate  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("module", ["viz_nelbo", "viz_training", "viz_sampling", "viz_threshold", "viz_esolm_spectrum",
                                    "adaptive", "editing"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    # a lesson may import its plotting module before minidlm.sampling (no circular import)
    run = subprocess.run([sys.executable, "-c", f"import minidlm.{module}"], capture_output=True, text=True,
                         env={**os.environ, "MPLBACKEND": "Agg"}, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def _legend(ax):
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg else []


def _ydata(line):
    return [float(v) for v in line.get_ydata()]


@pytest.fixture(scope="module")
def traces():
    torch.manual_seed(0)
    model = Model(ModelConfig(vocab_size=12, max_len=10, n_layer=1, n_head=2, d_model=16, mask_id=11)).eval()
    bos = torch.tensor([0])
    _, lc = generate(model, 10, 3, 11, batch_size=2, prompt=bos, generator=0)
    _, anc = ancestral(model, 10, 3, 11, prompt=bos, generator=0)
    return lc, anc


# ------------------------------------------------------------------------------ lesson 05
def test_nelbo_weight_curves_one_line_per_schedule_in_each_panel():
    ts = torch.linspace(0.1, 1, 5, dtype=torch.float64)
    alphas = {"a": 1 - ts, "b": 1 - ts ** 2}
    weights = {"a": 1 / ts, "b": 2 / (1 + ts)}
    fig = viz_nelbo.weight_curves(ts, alphas, weights)
    assert isinstance(fig, Figure)
    left, right = fig.axes
    assert [len(a.get_lines()) for a in (left, right)] == [2, 2]
    assert _legend(left) == _legend(right) == ["a", "b"]
    assert _ydata(right.get_lines()[0]) == pytest.approx((1 / ts).tolist())
    assert right.get_yscale() == "log" and "1/t" in right.get_title()
    assert left.get_ylabel() == "alpha_t = P(token still clean)"


def test_nelbo_equal_areas_labels_each_integrand_with_its_area():
    t = torch.linspace(0.01, 1, 10)
    fig = viz_nelbo.equal_areas(t, {"x": t, "y": 2 * t}, {"x": 2.0, "y": 2.0004}, every=2)
    [ax] = fig.axes
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [5, 5]
    assert _legend(ax) == ["x: area 2.000 bits", "y: area 2.000 bits"]
    assert ax.get_title() == "Different integrands, the same area"


def test_nelbo_power_schedules_one_line_per_k():
    ts = torch.linspace(0, 1, 11)
    fig = viz_nelbo.power_schedules(ts, {k: 1 - ts ** k for k in (1, 2, 3)})
    [ax] = fig.axes
    assert len(ax.get_lines()) == 3 and _legend(ax) == ["k = 1", "k = 2", "k = 3"]
    assert ax.get_title() == "The schedules of task 5.3"


def test_nelbo_steps_bound_draws_the_toy_and_the_published_numbers():
    published = {10: 42.18, 100: 24.35}
    fig = viz_nelbo.steps_bound([1, 2, 4], [16.0, 9.0, 5.0], 2.0, 8, 4, published, 23.0)
    toy, paper = fig.axes
    assert _ydata(toy.get_lines()[0]) == [16.0, 9.0, 5.0]
    assert toy.get_title() == "Toy: 8 copies of one of 4 tokens"
    assert _legend(toy) == ["NELBO_T (toy, exact)", "continuous = -log2 p"]
    assert _legend(paper) == ["MDLM, T steps", "continuous-time bound 23.0"]
    assert sorted(t.get_text() for t in paper.texts) == ["24.35", "42.18"]      # one annotation per point
    assert toy.get_xscale() == paper.get_xscale() == "log"


def test_nelbo_depth_curve_and_model_steps_bound():
    fig = viz_nelbo.depth_curve([0.5, 1.0], [2.0, 4.0], 3.21)
    [ax] = fig.axes
    assert _ydata(ax.get_lines()[0]) == [2.0, 4.0] and len(ax.collections) == 1       # the curve, its area
    assert ax.get_title() == "Shipped MDM: area under the curve ~ 3.210 nats/token"
    fig = viz_nelbo.model_steps_bound([1, 2, 4], [5.0, 4.0, 3.5], 3.0)
    [ax] = fig.axes
    assert len(ax.get_lines()) == 2 and _legend(ax) == ["NELBO_T (Monte Carlo)", "continuous: 3.000"]
    assert ax.get_title() == "Shipped MDM: more steps, tighter bound"


# ------------------------------------------------------------------------------ lesson 06
def test_training_mask_panels_one_panel_per_mask():
    named = {"causal (AR)": masks.causal_mask(4), "bidirectional (MDM)": masks.bidirectional_mask(4),
             "prefix, P = 2": masks.prefix_mask(4, 2)}
    fig = viz_training.mask_panels(named)
    assert [a.get_title() for a in fig.axes] == list(named)
    for a, m in zip(fig.axes, named.values()):
        [im] = a.get_images()
        assert (torch.as_tensor(im.get_array()) == m.float()).all()
        assert a.get_xlabel() == "key j (attended to)" and a.get_ylabel() == "query i"


def test_training_logit_change_two_bars_per_position_and_the_marker():
    fig = viz_training.logit_change(torch.tensor([0.0, 0.0, 1.0, 2.0]), torch.tensor([0.5, 0.7, 1.0, 2.0]), 2)
    [ax] = fig.axes
    assert len(ax.patches) == 8 and _legend(ax) == ["causal (AR)", "bidirectional (MDM)"]
    assert [t.get_text() for t in ax.texts] == ["token 2 changed"]
    assert ax.get_lines()[0].get_xdata()[0] == 2                                  # the dashed line at k


def test_training_lr_curve_and_shipped_curves():
    fig = viz_training.lr_curve([0, 1, 2], [0.0, 1e-3, 2e-3], 100, 0.1)
    [ax] = fig.axes
    assert _ydata(ax.get_lines()[0]) == [0.0, 1e-3, 2e-3]
    assert ax.get_title() == "warm-up 100 steps, cosine to 0.1 x peak"
    curves = [dict(objective="ar", tokens=[1, 2], seconds=[3, 4], val_loss=[2.0, 1.5]),
              dict(objective="mdm", tokens=[1, 2], seconds=[5, 6], val_loss=[3.0, 2.5])]
    fig = viz_training.shipped_curves(curves, 1.0)
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "Shipped runs: AR vs MDM"
    for a in fig.axes:
        assert len(a.get_lines()) == 3 and _legend(a) == ["AR", "MDM", "entropy floor"]
    assert [a.get_xlabel() for a in fig.axes] == ["training tokens", "seconds (the machine that trained them)"]


# ------------------------------------------------------------------------------ lesson 07
def test_sampling_reveals_per_step_one_bar_per_step():
    fig = viz_sampling.reveals_per_step(torch.tensor([3, 0, 4, 2]), 63 / 4, 3)
    [ax] = fig.axes
    assert [int(p.get_height()) for p in ax.patches] == [3, 0, 4, 2]
    assert ax.get_title() == "ancestral, T = 4: 3 network calls"
    assert _legend(ax) == ["(L - 1) / T on average"]


def test_sampling_reveal_heatmaps_and_blocks(traces):
    lc, _ = traces
    fig = viz_sampling.reveal_heatmaps({"low_confidence": lc.reveal_step, "random": lc.reveal_step}, steps=3)
    panels = [a for a in fig.axes if a.get_images()]
    assert [a.get_title() for a in panels] == ["low_confidence", "random"]
    assert len(fig.axes) == 3                                                   # two panels, one colour bar
    assert panels[0].get_images()[0].get_clim() == (1, 3)
    reveal = torch.arange(2 * 64).reshape(2, 64) % 33
    fig = viz_sampling.block_heatmap(reveal, block_length=21)
    ax = fig.axes[0]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [21.5, 42.5]
    assert ax.get_title() == "low confidence inside 3 blocks of 21, decoded left to right"
    assert len(fig.axes) == 2                                                   # the colour bar


def test_sampling_proposal_shapes_one_panel_per_distribution():
    words = ["a", "b", "c"]
    shapes = {"temperature 1": torch.tensor([0.5, 0.3, 0.2]), "top-k = 2": torch.tensor([0.6, 0.4, 0.0])}
    fig = viz_sampling.proposal_shapes(words, shapes)
    assert [a.get_title() for a in fig.axes] == list(shapes)
    assert [p.get_height() for p in fig.axes[1].patches] == pytest.approx([0.6, 0.4, 0.0])


def test_sampling_confidence_pair_draws_both_traces(traces):
    lc, anc = traces
    fig = viz_sampling.confidence_pair(lc, anc)
    heat = [a for a in fig.axes if a.get_images() and a.get_title()]
    assert len(heat) == 2 and heat[0].get_title().startswith("low confidence first")
    assert heat[1].get_title().startswith("ancestral")
    assert len(fig.axes) == 4                                                   # and their colour bars


# ------------------------------------------------------------------------------ lesson 08
def test_threshold_first_step_confidence_colours_the_eos_bars():
    fig = viz_threshold.first_step_confidence(torch.tensor([0.2, 0.9, 0.95]), torch.tensor([False, True, True]))
    [ax] = fig.axes
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.2, 0.9, 0.95])
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]
    assert colours == [matplotlib.colors.to_hex(c) for c in ("tab:blue", "tab:orange", "tab:orange")]
    assert "orange = the top token is [EOS]" in ax.get_title()


def test_threshold_calls_histogram_one_histogram_per_input():
    calls = {"from scratch": torch.tensor([10, 12, 30]), "scattered": torch.tensor([4, 6, 6])}
    masks_ = {"from scratch": torch.tensor([63, 63, 63]), "scattered": torch.tensor([8, 9, 10])}
    fig = viz_threshold.calls_histogram(calls, masks_, 0.9, 64)
    [ax] = fig.axes
    assert _legend(ax) == ["from scratch (63 masks)", "scattered (9 masks)"]
    assert len(ax.patches) == 2 * 32                                            # bins of 2 calls, 0 to L
    assert sum(p.get_height() for p in ax.patches) == 6
    assert ax.get_xlabel() == "network calls per story at threshold 0.9"


def test_threshold_quality_vs_calls_three_panels_one_line_per_method():
    rep = lambda c, v: dict(calls=c, well_formed_sentences=v, name_consistent=v, unigram_entropy=v)  # noqa: E731
    results = {"low_confidence": [rep(4, 0.1), rep(16, 0.5)], "random": [rep(4, 0.2), rep(16, 0.4)],
               "threshold": [rep(8, 0.6)]}
    corpus = dict(well_formed_sentences=0.9, name_consistent=0.8, unigram_entropy=4.0)
    fig = viz_threshold.quality_vs_calls(results, corpus)
    assert [a.get_title() for a in fig.axes] == ["well-formed sentences", "one consistent name", "unigram entropy (nats)"]
    for a in fig.axes:
        assert len(a.get_lines()) == 4 and a.get_xscale() == "log"                # three methods and the corpus
    assert _legend(fig.axes[0]) == ["low_confidence", "random", "threshold", "corpus"]
    assert _ydata(fig.axes[2].get_lines()[3]) == [4.0, 4.0]


def test_threshold_length_bias_bars_and_reveal_curves():
    lengths = {"corpus": 40.0, "low_confidence": 25.0, "random": 38.0}
    curves = {"low_confidence": torch.linspace(1, 0, 5), "random": torch.full((5,), 0.5)}
    fig = viz_threshold.length_bias(lengths, curves)
    bars, reveal = fig.axes
    assert [p.get_width() for p in bars.patches] == [40.0, 25.0, 38.0]
    assert len(reveal.get_lines()) == 2 and _legend(reveal) == list(curves)
    assert list(reveal.get_lines()[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert reveal.get_title() == "when is each position decided? (0 = first call, 1 = last)"


# ------------------------------------------------------------------------------ lesson 10
def test_esolm_decode_order_splits_the_positions_by_phase():
    step = torch.tensor([2, 1, 3, 4, 5])
    fig = viz_esolm_spectrum.decode_order(step, step <= 2)
    [ax] = fig.axes
    diff, seq = ax.collections
    assert diff.get_offsets().tolist() == [[1, 2], [2, 1]]
    assert seq.get_offsets().tolist() == [[3, 3], [4, 4], [5, 5]]
    assert _legend(ax)[0].startswith("diffusion phase") and _legend(ax)[1].startswith("sequential phase")


def test_esolm_cache_size_two_panels_in_kib():
    fig = viz_esolm_spectrum.cache_size([16, 32], {16: 2048, 32: 4096}, {16: 1024, 32: 3072}, [1, 3, 6])
    a1, a2 = fig.axes
    assert [_ydata(line) for line in a1.get_lines()] == [[2.0, 4.0], [1.0, 3.0]]
    assert _legend(a1) == ["measured peak", "2 n_layer B L d_model 4 bytes"]
    assert _ydata(a2.get_lines()[0]) == [1, 3, 6] and a2.get_ylabel() == "clean tokens in the cache"


def test_esolm_live_and_bench_speed_one_line_per_sampler():
    fig = viz_esolm_spectrum.live_speed([32, 64], {"MDLM, no cache": [1.0, 3.0], "AR, cache": [0.5, 1.0]})
    [ax] = fig.axes
    assert _legend(ax) == ["MDLM, no cache", "AR, cache"] and ax.get_yscale() == "log"
    rows = [dict(L=L, seconds=s, sampler=n, budget=b) for L, s in ((32, 1.0), (64, 2.0))
            for n, b in (("mdlm_uncached", "T=L"), ("esolm_cached", "T=L/4"))]
    fig = viz_esolm_spectrum.bench_speed(dict(rows=rows, device="cpu"), "esolm_speed_cpu.json")
    [ax] = fig.axes
    assert _legend(ax) == ["mdlm_uncached (T=L)", "esolm_cached (T=L/4)"]       # only the pairs present
    assert ax.get_title() == "esolm_speed_cpu.json (cpu)"


def test_esolm_spectrum_plot_one_entry_per_variant_present():
    spectrum = [dict(variant="B", alpha0=a, ppl_bound=p) for a, p in ((0.0, 10.0), (1.0, 20.0), (0.5, 15.0))]
    spectrum.append(dict(variant="AR", alpha0=0.0, ppl_bound=9.0))
    fig = viz_esolm_spectrum.spectrum_plot(spectrum, "live miniature (5 steps per run)")
    [ax] = fig.axes
    assert _legend(ax) == ["AR", "Eso-LM, variant B"]
    assert _ydata(ax.get_lines()[1]) == [10.0, 15.0, 20.0]                      # sorted by alpha0
    assert ax.get_title() == "live miniature (5 steps per run)"
