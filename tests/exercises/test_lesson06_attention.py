"""Graded tests, lesson 06: attention masks and masked attention (6.1-6.4), the MDM training step
(6.5) and AR sampling with a KV cache (6.6).

6.5 runs YOUR step and minidlm's own loss (objectives.mdm_loss, what compute_loss runs for "mdm")
on two copies of one small model, with the same generator seed and the same optimizer, and asks for
the same loss and the same updated weights. 6.6 asks for the tokens of minidlm's generate_ar and,
at every call, the logits of the uncached model; it also watches what you feed the model.
"""
import copy
import math

import pytest
import torch
import torch._dynamo  # noqa: F401  (an optimizer's first step imports it, and it wraps torch.manual_seed:
import torch.nn.functional as F  # imported here, before the grader's snapshot, that is no tampering)
from hypothesis import given, settings
from hypothesis import strategies as st

from minidlm import masks
from minidlm.objectives import mdm_loss
from minidlm.sampling import generate_ar
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import assert_same, gen, seeds, tokens
from tests.exercises.models_lesson06 import TinyCausalLM, TinyDenoiser

LESSON = "lesson06_attention"
lengths = st.integers(1, 24)


def _is_bool_mask(m, L):
    assert isinstance(m, torch.Tensor) and m.dtype == torch.bool, "a mask is a bool tensor"
    assert tuple(m.shape) == (L, L)


@pytest.mark.task("6.1", points=1)
@GRADED
@given(L=lengths)
def test_causal_mask_matches_reference(load, L):
    got = load(LESSON).causal_mask(L)
    _is_bool_mask(got, L)
    assert_same(got, masks.causal_mask(L), "causal mask")


@pytest.mark.task("6.1", points=1)
def test_causal_mask_known_answer(load):
    assert load(LESSON).causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


@pytest.mark.task("6.2", points=1)
@GRADED
@given(L=lengths)
def test_bidirectional_mask_matches_reference(load, L):
    got = load(LESSON).bidirectional_mask(L)
    _is_bool_mask(got, L)
    assert_same(got, masks.bidirectional_mask(L), "bidirectional mask")


@pytest.mark.task("6.3", points=1)
@GRADED
@given(data=st.data(), L=lengths)
def test_prefix_mask_matches_reference(load, data, L):
    P = data.draw(st.integers(0, L))
    got = load(LESSON).prefix_mask(L, P)
    _is_bool_mask(got, L)
    assert_same(got, masks.prefix_mask(L, P), f"prefix mask (prefix_len={P})")


@pytest.mark.task("6.3", points=1)
def test_prefix_mask_interpolates_causal_and_bidirectional(load):
    m = load(LESSON)
    assert torch.equal(m.prefix_mask(5, 0), masks.causal_mask(5))
    assert torch.equal(m.prefix_mask(5, 5), masks.bidirectional_mask(5))


def _random_mask(g, *shape):
    m = torch.rand(*shape, generator=g) < 0.5
    m[..., 0] = True                                    # every query row may attend somewhere
    return m


@pytest.mark.task("6.4", points=3)
@GRADED
@given(B=st.integers(1, 3), h=st.integers(1, 3), Lq=st.integers(1, 8), Lk=st.integers(1, 8),
       d=st.integers(1, 8), seed=seeds, batched=st.booleans())
def test_masked_attention_matches_sdpa(load, B, h, Lq, Lk, d, seed, batched):
    g = gen(seed)
    q, k, v = (torch.randn(B, h, n, d, generator=g, dtype=torch.float64) for n in (Lq, Lk, Lk))
    mask = _random_mask(g, B, 1, Lq, Lk) if batched else _random_mask(g, Lq, Lk)
    got = load(LESSON).masked_attention(q, k, v, mask)
    assert tuple(got.shape) == (B, h, Lq, d)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), rtol=1e-9, atol=1e-10)


