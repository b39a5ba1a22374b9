import json

import pytest
import torch
import torch.nn.functional as F

from minidlm.esolm import cache_bytes_by_length, esolm_loss, esolm_sample, esolm_schedule, kv_cache_bytes
from minidlm.forward import mask_tokens, sample_times
from minidlm.losses import mdlm_nelbo
from minidlm.masks import esolm_diffusion_mask, esolm_sequential_mask, gather_sorted, inverse_permutation, sort_indices
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
@pytest.mark.parametrize("variant", ["B", "A"])
def test_esolm_alpha0_zero_is_the_autoregressive_loss(model, x0, variant):
    """alpha0 = 0: z0 is all [MASK] but [BOS], the sorted order is the natural one, and the hybrid
    loss is the AR loss of the seq rows: -log p(x[l] | x[<l]) for l >= 1, mean over L - 1 targets,
    where (Eso-LM's parameterization) the query predicting x[l] is a [MASK] at position l that sees
    x[<l] and itself -- computed here through ordinary causal attention, one row per l. With a single
    clean token ([BOS]) variant A's sequential mask is B's, so both variants give it."""
    for kappa in (0.5, 0.0):
        loss, parts = esolm_loss(model, x0, 0.0, variant, kappa=kappa, generator=0, keep=_keep())
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


def test_esolm_variant_a_loss_is_the_paper_a_and_differs_from_b(model, x0):
    """Variant A's sequential term: z0's clean tokens in their natural order (no shuffle, nothing
    drawn), the A sequential mask with each row's clean count; rebuilt here from parts["z0"]."""
    loss_a, pa = esolm_loss(model, x0, 0.5, "A", generator=3, keep=_keep())
    loss_b, pb = esolm_loss(model, x0, 0.5, "B", generator=3, keep=_keep())
    assert torch.isfinite(loss_a) and pa["seq"] > 0 and pa["diff"] > 0
    assert torch.equal(pa["z0"], pb["z0"]) and torch.equal(pa["zt"], pb["zt"])   # the same draws up to there
    assert not torch.isclose(pa["seq"], pb["seq"])
    assert not torch.isclose(pa["diff"], pb["diff"])
    z0, idx = pa["z0"], pa["seq_idx"]
    assert torch.equal(idx, sort_indices(z0 == MASK, shuffle=False))            # natural order, both groups
    nd = pa["n_diff_rows"]
    xq = x0[nd:]
    z0s, xqs = gather_sorted(z0, idx), gather_sorted(xq, idx)
    n_clean = (z0s != MASK).sum(1)
    assert (n_clean >= 2).any()                                                  # A really differs from B here
    with torch.no_grad():
        logits = model(torch.cat([z0s, xqs], 1), attn_mask=esolm_sequential_mask(L, variant="A", n_clean=n_clean),
                       positions=torch.cat([idx, idx], 1))[:, :L]
    logits[..., MASK] = float("-inf")
    ce = F.cross_entropy(logits.reshape(-1, V), xqs.reshape(-1), reduction="none").view_as(xqs)
    ref = (ce * (z0s == MASK)).sum() / (x0.shape[0] - nd) / (L - 1)
    torch.testing.assert_close(pa["seq"], ref, atol=1e-5, rtol=1e-5)
    # variant A draws nothing for the sequential sort; B's numbers stay where they were
    assert esolm_loss(model, x0, 0.5, "A", generator=3, keep=_keep())[0] == loss_a


def _seq_input(n_clean):
    """A sorted [z0 ; x] pair: n_clean clean slots, then [MASK]s in z0; x = the true tokens."""
    g = torch.Generator().manual_seed(5)
    x = torch.randint(1, MASK, (1, L), generator=g)
    z0 = x.clone()
    z0[:, n_clean:] = MASK
    pos = torch.randperm(L, generator=g)[None]
    pos[:, n_clean:] = pos[:, n_clean:].sort(1).values                          # [MASK]s left to right
    return z0, x, torch.cat([pos, pos], 1)


