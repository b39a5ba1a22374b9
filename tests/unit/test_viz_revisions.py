"""Lesson 15's pictures of samplers that revise (viz_revisions.py) and their dispatch from the
renderers of the masked samplers (viz, animation, viz_text_frames, widgets)."""
import html
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minidlm import viz  # noqa: E402
from minidlm.data import load_tales_tokenizer  # noqa: E402
from minidlm.model import Model, ModelConfig  # noqa: E402
from minidlm.remask import remdm_generate  # noqa: E402
from minidlm.sampling import Trace, ancestral  # noqa: E402
from minidlm.uniform import uniform_generate  # noqa: E402
from minidlm.viz_revisions import (corruption_rows_figure, count_revisions, revision_events,  # noqa: E402
                                   revision_map_figure)
from minidlm.viz_text_frames import trace_frames_figure  # noqa: E402

L = 16
GOLDEN = Path(__file__).parent / "golden" / "trace_step_html_story.json"
TOK = r'<span class="mdlm-tok[^"]*"[^>]*>([^<]*)</span>'


def words(html_: str) -> list[str]:
    return re.findall(TOK, html_)


def revised(html_: str) -> list[tuple[str, str]]:
    """(title, word) of every token marked as revised at this step."""
    return re.findall(r'<span class="mdlm-tok mdlm-revised"[^>]*title="([^"]*)">([^<]*)</span>', html_)


def header(html_: str) -> str:
    return re.search(r'<div class="mdlm-header"[^>]*>(.*?)</div>', html_).group(1)


def count(html_: str, what: str) -> int:
    return int(re.search(rf"(\d+) {what}", header(html_)).group(1))


@pytest.fixture(scope="module")
def tok():
    return load_tales_tokenizer("bpe")


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=L, n_layer=1, n_head=2, d_model=32, mask_id=tok.mask_id)
    return Model(cfg).eval()


@pytest.fixture(scope="module")
def hand(tok):
    """A hand-built ReMDM-like trace over [BOS] + 6 slots, 3 steps:
    step 1: Tom, met, cat and an [EOS] appear;
    step 2: Tom -> frog (a revision), met and cat -> [MASK], big appears;
    step 3: met comes back (no revision), big -> a (a revision), frog appears, cat's slot -> and (a revision)."""
    Tom, met, a, big, frog, and_ = tok.encode(" Tom met a big frog and")
    cat = tok.encode(" cat")[0]
    B, E, M = tok.bos_id, tok.eos_id, tok.mask_id
    states = [[B, M, M, M, M, M, M],
              [B, Tom, met, M, M, cat, E],
              [B, frog, M, big, M, M, E],
              [B, frog, met, a, frog, and_, E]]
    tr = Trace(states=[torch.tensor([s]) for s in states], nfe=3, revises=True)
    tr._mask_id = M
    tr.reveal_step = tr.last_change(3)
    return tr


# ----------------------------------------------------------------------------- the HTML card
def test_revising_card_shows_each_states_words_and_marks_the_revisions(tok, hand):
    steps = [viz.trace_step_html(tok, hand, k) for k in range(4)]      # dispatched to revision_step_html
    assert words(steps[0]) == [] and steps[0].count('class="mdlm-mask') == 6
    assert words(steps[1]) == ["Tom", "met", "cat"] and revised(steps[1]) == []      # [EOS] hidden
    assert words(steps[2]) == ["frog", "big"]
    assert revised(steps[2]) == [("was: Tom", "frog")]
    assert words(steps[3]) == ["frog", "met", "a", "frog", "and"]
    assert sorted(revised(steps[3])) == [("was: big", "a"), ("was: cat", "and")]  # met came back: not a revision
    assert [count(s, "changed") for s in steps] == [0, 4, 4, 4]
    assert [count(s, "revised") for s in steps] == [0, 0, 1, 2]
    assert [count(s, "remasked") for s in steps] == [0, 0, 2, 0]
    assert [count(s, "masked") for s in steps] == [6, 2, 3, 0]
    assert steps[2].count("mdlm-remasked") == 2                        # met and cat went back to [MASK]
    assert all("mdlm-step" in s and "mdlm-card" in s for s in steps)
    # underlined = changed at this step; frog (revised at step 2) keeps its title at step 3
    bold = re.findall(r'<span class="mdlm-tok[^"]*" style="[^"]*font-weight: 700[^"]*"[^>]*>([^<]*)<', steps[3])
    assert bold == ["met", "a", "frog", "and"]
    assert 'title="revised at step 2, was: Tom">frog<' in steps[3]


def test_colour_is_the_step_of_the_last_change(tok, hand):
    card = viz.trace_step_html(tok, hand, 3)
    colours = re.findall(r'<span class="mdlm-tok[^"]*" style="color: (#[0-9a-f]{6})', card)
    want = [viz.reveal_css(s, 3) for s in (2, 3, 3, 3, 3)]             # frog (step 2), then step 3's four
    assert colours == want


