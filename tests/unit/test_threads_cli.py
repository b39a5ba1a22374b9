"""demo and sample use one CPU thread unless OMP_NUM_THREADS says otherwise (README, Threads)."""
import pytest
import torch

from minidlm.__main__ import main


@pytest.mark.parametrize("env, expected", [(None, 1), ("2", 2)])
def test_demo_uses_one_thread_unless_omp_num_threads_is_set(monkeypatch, capsys, env, expected):
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    torch.set_num_threads(2)                  # the autouse fixture restores the setting afterwards
    assert main(["demo", "--steps", "4", "--no-animation"]) == 0
    assert torch.get_num_threads() == expected
    assert capsys.readouterr().out.strip()   # a story was printed
