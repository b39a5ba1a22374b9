"""Tests for minidlm.model: one Transformer, three attention modes, KV cache, RoPE positions."""
import pytest
import torch
import torch.nn.functional as F

from minidlm.model import PRESETS, KVCache, Model, ModelConfig

V, LMAX = 50, 16


def tiny(init_std=None, **kw) -> Model:
    """A 2-layer model; init_std re-draws every weight larger, so that attention is far
    from uniform and the output depends strongly on the context (like a trained model)."""
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, max_len=LMAX, n_layer=2, n_head=2, d_model=32)
    cfg.update(kw)
    m = Model(ModelConfig(**cfg)).eval()
    if init_std is not None:
        with torch.no_grad():
            for p in m.parameters():
                p.normal_(0.0, init_std)
    return m


def tokens(B=3, L=LMAX, seed=1, high=V):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, (B, L), generator=g)


# ----------------------------------------------------------------------------- shapes and modes

def test_output_shapes_all_modes():
    m, x = tiny(), tokens()
    assert m(x).shape == (3, LMAX, V)
    assert m(x, is_causal=True).shape == (3, LMAX, V)
    full = torch.ones(LMAX, LMAX, dtype=torch.bool)
    assert m(x, attn_mask=full).shape == (3, LMAX, V)
    assert m(x, attn_mask=full.expand(3, LMAX, LMAX)).shape == (3, LMAX, V)
    assert m(x, attn_mask=full.expand(3, 1, LMAX, LMAX)).shape == (3, LMAX, V)
    assert m(x[:, :5]).shape == (3, 5, V)


def test_all_true_mask_equals_no_mask():
    m, x = tiny(), tokens()
    full = torch.ones(LMAX, LMAX, dtype=torch.bool)
    torch.testing.assert_close(m(x, attn_mask=full), m(x), atol=1e-5, rtol=0)


def test_is_causal_equals_explicit_tril_mask():
    m, x = tiny(), tokens()
    tril = torch.tril(torch.ones(LMAX, LMAX, dtype=torch.bool))
    assert torch.allclose(m(x, is_causal=True), m(x, attn_mask=tril), atol=1e-5)
    assert torch.allclose(m(x, is_causal=True), m(x, attn_mask=tril.expand(3, 1, LMAX, LMAX)), atol=1e-5)


def test_causal_cannot_see_the_future():
    m, x = tiny(), tokens()
    j = 9
    y = x.clone()
    y[:, j] = (x[:, j] + 1) % V
    a, b = m(x, is_causal=True), m(y, is_causal=True)
    assert torch.equal(a[:, :j], b[:, :j])
    assert not torch.allclose(a[:, j], b[:, j])


def test_bidirectional_sees_the_future():
    m, x = tiny(init_std=0.3), tokens()
    j = 9
    y = x.clone()
    y[:, j] = (x[:, j] + 1) % V
    a, b = m(x), m(y)
    assert (a[:, :j] - b[:, :j]).abs().amax(dim=(0, 2)).min() > 1e-3  # every earlier position moves


def test_mask_id_logit_is_minus_inf():
    m = tiny(mask_id=V - 1)
    x = tokens(high=V)  # inputs may contain [MASK]
    for logits in (m(x), m(x, is_causal=True)):
        assert torch.isneginf(logits[..., V - 1]).all()
        assert torch.isfinite(logits[..., : V - 1]).all()
    assert torch.isfinite(tiny()(x)).all()  # mask_id=None: nothing forced


# ----------------------------------------------------------------------------- KV cache

def test_kv_cache_chunks_match_full_causal_forward():
    m, x = tiny(), tokens(L=9)
    full = m(x, is_causal=True)
    cache = m.new_cache(batch_size=3)
    outs, sizes = [], []
    for a, b in [(0, 5), (5, 8), (8, 9)]:
        outs.append(m(x[:, a:b], cache=cache, is_causal=True))
        sizes.append((len(cache), cache.nbytes()))
    torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=0)
    assert [n for n, _ in sizes] == [5, 8, 9]
    per_pos = sizes[0][1] // 5  # 2 (K, V) * n_layer * B * d_model * 4 bytes
    assert per_pos == 2 * 2 * 3 * 32 * 4
    assert [nb for _, nb in sizes] == [per_pos * n for n, _ in sizes]
    assert cache.nbytes(allocated=True) == per_pos * LMAX  # preallocated, bounded by capacity