def test_a_monotone_trace_renders_the_same_either_way(tok):
    """A masked trace flagged as revising draws the same words, colours, bold tokens and masks as
    the masked renderer: the revision card generalizes the old one."""
    words_ = tok.encode(" Tom met a frog. The end")[:7]
    final = torch.tensor([[tok.bos_id, *words_] + [tok.eos_id] * (L - 1 - len(words_))])
    reveal = torch.tensor([[0] + list(range(1, L))])
    states = [torch.where(reveal <= s, final, torch.full_like(final, tok.mask_id)) for s in range(L)]
    plain = Trace(states=states, reveal_step=reveal, nfe=L - 1)
    plain._mask_id = tok.mask_id
    flagged = Trace(states=states, reveal_step=reveal, nfe=L - 1, revises=True)
    flagged._mask_id = tok.mask_id
    style = r'<span class="mdlm-(?:tok|mask)[^"]*" style="([^"]*)"[^>]*>([^<]*)</span>'
    for k in range(L):
        a, b = viz.trace_step_html(tok, plain, k), viz.trace_step_html(tok, flagged, k)
        assert re.findall(style, a) == re.findall(style, b)
        assert count(a, "masked") == count(b, "masked")
        assert "mdlm-revised" not in b


def test_a_non_revising_trace_renders_exactly_as_before(tok):
    """The dispatch added for lesson 15 leaves the masked renderers byte for byte as they were
    (the golden file was written by the code before the change)."""
    gold = json.loads(GOLDEN.read_text())
    words_ = tok.encode(" Tom met a frog.")[:7]
    words_ += tok.encode(" The end")[: 7 - len(words_)]
    final = torch.tensor([[tok.bos_id, *words_] + [tok.eos_id] * (L - 1 - len(words_))])
    reveal = torch.tensor([[0] + list(range(1, L))])
    states = [torch.where(reveal <= s, final, torch.full_like(final, tok.mask_id)) for s in range(L)]
    tr = Trace(states=states, reveal_step=reveal, nfe=L - 1)
    tr._mask_id = tok.mask_id
    for step, want in gold["html"].items():
        assert viz.trace_step_html(tok, tr, int(step)) == want
    assert viz.trace_step_html(tok, tr, 5, big=True, label="a <b> label") == gold["html_big_label"]
    assert viz.trace_frames_ansi(tok, tr) == gold["ansi"]


def test_revising_ansi_frames_show_each_state(tok, hand):
    frames = viz.trace_frames_ansi(tok, hand, colour=False)
    assert len(frames) == 4
    assert frames[2] == " frog ▒▒▒ big ▒▒▒▒ ▒▒▒"          # masks as wide as the final word there
    assert frames[3] == " frog met a frog and"


def test_still_frames_and_animation_take_a_revising_trace(tok, hand):
    fig = trace_frames_figure(tok, hand, steps=[0, 2, 3])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "step 2 / 3:  4 changed, 1 revised, 2 remasked, 3 masked" in texts
    dashed = [p for p in fig.axes[0].patches if p.get_linestyle() == "--"]
    assert len(dashed) == 1 + 2                                        # the revisions at steps 2 and 3
    assert texts.count("frog") == 3 and "Tom" not in texts             # Tom was only at step 1
    plt.close(fig)
    out = viz.trace_animation_jshtml(tok, hand, max_frames=4)
    assert "<script" in out and not plt.get_fignums()


# ----------------------------------------------------------------------------- events
def test_events_of_the_samplers(model, tok):
    bos = torch.tensor([tok.bos_id])
    _, tu = uniform_generate(model, L, 6, tok.mask_id, prompt=bos, generator=0)
    ev = revision_events(tu)
    assert torch.equal(ev.revised, ev.changed)                         # no [MASK]: every change is a revision
    assert count_revisions(tu)["revised"] == int(ev.changed.sum()) and count_revisions(tu)["remasked"] == 0
    _, tr = remdm_generate(model, L, 40, tok.mask_id, eta_cap=0.3, prompt=bos, generator=0)
    ev = revision_events(tr)
    assert int(ev.remasked.sum()) > 0
    for k, pos in ev.revised.nonzero().tolist():                       # a revision needs an earlier remask
        assert bool(ev.remasked[:k, pos].any())
        assert int(ev.was[k, pos]) != int(ev.states[k, pos])
    _, ta = ancestral(model, L, 5, tok.mask_id, prompt=bos, generator=0)
    assert count_revisions(ta) == {"revised": 0, "remasked": 0}