def test_esolm_variant_a_sequential_phase_is_causal_for_masks_and_bidirectional_for_clean(model):
    n_clean, j = 6, 9                                                            # a [MASK] at sorted slot j
    z0, x, pos = _seq_input(n_clean)
    masks = {v: esolm_sequential_mask(L, variant=v, n_clean=n_clean) for v in "AB"}

    def run(v, z0_, x_):
        with torch.no_grad():
            return model(torch.cat([z0_, x_], 1), attn_mask=masks[v], positions=pos)

    base = {v: run(v, z0, x) for v in "AB"}
    # 1. the prediction at z0 slot j does not depend on x at slots >= j (nor on z0's other slots)
    later = x.clone()
    later[:, j:] = (x[:, j:] + 3) % MASK
    other_z0 = z0.clone()
    other_z0[:, :n_clean] = (z0[:, :n_clean] + 1) % MASK
    for v in "AB":
        torch.testing.assert_close(run(v, z0, later)[:, j], base[v][:, j], atol=1e-6, rtol=0)
        torch.testing.assert_close(run(v, other_z0, x)[:, j], base[v][:, j], atol=1e-6, rtol=0)
    # ... but it does depend on the earlier x tokens
    earlier = x.clone()
    earlier[:, j - 1] = (x[:, j - 1] + 3) % MASK
    assert not torch.allclose(run("A", z0, earlier)[:, j], base["A"][:, j], atol=1e-6)
    # 2. a clean token's output depends on a LATER clean token in A (both ways), not in B
    later_clean = x.clone()
    later_clean[:, n_clean - 1] = (x[:, n_clean - 1] + 1) % MASK
    for v in "AB":
        out = run(v, z0, later_clean)
        assert torch.allclose(out[:, L], base[v][:, L], atol=1e-6) == (v == "B")   # x slot 0
    # 3. A and the A mask differ from B as soon as there are >= 2 clean tokens ...
    assert not torch.allclose(base["A"][:, j], base["B"][:, j], atol=1e-6)
    # ... and coincide with at most one clean token
    z1, x1, pos1 = _seq_input(1)
    with torch.no_grad():
        a1 = model(torch.cat([z1, x1], 1), attn_mask=esolm_sequential_mask(L, variant="A", n_clean=1), positions=pos1)
        b1 = model(torch.cat([z1, x1], 1), attn_mask=esolm_sequential_mask(L), positions=pos1)
    torch.testing.assert_close(a1, b1, atol=0, rtol=0)


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


@pytest.mark.parametrize("variant", ["B", "A"])
def test_sampler_steps_compute_what_the_training_masks_score(model, variant):
    """Every step of esolm_sample (use_cache=False) gives, at the slots it decodes, the logits of the
    training-time pass of its phase on the final sample: a diffusion step decoding sorted slots
    [a, b) is the diffusion mask with n_clean = a over the whole sorted sequence (slots >= a [MASK]);
    a sequential step at slot j is the z0-half query j of [z0 ; x] under the sequential mask, z0 =
    the prompt and the diffusion-phase tokens clean, the rest [MASK]. For A this pins the sampler's
    prefix-LM cutoffs: every clean token so far in the diffusion phase, the clean tokens of z0 in the
    sequential phase (official ``mixed2`` with ``cutoffs``)."""
    P = 2
    prompt = torch.tensor([BOS, 3])
    x, tr, lg = esolm_sample(model, L, MASK, 0.5, batch_size=2, prompt=prompt, use_cache=False, variant=variant,
                             generator=1, return_logits=True)
    order = tr.order
    xs = gather_sorted(x, order)
    n_clean0 = P + tr.n_diffusion
    n_diff_steps = len(tr.step_sizes) - (L - n_clean0)
    assert 0 < tr.n_diffusion < L - P and n_diff_steps >= 2
    z0s = xs.clone()
    z0s[:, n_clean0:] = MASK
    with torch.no_grad():
        seq_ref = model(torch.cat([z0s, xs], 1), positions=torch.cat([order, order], 1),
                        attn_mask=esolm_sequential_mask(L, variant=variant, n_clean=n_clean0))[:, :L]
    seq_ref[..., MASK] = float("-inf")
    a = P
    for step, k in enumerate(tr.step_sizes, start=1):
        b = a + k
        if step <= n_diff_steps:
            inp = xs.clone()
            inp[:, a:] = MASK
            with torch.no_grad():
                ref = model(inp, attn_mask=esolm_diffusion_mask(a, L, variant), positions=order)[:, a:b]
            ref[..., MASK] = float("-inf")
        else:
            ref = seq_ref[:, a:b]
        torch.testing.assert_close(lg[step - 1], ref, atol=1e-5, rtol=0)
        a = b


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


def test_esolm_schedule_even_default_and_explicit_steps():
    n, sizes = esolm_schedule(40, 1.0, generator=0, counts="even")
    assert n == 40 and sizes == [4] * 10                                     # ~ count / 4 steps
    n, sizes = esolm_schedule(40, 0.0, generator=0, counts="even")
    assert n == 0 and sizes == [1] * 40
    n, sizes = esolm_schedule(40, 0.5, diffusion_steps=3, generator=0, counts="even")
    assert len(sizes) == 3 + 40 - n and sum(sizes) == 40 and max(sizes[:3]) - min(sizes[:3]) <= 1
    # never more steps than tokens
    assert esolm_schedule(5, 1.0, diffusion_steps=50, generator=0, counts="even")[1] == [1] * 5


def test_esolm_schedule_even_reproduces_the_earlier_numbers():
    """counts="even" is the earlier schedule, number for number (pinned from it)."""
    ones = lambda k: [1] * k                                                  # noqa: E731
    assert esolm_schedule(40, 0.5, None, 0, counts="even") == (20, [4] * 5 + ones(20))
    assert esolm_schedule(40, 0.5, 3, 0, counts="even") == (20, [7, 7, 6] + ones(20))
    assert esolm_schedule(37, 0.3, None, 1, counts="even") == (11, [4, 4, 3] + ones(26))
    assert esolm_schedule(16, 0.25, None, 0, counts="even") == (2, [2] + ones(14))
    assert esolm_schedule(64, 0.7, 5, 123, counts="even") == (47, [10, 10, 9, 9, 9] + ones(17))


