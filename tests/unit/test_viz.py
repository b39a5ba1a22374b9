"""minidlm.viz: the pure renderers draw what the trace says, and every widget callback runs at its
slider's extremes. A tiny random model keeps these fast; nothing here depends on a checkpoint."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minidlm import viz  # noqa: E402
from minidlm.data import load_tales_tokenizer  # noqa: E402
from minidlm.masks import esolm_diffusion_mask  # noqa: E402
from minidlm.model import Model, ModelConfig  # noqa: E402
from minidlm.sampling import Trace, generate  # noqa: E402
from minidlm.schedules import EsoLMSchedule, get_schedule  # noqa: E402

L = 16


def n_masked_boxes(html: str) -> int:
    return len(re.findall(r'class="mdlm-mask"', html))


def visible_tokens(html: str) -> list[str]:
    return re.findall(r'<span class="mdlm-tok"[^>]*>([^<]*)</span>', html)


@pytest.fixture(scope="module")
def tok():
    return load_tales_tokenizer("bpe")


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=L, n_layer=1, n_head=2, d_model=32, mask_id=tok.mask_id)
    return Model(cfg).eval()


@pytest.fixture(scope="module")
def story_trace(tok):
    """A hand-made trace: [BOS] + 7 story tokens + [EOS] padding, revealed one slot per step,
    story left to right (steps 1-7), then the padding (steps 8-15)."""
    words = tok.encode(" Tom met a frog.")[:7]
    words += tok.encode(" The end")[: 7 - len(words)]
    final = torch.tensor([[tok.bos_id, *words] + [tok.eos_id] * (L - 1 - len(words))])
    reveal = torch.tensor([[0] + list(range(1, L))])
    states = [torch.where(reveal <= s, final, torch.full_like(final, tok.mask_id)) for s in range(L)]
    confidences = [torch.where(reveal >= s, torch.full((1, L), 0.5), torch.full((1, L), float("nan")))
                   for s in range(1, L)]
    tr = Trace(states=states, reveal_step=reveal, confidences=confidences, nfe=L - 1)
    tr._mask_id = tok.mask_id
    return tr


@pytest.fixture(scope="module")
def sampled_trace(model, tok):
    _, tr = generate(model, L, 5, tok.mask_id, prompt=torch.tensor([tok.bos_id]), generator=0)
    return tr


# ----------------------------------------------------------------------------- HTML
def test_step_zero_shows_every_masked_slot_and_the_end_none(tok, story_trace):
    first = viz.trace_step_html(tok, story_trace, 0)
    assert n_masked_boxes(first) == L - 1                 # [BOS] is given, everything else masked
    assert visible_tokens(first) == []                    # [BOS] is special: hidden
    assert "step 0 / 15" in first
    last = viz.trace_step_html(tok, story_trace, story_trace.steps)
    assert n_masked_boxes(last) == 0
    assert "step 15 / 15" in last
    shown = "".join(visible_tokens(last))
    assert "EOS" not in shown and "BOS" not in shown      # padding and specials hidden once revealed
    assert len(visible_tokens(last)) == 7


def test_masked_boxes_count_down_with_the_steps(tok, sampled_trace):
    counts = [n_masked_boxes(viz.trace_step_html(tok, sampled_trace, s)) for s in range(sampled_trace.steps + 1)]
    masked = [int((st[0] == tok.mask_id).sum()) for st in sampled_trace.states]
    assert counts == masked and counts[0] == L - 1 and counts[-1] == 0


def test_early_and_late_reveals_get_different_colours(tok, story_trace):
    html = viz.trace_step_html(tok, story_trace, 7)
    colours = re.findall(r'<span class="mdlm-tok" style="color: (#[0-9a-f]{6})', html)
    assert len(colours) == 7 and colours[0] != colours[-1]
    assert viz.reveal_css(1, 15) == colours[0] and viz.reveal_css(7, 15) == colours[-1]
    assert viz.reveal_css(1, 10) != viz.reveal_css(10, 10)
    assert "font-weight: 700" in html                     # the token revealed at step 7 stands out


def test_html_escapes_and_big_text(tok, story_trace):
    assert "30px" in viz.trace_step_html(tok, story_trace, 3, big=True)
    assert "&lt;script&gt;" in viz.trace_step_html(tok, story_trace, 3, label="<script>")


@pytest.mark.parametrize("bad", [-1, 16, 2.5])
def test_step_out_of_range_is_a_clear_error(tok, story_trace, bad):
    with pytest.raises(ValueError, match="step"):
        viz.trace_step_html(tok, story_trace, bad)


def test_masked_text_html_counts_boxes(tok):
    x0 = torch.tensor(tok.encode(" Tom met a frog on the way home."))
    xt = x0.clone()
    xt[::2] = tok.mask_id
    html = viz.masked_text_html(tok, x0, xt)
    assert n_masked_boxes(html) == int((xt == tok.mask_id).sum())


# ----------------------------------------------------------------------------- figures
def test_confidence_heatmap_holds_the_trace(sampled_trace):
    ax = viz.confidence_heatmap(sampled_trace)
    data = ax.images[0].get_array()
    expected = torch.stack([c[0] for c in sampled_trace.confidences]).numpy()
    assert data.shape == (sampled_trace.steps, L)
    finite = ~torch.isnan(torch.from_numpy(expected))
    assert torch.allclose(torch.from_numpy(data.filled(float("nan")))[finite].float(),
                          torch.from_numpy(expected)[finite].float())
    assert data.mask[~finite.numpy()].all()              # revealed positions are blank
    plt.close(ax.figure)


def test_schedule_curves_plot_alpha_and_weight():
    axes = viz.schedule_curves(["loglinear", "cosine", EsoLMSchedule(alpha0=0.5)])
    assert len(axes) == 2 and len(axes[0].lines) == 3 and len(axes[1].lines) == 3
    t, alpha = axes[0].lines[0].get_data()
    assert torch.allclose(torch.tensor(alpha), 1 - torch.tensor(t))
    t, w = axes[1].lines[1].get_data()
    assert torch.allclose(torch.tensor(w), get_schedule("cosine").weight(torch.tensor(t)))
    _, alpha = axes[0].lines[2].get_data()
    assert alpha.max() <= 0.5 + 1e-9                      # Eso-LM: never more than alpha0 clean
    plt.close(axes[0].figure)


def test_attention_mask_heatmap_and_esolm_panels():
    m = esolm_diffusion_mask(3, 6, "A")
    ax = viz.attention_mask_heatmap(m, title="A", show_bias=True, n_clean=3)
    assert (ax.images[0].get_array() == m.int().numpy()).all()
    assert ax.get_title() == "A"
    plt.close(ax.figure)
    fig = viz.esolm_mask_panels(3, L=6)
    a, b = (ax.images[0].get_array() for ax in fig.axes[:2])
    assert (a == esolm_diffusion_mask(3, 6, "A").int().numpy()).all()
    assert (b == esolm_diffusion_mask(3, 6, "B").int().numpy()).all()
    plt.close(fig)
    with pytest.raises(ValueError, match="mask"):
        viz.attention_mask_heatmap(torch.ones(3, 3))


def test_jshtml_fallback_is_html(tok, story_trace):
    out = viz.trace_animation_jshtml(tok, story_trace, max_frames=6)
    assert isinstance(out, str) and len(out) > 1000 and "<script" in out
    assert not plt.get_fignums()                          # the animation's figure was closed


def test_jshtml_fallback_is_self_contained(tok, story_trace):
    """Offline (a plane, a classroom firewall) the fallback must still play: no stylesheet, font or
    script fetched from any URL, and every control button shows something without an icon font."""
    out = viz.trace_animation_jshtml(tok, story_trace, max_frames=6)
    text = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", out)   # the frames themselves
    assert not re.search(r"(?:https?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}/", text), "a URL is fetched"
    assert "<link" not in text and 'class="fa' not in text
    buttons = re.findall(r"<button[^>]*>(.*?)</button>", text, flags=re.S)
    assert len(buttons) >= 5                              # first, previous, play, pause, next, ...
    for inner in buttons:
        assert re.sub(r"<[^>]*>", "", inner).strip(), f"a button with no visible content: {inner!r}"


# ----------------------------------------------------------------------------- widgets
def test_player_callbacks_at_the_extremes(model, tok):
    box = viz.denoising_player(model, tok, steps=4, seed=0)
    p = box.player
    assert p.slider.max == p.play.max == 4
    assert n_masked_boxes(p.html.value) == L - 1
    p.slider.value = p.slider.max                         # the kernel-side observer redraws
    assert n_masked_boxes(p.html.value) == 0
    p.on_step({"new": 0})
    assert n_masked_boxes(p.html.value) == L - 1
    for strategy in ("random", "ancestral", "adaptive", "low_confidence"):
        p.strategy.value = strategy                       # re-samples, rewinds to 0
        assert p.trace.steps == p.slider.max and p.slider.value == 0
        p.on_step({"new": p.slider.max})
        assert n_masked_boxes(p.html.value) == 0
    for steps in (p.steps.min, p.steps.max):
        p.steps.value = steps
        assert p.trace.steps == steps
        p.show_step(steps)
        assert n_masked_boxes(p.html.value) == 0
    before = p.trace.final.clone()
    seed = p.seed
    p.on_new_sample()
    assert p.seed == seed + 1 and p.slider.value == 0
    assert p.trace.final.shape == before.shape


def test_player_kernel_link_moves_the_slider(model, tok):
    p = viz.DenoisingPlayer(model, tok, steps=3, seed=1, kernel_link=True)
    p.play.value = 3
    assert p.slider.value == 3 and n_masked_boxes(p.html.value) == 0


def test_player_rejects_bad_settings(model, tok):
    with pytest.raises(ValueError, match="steps"):
        viz.denoising_player(model, tok, steps=L)
    with pytest.raises(ValueError, match="strategy"):
        viz.denoising_player(model, tok, steps=4, strategy="greedy")


def test_forward_slider_masks_are_nested(tok):
    box = viz.forward_slider(tok, "Tom met a frog on the way home. Tom was happy.")
    f = box.player
    n = int(f.x0.numel())
    seen = []
    for t in (0.0, 0.3, 0.7, 1.0):
        f.t.value = t
        xt, _ = f.masked()
        seen.append(xt == tok.mask_id)
        assert n_masked_boxes(f.html.value) == int(seen[-1].sum())
    assert int(seen[0].sum()) == 0 and int(seen[-1].sum()) == n
    for a, b in zip(seen, seen[1:]):
        assert not (a & ~b).any()                         # a masked token stays masked as t grows
    for name in f.schedule.options:
        f.schedule.value = name
        f.t.value = 1.0
        f.update()
    f.on_new_noise()
    assert f.seed == 1


def test_mask_explorer_at_the_extremes():
    box = viz.mask_explorer(L=6)
    e = box.player
    images = set()
    for variant in ("A", "B"):
        e.variant.value = variant
        for view in ("sorted", "original order"):
            e.view.value = view
            for n in (e.n_clean.min, e.n_clean.max, 3):
                e.n_clean.value = n
                m, labels, idx = e.mask()
                assert m.shape == (6, 6) and len(labels) == 6
                assert m.diagonal().all()                 # every token sees itself
                images.add(bytes(e.image.value))
    assert all(img[:4] == b"\x89PNG" for img in images) and len(images) > 4
    e.view.value, e.variant.value, e.n_clean.value = "sorted", "A", 6
    m, _, _ = e.mask()
    assert m.all()                                        # A with every token clean: bidirectional


def test_training_figures_hold_the_data():
    """training_curves and valid_vs_seconds draw exactly the points they are given (lesson 06)."""
    logs = {"AR": dict(tokens=[1, 2], seconds=[0.5, 1.0], val=[2.0, 1.0]),
            "MDM": dict(tokens=[1, 2, 3], seconds=[0.4, 0.9, 1.5], val=[3.0, 2.5, 2.0])}
    axes = viz.training_curves(logs, floor=0.5)
    lines = {ln.get_label(): ln for ln in axes[1].get_lines()}
    assert list(lines["MDM"].get_xdata()) == [0.4, 0.9, 1.5] and list(lines["AR"].get_ydata()) == [2.0, 1.0]
    assert list(lines["entropy floor"].get_ydata()) == [0.5, 0.5]
    result = {"n": 8, "floor": 0.48, "threads": 1, "arms": [
        {"name": "ar", "points": [{"seconds": 10.0, "valid": 0.25, "val_loss": 0.9}, {"seconds": 20.0, "valid": 0.5, "val_loss": 0.7}]}]}
    axes = viz.valid_vs_seconds(result)
    assert list(axes[0].get_lines()[0].get_ydata()) == [25.0, 50.0]
    assert list(axes[1].get_lines()[0].get_xdata()) == [10.0, 20.0]
    plt.close("all")


def test_widgets_import_first_and_viz_reexports_them():
    """`import minidlm.widgets` in a fresh interpreter (before minidlm.viz) must not hit the circular import;
    minidlm.viz still hands out the same player objects."""
    import subprocess
    import sys
    code = ("import minidlm.widgets as w; import minidlm.viz as v; "
            "assert v.denoising_player is w.denoising_player and v.STRATEGIES is w.STRATEGIES; "
            "from minidlm.viz import mask_explorer; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    import minidlm.viz as v
    with pytest.raises(AttributeError, match="no_such_widget"):
        v.no_such_widget
