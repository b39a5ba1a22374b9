import json

import pytest
import torch
import torch.nn.functional as F

from minidlm.esolm import cache_bytes_by_length, esolm_loss, esolm_sample, esolm_schedule, kv_cache_bytes
from minidlm.forward import mask_tokens, sample_times
from minidlm.losses import mdlm_nelbo
from minidlm.masks import esolm_diffusion_mask, gather_sorted, inverse_permutation, sort_indices
from minidlm.model import Model, ModelConfig

V, MASK, BOS, L = 12, 11, 0, 16


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Model(ModelConfig(vocab_size=V, max_len=2 * L, n_layer=2, n_head=2, d_model=32, mask_id=MASK)).eval()


@pytest.fixture(scope="module")
def x0():
    x = torch.randint(1, MASK, (4, L), generator=torch.Generator().manual_seed(1))
    x[:, 0] = BOS
    return x


def _keep():
    keep = torch.zeros(L, dtype=torch.bool)
    keep[0] = True
    return keep


# ------------------------------------------------------------------ the loss: exact relations
def test_esolm_alpha0_zero_is_the_autoregressive_loss(model, x0):
    """alpha0 = 0: z0 is all [MASK] but [BOS], the sorted order is the natural one, and the hybrid
    loss is the AR loss of the seq rows: -log p(x[l] | x[<l]) for l >= 1, mean over L - 1 targets,
    where (Eso-LM's parameterization) the query predicting x[l] is a [MASK] at position l that sees
    x[<l] and itself -- computed here through ordinary causal attention, one row per l."""
    for kappa in (0.5, 0.0):
        loss, parts = esolm_loss(model, x0, 0.0, kappa=kappa, generator=0, keep=_keep())
        xs = x0[parts["n_diff_rows"]:]                                       # the seq rows
        B = xs.shape[0]
        rows = xs[:, None, :].repeat(1, L - 1, 1)                          # (B, L-1, L): row l-1 for target l
        ls = torch.arange(1, L)
        rows[:, ls - 1, ls] = MASK                                          # [MASK] at l; later tokens are unseen
        with torch.no_grad():
            logits = model(rows.reshape(B * (L - 1), L), is_causal=True).view(B, L - 1, L, V)
        at_l = logits[:, ls - 1, ls]                                        # (B, L-1, V): the [MASK] query at l
        ar = F.cross_entropy(at_l.reshape(-1, V), xs[:, 1:].reshape(-1))
        assert parts["diff"] == 0 and parts["n_seq_tokens"] == B * (L - 1)
        torch.testing.assert_close(loss, ar, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["B", "A"])
def test_esolm_alpha0_one_is_the_mdlm_nelbo(model, x0, variant):
    """alpha0 = 1: the sequential term vanishes (z0 = x) and the loss is MDLM's log-linear NELBO of
    the diff rows, per counted token, for the same z_t, rebuilt here from the same random draws."""
    loss, parts = esolm_loss(model, x0, 1.0, variant, kappa=0.5, generator=7, keep=_keep())
    assert parts["seq"] == 0 and parts["z0"] is None
    xd = x0[:parts["n_diff_rows"]]
    B = xd.shape[0]
    g = torch.Generator().manual_seed(7)                                    # the documented draw order
    t = sample_times(B, 1e-3, generator=g)
    zt = mask_tokens(xd, 1 - t.double(), MASK, g, keep=_keep())
    idx = sort_indices(zt == MASK, shuffle=True, generator=g)
    assert torch.equal(t, parts["t"]) and torch.equal(zt, parts["zt"]) and torch.equal(idx, parts["diff_idx"])
    n_clean = (zt != MASK).sum(1)
    with torch.no_grad():
        sorted_logits = model(gather_sorted(zt, idx), attn_mask=esolm_diffusion_mask(n_clean, L, variant),
                              positions=idx)
    logits = gather_sorted(sorted_logits, inverse_permutation(idx))       # back to the original order
    ref = mdlm_nelbo(logits, xd, zt, t, MASK, "loglinear", reduction="sequence").sum() / (B * (L - 1))
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)


def test_esolm_loss_mixes_both_terms_and_trains(model, x0):
    m = Model(ModelConfig(vocab_size=V, max_len=2 * L, n_layer=1, n_head=2, d_model=16, mask_id=MASK))
    loss, parts = esolm_loss(m, x0, 0.5, generator=0, keep=_keep())
    assert parts["seq"] > 0 and parts["diff"] > 0
    torch.testing.assert_close(loss.detach(), parts["seq"] + parts["diff"])
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    # the same generator gives the same loss
    assert esolm_loss(model, x0, 0.5, generator=3)[0] == esolm_loss(model, x0, 0.5, generator=3)[0]


