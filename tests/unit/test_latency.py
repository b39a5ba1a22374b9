"""minidlm.latency: the call clock changes nothing, and prefix times follow the trace."""
import pytest
import torch

from minidlm.latency import CallClock, pareto_front, prefix_ready_times
from minidlm.model import Model, ModelConfig
from minidlm.sampling import generate, generate_ar

V, MASK, L = 12, 11, 10


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Model(ModelConfig(vocab_size=V, max_len=L, n_layer=1, n_head=2, d_model=16, mask_id=MASK)).eval()


def test_clock_keeps_tokens_and_counts_calls(model):
    clock = CallClock(model)
    clock.start()
    x1, tr = generate(clock, L, 4, MASK, batch_size=2, prompt=torch.tensor([0]), generator=3)
    x0, _ = generate(model, L, 4, MASK, batch_size=2, prompt=torch.tensor([0]), generator=3)
    assert torch.equal(x0, x1)
    assert len(clock.times) == tr.nfe == 4
    assert all(a <= b for a, b in zip(clock.times, clock.times[1:]))
    ready = prefix_ready_times(tr.reveal_step[:, 1:], clock.times)            # answer = after the prompt
    assert torch.equal(ready[:, -1], torch.full((2,), clock.times[-1], dtype=torch.float64))


def test_ar_prefixes_are_ready_one_call_at_a_time():
    torch.manual_seed(0)                         # generate_ar refuses a diffusion model: an AR one here
    ar = Model(ModelConfig(vocab_size=V, max_len=L, n_layer=1, n_head=2, d_model=16)).eval()
    clock = CallClock(ar)
    clock.start()
    x1, tr = generate_ar(clock, L, prompt=torch.tensor([0, 1]), generator=0)
    x0, _ = generate_ar(ar, L, prompt=torch.tensor([0, 1]), generator=0)
    assert torch.equal(x0, x1) and len(clock.times) == L - 2
    ready = prefix_ready_times(tr.reveal_step[:, 2:], clock.times)
    assert ready[0].tolist() == clock.times                                     # token k after call k


def test_prefix_ready_times_rejects_steps_without_a_call():
    with pytest.raises(ValueError, match="reveal_step: expected calls in \\[1, 2\\]"):
        prefix_ready_times(torch.tensor([[1, 3]]), [0.1, 0.2])


def test_pareto_front_of_a_chain_and_of_a_cloud():
    assert pareto_front([1, 2, 3], [3, 2, 1]) == [0, 1, 2]                    # a trade-off: all kept
    assert pareto_front([1, 2, 3], [1, 2, 3]) == [0]                          # one point beats all
    with pytest.raises(ValueError, match="loss: expected as many values as cost"):
        pareto_front([1, 2], [1])
