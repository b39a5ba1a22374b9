"""Graded tests, lesson 10: the KV-cache update and Eso-LM's hybrid loss."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidlm import losses
from minidlm.esolm import esolm_loss, esolm_sample, esolm_schedule
from minidlm.forward import uniform
from minidlm.model import KVCache, Model, ModelConfig
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import assert_same, gen, seeds, tokens
from tests.exercises.models_lesson10 import TinyCausalLM

LESSON = "lesson10_esolm_cache"


@pytest.mark.task("10.1", points=2)
@GRADED
@given(B=st.integers(1, 2), h=st.integers(1, 2), d=st.integers(1, 4),
       chunks=st.lists(st.integers(1, 4), min_size=1, max_size=4), spare=st.integers(0, 3), seed=seeds)
def test_kv_cache_update_matches_KVCache(load, B, h, d, chunks, spare, seed):
    g = gen(seed)
    capacity = sum(chunks) + spare
    ref = KVCache(1, batch_size=B, capacity=capacity)
    k_buf, v_buf = torch.zeros(B, h, capacity, d), torch.zeros(B, h, capacity, d)
    length = 0
    update = load(LESSON).kv_cache_update
    for n in chunks:
        k, v = torch.randn(B, h, n, d, generator=g), torch.randn(B, h, n, d, generator=g)
        ref_k, ref_v = ref.append(0, k, v)
        ref.commit(n)
        k_all, v_all, length = update(k_buf, v_buf, length, k, v)
        assert length == len(ref)
        assert torch.equal(k_all, ref_k) and torch.equal(v_all, ref_v)
        assert k_all.data_ptr() == k_buf.data_ptr() and v_all.data_ptr() == v_buf.data_ptr(), \
            "return views of the buffers (k_buf[:, :, :length]), not copies"
    assert torch.equal(k_buf[:, :, :length], ref_k)


@pytest.mark.task("10.1", points=2)
def test_kv_cache_update_refuses_to_overflow(load):
    k_buf = v_buf = torch.zeros(1, 1, 3, 2)
    with pytest.raises(ValueError):
        load(LESSON).kv_cache_update(k_buf, v_buf, 2, torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2))


class _LearnerCache(KVCache):
    """minidlm's KVCache with the append step replaced by the learner's kv_cache_update."""

    def __init__(self, update, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.update = update

    def append(self, layer, k, v):
        if self.k[layer] is None:
            B, nh, _, hs = k.shape
            self.k[layer] = torch.zeros(B, nh, self.capacity, hs)
            self.v[layer] = torch.zeros(B, nh, self.capacity, hs)
        k_all, v_all, _ = self.update(self.k[layer], self.v[layer], self.length, k, v)
        return k_all, v_all


@pytest.mark.task("10.1", points=2)
@GRADED
@given(B=st.integers(1, 2), L=st.integers(2, 10), prompt=st.integers(1, 3), seed=seeds)
def test_cached_decoding_gives_the_uncached_logits(load, B, L, prompt, seed):
    """Decoding token by token through your cache update gives the logits of one full causal pass."""
    prompt = min(prompt, L - 1)
    torch.manual_seed(0)
    model = Model(ModelConfig(vocab_size=9, max_len=16, n_layer=2, n_head=2, d_model=16)).eval()
    x = tokens(gen(seed), B, L, 9)
    cache = _LearnerCache(load(LESSON).kv_cache_update, 2, batch_size=B, capacity=16)
    with torch.no_grad():
        full = model(x, is_causal=True)                                          # (B, L, V)
        pieces = [model(x[:, :prompt], cache=cache, is_causal=True)]
        for i in range(prompt, L):
            pieces.append(model(x[:, i:i + 1], cache=cache, is_causal=True))
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=1e-4, atol=1e-5)


class _Pointwise:
    """A 'model' whose logits at each position depend only on that position's token: sorting the
    tokens or changing the attention mask does not change the per-token losses."""

    def __init__(self, V, seed):
        self.W = 2 * torch.randn(V, V, generator=gen(seed))

    def __call__(self, x, attn_mask=None, positions=None, is_causal=False):
        return self.W[x].clone()


@pytest.mark.task("10.2", points=3)
@GRADED
@given(B=st.integers(2, 5), L=st.integers(2, 10), alpha0=st.sampled_from([0.0, 0.25, 0.5, 0.875, 1.0]),
       bos=st.booleans(), seed=seeds)
def test_hybrid_loss_matches_esolm_loss(load, B, L, alpha0, bos, seed):
    V, MASK = 9, 8
    model = _Pointwise(V, seed)
    x0 = tokens(gen(seed), B, L, V, MASK)
    keep = torch.zeros(L, dtype=torch.bool)
    keep[0] = bos                                                     # a [BOS] is never masked nor counted
    expected, parts = esolm_loss(model, x0, alpha0, kappa=0.5, generator=seed, keep=keep, mask_id=MASK)
    nd = parts["n_diff_rows"]
    xd, xs = x0[:nd], x0[nd:]
    if parts["zt"] is not None:
        diff_ce, t = losses.masked_cross_entropy(model(parts["zt"]), xd, parts["zt"], MASK), parts["t"]
    else:
        diff_ce, t = torch.zeros(nd, L), torch.full((nd,), 0.5)
    if parts["z0"] is not None:
        seq_ce = losses.masked_cross_entropy(model(parts["z0"]), xs, parts["z0"], MASK)
    else:
        seq_ce = torch.zeros(B - nd, L)
    counted = ~keep.expand(B, L)
    got = load(LESSON).esolm_hybrid_loss(diff_ce, t, seq_ce, alpha0, counted[:nd], counted[nd:])
    torch.testing.assert_close(torch.as_tensor(got).double(), expected.double(), rtol=1e-5, atol=1e-6)


@pytest.mark.task("10.2", points=3)
def test_hybrid_loss_known_answer(load):
    diff_ce = torch.tensor([[0.0, 2.0, 0.0], [1.0, 1.0, 0.0]])       # 2 diffusion rows, 6 tokens
    t = torch.tensor([1.0, 0.5])                                      # alpha0 = 0.5: w = 0.5, 0.5/0.75
    seq_ce = torch.tensor([[3.0, 0.0, 1.0]])                          # 1 sequential row, 3 tokens
    counted_d = torch.ones(2, 3, dtype=torch.bool)
    counted_s = torch.ones(1, 3, dtype=torch.bool)
    got = load(LESSON).esolm_hybrid_loss(diff_ce, t, seq_ce, 0.5, counted_d, counted_s)
    expected = 4.0 / 3 + (0.5 * 2.0 + (0.5 / 0.75) * 2.0) / 6
    assert float(got) == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------- task 10.3
V3, MASK3 = 11, 10


def _esolm_setup(B, L, P, alpha0, steps, counts, seed):
    """esolm_sample's draws before its loop (the schedule, then each row's decode order), from the
    same generator: returns what the learner's loop starts from, and that generator."""
    g = gen(seed)
    prompt = tokens(gen(seed + 1), 1, P, V3, MASK3)[0] if P else None
    n_diff, sizes = esolm_schedule(L - P, alpha0, steps, g, counts=counts)
    perm = torch.argsort(uniform((B, L - P), g, "cpu"), dim=1) + P                  # (B, L-P)
    order = torch.cat([torch.arange(P).expand(B, P), perm[:, :n_diff], perm[:, n_diff:].sort(1).values], 1)
    x = torch.full((B, L), MASK3)
    if P:
        x[:, :P] = prompt
    return prompt, sizes, order, x.gather(1, order), g


