"""The figure modules of lessons 09, 11, 12 and 13 (viz_esolm_masks, viz_editing, viz_score_entropy,
viz_claims): each draws what it is given, the static copies of the widgets show the widgets' own
starting settings, and bad inputs raise a ValueError that names the argument."""
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minidlm import viz_claims, viz_editing, viz_esolm_masks, viz_score_entropy  # noqa: E402
from minidlm.losses import score_entropy  # noqa: E402
from minidlm.masks import causal_mask, esolm_diffusion_mask, esolm_sequential_mask  # noqa: E402

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _image(ax):
    [im] = ax.get_images()
    return im.get_array()


# ------------------------------------------------------------------------------ lesson 09
def test_mask_row_draws_each_mask_in_its_panel():
    masks = {"causal": causal_mask(5), "B": esolm_diffusion_mask(2, 5, "B"), "A": esolm_diffusion_mask(2, 5, "A")}
    fig = viz_esolm_masks.mask_row(masks)
    assert [ax.get_title() for ax in fig.axes] == list(masks)
    for ax, m in zip(fig.axes, masks.values()):
        assert (torch.as_tensor(_image(ax)) == m.int()).all()
    with pytest.raises(ValueError, match="masks"):
        viz_esolm_masks.mask_row({})


def test_sequential_mask_panels_mark_the_halves_and_the_clean_slots():
    L, n = 6, 3
    seq = {v: esolm_sequential_mask(L, variant=v, n_clean=n) for v in ("B", "A")}
    fig = viz_esolm_masks.sequential_mask_panels(seq, n_clean=n)
    for ax, v in zip(fig.axes, ("B", "A")):
        assert ax.get_title() == f"sequential phase, variant {v}"
        assert (torch.as_tensor(_image(ax)) == seq[v].int()).all()
        hlines = sorted(round(ln.get_ydata()[0], 2) for ln in ax.lines if ln.get_ydata()[0] == ln.get_ydata()[1])
        assert hlines == [n - 0.5, L - 0.5, L + n - 0.5]         # clean slots of z0, the halves, clean slots of x
    with pytest.raises(ValueError, match="masks"):
        viz_esolm_masks.sequential_mask_panels({"B": torch.ones(5, 5, dtype=torch.bool)}, n_clean=1)
    with pytest.raises(ValueError, match="n_clean"):
        viz_esolm_masks.sequential_mask_panels(seq, n_clean=7)


def test_explorer_mask_is_what_the_mask_explorer_shows():
    pytest.importorskip("ipywidgets")
    from minidlm.widgets import MaskExplorer

    ex = MaskExplorer(8, seed=0)
    for w in (ex.variant, ex.n_clean, ex.view):
        w.unobserve_all()                                      # compare the masks, skip redrawing each setting
    for n_clean in (0, 3, 8):
        for variant in ("A", "B"):
            for view in ("sorted", "original order"):
                ex.variant.value, ex.n_clean.value, ex.view.value = variant, n_clean, view
                want = ex.mask()
                got = viz_esolm_masks.explorer_mask(8, n_clean, variant, view, seed=0)
                assert torch.equal(got[0], want[0]) and got[1] == want[1] and torch.equal(got[2], want[2])


def test_explorer_views_default_is_the_explorers_start():
    pytest.importorskip("ipywidgets")
    from minidlm.widgets import MaskExplorer

    ex = MaskExplorer(8)                                       # its start: variant B, L // 2 clean, sorted
    fig = viz_esolm_masks.explorer_views(L=8)
    sorted_ax, original_ax = fig.axes
    assert sorted_ax.get_title() == f"variant {ex.variant.value}, {ex.n_clean.value} clean, sorted"
    assert (torch.as_tensor(_image(sorted_ax)) == ex.mask()[0].int()).all()
    ex.view.value = "original order"
    assert (torch.as_tensor(_image(original_ax)) == ex.mask()[0].int()).all()
    for bad in (dict(L=1), dict(L=8, n_clean=9), dict(L=8, view="sideways")):
        with pytest.raises(ValueError, match=next(iter(k for k in bad if k != "L"), "L")):
            viz_esolm_masks.explorer_mask(**bad)


# ------------------------------------------------------------------------------ lesson 11
def test_infill_steps_strip_colours_only_the_filled_positions():
    reveal = torch.tensor([0, 0, 3, 1, 2, 0])
    given = torch.tensor([True, True, False, False, False, True])
    ax = viz_editing.infill_steps_strip(reveal, given)
    row = _image(ax)[0]
    assert row.shape == (5,)                                   # [BOS] left out
    assert list(row.mask) == [True, False, False, False, True]
    assert list(row.data[1:4]) == [3.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="given"):
        viz_editing.infill_steps_strip(reveal, given[:3])


def test_edit_sweep_panels_one_panel_per_kind():
    ks = (1, 2, 3)
    found = {"name": [1.0, 1.0, 1.0], "animal": [0.5, 0.75, 1.0]}
    valid = {"name": [1.0, 0.9, 0.8], "animal": [0.5, 0.5, 0.6]}
    fig = viz_editing.edit_sweep_panels(ks, found, valid, {"name": 4, "animal": 4})
    assert [ax.get_title() for ax in fig.axes] == ["4 stories, name swapped", "4 stories, animal swapped"]
    assert list(fig.axes[1].lines[0].get_ydata()) == found["animal"]
    assert list(fig.axes[1].lines[1].get_ydata()) == valid["animal"]
    with pytest.raises(ValueError, match="found"):
        viz_editing.edit_sweep_panels(ks, {"name": [1.0]}, {"name": [1.0]}, {"name": 1})


