"""Block diffusion (BD3-LM, lesson 14): the masks, the loss on known cases, the exact KV cache."""
import math

import pytest
import torch

from minidlm.blocks import (bd3_generate, bd3_logits, bd3_loss, bd3_noise, block_causal_mask, block_index,
                            training_mask)
from minidlm.model import Model, ModelConfig
from minidlm.objectives import mdm_loss

MASK, BOS, EOS = 3, 1, 2


def tiny(max_len=64, seed=0, V=40):
    torch.manual_seed(seed)
    return Model(ModelConfig(vocab_size=V, max_len=max_len, n_layer=2, n_head=2, d_model=32, mask_id=MASK)).eval()


def clean_batch(B=4, L=16, V=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randint(4, V, (B, L), generator=g)
    x0[:, 0] = BOS
    return x0


# ----------------------------------------------------------------------------- masks

@pytest.mark.parametrize("L,K", [(8, 1), (8, 3), (16, 4), (12, 12), (10, 32)])
def test_training_mask_matches_the_rule_pair_by_pair(L, K):
    M = training_mask(L, K)
    assert M.shape == (2 * L, 2 * L) and M.dtype == torch.bool
    for q in range(2 * L):
        for k in range(2 * L):
            bq, bk = (q % L) // K, (k % L) // K
            q_noisy, k_noisy = q < L, k < L
            if q_noisy and k_noisy:
                want = bq == bk
            elif q_noisy:
                want = bk < bq
            elif k_noisy:
                want = False
            else:
                want = bk <= bq
            assert bool(M[q, k]) == want, (q, k)


def test_block_size_one_is_causal_and_block_size_L_is_bidirectional():
    L = 9
    assert torch.equal(block_causal_mask(L, 1), torch.ones(L, L, dtype=torch.bool).tril())
    assert block_causal_mask(L, L).all()
    M = training_mask(L, 1)
    # K = 1: a noisy token sees itself and exactly the clean tokens before it (AR's context)
    for q in range(L):
        assert M[q, :L].nonzero().flatten().tolist() == [q]
        assert M[q, L:].nonzero().flatten().tolist() == list(range(q))


def test_block_index_and_bad_input():
    assert block_index(7, 3).tolist() == [0, 0, 0, 1, 1, 1, 2]
    with pytest.raises(ValueError, match="block_size"):
        block_index(7, 0)


# ----------------------------------------------------------------------------- the loss

def test_block_size_L_is_exactly_the_mdm_loss():
    """One block: the noisy half never sees the clean half, and the draws are mdm_loss's draws."""
    model, x0 = tiny(), clean_batch(L=16)
    for K in (16, 40):
        a = bd3_loss(model, x0, MASK, K, torch.Generator().manual_seed(3))
        b = mdm_loss(model, x0, MASK, torch.Generator().manual_seed(3))
        assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_noisy_half_does_not_see_later_clean_blocks():
    """Changing the clean tokens of block b must not change the logits of blocks <= b."""
    model, x0 = tiny(), clean_batch(B=2, L=16)
    xt, _ = bd3_noise(x0, MASK, 4, torch.Generator().manual_seed(0))
    x1 = x0.clone()
    x1[:, 8:] = (x1[:, 8:] + 1 - 4) % 36 + 4          # change blocks 2 and 3 of x0 only
    xt1 = torch.where(torch.arange(16) >= 8, torch.where(xt == MASK, xt, x1), xt)
    a, b = bd3_logits(model, xt, x0, 4), bd3_logits(model, xt1, x1, 4)
    torch.testing.assert_close(a[:, :8], b[:, :8], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[:, 12:], b[:, 12:], atol=1e-3)   # block 3 does see block 2 (clean)


def test_each_block_has_its_own_time_and_bos_stays_clean():
    x0 = clean_batch(B=64, L=32)
    xt, t = bd3_noise(x0, MASK, 8, torch.Generator().manual_seed(1))
    assert (xt[:, 0] == BOS).all()
    per_block = t.view(64, 4, 8)
    assert (per_block == per_block[..., :1]).all()               # one t inside a block
    assert per_block[..., 0].unique().numel() == 64 * 4          # a different t for every block
    # the masked share of a block follows its time: E[masked] = 1 - alpha(t) = t (log-linear)
    frac = (xt[:, 8:] == MASK).float().mean()
    assert frac.item() == pytest.approx(t[:, 8:].mean().item(), abs=0.03)


def test_zero_logit_model_known_value():
    """A model with constant logits: CE = log(V - 1) at every masked token (SUBS removes [MASK]),
    and E_t[w(t) P(masked | t)] = 1 under log-linear, so the loss estimates log(V - 1)."""
    V = 40

    class Flat(torch.nn.Module):
        def forward(self, idx, attn_mask=None, positions=None):
            out = torch.zeros(*idx.shape, V)
            out[..., MASK] = float("-inf")
            return out

    x0 = clean_batch(B=64, L=33, V=V)
    vals = [bd3_loss(Flat(), x0, MASK, 8, torch.Generator().manual_seed(s)).item() for s in range(40)]
    assert sum(vals) / len(vals) == pytest.approx(math.log(V - 1), rel=0.02)
    per_pos = bd3_loss(Flat(), x0, MASK, 8, torch.Generator().manual_seed(0), reduction="none")
    xt, t = bd3_noise(x0, MASK, 8, torch.Generator().manual_seed(0))
    want = torch.where(xt == MASK, math.log(V - 1) / t, torch.zeros_like(t))
    torch.testing.assert_close(per_pos.double(), want, atol=1e-4, rtol=1e-5)


def test_block_size_one_estimates_the_exact_ar_style_nll():
    """K = 1: each block is one token predicted from the clean tokens before it; the expectation of
    the estimate is exactly the all-masked cross-entropy (one deterministic pass at t = 1)."""
    model, x0 = tiny(seed=2), clean_batch(B=8, L=12, seed=2)
    xt_all = x0.clone()
    xt_all[:, 1:] = MASK
    logits = bd3_logits(model, xt_all, x0, 1)
    exact = torch.nn.functional.cross_entropy(logits[:, 1:].reshape(-1, logits.shape[-1]), x0[:, 1:].reshape(-1))
    vals = torch.tensor([bd3_loss(model, x0, MASK, 1, torch.Generator().manual_seed(s)).item() for s in range(300)])
    assert vals.mean().item() == pytest.approx(exact.item(), rel=0.03)
    assert vals.std().item() > 0                                  # a real estimate, not the exact pass


def test_loss_trains_through_the_loop_objective():
    """compute_loss dispatches objective bd3lm to bd3_loss with the config's block size."""
    from minidlm.objectives import compute_loss
    from minidlm.train import TrainConfig
    model, x0 = tiny(), clean_batch()
    cfg = TrainConfig(objective="bd3lm", block_size=4, progress=False)
    a = compute_loss(model, x0, cfg, MASK, torch.Generator().manual_seed(0))
    b = bd3_loss(model, x0, MASK, 4, torch.Generator().manual_seed(0))
    assert a.item() == b.item()
    with pytest.raises(ValueError, match="block_size"):
        TrainConfig(objective="bd3lm", block_size=65, seq_len=64)


# ----------------------------------------------------------------------------- sampling

def _uncached_logits_at_each_call(model, trace, L, K):
    """Re-run every call of a trace without a cache: the whole prefix with the block-causal mask."""
    out = []
    for step in range(1, len(trace.states)):
        x = trace.states[step - 1]
        committed = trace.states[step] != x
        if not committed.any():
            continue
        lo = int(committed.nonzero()[0, 1]) // K * K
        hi = min(lo + K, L)
        logits = model(x[:, :hi], attn_mask=block_causal_mask(hi, K))[:, lo:hi]
        out.append(logits)
    return out


@pytest.mark.parametrize("K,spb", [(8, 2), (5, 5), (16, 4), (1, 1)])
def test_cached_sampler_equals_uncached(K, spb):
    model, L = tiny(max_len=64), 40
    kw = dict(bos_id=BOS, batch_size=3, steps_per_block=spb)
    xa, ta = bd3_generate(model, L, MASK, K, generator=torch.Generator().manual_seed(7), use_cache=True, **kw)
    xb, tb = bd3_generate(model, L, MASK, K, generator=torch.Generator().manual_seed(7), use_cache=False, **kw)
    assert torch.equal(xa, xb) and ta.nfe == tb.nfe
    assert sum(ta.fed) < sum(tb.fed) or K == L
    # the cache feeds at most the finished block plus the current one
    assert max(ta.fed) <= 2 * K


def test_cached_logits_equal_uncached_logits_at_1e_5():
    model, L, K = tiny(max_len=64, seed=4), 32, 8
    recorded = []

    class Spy(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m, self.config = m, m.config

        def new_cache(self, *a, **k):
            return self.m.new_cache(*a, **k)

        def forward(self, idx, **kw):
            out = self.m(idx, **kw)
            recorded.append(out[:, -min(K, idx.shape[1]):].clone())
            return out

    spy = Spy(model)
    x, tr = bd3_generate(spy, L, MASK, K, bos_id=BOS, batch_size=2, steps_per_block=4,
                         generator=torch.Generator().manual_seed(0))
    want = _uncached_logits_at_each_call(model, tr, L, K)
    assert len(want) == len(recorded) == tr.nfe
    for a, b in zip(recorded, want):
        torch.testing.assert_close(a[:, -b.shape[1]:], b, atol=1e-5, rtol=1e-5)


def test_revealed_tokens_never_change_and_counts_per_call():
    model = tiny()
    x, tr = bd3_generate(model, 33, MASK, 8, bos_id=BOS, batch_size=4, steps_per_block=2,
                         generator=torch.Generator().manual_seed(1))
    for a, b in zip(tr.states, tr.states[1:]):
        kept = a != MASK
        assert torch.equal(b[kept], a[kept])
    # block 0 has 7 masked tokens (after [BOS]): 4 then 3; blocks 1-3 of 8: 4 and 4; block 4 (1 token): 1
    new = [int(((a == MASK) & (b != MASK)).sum(1)[0]) for a, b in zip(tr.states, tr.states[1:])]
    assert new == [4, 3] + [4] * 6 + [1]
    assert tr.nfe == 9 and (x != MASK).all()


def test_threshold_rule_and_variable_length():
    model = tiny()
    x, tr = bd3_generate(model, 32, MASK, 8, bos_id=BOS, batch_size=2, threshold=0.0,
                         generator=torch.Generator().manual_seed(0))
    assert tr.nfe == 4                                    # threshold 0 commits a whole block per call
    # an [EOS] early in row 0: decoding of row 0 stops after its block; the rest is [EOS]
    prompt = torch.tensor([[BOS, 5, EOS], [BOS, 6, 7]])
    x, tr = bd3_generate(model, 32, MASK, 8, prompt=prompt, batch_size=2, steps_per_block=7, eos_id=EOS,
                         generator=torch.Generator().manual_seed(0))
    assert (x[0, 2:] == EOS).all() and tr.lengths[0] == 3
    assert tr.calls[0] < tr.calls[1] or tr.lengths[1] <= 8


def test_sampler_rejects_bad_input():
    model = tiny()
    with pytest.raises(ValueError, match="steps_per_block"):
        bd3_generate(model, 32, MASK, 8, bos_id=BOS)
    with pytest.raises(ValueError, match="steps_per_block"):
        bd3_generate(model, 32, MASK, 4, bos_id=BOS, steps_per_block=5)
    with pytest.raises(ValueError, match="threshold"):
        bd3_generate(model, 32, MASK, 4, bos_id=BOS, threshold=1.5)
    with pytest.raises(ValueError, match="length"):
        bd3_generate(model, 65, MASK, 4, bos_id=BOS, steps_per_block=1)
    with pytest.raises(ValueError, match="bos_id"):
        bd3_generate(model, 32, MASK, 4, steps_per_block=1)