@pytest.mark.task("6.4", points=3)
@GRADED
@given(L=st.integers(1, 10), seed=seeds)
def test_masked_attention_causal_and_bidirectional(load, L, seed):
    g = gen(seed)
    q, k, v = (torch.randn(2, 2, L, 4, generator=g, dtype=torch.float64) for _ in range(3))
    m = load(LESSON)
    torch.testing.assert_close(m.masked_attention(q, k, v, masks.causal_mask(L)),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(m.masked_attention(q, k, v, masks.bidirectional_mask(L)),
                               F.scaled_dot_product_attention(q, k, v), rtol=1e-9, atol=1e-10)
    # with the causal mask the first output is v's first row: it can only look at itself
    torch.testing.assert_close(m.masked_attention(q, k, v, masks.causal_mask(L))[..., 0, :], v[..., 0, :])


# ----------------------------------------------------------------------------- 6.5 the training step
V5, MASK5 = 9, 8


def _sgd(model, lr=0.5):
    return torch.optim.SGD(model.parameters(), lr=lr)


def _stale_grads(model, seed):
    """Gradients left over from some earlier backward: a step must start from zero."""
    g = gen(seed + 1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def _reference_step(model, x0, opt, g, eps):
    loss = mdm_loss(model, x0, MASK5, g, "loglinear", eps)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.task("6.5", points=10)
@settings(GRADED, max_examples=10)
@given(B=st.integers(1, 4), L=st.integers(2, 8), eps=st.sampled_from([1e-3, 0.05]), seed=seeds)
def test_mdm_train_step_reproduces_minidlm(load, B, L, eps, seed):
    step = load(LESSON).mdm_train_step
    yours = TinyDenoiser(V5, 8, seed=seed)
    ref = copy.deepcopy(yours)
    opt_yours, opt_ref = _sgd(yours), _sgd(ref)
    _stale_grads(yours, seed)
    _stale_grads(ref, seed)
    g_yours, g_ref = gen(seed), gen(seed)
    for i in range(2):                             # two steps in a row, on one generator
        x0 = tokens(gen(seed + 10 + i), B, L, V5, MASK5)
        x0_before = x0.clone()
        got = step(yours, x0, opt_yours, MASK5, g_yours, eps)
        expected = _reference_step(ref, x0, opt_ref, g_ref, eps)
        assert isinstance(got, float), f"return the loss as a Python float (loss.item()), got {type(got).__name__}"
        assert torch.equal(x0, x0_before), "your step changed x0 in place"
        assert math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6), \
            f"step {i + 1}: loss {got:.6f}, minidlm's mdm_loss gives {expected:.6f}"
        for (name, p), q in zip(yours.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6,
                                       msg=f"step {i + 1}: weight {name!r} after the optimizer step differs")
    assert torch.equal(g_yours.get_state(), g_ref.get_state()), \
        "your step drew a different amount of noise from the generator (one (1,) and one (B, L) draw per step)"


class _RecordingSGD:
    """An SGD that notes the order of zero_grad and step, and the gradient it stepped with (a
    wrapper, not a subclass: torch patches an Optimizer subclass's step when it is first built)."""

    def __init__(self, params, lr):
        self.params = list(params)
        self.inner = torch.optim.SGD(self.params, lr=lr)
        self.param_groups = self.inner.param_groups
        self.events, self.grads = [], []

    def zero_grad(self, set_to_none=True):
        self.events.append("zero_grad")
        self.inner.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        self.events.append("step")
        self.grads.append([None if p.grad is None else p.grad.clone() for p in self.params])
        return self.inner.step(closure)


@pytest.mark.task("6.5", points=6)
def test_mdm_train_step_known_answer(load):
    """A model that knows nothing (all logits 0): every masked token costs log(V - 1) under SUBS,
    so the loss is log(V - 1) * sum_b n_b / t_b / (B (L - 1)), n_b the masked count of row b,
    with t and the masks recomputed here from the draws the docstring specifies."""
    step = load(LESSON).mdm_train_step
    B, L, eps = 4, 6, 1e-3
    model = TinyDenoiser(V5, 8, seed=3)
    with torch.no_grad():
        model.out.zero_()                          # logits all 0
    opt = _RecordingSGD(model.parameters(), lr=0.5)
    _stale_grads(model, 3)
    x0 = tokens(gen(4), B, L, V5, MASK5)
    g = gen(5)
    got = step(model, x0, opt, MASK5, g, eps)
    g = gen(5)
    u = torch.rand((1,), generator=g, dtype=torch.float64)
    t = ((u + torch.arange(B, dtype=torch.float64) / B) % 1.0) * (1 - eps) + eps
    masked = torch.rand((B, L), generator=g, dtype=torch.float64) >= (1 - t)[:, None]
    masked[:, 0] = False
    n = masked.sum(1).double()
    expected = math.log(V5 - 1) * float((n / t).sum()) / (B * (L - 1))
    assert math.isclose(got, expected, rel_tol=1e-5), \
        f"loss {got:.6f}; a model with all logits 0 should give log(V - 1) * sum_b n_b / t_b / (B (L - 1)) = {expected:.6f}"
    assert opt.events == ["zero_grad", "step"], \
        f"expected optimizer.zero_grad() then one optimizer.step(), got the calls {opt.events}"
    head = dict(zip(map(id, opt.params), opt.grads[0]))[id(model.out)]
    assert head is not None and head.abs().sum() > 0, "the optimizer stepped without the loss's gradient"


# ----------------------------------------------------------------------------- 6.6 the KV cache
V6, MAXLEN6 = 11, 16


def _ar_inputs(seed, B, P):
    return torch.randint(0, V6, (B, P), generator=gen(seed + 7))


@pytest.mark.task("6.6", points=10)
@settings(GRADED, max_examples=12)
@given(B=st.integers(1, 3), P=st.integers(1, 4), new=st.integers(1, 6),
       temperature=st.sampled_from([0.0, 1.0, 0.7]), seed=seeds)
def test_ar_cache_reproduces_generate_ar(load, B, P, new, temperature, seed):
    model = TinyCausalLM(V6, MAXLEN6, seed=seed)
    prompt, length = _ar_inputs(seed, B, P), P + new
    got, _ = load(LESSON).generate_ar_cached(model, prompt.clone(), length, temperature, gen(seed))
    expected = generate_ar(model, length, batch_size=B, prompt=prompt, temperature=temperature, generator=seed,
                           use_cache=False, return_trace=False)
    assert_same(got, expected, "the sampled tokens")
    # at every call, the logits of the last fed position equal the uncached model's
    assert len(model.head_logits) == new, f"{len(model.head_logits)} calls of model.head, expected {new}"
    for i, logits in enumerate(model.head_logits):
        torch.testing.assert_close(logits[:, -1], model(got[:, :P + i])[:, -1], rtol=1e-5, atol=1e-5,
                                   msg=f"call {i + 1}: your cached logits differ from the uncached model's")


@pytest.mark.task("6.6", points=6)
@settings(GRADED, max_examples=8)
@given(B=st.integers(1, 2), P=st.integers(2, 4), new=st.integers(2, 5), seed=seeds)
def test_ar_cache_grows_one_position_per_call(load, B, P, new, seed):
    model = TinyCausalLM(V6, MAXLEN6, seed=seed)
    length = P + new
    x, cache = load(LESSON).generate_ar_cached(model, _ar_inputs(seed, B, P), length, 1.0, gen(seed))
    calls = len(model.fed_positions)
    assert calls == new, f"{calls} model calls (model.embed) for {new} new tokens; expected one call per token"
    expected_positions = [list(range(P))] + [[P + i] for i in range(new - 1)]
    assert model.fed_positions == expected_positions, \
        f"positions fed per call: {model.fed_positions}, expected {expected_positions} (the prompt, then one new token)"
    for layer, lengths in enumerate(model.qkv_lengths):
        assert lengths == [P] + [1] * (new - 1), \
            f"layer {layer}: tokens fed per call {lengths}; only the tokens not yet cached should be fed"
    assert isinstance(cache, (list, tuple)) and len(cache) == model.n_layer, "return one (K, V) pair per layer"
    for layer, ((K, Vc), (k_ref, v_ref)) in enumerate(zip(cache, model.uncached_kv(x[:, :-1]))):
        assert tuple(K.shape) == (B, model.n_head, length - 1, model.head_dim), \
            f"layer {layer}: cached keys of shape {tuple(K.shape)}, expected {(B, model.n_head, length - 1, model.head_dim)}"
        torch.testing.assert_close(K, k_ref, rtol=1e-9, atol=1e-9, msg=f"layer {layer}: cached keys differ from the uncached ones")
        torch.testing.assert_close(Vc, v_ref, rtol=1e-9, atol=1e-9, msg=f"layer {layer}: cached values differ")
