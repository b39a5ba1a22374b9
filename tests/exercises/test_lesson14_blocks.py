"""Graded tests, lesson 14: BD3-LM's training mask, its cached block sampler and its NELBO."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidlm.blocks import bd3_generate, bd3_logits, bd3_loss
from minidlm.objectives import mdm_loss
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import assert_same, gen, seeds, tokens
from tests.exercises.models_lesson14 import TinyBlockLM, ZeroLM

LESSON = "lesson14_blocks"


# ----------------------------------------------------------------------------- task 14.1
def _mask_by_loops(L, K):
    """The training mask written out query by query, key by key."""
    m = torch.zeros(2 * L, 2 * L, dtype=torch.bool)
    for q in range(2 * L):
        for k in range(2 * L):
            q_noisy, k_noisy = q < L, k < L
            bq, bk = (q % L) // K, (k % L) // K
            if q_noisy and k_noisy:
                m[q, k] = bq == bk
            elif q_noisy:
                m[q, k] = bk < bq
            elif not k_noisy:
                m[q, k] = bk <= bq
    return m


@pytest.mark.task("14.1", points=2)
@GRADED
@given(L=st.integers(1, 12), K=st.integers(1, 14))
def test_training_mask_matches_the_quadrant_rules(load, L, K):
    got = load(LESSON).training_mask(L, K)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.bool, "return a torch.bool tensor"
    assert_same(got, _mask_by_loops(L, K), f"training_mask({L}, {K})")


@pytest.mark.task("14.1", points=2)
@GRADED
@given(L=st.integers(2, 12))
def test_training_mask_at_the_two_ends_of_the_dial(load, L):
    """K = 1: noisy token l sees itself and the clean tokens before it (an AR model's view of the
    token it predicts); K >= L: the noisy half is one bidirectional block that sees no clean token;
    at every K the clean half never sees the noisy half."""
    f = load(LESSON).training_mask
    ar = f(L, 1)
    for q in range(L):
        seen = set(torch.nonzero(ar[q]).flatten().tolist())
        assert seen == {q} | {L + k for k in range(q)}, f"K = 1, noisy query {q} sees {sorted(seen)}"
    for K in (L, L + 3):
        mdm = f(L, K)
        assert bool(mdm[:L, :L].all()) and not bool(mdm[:L, L:].any()), f"K = {K} >= L: the noisy half is MDLM's"
    for K in range(1, L + 1):
        assert not bool(f(L, K)[L:, :L].any()), f"K = {K}: a clean query attends to a noisy key"
    with pytest.raises(ValueError):
        f(L, 0)


# ----------------------------------------------------------------------------- task 14.2
V2, MASK2, BOS2, EOS2 = 11, 10, 0, 1


def _decode(load, B, L, K, S, eos, seed):
    model = TinyBlockLM(V2, L, MASK2, seed)
    x, nfe = load(LESSON).block_decode_cached(model, L, MASK2, K, S, BOS2, eos, gen(seed), batch_size=B)
    return model, torch.as_tensor(x), int(nfe)


def _reference(B, L, K, S, eos, seed):
    model = TinyBlockLM(V2, L, MASK2, seed)
    x, tr = bd3_generate(model, L, MASK2, K, steps_per_block=S, batch_size=B, bos_id=BOS2, eos_id=eos,
                         generator=gen(seed))
    return model, x, tr


_sizes = dict(B=st.integers(1, 3), L=st.integers(2, 13), K=st.integers(1, 5), S=st.integers(1, 5),
              eos=st.sampled_from([None, EOS2]), seed=seeds)


@pytest.mark.task("14.2", points=6)
@GRADED
@given(**_sizes)
def test_block_decode_reproduces_bd3_generate(load, B, L, K, S, eos, seed):
    S = min(S, K)
    _, got, nfe = _decode(load, B, L, K, S, eos, seed)
    _, expected, tr = _reference(B, L, K, S, eos, seed)
    assert_same(got, expected, f"the tokens (B={B}, L={L}, block_size={K}, steps_per_block={S}, eos_id={eos})")
    assert nfe == tr.nfe, f"{nfe} network calls, expected {tr.nfe}"


@pytest.mark.task("14.2", points=4)
@settings(GRADED, max_examples=12)
@given(**_sizes)
def test_block_decode_feeds_only_the_cache_gap(load, B, L, K, S, eos, seed):
    """Every call feeds the tokens from the end of the cache to the end of the current block, at
    their own positions, over a cache that holds exactly the finished blocks before the previous one
    (first call of a block) or before this one (later calls)."""
    S = min(S, K)
    mine, _, _ = _decode(load, B, L, K, S, eos, seed)
    ref, _, tr = _reference(B, L, K, S, eos, seed)
    assert len(mine.log) == len(ref.log), f"{len(mine.log)} network calls, expected {len(ref.log)}"
    for i, (a, b) in enumerate(zip(mine.log, ref.log)):
        where = f"call {i + 1}"
        assert a["cached"] == b["cached"], (f"{where}: the cache held {a['cached']} tokens, expected {b['cached']} "
                                            f"(the finished blocks; cut it back to the block's start)")
        assert a["fed"] == b["fed"], (f"{where}: {a['fed']} tokens fed, expected {b['fed']} (from the end of the "
                                      f"cache to the end of the block, nothing already cached)")
        assert torch.equal(a["positions"], b["positions"]), f"{where}: positions fed are not start..hi - 1"
    assert sum(a["fed"] for a in mine.log) == sum(tr.fed)


@pytest.mark.task("14.2", points=3)
@settings(GRADED, max_examples=10)
@given(**_sizes)
def test_cached_logits_equal_uncached_logits(load, B, L, K, S, eos, seed):
    """At every call, the logits for the current block equal those of one uncached block-causal
    pass over the whole prefix [0, hi) in the state of that call."""
    S = min(S, K)
    mine, _, _ = _decode(load, B, L, K, S, eos, seed)
    _, _, tr = _reference(B, L, K, S, eos, seed)
    plain = TinyBlockLM(V2, L, MASK2, seed, log=False)
    blk = torch.arange(L) // K
    for i, call in enumerate(mine.log):
        hi = int(call["positions"][0, -1]) + 1
        lo = int(blk[hi - 1]) * K
        state = tr.states[i][:, :hi]
        full = plain(state, attn_mask=blk[None, :hi] <= blk[:hi, None])[:, lo:]            # (B, Lb, V)
        mine_block = call["logits"][:, -(hi - lo):]
        torch.testing.assert_close(mine_block[..., :MASK2], full[..., :MASK2], rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"call {i + 1}: cached logits differ from uncached ones\n{m}")


@pytest.mark.task("14.2", points=3)
@settings(GRADED, max_examples=10)
@given(B=st.integers(1, 3), L=st.integers(4, 13), K=st.integers(2, 5), S=st.integers(1, 5), seed=seeds)
def test_committed_tokens_never_change_and_eos_ends_the_row(load, B, L, K, S, seed):
    """Replay your calls: the tokens written so far are a prefix of the final answer (no committed
    token is redrawn), and each row ends at its first [EOS] (the rest [EOS])."""
    S = min(S, K)
    _, got, nfe = _decode(load, B, L, K, S, EOS2, seed)
    assert got[:, 0].eq(BOS2).all(), "position 0 must keep [BOS]"
    assert not bool((got == MASK2).any()), "no [MASK] may be left"
    for r in range(B):
        row = got[r].tolist()
        if EOS2 in row[1:]:
            first = row[1:].index(EOS2) + 1
            assert all(v == EOS2 for v in row[first:]), f"row {r}: tokens after its first [EOS]: {row}"
    _, _, tr = _reference(B, L, K, S, EOS2, seed)
    assert nfe <= math.ceil(L / K) * S, f"{nfe} calls for {math.ceil(L / K)} blocks of {S} steps"
    assert nfe == tr.nfe, (f"{nfe} network calls, expected {tr.nfe}: stop after the block in which every "
                           f"row has written [EOS]")


# ----------------------------------------------------------------------------- task 14.3
V3, MASK3 = 9, 8


@pytest.mark.task("14.3", points=6)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(2, 12), K=st.integers(1, 6), seed=seeds)
def test_block_nelbo_matches_bd3_loss(load, B, L, K, seed):
    model = TinyBlockLM(V3, L, MASK3, seed, log=False)
    x0 = tokens(gen(seed + 1), B, L, V3, MASK3)
    got = load(LESSON).block_nelbo(model, x0, MASK3, K, gen(seed))
    expected = bd3_loss(model, x0, MASK3, K, gen(seed))
    torch.testing.assert_close(torch.as_tensor(got).double(), expected.double(), rtol=1e-5, atol=1e-6,
                               msg=lambda m: f"B={B}, L={L}, block_size={K}, seed={seed}\n{m}")


@pytest.mark.task("14.3", points=4)
@settings(GRADED, max_examples=10)
@given(B=st.integers(1, 3), L=st.integers(2, 10), extra=st.integers(0, 3), seed=seeds)
def test_one_block_is_mdlm(load, B, L, extra, seed):
    """block_size >= L: one block, one time per row, so the same draws and the same loss as
    objectives.mdm_loss with a bidirectional denoiser."""
    model = TinyBlockLM(V3, L, MASK3, seed, log=False)
    x0 = tokens(gen(seed + 1), B, L, V3, MASK3)
    got = load(LESSON).block_nelbo(model, x0, MASK3, L + extra, gen(seed))
    expected = mdm_loss(model, x0, MASK3, gen(seed))
    torch.testing.assert_close(torch.as_tensor(got).double(), expected.double(), rtol=1e-5, atol=1e-6)


@pytest.mark.task("14.3", points=3)
def test_block_size_one_averages_to_the_all_masked_cross_entropy(load):
    """K = 1: each position is its own block with its own t, masked with probability t and weighted
    1/t, so E[w(t) 1[masked]] = 1 exactly: the estimate averages to the mean CE of each token
    given the clean tokens before it (computed here from one all-masked pass)."""
    B, L, draws = 4, 8, 300
    model = TinyBlockLM(V3, L, MASK3, 3, log=False)
    x0 = tokens(gen(4), B, L, V3, MASK3)
    xt = x0.clone()
    xt[:, 1:] = MASK3
    with torch.no_grad():
        logits = bd3_logits(model, xt, x0, 1).float()
    logits[..., MASK3] = float("-inf")
    ce = -torch.log_softmax(logits, -1).gather(-1, x0[..., None]).squeeze(-1)     # (B, L)
    exact = float(ce[:, 1:].mean())
    f = load(LESSON).block_nelbo
    g = gen(5)
    mean = sum(float(f(model, x0, MASK3, 1, g)) for _ in range(draws)) / draws
    assert mean == pytest.approx(exact, rel=0.04), f"mean over {draws} draws {mean:.4f}, exact {exact:.4f}"


@pytest.mark.task("14.3", points=3)
def test_a_zero_logit_model_pays_log_V_per_token_on_average(load):
    """All logits 0: every masked token costs log(V - 1) ([MASK] excluded), and the 1/t weight
    times the masked share averages to 1, at every block size."""
    B, L = 64, 12
    x0 = tokens(gen(0), B, L, V3, MASK3)
    f = load(LESSON).block_nelbo
    for K in (1, 3, 12):
        g = gen(K)
        mean = sum(float(f(ZeroLM(V3), x0, MASK3, K, g)) for _ in range(40)) / 40
        assert mean == pytest.approx(math.log(V3 - 1), rel=0.04), f"block_size {K}: mean {mean:.4f}"
