import pytest
import torch

from minidlm.model import Model, ModelConfig
from minidlm.sampling import filter_logits, generate, generate_ar, transfer_counts

V, MASK, L = 12, 11, 16


class Oracle(torch.nn.Module):
    """A 'model' that puts all its mass on a fixed target sequence."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, x, **kw):
        self.calls += 1
        logits = torch.full((*x.shape, V), -30.0)
        logits.scatter_(-1, self.target.expand(x.shape[0], -1)[..., None], 10.0)
        return logits


TARGET = torch.randint(0, 10, (1, L), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return Model(ModelConfig(vocab_size=V, max_len=L, n_layer=2, n_head=2, d_model=32, mask_id=MASK)).eval()


@pytest.mark.parametrize("kw", [dict(remasking="low_confidence"), dict(remasking="random"),
                                dict(remasking="low_confidence", block_length=4),
                                dict(remasking="random", temperature=0.0),
                                dict(remasking="low_confidence", top_k=3, top_p=0.9)])
def test_oracle_makes_every_sampler_return_the_target(kw):
    out, trace = generate(Oracle(TARGET), L, 8, MASK, batch_size=3, generator=0, **kw)
    assert torch.equal(out, TARGET.expand(3, -1))
    assert trace.nfe == 8


@pytest.mark.parametrize("remasking,block", [("low_confidence", None), ("random", None), ("low_confidence", 4)])
def test_trace_invariants(tiny_model, remasking, block):
    steps = 8
    out, tr = generate(tiny_model, L, steps, MASK, batch_size=4, remasking=remasking,
                       block_length=block, generator=1)
    assert not (out == MASK).any(), "no [MASK] may remain"
    assert tr.steps == steps and tr.nfe == steps
    n_blocks = 1 if block is None else L // block
    per_block = steps // n_blocks
    expected = transfer_counts(torch.full((4,), L // n_blocks), per_block).repeat(1, n_blocks)   # (B, steps)
    for k in range(steps):
        before, after = tr.states[k], tr.states[k + 1]
        revealed = before != MASK
        assert torch.equal(after[revealed], before[revealed]), "a revealed token changed"
        newly = (before == MASK) & (after != MASK)
        assert torch.equal(newly.sum(1), expected[:, k]), "wrong number of positions revealed"
        if block is not None:   # semi-AR: nothing beyond the current block is revealed
            blk = k // per_block
            assert not newly[:, (blk + 1) * block:].any()
        assert torch.equal(tr.state_at(k + 1), after), "replaying the trace must give the same state"
    assert (tr.reveal_step >= 1).all()


def test_prompt_untouched_and_infilling(tiny_model):
    prompt = torch.tensor([3, 4, 5])
    out, tr = generate(tiny_model, L, 13, MASK, batch_size=2, prompt=prompt, generator=2)
    assert (out[:, :3] == prompt).all() and (tr.reveal_step[:, :3] == 0).all()
    given = torch.full((1, L), MASK)
    given[0, ::2] = 7
    out, tr = generate(tiny_model, L, 4, MASK, given=given, generator=2)
    assert (out[0, ::2] == 7).all() and not (out == MASK).any()


def test_same_seed_same_sample(tiny_model):
    a, _ = generate(tiny_model, L, 8, MASK, batch_size=2, generator=5)
    b, _ = generate(tiny_model, L, 8, MASK, batch_size=2, generator=5)
    c, _ = generate(tiny_model, L, 8, MASK, batch_size=2, generator=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_transfer_counts_floor_and_remainder():
    c = transfer_counts(torch.tensor([10, 3, 8]), 4)
    assert c.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0], [2, 2, 2, 2]]


def test_filters():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert torch.isinf(filter_logits(logits, top_k=1)).sum() == 3
    p = torch.softmax(logits, -1)   # [0.087, 0.644, 0.237, 0.032]
    kept = ~torch.isinf(filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[False, True, True, False]]
    assert p[0, 1] < 0.7


def test_ar_cached_equals_uncached():
    torch.manual_seed(0)
    m = Model(ModelConfig(vocab_size=V, max_len=L, n_layer=2, n_head=2, d_model=32)).eval()
    a, ta = generate_ar(m, L, batch_size=3, bos_id=1, generator=3)
    b, tb = generate_ar(m, L, batch_size=3, bos_id=1, generator=3, use_cache=False)
    assert torch.equal(a, b) and ta.nfe == tb.nfe == L - 1
    assert ta.steps == L - 1 and torch.equal(ta.final, a)
    assert all(torch.equal(ta.state_at(k), ta.states[k]) for k in range(ta.steps + 1))


def test_bad_arguments(tiny_model):
    with pytest.raises(ValueError, match="steps"):
        generate(tiny_model, L, 0, MASK)
    with pytest.raises(ValueError, match="steps"):
        generate(tiny_model, L, L + 1, MASK)
    with pytest.raises(ValueError, match="block_length"):
        generate(tiny_model, L, 4, MASK, block_length=5)
    with pytest.raises(ValueError, match="temperature"):
        generate(tiny_model, L, 4, MASK, temperature=-1)
    with pytest.raises(ValueError, match="prompt"):
        generate(tiny_model, L, 4, MASK, prompt=torch.arange(L))
    with pytest.raises(ValueError, match="remasking"):
        generate(tiny_model, L, 4, MASK, remasking="greedy")


def test_entropy_remasking_commits_the_most_certain_positions_first():
    """Dream's order: the position entropy is exact (uniform over k tokens: log k), and each step
    commits the masked positions of lowest entropy, whichever token was drawn there."""
    from minidlm.sampling import position_entropy

    Lx, Vx, mask = 6, 8, 7
    k_of = torch.tensor([1, 8, 2, 5, 3, 4])                 # position l: uniform over its first k_of[l] tokens
    logits = torch.full((1, Lx, Vx), float("-inf"))
    for l, k in enumerate(k_of.tolist()):
        logits[0, l, :k] = 0.0
    assert torch.allclose(position_entropy(logits)[0], k_of.double().log())
    x, tr = generate(lambda z: logits.clone(), Lx, 5, mask, prompt=torch.tensor([0]), remasking="entropy",
                     generator=0)
    # positions 1..5 committed one per step, in increasing k: 2 (k=2), 4 (3), 5 (4), 3 (5), 1 (8)
    assert tr.reveal_step[0, 1:].tolist() == [5, 1, 4, 2, 3]
    assert bool((x[0, 1:] < k_of[1:]).all())


# ------------------------------------------------------------------ ancestral, adaptive, editing
from minidlm.sampling import ancestral, edit, generate_adaptive, least_confident_positions  # noqa: E402


def test_ancestral_oracle_and_invariants(tiny_model):
    out, tr = ancestral(Oracle(TARGET), L, 10, MASK, batch_size=2, generator=0)
    assert torch.equal(out, TARGET.expand(2, -1))
    out, tr = ancestral(tiny_model, L, 10, MASK, batch_size=3, generator=1)
    assert not (out == MASK).any()
    for k in range(tr.steps):
        revealed = tr.states[k] != MASK
        assert torch.equal(tr.states[k + 1][revealed], tr.states[k][revealed])
        assert torch.equal(tr.state_at(k + 1), tr.states[k + 1])


def test_no_change_cache_saves_calls_without_changing_the_sample(tiny_model):
    steps = 64                                    # 4x more steps than tokens: many steps reveal nothing
    a, ta = ancestral(tiny_model, L, steps, MASK, batch_size=1, generator=3, cache_no_change=True)
    b, tb = ancestral(tiny_model, L, steps, MASK, batch_size=1, generator=3, cache_no_change=False)
    assert torch.equal(a, b)
    assert tb.nfe == steps and ta.nfe < steps
    revealing_steps = sum(bool((tb.states[k + 1] != tb.states[k]).any()) for k in range(steps))
    assert ta.nfe == revealing_steps or ta.nfe == revealing_steps + 1


def test_ancestral_reveal_rate_follows_the_schedule(tiny_model):
    """First step of T: each mask is revealed with probability (t - s)/t = 1/T (log-linear)."""
    T, B = 4, 256
    _, tr = ancestral(tiny_model, L, T, MASK, batch_size=B, generator=4)
    frac = (tr.states[1] != MASK).double().mean().item()
    assert abs(frac - 1 / T) < 5 * (0.25 * 0.75 / (B * L)) ** 0.5


def test_adaptive_threshold_adapts_the_number_of_steps(tiny_model):
    _, tr = generate_adaptive(Oracle(TARGET), L, MASK, threshold=0.9, batch_size=2)
    assert tr.nfe == 1 and torch.equal(tr.final, TARGET.expand(2, -1))
    _, tr1 = generate_adaptive(tiny_model, L, MASK, threshold=1.0, batch_size=1)
    assert tr1.nfe == L, "an unreachable threshold commits exactly one token per step"
    _, tr0 = generate_adaptive(tiny_model, L, MASK, threshold=0.0, batch_size=1)
    assert tr0.nfe == 1
    _, trb = generate_adaptive(tiny_model, L, MASK, threshold=0.0, block_length=4)
    assert trb.nfe == 4 and all(((trb.states[k + 1] != MASK) & (trb.states[k] == MASK))[:, (k + 1) * 4:].sum() == 0
                                for k in range(4))


def test_least_confident_finds_the_corrupted_tokens():
    text = TARGET.clone()
    bad = torch.tensor([2, 7, 11])
    text[0, bad] = (text[0, bad] + 1) % 10
    where = least_confident_positions(Oracle(TARGET), text, 3, MASK)
    assert where[0].nonzero().flatten().tolist() == bad.tolist()
    fixed, tr, edited = edit(Oracle(TARGET), text, MASK, k_least_confident=3, generator=0)
    assert torch.equal(fixed, TARGET)


def test_edit_changes_only_the_span(tiny_model):
    text, _ = generate(tiny_model, L, 8, MASK, batch_size=2, generator=7)
    out, tr, where = edit(tiny_model, text, MASK, span=(4, 9), generator=8, temperature=1.0)
    assert torch.equal(out[:, :4], text[:, :4]) and torch.equal(out[:, 9:], text[:, 9:])
    assert where[:, 4:9].all() and not (out == MASK).any()
    protect = torch.zeros(L, dtype=torch.bool)
    protect[:6] = True
    out, _, where = edit(tiny_model, text, MASK, span=(4, 9), protect=protect, generator=8)
    assert torch.equal(out[:, :6], text[:, :6]) and not where[:, :6].any()


def test_bad_arguments_of_the_other_samplers(tiny_model):
    with pytest.raises(ValueError, match="threshold"):
        generate_adaptive(tiny_model, L, MASK, threshold=1.5)
    with pytest.raises(ValueError, match="steps"):
        ancestral(tiny_model, L, 0, MASK)
    text = torch.zeros(1, L, dtype=torch.long)
    with pytest.raises(ValueError, match="exactly one"):
        edit(tiny_model, text, MASK, span=(0, 2), k_least_confident=2)
    with pytest.raises(ValueError, match="span"):
        edit(tiny_model, text, MASK, span=(5, 3))


# ------------------------------------------------------------------ classifier-free guidance (issue 13)
class Recorder:
    """Wraps a model and keeps a copy of every input it is called on."""

    def __init__(self, model):
        self.model, self.inputs = model, []

    def __call__(self, x, **kw):
        self.inputs.append(x.clone())
        return self.model(x)


def test_cfg_zero_is_the_plain_sampler(tiny_model):
    prompt = torch.tensor([3, 4, 5, 6])
    for kw in [dict(), dict(prompt=prompt, block_length=4, remasking="random")]:
        steps = 8 if not kw else 12
        a, ta = generate(tiny_model, L, steps, MASK, batch_size=2, generator=4, **kw)
        rec = Recorder(tiny_model)
        b, tb = generate(rec, L, steps, MASK, batch_size=2, generator=4, cfg_scale=0.0, **kw)
        assert torch.equal(a, b) and ta.nfe == tb.nfe == steps
        assert all(x.shape == (2, L) for x in rec.inputs), "no unconditional rows without guidance"


def test_cfg_unconditional_pass_masks_exactly_the_context(tiny_model):
    prompt = torch.tensor([3, 4, 5])
    rec = Recorder(tiny_model)
    out, tr = generate(rec, L, 13, MASK, batch_size=2, prompt=prompt, cfg_scale=1.5, generator=0)
    assert tr.nfe == 13 and len(rec.inputs) == 13, "both passes share one network call per step"
    assert (out[:, :3] == prompt).all() and not (out == MASK).any()
    for k, x in enumerate(rec.inputs):
        cond, uncond = x[:2], x[2:]
        assert torch.equal(cond, tr.states[k]), "the conditional rows are the current state"
        assert (uncond[:, :3] == MASK).all(), "the prompt is hidden in the unconditional rows"
        assert torch.equal(uncond[:, 3:], cond[:, 3:]), "generated tokens stay visible"
    # infilling: the context is the non-[MASK] positions of the start state
    given = torch.full((1, L), MASK)
    given[0, ::3] = 7
    rec = Recorder(tiny_model)
    out, tr = generate(rec, L, 5, MASK, given=given, cfg_scale=2.0, generator=1)
    assert (out[0, ::3] == 7).all() and not (out == MASK).any()
    ctx = given[0] != MASK
    for x in rec.inputs:
        assert (x[1, ctx] == MASK).all() and torch.equal(x[1, ~ctx], x[0, ~ctx])


class PromptSensitive:
    """Logits W[i] + D[i] when the prompt token (position 0) is visible, W[i] alone when it is
    [MASK]: cond - uncond = D exactly, so the guided logits are W + (w + 1) D."""

    def __init__(self, W, D):
        self.W, self.D = W, D

    def __call__(self, x, **kw):
        seen = (x[:, :1] != MASK).float()[..., None]                    # (B, 1, 1)
        return self.W[None] + seen * self.D[None]                        # (B, L, V)


def test_cfg_follows_the_llada_formula():
    n = 4                                        # a prompt token and three generated positions
    A, B_ = 3, 4
    W = torch.full((n, V), -30.0)
    W[:, A], W[:, B_] = 2.0, 0.0
    D = torch.zeros(n, V)
    D[:, B_] = 1.9                               # cond: A 2.0 > B 1.9; uncond: A 2.0 > B 0.0
    model, prompt = PromptSensitive(W, D), torch.tensor([5])
    plain, _ = generate(model, n, 3, MASK, prompt=prompt, temperature=0.0)
    assert (plain[0, 1:] == A).all()
    # guided B logit = 1.9 (w + 1): it beats A = 2 iff w > 2/1.9 - 1 = 0.0526 (the (w + 1) factor;
    # a plain w factor would need w > 1.05)
    weak, _ = generate(model, n, 3, MASK, prompt=prompt, temperature=0.0, cfg_scale=0.04)
    strong, _ = generate(model, n, 3, MASK, prompt=prompt, temperature=0.0, cfg_scale=0.07)
    assert (weak[0, 1:] == A).all() and (strong[0, 1:] == B_).all()
    # the confidences are the softmax of exactly uncond + (w + 1)(cond - uncond)
    g = torch.Generator().manual_seed(0)
    W, D = torch.randn(L, V, generator=g), torch.randn(L, V, generator=g)
    w = 0.8
    out, tr = generate(PromptSensitive(W, D), L, 6, MASK, batch_size=2, prompt=torch.tensor([5, 6, 7, 8]),
                       temperature=0.0, cfg_scale=w)
    guided = W + (w + 1) * D                                             # (L, V)
    guided[:, MASK] = float("-inf")
    expected = torch.softmax(guided, -1).max(-1).values                  # (L,) argmax confidence
    assert torch.allclose(tr.confidences[0][:, 4:], expected[4:].expand(2, -1), atol=1e-5)


def test_cfg_bad_arguments(tiny_model):
    prompt = torch.tensor([3, 4])
    for bad in [-0.5, "1", True, None, float("nan"), float("inf"), torch.tensor(1.0)]:
        with pytest.raises(ValueError, match="cfg_scale"):
            generate(tiny_model, L, 4, MASK, prompt=prompt, cfg_scale=bad)
    with pytest.raises(ValueError, match="cfg_scale"):
        generate(tiny_model, L, 4, MASK, cfg_scale=1.0)                  # nothing to condition on
    given = torch.full((2, L), MASK)
    given[0, 0] = 3                                                      # row 1 has no context
    with pytest.raises(ValueError, match="cfg_scale"):
        generate(tiny_model, L, 4, MASK, given=given, cfg_scale=1.0)


# ------------------------------------------------------------------ MDLM's greedy last step (noise removal)
class FixedLogits:
    """Input-independent logits (L, V): the prediction at every step is known in advance."""

    def __init__(self, table):
        self.table = table

    def __call__(self, x, **kw):
        return self.table[None].expand(x.shape[0], -1, -1).clone()


def test_greedy_last_step_takes_the_argmax_and_leaves_earlier_steps_alone():
    table = torch.randn(L, V, generator=torch.Generator().manual_seed(1))   # moderate logits: samples vary
    argmax = table.masked_fill(torch.arange(V) == MASK, float("-inf")).argmax(-1)   # (L,)
    T, B = 4, 64
    base, tb = ancestral(FixedLogits(table), L, T, MASK, batch_size=B, generator=9, temperature=1.0)
    out, tg = ancestral(FixedLogits(table), L, T, MASK, batch_size=B, generator=9, temperature=1.0,
                        greedy_last_step=True)
    assert all(torch.equal(tg.states[k], tb.states[k]) for k in range(T)), "steps before the last are unchanged"
    last = tg.reveal_step == T                                           # committed at the final step
    assert last.sum() > 50 and not (out == MASK).any()
    assert torch.equal(out[last], argmax.expand(B, -1)[last])
    assert torch.equal(out[~last], base[~last]) and tg.nfe == tb.nfe
    assert (base[last] != argmax.expand(B, -1)[last]).any(), "without it the last step samples"


def test_greedy_last_step_with_a_real_model(tiny_model):
    out, tr = ancestral(tiny_model, L, 6, MASK, batch_size=8, generator=2, temperature=1.0, greedy_last_step=True)
    logits = tiny_model(tr.states[-2]).float()
    logits[..., MASK] = float("-inf")
    last = tr.reveal_step == 6
    assert torch.equal(out[last], logits.argmax(-1)[last])
    with pytest.raises(ValueError, match="greedy_last_step"):
        ancestral(tiny_model, L, 6, MASK, greedy_last_step="yes")