# ----------------------------------------------------------------------------- the player
def test_player_default_menu_and_remdm_at_the_extremes(model, tok):
    p = viz.DenoisingPlayer(model, tok, steps=4, seed=0, strategy="remdm")
    menu = [v for _, v in p.strategy.options]
    assert menu == list(viz.DEFAULT_STRATEGIES) and "remdm" in menu and "uniform" not in menu
    assert p.trace.revises and p.slider.max == 4
    assert p.html.value.count('class="mdlm-mask') == L - 1
    p.slider.value = p.slider.max
    assert p.html.value.count('class="mdlm-mask') == 0                  # ReMDM's last step decodes every slot
    p.on_step({"new": 0})
    assert p.html.value.count('class="mdlm-mask') == L - 1
    n = count_revisions(p.trace, tok.mask_id)
    assert f"{n['revised']} revision" in p.info.value and f"{n['remasked']} remasked" in p.info.value
    for steps in (p.steps.min, p.steps.max):
        p.steps.value = steps
        p.show_step(steps)
        assert p.trace.steps == steps and p.html.value.count('class="mdlm-mask') == 0
    p.strategy.value = "ancestral"                                     # back to a masked sampler
    assert not p.trace.revises and "revision" not in p.info.value


def test_uniform_player_at_the_extremes(model, tok):
    box = viz.denoising_player(model, tok, steps=3, seed=0, strategy="uniform", strategies=("uniform",))
    p = box.player
    assert [v for _, v in p.strategy.options] == ["uniform"]
    for step in (0, p.slider.max):
        p.slider.value = step
        assert f"step {step} / 3" in p.html.value
        assert "mdlm-mask" not in p.html.value                          # uniform noise: no [MASK] ever
        shown = html.unescape("".join(words(p.html.value)))
        state = p.trace.states[step][0].tolist()                        # the state itself, specials skipped
        want = "".join(w for w, i in zip(viz.token_pieces(tok, state), state) if i not in tok.special_ids)
        assert shown.replace(" ", "") == want.replace(" ", "")
    n = count_revisions(p.trace)["revised"]
    assert f"{n} revision" in p.info.value
    p.on_new_sample()
    assert p.slider.value == 0 and p.trace.revises


def test_player_menu_is_checked(model, tok):
    with pytest.raises(ValueError, match="strategies"):
        viz.denoising_player(model, tok, steps=3, strategies=("uniform", "greedy"))
    with pytest.raises(ValueError, match="strategy"):
        viz.denoising_player(model, tok, steps=3, strategy="uniform")     # not in the default menu


# ----------------------------------------------------------------------------- lesson 15's figures
def test_corruption_rows_figure_marks_masks_and_replacements(tok):
    from minidlm.forward import mask_tokens
    from minidlm.uniform import corrupt_uniform

    ids = tok.encode(" Tom met a big frog and a cat. The end")
    x0 = torch.tensor([[tok.bos_id, *ids]])
    rows_m = [mask_tokens(x0, a, tok.mask_id, generator=1)[0] for a in (0.8, 0.3)]
    rows_u = [corrupt_uniform(x0, a, tok.vocab_size, generator=1, mask_id=tok.mask_id)[0] for a in (0.8, 0.3)]
    fig = corruption_rows_figure(tok, x0, rows_m, rows_u, ["alpha 0.8", "alpha 0.3"])
    assert len(fig.axes) == 4
    for i in range(2):
        axm, axu = fig.axes[2 * i], fig.axes[2 * i + 1]
        assert len(axm.patches) == int((rows_m[i][1:] == tok.mask_id).sum())          # [BOS] left out
        red = [t for t in axu.texts if matplotlib.colors.to_hex(t.get_color()) == "#d1242f"]
        assert len(red) == int((rows_u[i][1:] != x0[0, 1:]).sum())
        assert len(axu.texts) == len(ids)
    plt.close(fig)
    with pytest.raises(ValueError, match="rows_uniform"):
        corruption_rows_figure(tok, x0, rows_m, rows_u[:1])


def test_revision_map_figure_for_both_samplers(model, tok, hand):
    fig = revision_map_figure(hand)
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (7, 3)                                         # positions x steps
    assert int((img == 3).sum()) == 3 and int((img == 4).sum()) == 2   # revised, remasked cells
    assert [b.get_height() for b in fig.axes[1].patches][:3] == [0, 1, 2]   # revisions per step
    plt.close(fig)
    bos = torch.tensor([tok.bos_id])
    for tr in (uniform_generate(model, L, 5, tok.mask_id, prompt=bos, generator=0)[1],
               remdm_generate(model, L, 20, tok.mask_id, eta_cap=0.2, prompt=bos, generator=0)[1]):
        fig = revision_map_figure(tr)
        img = fig.axes[0].images[0].get_array()
        assert img.shape == (L, tr.steps)
        assert int((img == 3).sum()) == count_revisions(tr)["revised"]
        plt.close(fig)
