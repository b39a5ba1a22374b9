"""Widgets over the renderers of ``viz`` (lessons 00, 02, 07 and 09): the denoising player, the
t slider and the Eso-LM mask explorer.

Each widget is a thin shell: a plain class whose callbacks are ordinary methods (so the tests can
call them at the slider's extremes) over the pure renderers in ``viz``. ipywidgets is imported only
when a widget is built. ``viz`` re-exports everything here, so ``from minidlm.viz import
denoising_player`` keeps working.
"""
from __future__ import annotations

import random as _random
import sys

import torch

from .viz import _plt, attention_mask_heatmap, figure_png, masked_text_html, trace_step_html

def _in_colab() -> bool:
    return "google.colab" in sys.modules


STRATEGIES = {
    "low_confidence": "low confidence first (LLaDA)",
    "random": "random order (LLaDA)",
    "ancestral": "ancestral (MDLM)",
    "adaptive": "adaptive: confidence >= 0.9",
    "remdm": "remasking (ReMDM cap)",
    "uniform": "uniform-state (UDLM)",
}
# the player's menu unless ``strategies=`` says otherwise: the samplers of a masked model
# ("uniform" needs a uniform-state model: lesson 15 passes strategies=("uniform",))
DEFAULT_STRATEGIES = ("low_confidence", "random", "ancestral", "adaptive", "remdm")


def sample_trace(model, tok, strategy: str, steps: int, seed: int, length: int | None = None,
                 prompt=None, temperature: float = 1.0, threshold: float = 0.9, length_first: bool = True,
                 eta_cap: float = 0.02):
    """Draw one story with the chosen sampler and return its Trace (what the player shows).
    length_first: the low-confidence, random and adaptive samplers spend their first call on where
    the story ends (``length.py``; needs T >= 2 for the fixed-count ones). "remdm" is ReMDM's
    "cap" schedule with ``eta_cap`` on a masked model; "uniform" is ``uniform_generate`` on a
    uniform-state model (lesson 15); both return a trace with ``revises`` True."""
    from .remask import remdm_generate
    from .sampling import ancestral, generate, generate_adaptive
    from .uniform import uniform_generate

    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    L = length or model.config.max_len
    prompt = torch.tensor([tok.bos_id]) if prompt is None else torch.as_tensor(prompt)
    common = dict(prompt=prompt, temperature=temperature, generator=int(seed))
    eos = tok.eos_id if length_first else None
    if strategy == "ancestral":
        _, tr = ancestral(model, L, steps, tok.mask_id, **common)
    elif strategy == "remdm":
        _, tr = remdm_generate(model, L, steps, tok.mask_id, strategy="cap", eta_cap=eta_cap, **common)
    elif strategy == "uniform":
        _, tr = uniform_generate(model, L, steps, tok.mask_id, **common)
    elif strategy == "adaptive":
        _, tr = generate_adaptive(model, L, tok.mask_id, threshold=threshold, eos_id=eos, **common)
    else:
        _, tr = generate(model, L, steps, tok.mask_id, remasking=strategy,
                         eos_id=eos if steps >= 2 else None, **common)
    return tr


def _widgets():
    import ipywidgets
    return ipywidgets