def test_kv_cache_bidirectional_chunk_and_explicit_mask():
    # prefix in the cache, then a block that sees the prefix and itself bidirectionally
    m, x = tiny(), tokens(L=10)
    mask = torch.tril(torch.ones(10, 10, dtype=torch.bool))
    mask[6:, 6:] = True  # block-causal: last block bidirectional
    full = m(x, attn_mask=mask)
    cache = m.new_cache(3)
    a = m(x[:, :6], cache=cache, is_causal=True)
    b = m(x[:, 6:], cache=cache)  # no mask: new tokens see all cached + each other
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-5, rtol=0)
    cache.truncate(6)
    c = m(x[:, 6:], cache=cache, attn_mask=torch.ones(4, 10, dtype=torch.bool))
    torch.testing.assert_close(c, b, atol=1e-6, rtol=0)


def test_kv_cache_errors():
    m, x = tiny(), tokens()
    cache = m.new_cache(batch_size=3, capacity=8)
    m(x[:, :6], cache=cache, is_causal=True)
    with pytest.raises(ValueError, match=r"cache.*batch size 3.*batch size 2"):
        m(x[:2, 6:7], cache=cache, is_causal=True)
    with pytest.raises(ValueError, match="cache.*capacity"):
        m(x[:, 6:9], cache=cache, is_causal=True)
    assert len(cache) == 6  # failed calls leave it unchanged
    with pytest.raises(ValueError, match="attn_mask"):
        m(x[:, 6:8], cache=cache, attn_mask=torch.ones(2, 2, dtype=torch.bool))  # needs (2, 8)
    with pytest.raises(ValueError, match="capacity"):
        m.new_cache(3, capacity=LMAX + 1)
    with pytest.raises(ValueError, match=r"n: .*len\(cache\)=6"):
        cache.truncate(7)
    assert isinstance(cache, KVCache) and "len=6" in repr(cache)


# ----------------------------------------------------------------------------- RoPE positions

def test_permuting_tokens_with_their_positions_permutes_logits():
    m, x = tiny(init_std=0.3), tokens()
    pos = torch.arange(LMAX)
    perm = torch.randperm(LMAX, generator=torch.Generator().manual_seed(3))
    ref = m(x)
    torch.testing.assert_close(m(x, positions=pos), ref, atol=0, rtol=0)
    out = m(x[:, perm], positions=pos[perm])
    torch.testing.assert_close(out, ref[:, perm], atol=1e-5, rtol=0)
    out_b = m(x[:, perm], positions=pos[perm].expand(3, LMAX))  # (B, L) form
    torch.testing.assert_close(out_b, ref[:, perm], atol=1e-5, rtol=0)
    # without the positions the permuted sequence is a different input
    assert (m(x[:, perm]) - ref[:, perm]).abs().max() > 0.1


# ----------------------------------------------------------------------------- training

def _overfit(model, batch_fn, steps):
    # lr 1e-2: over seeds 0-7 the final losses stay below 0.03 for both tasks (bound: 0.1)
    opt = model.configure_optimizer(weight_decay=0.0, lr=1e-2, betas=(0.9, 0.99), device_type="cpu")
    model.train()
    for _ in range(steps):
        loss = batch_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss.item()


def test_overfit_tiny_batch_bidirectional_masked():
    torch.manual_seed(0)
    mask_id = V - 1
    m = Model(ModelConfig(vocab_size=V, max_len=LMAX, n_layer=2, n_head=2, d_model=32, mask_id=mask_id))
    x = tokens(B=8, high=V - 1, seed=5)
    hide = torch.rand(8, LMAX, generator=torch.Generator().manual_seed(6)) < 0.5
    inp = x.masked_fill(hide, mask_id)

    def loss_fn():
        logits = m(inp)
        return F.cross_entropy(logits[hide], x[hide])

    assert _overfit(m, loss_fn, 300) < 0.1


def test_overfit_tiny_batch_causal_next_token():
    torch.manual_seed(0)
    m = Model(ModelConfig(vocab_size=V, max_len=LMAX, n_layer=2, n_head=2, d_model=32))
    x = tokens(B=8, seed=7)
    x[:, 0] = torch.randperm(V)[:8]  # distinct first tokens: every continuation is determined

    def loss_fn():
        logits = m(x[:, :-1], is_causal=True)
        return F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))

    assert _overfit(m, loss_fn, 300) < 0.1


def test_configure_optimizer_decays_only_matrices():
    m = tiny(bias=True)
    opt = m.configure_optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == m.num_params(non_embedding=False)
    with pytest.raises(ValueError, match="lr"):
        m.configure_optimizer(weight_decay=0.1, lr=0, betas=(0.9, 0.95), device_type="cpu")
    with pytest.raises(ValueError, match="device_type"):
        m.configure_optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="tpu")


