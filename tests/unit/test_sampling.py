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
        generate(tiny_model, L, 4, MASK, remasking="entropy")