def test_esolm_variant_b_later_clean_tokens_do_not_change_earlier_ones(model):
    g = torch.Generator().manual_seed(0)
    n_clean, j = 8, 4
    tokens = torch.randint(0, MASK, (1, L), generator=g)
    tokens[:, n_clean:] = MASK                                               # sorted: clean first
    positions = torch.randperm(L, generator=g)[None]
    perturbed = tokens.clone()
    perturbed[0, j] = (tokens[0, j] + 1) % MASK                              # a later clean token (slot j)
    for variant in "BA":
        mask = esolm_diffusion_mask(n_clean, L, variant)
        with torch.no_grad():
            a = model(tokens, attn_mask=mask, positions=positions)
            b = model(perturbed, attn_mask=mask, positions=positions)
        earlier_same = torch.allclose(a[:, :j], b[:, :j], atol=1e-6)
        assert earlier_same == (variant == "B")                             # A: clean tokens see later clean ones
        assert not torch.allclose(a[:, j:], b[:, j:], atol=1e-6)            # later slots do change


# ------------------------------------------------------------------ sampling with the exact cache
@pytest.mark.parametrize("alpha0", [0.0, 0.3, 0.7, 1.0])
def test_cached_sampling_equals_uncached(model, alpha0):
    for seed in (0, 1):
        kw = dict(batch_size=2, prompt=torch.tensor([BOS]), generator=seed, return_logits=True)
        x1, tr1, lg1 = esolm_sample(model, L, MASK, alpha0, use_cache=True, **kw)
        x2, tr2, lg2 = esolm_sample(model, L, MASK, alpha0, use_cache=False, **kw)
        assert torch.equal(x1, x2)
        assert tr1.step_sizes == tr2.step_sizes and tr1.nfe == tr2.nfe == len(lg1) == len(lg2)
        for a, b in zip(lg1, lg2):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_esolm_sampler_reveals_every_position_once_and_keeps_the_prompt(model):
    prompt = torch.tensor([BOS, 3, 4])
    for alpha0 in (0.0, 0.5, 1.0):
        x, tr = esolm_sample(model, L, MASK, alpha0, batch_size=3, prompt=prompt, generator=2)
        assert (x != MASK).all() and (x[:, :3] == prompt).all()
        assert tr.steps == len(tr.step_sizes) == tr.nfe and sum(tr.step_sizes) == L - 3
        assert (tr.reveal_step[:, :3] == 0).all()
        for r in range(3):                                                   # every position exactly once
            steps = tr.reveal_step[r, 3:]
            assert steps.min() >= 1 and steps.max() <= tr.steps
            assert torch.bincount(steps, minlength=tr.steps + 1)[1:].tolist() == tr.step_sizes
        for k in range(1, tr.steps + 1):                                     # states only ever fill in
            prev, cur = tr.states[k - 1], tr.states[k]
            changed = prev != cur
            assert (prev[changed] == MASK).all() and torch.equal(changed, tr.reveal_step == k)
            assert torch.equal(tr.state_at(k), cur)
        # the sequential phase goes left to right
        seq = tr.order[:, 3 + tr.n_diffusion:]
        assert torch.equal(seq, seq.sort(1).values)
        assert torch.equal(tr.order.sort(1).values, torch.arange(L).expand(3, L))


def test_esolm_schedule_default_and_explicit_steps():
    n, sizes = esolm_schedule(40, 1.0, generator=0)
    assert n == 40 and sizes == [4] * 10                                     # ~ count / 4 steps
    n, sizes = esolm_schedule(40, 0.0, generator=0)
    assert n == 0 and sizes == [1] * 40
    n, sizes = esolm_schedule(40, 0.5, diffusion_steps=3, generator=0)
    assert len(sizes) == 3 + 40 - n and sum(sizes) == 40 and max(sizes[:3]) - min(sizes[:3]) <= 1
    assert esolm_schedule(5, 1.0, diffusion_steps=50, generator=0)[1] == [1] * 5   # never more steps than tokens


def test_esolm_variant_a_samples_without_cache(model):
    x, tr = esolm_sample(model, L, MASK, 0.5, prompt=[BOS], use_cache=False, variant="A", generator=0)
    assert (x != MASK).all() and tr.cache_lengths == []