class DenoisingPlayer:
    """The denoising player (lessons 00 and 07): Play + step slider over a sampled story, a
    strategy menu, a steps slider and a "New sample" button. ``.box`` is the widget to display;
    ``denoising_player`` returns it (with the player at ``box.player``). ``strategies``: the menu
    (names of ``STRATEGIES``; default ``DEFAULT_STRATEGIES``); for a sampler that revises (lesson
    15) the info line counts the revisions.

    The step is kept in two widgets linked in the browser (``jslink``), so Play runs smoothly
    without the kernel; the kernel observes both and redraws the HTML. In Colab, where a
    ``jslink`` from Play does not move the slider, a kernel-side ``link`` is added as well."""

    def __init__(self, model, tok, steps: int = 32, strategy: str = "low_confidence", seed: int | None = None,
                 big: bool = False, length: int | None = None, prompt=None, temperature: float = 1.0,
                 threshold: float = 0.9, interval: int | None = None, kernel_link: bool | None = None,
                 strategies=DEFAULT_STRATEGIES, eta_cap: float = 0.02):
        W = _widgets()
        strategies = (strategies,) if isinstance(strategies, str) else tuple(strategies)
        if not strategies or any(s not in STRATEGIES for s in strategies):
            raise ValueError(f"strategies: expected names from {', '.join(STRATEGIES)}, got {strategies!r}")
        self.model, self.tok, self.big = model, tok, big
        self.length = length or model.config.max_len
        self.prompt = torch.tensor([tok.bos_id]) if prompt is None else torch.as_tensor(prompt).reshape(-1)
        self.gen_len = self.length - self.prompt.numel()
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.gen_len:
            raise ValueError(f"steps: expected an int in [1, {self.gen_len}], got {steps!r}")
        if strategy not in strategies:
            raise ValueError(f"strategy: expected one of {', '.join(strategies)} (the menu), got {strategy!r}")
        self.temperature, self.threshold, self.eta_cap = temperature, threshold, eta_cap
        self.seed = _random.randrange(2**31) if seed is None else int(seed)
        self.trace = None
        self._version = 0              # bumped by every resample
        self._shown = None
        wide = W.Layout(width="34em" if big else "26em")
        self.play = W.Play(value=0, min=0, max=1, step=1, interval=interval or (450 if big else 300),
                           description="Play", tooltip="play the denoising steps")
        self.slider = W.IntSlider(value=0, min=0, max=1, description="step", layout=wide)
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.kernel_link = _in_colab() if kernel_link is None else bool(kernel_link)
        if self.kernel_link:
            self._link = W.link((self.play, "value"), (self.slider, "value"))
        self.play.observe(self.on_step, names="value")
        self.slider.observe(self.on_step, names="value")
        self.strategy = W.Dropdown(options=[(STRATEGIES[k], k) for k in strategies], value=strategy,
                                   description="order")
        self.strategy.observe(self.on_strategy, names="value")
        self.steps = W.IntSlider(value=steps, min=1, max=self.gen_len, description="steps T",
                                 continuous_update=False)
        self.steps.observe(self.on_steps, names="value")
        self.new = W.Button(description="New sample", icon="refresh", button_style="primary")
        self.new.on_click(self.on_new_sample)
        self.html = W.HTML()
        self.info = W.HTML()
        controls = W.HBox([self.play, self.slider, self.new])
        options = W.HBox([self.strategy, self.steps])
        self.box = W.VBox([controls, options, self.html, self.info])
        self.box.player = self
        self.resample()

    # callbacks: plain methods so tests (and curious learners) can call them directly
    def show_step(self, step: int) -> None:
        step = max(0, min(int(step), self.trace.steps))
        if self._shown == (self._version, step):
            return
        self._shown = (self._version, step)
        self.html.value = trace_step_html(self.tok, self.trace, step, big=self.big)

    def on_step(self, change) -> None:
        self.show_step(change["new"])

    def resample(self) -> None:
        """Sample a new story with the current settings and rewind to step 0."""
        strategy = self.strategy.value
        self.steps.disabled = strategy == "adaptive"
        self.trace = sample_trace(self.model, self.tok, strategy, self.steps.value, self.seed,
                                  length=self.length, prompt=self.prompt, temperature=self.temperature,
                                  threshold=self.threshold, eta_cap=self.eta_cap)
        self._version += 1
        T = self.trace.steps
        for w in (self.play, self.slider):
            w.value = 0
            w.max = T
        self.show_step(0)
        self.info.value = (f'<span style="color: #57606a; font-size: 0.9em">{STRATEGIES[strategy]} &middot; '
                           f'{T} steps &middot; {self.trace.nfe} network calls{self._revisions()} &middot; '
                           f'seed {self.seed}</span>')

    def _revisions(self) -> str:
        """The info line's revision count for a sampler that revises (and ReMDM's remaskings), else ""."""
        if not getattr(self.trace, "revises", False):
            return ""
        from .viz_revisions import count_revisions

        n = count_revisions(self.trace, self.tok.mask_id)
        out = f" &middot; {n['revised']} revision{'s' * (n['revised'] != 1)}"
        return out + (f" ({n['remasked']} remasked)" if self.strategy.value == "remdm" else "")

    def on_new_sample(self, _button=None) -> None:
        self.seed += 1
        self.resample()

    def on_strategy(self, change) -> None:
        self.resample()

    def on_steps(self, change) -> None:
        self.resample()


def denoising_player(model, tok, steps: int = 32, strategy: str = "low_confidence", seed: int | None = None,
                     big: bool = False, **kwargs):
    """A story unmasking step by step: press Play, drag the slider, switch the order, re-sample
    (lessons 00 and 07). Returns an ipywidgets VBox (its ``.player`` holds the callbacks)."""
    return DenoisingPlayer(model, tok, steps=steps, strategy=strategy, seed=seed, big=big, **kwargs).box