def _steps(sizes, start):
    """(a, b, fed) of every step of the cached loop."""
    out, a, fed = [], start, 0
    for k in sizes:
        out.append((a, a + k, fed))
        fed, a = a, a + k
    return out


def _decode(load, model, B, L, P, alpha0, steps, counts, temperature, seed):
    prompt, sizes, order, xs, g = _esolm_setup(B, L, P, alpha0, steps, counts, seed)
    got = load(LESSON).esolm_decode_cached(model, xs, order, sizes, P, MASK3, model.new_cache(B, capacity=L),
                                          temperature=temperature, generator=g)
    return got, prompt, sizes, order


_alpha0s = st.sampled_from([0.0, 0.25, 0.5, 1.0])
_counts = st.sampled_from(["binomial", "even"])


@pytest.mark.task("10.3", points=8)
@GRADED
@given(B=st.integers(1, 2), L=st.integers(2, 10), P=st.integers(0, 2), alpha0=_alpha0s, counts=_counts,
       steps=st.sampled_from([None, 1, 3]), temperature=st.sampled_from([0.0, 1.0, 0.8]), seed=seeds)
def test_cached_decode_reproduces_esolm_sample(load, B, L, P, alpha0, counts, steps, temperature, seed):
    P = min(P, L - 1)
    got, prompt, _, _ = _decode(load, TinyCausalLM(V3, L, MASK3, seed), B, L, P, alpha0, steps, counts,
                                temperature, seed)
    expected, _ = esolm_sample(TinyCausalLM(V3, L, MASK3, seed), L, MASK3, alpha0, batch_size=B, prompt=prompt,
                               temperature=temperature, diffusion_steps=steps, counts=counts, generator=seed)
    assert_same(got, expected, "the sampled tokens (in original order)")


