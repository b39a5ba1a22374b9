"""The still figures of lessons 00-04 (viz_text_frames, viz_tokens, viz_forward, viz_information,
viz_factorized): each draws what it is given, and the numbers it puts in titles are the lesson's.
Tiny inputs and a hand-made trace keep these fast; nothing here loads a checkpoint."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minidlm import viz_factorized, viz_forward, viz_information, viz_text_frames, viz_tokens  # noqa: E402
from minidlm.data import load_tales_tokenizer  # noqa: E402
from minidlm.forward import mask_tokens  # noqa: E402
from minidlm.sampling import Trace  # noqa: E402
from minidlm.schedules import get_schedule  # noqa: E402

L = 16


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def tok():
    return load_tales_tokenizer("bpe")


@pytest.fixture(scope="module")
def story_trace(tok):
    """[BOS] + 7 story tokens + [EOS] padding, revealed one slot per step: the story left to right
    (steps 1-7), then the padding (steps 8-15)."""
    words = tok.encode(" Tom met a frog.")[:7]
    words += tok.encode(" The end")[: 7 - len(words)]
    final = torch.tensor([[tok.bos_id, *words] + [tok.eos_id] * (L - 1 - len(words))])
    reveal = torch.tensor([[0] + list(range(1, L))])
    states = [torch.where(reveal <= s, final, torch.full_like(final, tok.mask_id)) for s in range(L)]
    return Trace(states=states, reveal_step=reveal, confidences=[], nfe=L - 1)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _boxes(fig):
    return sum(len(ax.patches) for ax in fig.axes)


# ----------------------------------------------------------------------------- viz_text_frames
def test_default_frames_keep_start_first_step_and_end():
    assert viz_text_frames.default_frames(32) == [0, 1, 8, 16, 24, 32]
    assert viz_text_frames.default_frames(2) == [0, 1, 2]
    assert viz_text_frames.default_frames(1) == [0, 1]


def test_trace_frames_draw_boxes_for_masks_and_words_for_reveals(tok, story_trace):
    fig = viz_text_frames.trace_frames_figure(tok, story_trace, steps=[0, 3, 15], title="demo")
    texts = _texts(fig)
    assert texts[0] == "demo"
    headers = [t for t in texts if t.startswith("step ")]
    assert headers[0].startswith("step 0 / 15:  15 masked, 0 revealed")
    assert headers[1].startswith("step 3 / 15:  12 masked, 1 revealed")
    assert "[EOS] padding, hidden" in headers[2]
    # boxes: 15 masked slots at step 0, 12 at step 3, none at the end; [BOS] is never drawn
    assert _boxes(fig) == 15 + 12 + 0
    story = tok.token_strings(story_trace.final[0, 1:8].tolist())
    words = [p.strip() for p in story]
    drawn = [t for t in texts if not t.startswith(("step ", "colour", "demo"))]
    assert drawn[:3] == words[:3]                       # step 3: the first three story tokens
    assert "[EOS]" not in drawn                         # padding is hidden once revealed


def test_trace_frames_reject_steps_out_of_range(tok, story_trace):
    with pytest.raises(ValueError, match="steps"):
        viz_text_frames.trace_frames_figure(tok, story_trace, steps=[0, 16])


def test_masked_rows_figure_boxes_equal_masks(tok):
    x0 = torch.tensor([tok.encode("Once upon a time, a clever boy called Oscar lived on a farm.")])
    rows = [mask_tokens(x0, 1 - t, tok.mask_id, generator=0) for t in (0.25, 0.5, 1.0)]
    fig = viz_text_frames.masked_rows_figure(tok, x0, rows)
    n_masked = [int((r == tok.mask_id).sum()) for r in rows]
    assert _boxes(fig) == sum(n_masked)
    assert _texts(fig)[0] == f"{n_masked[0]} of {x0.shape[1]} tokens masked"
    with pytest.raises(ValueError, match="labels"):
        viz_text_frames.masked_rows_figure(tok, x0, rows, labels=["one"])


def test_layout_wraps_at_the_width_and_keeps_punctuation_on_its_line():
    pieces = ["One", " two", " three", "."]
    slots, n_lines = viz_text_frames._layout(pieces, [True] * 4, width_chars=12)
    assert n_lines == 2 and [s[2] for s in slots] == [0, 0, 1, 1]
    assert slots[2][1] == 0                              # a wrapped line starts without its space
    slots, n_lines = viz_text_frames._layout(pieces, [True] * 4, width_chars=13)
    assert n_lines == 1                                  # "One two three" fills it; "." may overhang


# ----------------------------------------------------------------------------- viz_tokens
def test_story_map_colours_stories_and_blanks_padding():
    bos, eos = 1, 2
    rows = torch.tensor([[bos, 7, 8, eos, eos, eos], [bos, 9, eos, bos, 5, eos]])
    padded = viz_tokens.story_map(rows, bos, eos, padded=True)
    assert torch.isnan(padded[0, 4:]).all() and not torch.isnan(padded[0, :4]).any()
    packed = viz_tokens.story_map(rows, bos, eos, padded=False)
    assert not torch.isnan(packed).any()
    assert packed[1, 2] != packed[1, 3]                  # a new story starts at the second [BOS]


def test_vocab_length_and_packing_figures():
    ax = viz_tokens.vocab_length_figure([53, 400, 919], [[200, 240], [100, 120], [50, 58]],
                                        ["characters", "BPE 400", "BPE 919"])
    x, y = ax[0].lines[0].get_data()
    assert list(x) == [53, 400, 919] and list(y) == [220, 110, 54]
    rows = torch.tensor([[1, 7, 2, 2], [1, 8, 9, 2]])
    axes = viz_tokens.packing_figure(rows, rows, 1, 2, n_rows=2)
    assert axes[0].images[0].get_array().shape == (2, 4)
    with pytest.raises(ValueError):
        viz_tokens.vocab_length_figure([53], [[1]], ["characters"])


# ----------------------------------------------------------------------------- viz_forward
def test_mask_count_figure_overlays_the_binomial():
    ax = viz_forward.mask_count_figure(torch.tensor([3, 4, 4, 5]), L=10, p_mask=0.4)
    k, pmf = ax.lines[0].get_data()
    assert len(k) == 11 and abs(sum(pmf) - 1) < 1e-6
    assert abs(pmf[4] - math.comb(10, 4) * 0.4**4 * 0.6**6) < 1e-6


def test_schedule_times_and_reveal_figures():
    t = torch.linspace(0.05, 1.0, 5, dtype=torch.float64)
    ref = get_schedule("cosine")
    axes = viz_forward.schedule_vs_reference(t, ref.alpha(t), ref.weight(t), ref)
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 2
    axes = viz_forward.times_figure([torch.rand(4)] * 3, [torch.rand(4)] * 3)
    assert len(axes[0].lines) == 3 and len(axes[1].lines) == 3
    ax = viz_forward.reveal_step_bars(torch.full((8,), 1 / 8))
    assert len(ax.patches) == 8 and ax.lines[0].get_ydata()[0] == pytest.approx(1 / 8)


# ----------------------------------------------------------------------------- viz_information
def test_surprise_bars_need_one_label_per_bar():
    ax = viz_information.surprise_bars(torch.tensor([1.0, 2.0]), ["a", "b"])
    assert len(ax.patches) == 2
    with pytest.raises(ValueError, match="labels"):
        viz_information.surprise_bars(torch.tensor([1.0, 2.0]), ["a"])


def test_entropy_terms_title_gives_the_worked_example():
    axes = viz_information.entropy_terms_figure([0.7, 0.2, 0.1], [0.6, 0.3, 0.1], ["rug", "floor", "sofa"])
    assert axes[1].get_title() == "H(P) = 1.157, H(P,Q) = 1.195, KL = 0.039"


@pytest.mark.parametrize("q", [0.02, 0.6, 0.7, 0.88])
def test_cross_entropy_slider_figure_at_its_extremes(q):
    ax = viz_information.cross_entropy_vs_q(torch.tensor([0.7, 0.2, 0.1]), q)
    gap = ax.collections[0].get_segments()[0]            # the KL: a vertical segment from H(P) to H(P,Q)
    (_, h), (_, ce) = gap
    assert h == pytest.approx(1.157, abs=1e-3) and ce >= h - 1e-6
    if q == 0.7:
        assert ce == pytest.approx(h, abs=1e-6)          # Q = P: the KL vanishes


def test_bce_mistake_and_focal_figures():
    axes = viz_information.bce_figure()
    assert len(axes[0].lines) == 2
    ax = viz_information.confident_mistake_figure()
    assert "~44 times" in ax.get_title()
    ax = viz_information.focal_loss_figure(gammas=(0, 2))
    assert len(ax.lines) == 2


# ----------------------------------------------------------------------------- viz_factorized
def test_incoherent_share_and_nelbo_known_answers():
    assert float(viz_factorized.incoherent_share(1.0, 1)) == pytest.approx(0.5)
    assert float(viz_factorized.incoherent_share(1.0, 4)) == pytest.approx(1 / 8)
    assert float(viz_factorized.incoherent_share(0.5, 3)) == pytest.approx(0.5)   # independent words
    assert float(viz_factorized.nelbo_bits(1.0, 1)) == pytest.approx(2.0)
    assert float(viz_factorized.nelbo_bits(1.0, 2)) == pytest.approx(1.5)
    assert float(viz_factorized.nelbo_bits(0.5, 1)) == pytest.approx(2.0)         # I = 0: exact at once


@pytest.mark.parametrize("c", [0.5, 0.75, 1.0])
def test_factorization_cost_figure_at_the_slider_extremes(c):
    axes = viz_factorized.factorization_cost_figure(c, sampled_T=[1, 2], sampled=[0.5, 0.25])
    assert len(axes[0].lines) == 3                       # curve, data line, sampled points
    with pytest.raises(ValueError, match="c"):
        viz_factorized.factorization_cost_figure(0.2)


def test_reveal_order_strips_one_per_run():
    axes = viz_factorized.reveal_order_strips([torch.arange(8), torch.zeros(8)], ["T = 8", "T = 1"], title="t")
    assert len(axes) == 2 and axes[0].images[0].get_array().shape == (1, 8)
    with pytest.raises(ValueError):
        viz_factorized.reveal_order_strips([torch.arange(8)], ["a", "b"])