# ----------------------------------------------------------------------------- accounting, init

def test_param_counts_and_flops():
    m = tiny()
    d, nl = 32, 2
    per_layer = 3 * d * d + d * d + 2 * 4 * d * d + 2 * d  # qkv, proj, mlp, two norms
    expected = V * d + nl * per_layer + d  # tied embedding + blocks + final norm
    assert m.num_params(non_embedding=False) == expected
    assert m.num_params() == expected  # tied: the embedding is the LM head's matmul
    untied = tiny(tie_embeddings=False)
    assert untied.num_params(non_embedding=False) == expected + V * d
    assert untied.num_params(non_embedding=True) == expected
    assert m.flops_per_token(LMAX) == 6 * m.num_params() + 12 * nl * d * LMAX


def test_tied_embeddings_share_storage():
    m = tiny()
    assert m.lm_head.weight is m.tok_emb.weight
    assert tiny(tie_embeddings=False).lm_head.weight is not tiny(tie_embeddings=False).tok_emb.weight


def test_residual_projection_init_is_scaled():
    torch.manual_seed(0)
    m = Model(ModelConfig(vocab_size=V, max_len=LMAX, n_layer=8, n_head=4, d_model=128))
    std_proj = m.blocks[0].mlp.proj.weight.std().item()
    std_fc = m.blocks[0].mlp.fc.weight.std().item()
    assert abs(std_fc - 0.02) < 0.002
    assert abs(std_proj - 0.02 / 4) < 0.0005  # 1/sqrt(2 * 8)


# ----------------------------------------------------------------------------- config and errors

def test_presets_and_config_round_trip():
    nano = ModelConfig.preset("nano", vocab_size=1000, mask_id=999)
    assert (nano.n_layer, nano.d_model, nano.n_head, nano.max_len) == (4, 128, 4, 64)
    assert 0.5e6 < Model(nano).num_params() < 2e6, "nano is the ~1M-parameter CPU model"
    mini = ModelConfig.preset("mini", vocab_size=1000)
    assert 3e6 < Model(mini).num_params() < 8e6
    small = ModelConfig.preset("small", vocab_size=1000)
    assert (small.n_layer, small.d_model, small.n_head, small.max_len) == (12, 768, 12, 1024)
    assert set(PRESETS) == {"nano", "mini", "small"}
    assert ModelConfig.from_dict(nano.to_dict()) == nano
    with pytest.raises(ValueError, match="name.*mini.*nano.*small"):
        ModelConfig.preset("huge", vocab_size=1000)
    with pytest.raises(ValueError, match="vocab_size"):
        ModelConfig.preset("nano")
    with pytest.raises(ValueError, match="unknown.*n_layers"):
        ModelConfig.from_dict({**nano.to_dict(), "n_layers": 3})
    with pytest.raises(ValueError, match="missing.*vocab_size"):
        ModelConfig.from_dict({k: v for k, v in nano.to_dict().items() if k != "vocab_size"})


@pytest.mark.parametrize("kw, match", [
    (dict(d_model=30, n_head=4), "d_model.*n_head"),
    (dict(d_model=24, n_head=8), "d_model.*even"),  # head dim 3: RoPE needs pairs
    (dict(n_layer=0), "n_layer"),
    (dict(vocab_size=-1), "vocab_size"),
    (dict(mask_id=V), "mask_id"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_configs(kw, match):
    cfg = dict(vocab_size=V, max_len=LMAX, n_layer=2, n_head=2, d_model=32)
    cfg.update(kw)
    with pytest.raises(ValueError, match=match):
        ModelConfig(**cfg)


def test_bad_forward_inputs():
    m, x = tiny(), tokens()
    with pytest.raises(ValueError, match=r"idx.*max_len"):
        m(torch.zeros(1, LMAX + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="attn_mask.*is_causal"):
        m(x, attn_mask=torch.ones(LMAX, LMAX, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match="idx.*integer"):
        m(x.float())
    with pytest.raises(ValueError, match="idx.*2-D"):
        m(x[0])
    with pytest.raises(ValueError, match="idx.*vocab_size"):
        m(x + V)
    with pytest.raises(ValueError, match="attn_mask.*bool"):
        m(x, attn_mask=torch.ones(LMAX, LMAX))
    with pytest.raises(ValueError, match="attn_mask.*shape"):
        m(x, attn_mask=torch.ones(LMAX, LMAX - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="positions.*max_len"):
        m(x, positions=torch.arange(LMAX) + 1)
    with pytest.raises(ValueError, match="positions.*shape"):
        m(x, positions=torch.arange(LMAX - 1))