@pytest.mark.task("10.3", points=4)
@settings(GRADED, max_examples=10)
@given(B=st.integers(1, 2), L=st.integers(2, 10), P=st.integers(0, 2), alpha0=_alpha0s, seed=seeds)
def test_cached_decode_feeds_only_the_new_tokens(load, B, L, P, alpha0, seed):
    """Each call feeds the previous step's tokens and this step's masks, at their original
    positions, over a cache of every earlier slot; in the sequential phase the cache grows by one
    token per call."""
    P = min(P, L - 1)
    model = TinyCausalLM(V3, L, MASK3, seed)
    _, _, sizes, order = _decode(load, model, B, L, P, alpha0, None, "binomial", 1.0, seed)
    plan = _steps(sizes, P)
    assert len(model.log) == len(plan), f"{len(model.log)} network calls for {len(plan)} steps: one call per step"
    for i, ((a, b, fed), call) in enumerate(zip(plan, model.log)):
        where = f"call {i + 1} (decoding slots {a}..{b - 1})"
        assert call["cached"] == fed, (f"{where}: the cache held {call['cached']} slots, expected {fed} (every "
                                       f"slot decoded before the previous step; drop the masks' entries)")
        assert call["fed"] == b - fed, (f"{where}: {call['fed']} tokens fed, expected {b - fed} (the previous "
                                        f"step's tokens and this step's masks, nothing already cached)")
        assert torch.equal(call["positions"], order[:, fed:b]), f"{where}: positions fed are not order[:, fed:b]"


@pytest.mark.task("10.3", points=4)
@settings(GRADED, max_examples=10)
@given(B=st.integers(1, 2), L=st.integers(2, 10), P=st.integers(0, 2), alpha0=_alpha0s, seed=seeds)
def test_cached_logits_equal_uncached_logits(load, B, L, P, alpha0, seed):
    """At every step, the logits your cached call gives for the masks decoded equal those of one
    uncached causal pass over the sorted slots [0, b), the masks still masks."""
    P = min(P, L - 1)
    model = TinyCausalLM(V3, L, MASK3, seed)
    got, _, sizes, order = _decode(load, model, B, L, P, alpha0, None, "binomial", 1.0, seed)
    log = list(model.log)
    xs = got.gather(1, order)                                                   # final tokens, decode order
    assert len(log) == len(sizes), f"{len(log)} network calls for {len(sizes)} steps"
    for i, ((a, b, fed), call) in enumerate(zip(_steps(sizes, P), log)):
        state = xs[:, :b].clone()
        state[:, a:] = MASK3
        full = model(state, positions=order[:, :b], is_causal=True)[:, a:]       # (B, k, V) uncached
        mine = call["logits"][:, -(b - a):]
        torch.testing.assert_close(mine[..., :MASK3], full[..., :MASK3], rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"step {i + 1}: cached logits differ from uncached ones\n{m}")