# ------------------------------------------------------------------------------ lesson 12
@pytest.mark.parametrize("sigma", [0.05, 0.5, 4.0])
def test_score_entropy_curve_is_the_loss_and_bottoms_out_at_the_true_ratio(sigma):
    s, ell = viz_score_entropy.score_entropy_vs_score(sigma)
    a = 1 / math.expm1(sigma)
    expected = s - a * s.log() + a * (math.log(a) - 1)         # the formula, one right score, no wrong ones
    assert torch.allclose(ell, expected, atol=1e-9)
    assert ell.min() >= -1e-12
    assert abs(math.log(float(s[ell.argmin()])) - math.log(a)) < 0.05   # the grid point nearest to a
    _, ell_wrong = viz_score_entropy.score_entropy_vs_score(sigma, wrong_score=1.5)
    assert torch.allclose(ell_wrong - ell, torch.full_like(ell, 1.5))    # a wrong score adds itself


def test_score_entropy_curves_draw_the_sliders_start():
    ax = viz_score_entropy.score_entropy_curves()              # sigma = 0.5, wrong score 0: the sliders' start
    bold = ax.lines[3]                                         # three grey curves, then the chosen one
    s, ell = viz_score_entropy.score_entropy_vs_score(0.5)
    assert torch.allclose(torch.as_tensor(bold.get_ydata()), ell)
    assert abs(ax.lines[4].get_xdata()[0] - 1 / math.expm1(0.5)) < 1e-12
    for bad in (dict(sigma=0.0), dict(sigma=0.5, wrong_score=-1.0)):
        with pytest.raises(ValueError, match=next(iter(k for k in bad if k != "sigma"), "sigma")):
            viz_score_entropy.score_entropy_vs_score(**bad)


def test_score_entropy_vs_score_uses_minidlm_loss():
    s, ell = viz_score_entropy.score_entropy_vs_score(0.7, n_points=3, s_range=(0.1, 10.0))
    log_s = torch.full((3, 1, 5), -math.inf, dtype=torch.float64)
    log_s[:, 0, 2] = s.log()
    ref = score_entropy(log_s, torch.full((3, 1), 2), torch.full((3, 1), 4),
                        torch.full((3,), 0.7, dtype=torch.float64), 4)[:, 0]
    assert torch.equal(ell, ref)


def test_loss_history_and_ratio_bars():
    ax = viz_score_entropy.loss_history([3.0, 2.0, 1.5])
    assert ax.get_yscale() == "log" and list(ax.lines[0].get_ydata()) == [3.0, 2.0, 1.5]
    with pytest.raises(ValueError, match="history"):
        viz_score_entropy.loss_history([])
    true, learned = torch.tensor([0.5, 0.25, 0.25, 0.0]), torch.tensor([0.4, 0.3, 0.2, 0.1])
    fig = viz_score_entropy.ratio_bars([("x2 = A", true, learned), ("x2 masked", true, true)])
    assert [ax.get_title() for ax in fig.axes] == ["x2 = A: sum s/a = 1.000", "x2 masked: sum s/a = 1.000"]
    assert [p.get_height() for p in fig.axes[0].containers[1]] == pytest.approx(learned.tolist())


# ------------------------------------------------------------------------------ lesson 13
def test_break_even_and_ready_curves():
    lengths, batches = [32, 64], [1, 16]
    c_full = {(B, n): 1e-3 * n * B for B in batches for n in lengths}
    c_1 = {(B, n): 1e-3 for B in batches for n in lengths}
    T_star = {k: k[1] * c_1[k] / c_full[k] for k in c_full}
    fig = viz_claims.break_even_panels(lengths, batches, c_full, c_1, T_star)
    assert list(fig.axes[1].lines[1].get_ydata()) == [T_star[16, 32], T_star[16, 64]]
    ax = viz_claims.prefix_ready_curves([{"name": "AR", "ready": torch.tensor([0.1, 0.2, 0.3])}])
    assert list(ax.lines[0].get_ydata()) == [1, 2, 3]


@pytest.mark.parametrize("name", ["latency_cpu.json", "spectrum/spectrum.json", "reversal_cpu.json"])
def test_committed_results_draw(name):
    path = RESULTS / name
    if not path.exists():
        pytest.skip(f"{name} is not committed")
    data = json.loads(path.read_text())
    if name == "latency_cpu.json":
        fig = viz_claims.latency_panels(data["rows"])
        assert len(fig.axes[0].lines) == len({r["sampler"] for r in data["rows"]})
    elif name.startswith("spectrum"):
        speed = RESULTS / "esolm_speed_cpu.json"
        fig = viz_claims.spectrum_and_speed(data, json.loads(speed.read_text()) if speed.exists() else None)
        assert fig.axes[0].get_xlabel() == r"$\alpha_0$"
    else:
        fig = viz_claims.reversal_curves(data["runs"][:2])
        assert [ax.get_title().split(",")[0] for ax in fig.axes] == [r["objective"].upper() for r in data["runs"][:2]]


def test_missing_results_name_the_command():
    fig = viz_claims.spectrum_and_speed(None, None)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("--rerun spectrum" in t for t in texts) and any("--rerun esolm_speed" in t for t in texts)


def test_pareto_plane_draws_the_front():
    points = [{"sampler": "AR", "seconds": 1.0, "gen_ppl": 3.0},
              {"sampler": "mdm", "seconds": 0.5, "gen_ppl": 9.0},
              {"sampler": "mdm", "seconds": 2.0, "gen_ppl": 4.0}]
    ax = viz_claims.pareto_plane(points, [1, 0], xlabel="seconds for 2 stories")
    front = ax.lines[-1]
    assert front.get_label() == "Pareto front" and list(front.get_xdata()) == [0.5, 1.0]
    assert ax.get_xlabel() == "seconds for 2 stories"