class ForwardSlider:
    """The forward process q(x_t | x_0) as a slider (lesson 02): one text, masked at time t.

    The uniform noise u is fixed by ``seed`` (``mask_tokens`` with the same generator), and a
    token is masked when u >= alpha_t, so the masks are NESTED: sliding t up only ever adds
    masks. "New noise" draws another u."""

    def __init__(self, tok, text: str, seed: int = 0, schedule: str = "loglinear", big: bool = False):
        from .schedules import SCHEDULES

        W = _widgets()
        if not isinstance(text, str) or not text:
            raise ValueError("text: expected a non-empty str")
        self.tok, self.big, self.seed = tok, big, int(seed)
        self.x0 = torch.tensor([tok.encode(text)], dtype=torch.long)        # (1, L)
        self.t = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="t",
                               readout_format=".2f", layout=W.Layout(width="30em"))
        self.schedule = W.Dropdown(options=[n for n in SCHEDULES if n != "esolm"], value=schedule,
                                   description="schedule")
        self.new = W.Button(description="New noise", icon="refresh")
        self.html = W.HTML()
        self.t.observe(self.update, names="value")
        self.schedule.observe(self.update, names="value")
        self.new.on_click(self.on_new_noise)
        self.box = W.VBox([W.HBox([self.t, self.schedule, self.new]), self.html])
        self.box.player = self
        self.update()

    def masked(self):
        """x_t for the current t, schedule and noise: (1, L) ids."""
        from .forward import mask_tokens
        from .schedules import get_schedule

        alpha_t = float(get_schedule(self.schedule.value).alpha(self.t.value))
        return mask_tokens(self.x0, alpha_t, self.tok.mask_id, generator=self.seed), alpha_t

    def update(self, change=None) -> None:
        xt, alpha_t = self.masked()
        L = self.x0.shape[1]
        n = int((xt == self.tok.mask_id).sum())
        header = (f"t = {self.t.value:.2f} &middot; &alpha;<sub>t</sub> = {alpha_t:.3f} &middot; "
                  f"<b>{n}</b> of {L} tokens masked (expected {L * (1 - alpha_t):.1f})")
        self.html.value = masked_text_html(self.tok, self.x0, xt, big=self.big, header=header)

    def on_new_noise(self, _button=None) -> None:
        self.seed += 1
        self.update()


def forward_slider(tok, text: str, seed: int = 0, schedule: str = "loglinear", big: bool = False):
    """A t slider showing ``text`` masked by the forward process at time t (lesson 02). Returns an
    ipywidgets VBox (its ``.player`` holds the callbacks)."""
    return ForwardSlider(tok, text, seed=seed, schedule=schedule, big=big).box


class MaskExplorer:
    """Eso-LM's diffusion-phase masks, interactively (lesson 09): variant A or B, how many tokens
    are clean, and whether to look in the sorted order (clean first: standard-looking masks) or
    in the original token order (the same mask, scattered)."""

    def __init__(self, L: int = 8, seed: int = 0):
        from .masks import inverse_permutation, sort_indices

        W = _widgets()
        if isinstance(L, bool) or not isinstance(L, int) or not 2 <= L <= 32:
            raise ValueError(f"L: expected an int in [2, 32], got {L!r}")
        self.L = L
        g = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(L, generator=g)            # the first n_clean of it are clean
        self._sort_indices, self._inverse = sort_indices, inverse_permutation
        self.variant = W.ToggleButtons(options=["A", "B"], value="B", description="variant")
        self.n_clean = W.IntSlider(value=L // 2, min=0, max=L, description="clean tokens")
        self.view = W.ToggleButtons(options=["sorted", "original order"], value="sorted", description="show")
        self.image = W.Image(format="png")
        self.caption = W.HTML()
        for w in (self.variant, self.n_clean, self.view):
            w.observe(self.update, names="value")
        self.box = W.VBox([W.HBox([self.variant, self.n_clean]), self.view, self.image, self.caption])
        self.box.player = self
        self.update()

    def mask(self):
        """(mask (L, L) bool, tick labels, sort index (L,)) for the current settings."""
        from .masks import esolm_diffusion_mask

        L, n = self.L, self.n_clean.value
        is_masked = torch.ones(L, dtype=torch.bool)
        is_masked[self.order[:n]] = False
        idx = self._sort_indices(is_masked[None], shuffle=False)[0]          # sorted slot -> position
        m = esolm_diffusion_mask(n, L, self.variant.value)
        if self.view.value == "sorted":
            labels = [f"{'c' if not is_masked[p] else 'm'}@{int(p)}" for p in idx]
            return m, labels, idx
        inv = self._inverse(idx[None])[0]                                     # position -> sorted slot
        labels = [f"{'c' if not is_masked[p] else 'm'}@{p}" for p in range(L)]
        return m[inv][:, inv], labels, idx

    def update(self, change=None) -> None:
        plt = _plt()
        m, labels, idx = self.mask()
        n = self.n_clean.value
        fig, ax = plt.subplots(figsize=(4.6, 4.6))
        attention_mask_heatmap(m, ax=ax, tick_labels=labels, n_clean=n if self.view.value == "sorted" else None,
                               title=f"variant {self.variant.value}, {n} clean, {self.view.value}")
        self.image.value = figure_png(fig)
        self.caption.value = ("<small>c@p = clean token from position p, m@p = [MASK] at position p. "
                              f"Sort index (sorted slot &#8594; original position): {idx.tolist()}</small>")


def mask_explorer(L: int = 8, seed: int = 0):
    """Variant A/B and a clean-count slider over Eso-LM's attention masks (lesson 09). Returns an
    ipywidgets VBox (its ``.player`` holds the callbacks)."""
    return MaskExplorer(L, seed=seed).box