def test_cache_memory_grows_linearly_and_holds_only_clean_tokens(model):
    lengths = [8, 16, 32]
    peak = cache_bytes_by_length(model, lengths, alpha0=0.5)
    per_token = [peak[n] / n for n in lengths]
    assert per_token[0] == per_token[1] == per_token[2] > 0
    assert all(peak[n] == kv_cache_bytes(model, n) for n in lengths)
    _, tr = esolm_sample(model, L, MASK, 0.6, prompt=[BOS], generator=4)
    decoded_before = [1 + sum(tr.step_sizes[:k]) for k in range(len(tr.step_sizes))]
    assert tr.cache_lengths == decoded_before                                # only clean K/V stay cached


# ------------------------------------------------------------------ input checks and training
def test_esolm_bad_inputs_name_the_argument(model, x0):
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="alpha0"):
            esolm_loss(model, x0, bad)
        with pytest.raises(ValueError, match="alpha0"):
            esolm_sample(model, L, MASK, bad)
    with pytest.raises(ValueError, match="variant"):
        esolm_loss(model, x0, 0.5, variant="C")
    with pytest.raises(ValueError, match="variant"):
        esolm_sample(model, L, MASK, 0.5, variant="A")                      # A has no exact cache
    with pytest.raises(ValueError, match="kappa"):
        esolm_loss(model, x0, 0.5, kappa=1.0)                                # no seq rows for alpha0 < 1
    with pytest.raises(ValueError, match="kappa"):
        esolm_loss(model, x0[:1], 0.5)                                       # B = 1 cannot be split
    short = Model(ModelConfig(vocab_size=V, max_len=L, n_layer=1, n_head=2, d_model=16, mask_id=MASK))
    with pytest.raises(ValueError, match="model"):
        esolm_loss(short, x0, 0.5)                                           # needs max_len >= 2L
    with pytest.raises(ValueError, match="keep"):
        esolm_loss(model, x0, 0.5, keep=torch.zeros(L + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="diffusion_steps"):
        esolm_sample(model, L, MASK, 0.5, diffusion_steps=0)
    with pytest.raises(ValueError, match="length"):
        esolm_sample(model, 4 * L, MASK, 0.5)
    cache = model.new_cache(2, capacity=L)
    esolm_sample(model, L, MASK, 0.5, batch_size=2, cache=cache, generator=0)
    with pytest.raises(ValueError, match="cache"):
        esolm_sample(model, L, MASK, 0.5, batch_size=3, cache=cache, generator=0)
    with pytest.raises(ValueError, match="cache"):                          # the model's own check, too
        model(torch.zeros(3, 2, dtype=torch.long), cache=cache)


def test_esolm_trains_from_the_config_and_the_command_line(tmp_path, capsys):
    from minidlm.__main__ import main
    from minidlm.train import TrainConfig, build_model, train

    with pytest.raises(ValueError, match="alpha0"):
        TrainConfig(objective="esolm", alpha0=1.5)
    with pytest.raises(ValueError, match="variant"):
        TrainConfig(objective="esolm", variant="C")
    tiny = dict(model_overrides=dict(d_model=32, n_layer=1, n_head=2), batch_size=4,
                progress=False, eval_every=0, ckpt_every=0, eval_batches=1)
    s = train(TrainConfig(objective="esolm", steps=3, alpha0=0.5, out=str(tmp_path / "a"), **tiny))
    assert s["val_loss"] > 0
    ck = json.loads((tmp_path / "a" / "last.json").read_text())
    assert "esolm" in json.dumps(ck)

    class Tok:
        vocab_size, mask_id = 20, 19
    m = build_model(TrainConfig(objective="esolm", seq_len=16), Tok)
    assert m.config.max_len == 32 and m.config.mask_id == 19
    args = ["train", "--objective", "esolm", "--alpha0", "0.0", "--variant", "A", "--steps", "2", "--d-model", "32",
            "--n-layer", "1", "--n-head", "2", "--batch-size", "4", "--eval-every", "0",
            "--ckpt-every", "0", "--out", str(tmp_path / "b"), "--no-progress"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2


def test_sample_stories_draws_from_an_esolm_model():
    """evaluate.sample_stories samples L = max_len / 2 tokens from an Eso-LM model in two phases."""
    from minidlm.data import load_tales_tokenizer
    from minidlm.evaluate import sample_stories
    from minidlm.model import Model, ModelConfig

    tok = load_tales_tokenizer()
    torch.manual_seed(0)
    m = Model(ModelConfig(vocab_size=tok.vocab_size, max_len=32, n_layer=1, n_head=2, d_model=16,
                          mask_id=tok.mask_id)).eval()
    texts = sample_stories(m, tok, 3, objective="esolm", alpha0=0.5, seed=0)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    with pytest.raises(ValueError, match="alpha0"):
        sample_stories(m, tok, 1, objective="esolm")
