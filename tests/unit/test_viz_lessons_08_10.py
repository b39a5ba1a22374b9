"""The figure modules of lessons 08 and 10 (viz_threshold, viz_esolm_spectrum): each draws the run
or schedule it describes, the static copies of the widgets show the widgets' starting settings, and
bad inputs raise a ValueError that names the argument."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minidlm import viz_esolm_spectrum, viz_threshold  # noqa: E402
from minidlm.checkpoint import load_model  # noqa: E402
from minidlm.data import DATA_DIR  # noqa: E402
from minidlm.esolm import esolm_schedule  # noqa: E402
from minidlm.sampling import generate_adaptive  # noqa: E402
from minidlm.tokenizer import load_tokenizer  # noqa: E402

CKPT = DATA_DIR / "checkpoints" / "tales-mdm-nano"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def shipped():
    model, _ = load_model(CKPT)
    return model, load_tokenizer(CKPT / "tokenizer.json")


# ------------------------------------------------------------------------------ lesson 08
@pytest.mark.parametrize("threshold", [0.0, 0.9])
def test_threshold_figure_draws_the_run_it_describes(shipped, threshold):
    model, tok = shipped
    bos = torch.tensor([tok.bos_id])
    fig, story = viz_threshold.threshold_figure(model, tok, threshold, seed=3, prompt=bos)
    x, trace = generate_adaptive(model, model.config.max_len, tok.mask_id, threshold=threshold, prompt=bos,
                                 temperature=1.0, generator=3)
    bars, strip = fig.axes
    heights = [int(p.get_height()) for p in bars.patches]
    assert len(heights) == trace.nfe and sum(heights) == model.config.max_len - 1
    assert f"{trace.nfe} network calls" in bars.get_title()
    [im] = strip.get_images()
    assert (torch.as_tensor(im.get_array()) == trace.reveal_step[0, 1:].float()).all()
    assert isinstance(story, str) and story
    if threshold == 0.0:
        assert heights == [model.config.max_len - 1]           # one call commits every slot


def test_threshold_figure_refuses_bad_inputs(shipped):
    model, tok = shipped
    with pytest.raises(ValueError, match="model"):
        viz_threshold.threshold_figure(lambda x: x, tok)
    with pytest.raises(ValueError, match="tok"):
        viz_threshold.threshold_figure(model, object())
    with pytest.raises(ValueError, match="threshold"):
        viz_threshold.threshold_figure(model, tok, threshold=1.5)


# ------------------------------------------------------------------------------ lesson 10
@pytest.mark.parametrize("alpha0", [0.0, 0.25, 1.0])
def test_alpha0_figure_draws_the_schedule_it_returns(alpha0):
    fig, n_diff, sizes = viz_esolm_spectrum.alpha0_figure(alpha0, n=63, generator=0)
    assert (n_diff, sizes) == esolm_schedule(63, alpha0, generator=0)
    a1, a2, a3 = fig.axes
    assert [int(p.get_height()) for p in a3.patches] == sizes
    colours = [p.get_facecolor() for p in a3.patches]
    n_steps_diff = len(sizes) - (63 - n_diff)
    assert len({c for c in colours[:n_steps_diff]}) <= 1 and len({c for c in colours[n_steps_diff:]}) <= 1
    assert len(a2.get_lines()) == (0 if alpha0 == 0 else 1)       # no weight to draw at alpha0 = 0
    assert a1.get_lines()[0].get_ydata().max() == pytest.approx(alpha0, abs=1e-2)


def test_alpha0_figure_refuses_bad_inputs():
    with pytest.raises(ValueError, match="alpha0"):
        viz_esolm_spectrum.alpha0_figure(1.5)
    with pytest.raises(ValueError, match="n"):
        viz_esolm_spectrum.alpha0_figure(0.5, n=0)