def test_esolm_schedule_binomial_basics():
    for n_gen, alpha0, steps, seed in [(40, 0.5, None, 0), (37, 0.3, 4, 1), (64, 0.7, 64, 2), (5, 1.0, 50, 0),
                                       (100, 0.05, None, 3), (1, 0.5, None, 4)]:
        n, sizes = esolm_schedule(n_gen, alpha0, steps, seed)               # binomial is the default
        assert (n, sizes) == esolm_schedule(n_gen, alpha0, steps, seed, counts="binomial")
        T = max(1, round(alpha0 * n_gen / 4)) if steps is None else steps
        diff = sizes[:len(sizes) - (n_gen - n)]
        assert sum(sizes) == n_gen and sum(diff) == n and all(k > 0 for k in diff) and len(diff) <= T
        assert sizes[len(diff):] == [1] * (n_gen - n)
        # the same uniforms decide who goes to the diffusion phase in both schedules
        assert n == esolm_schedule(n_gen, alpha0, steps, seed, counts="even")[0]
    n, sizes = esolm_schedule(40, 1.0, generator=0)
    assert n == 40 and len(sizes) <= 10                                      # alpha0 = 1: no sequential step
    assert esolm_schedule(40, 1.0, diffusion_steps=1, generator=0) == (40, [40])
    assert esolm_schedule(40, 0.0, generator=0) == (0, [1] * 40)             # alpha0 = 0: all sequential
    assert esolm_schedule(40, 0.0, diffusion_steps=7, generator=0) == (0, [1] * 40)
    with pytest.raises(ValueError, match="counts"):
        esolm_schedule(40, 0.5, counts="uniform")


def test_esolm_schedule_binomial_counts_follow_the_forward_process():
    """T steps from t = 1 to 0 under alpha_t = alpha0 (1 - t): n_diffusion ~ Binomial(n, alpha0), every
    step reveals n alpha0 / T on average (the first: reveal probability alpha0 / T), and given the
    r positions still masked before step k it reveals Binomial(r, (alpha_s - alpha_t) / (1 - alpha_t))."""
    n, alpha0, T, R = 400, 0.6, 4, 1500
    draws = [esolm_schedule(n, alpha0, T, seed) for seed in range(R)]
    n_diff = torch.tensor([d[0] for d in draws], dtype=torch.float64)
    se = (n * alpha0 * (1 - alpha0) / R) ** 0.5
    assert abs(n_diff.mean() - n * alpha0) < 4 * se
    assert abs(n_diff.var() / (n * alpha0 * (1 - alpha0)) - 1) < 0.15       # binomial spread, not fixed
    per_step = torch.tensor([d[1][:T] for d in draws], dtype=torch.float64)  # (R, T): no step is empty here
    assert all(len(d[1]) == T + n - d[0] for d in draws)
    p1 = alpha0 / T
    assert abs(per_step[:, 0].mean() - n * p1) < 4 * (n * p1 * (1 - p1) / R) ** 0.5
    for k in range(T):
        assert abs(per_step[:, k].mean() - n * alpha0 / T) < 4 * (n * p1 / R) ** 0.5
    # conditional law of step k given the positions still masked before it
    remaining = n - torch.cat([torch.zeros(R, 1, dtype=torch.float64), per_step.cumsum(1)[:, :-1]], 1)  # (R, T)
    for k in range(T):
        a_t, a_s = alpha0 * k / T, alpha0 * (k + 1) / T                      # t = 1 - k/T, s = t - 1/T
        p = (a_s - a_t) / (1 - a_t)
        resid = per_step[:, k] - remaining[:, k] * p
        assert abs(resid.mean()) < 4 * ((remaining[:, k] * p * (1 - p)).mean() / R) ** 0.5
        assert abs((resid ** 2).mean() / (remaining[:, k] * p * (1 - p)).mean() - 1) < 0.15


def test_esolm_sample_passes_counts_through(model):
    for counts in ("even", "binomial"):
        _, tr = esolm_sample(model, L, MASK, 0.6, prompt=[BOS], generator=3, counts=counts)
        assert (tr.n_diffusion, tr.step_sizes) == esolm_schedule(L - 1, 0.6, generator=3, counts=counts)
    _, tr = esolm_sample(model, L, MASK, 0.6, prompt=[BOS], generator=3)
    assert tr.step_sizes == esolm_schedule(L - 1, 0.6, generator=3)[1]     # default: binomial
    with pytest.raises(ValueError, match="counts"):
        esolm_sample(model, L, MASK, 0.6, counts="uniform")


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
