"""Training on several processes (DDP over gloo on the CPU) takes the same steps as one process."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import minidlm.train as train_module
from minidlm.checkpoint import load_checkpoint
from minidlm.train import TrainConfig, train

TINY = dict(model_overrides=dict(d_model=32, n_layer=1, n_head=2), seq_len=48, batch_size=8, device="cpu",
            progress=False)                             # gloo on the CPU, also where a GPU is present
STEPS = dict(steps=20, eval_every=10, ckpt_every=10)   # losses are logged at steps 10 and 20
DEADLINE_S = 120                                       # a hang fails the test instead of blocking CI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, jobs, dump):
    """One rank: join a gloo group, run each job's train() and save the weights this rank holds."""
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo")              # train() uses the group it finds and leaves it up
    built, build = [], train_module.build_model

    def build_and_keep(*args, **kwargs):                 # a handle on the model train() builds in this rank
        built.append(build(*args, **kwargs))
        return built[-1]
    train_module.build_model = build_and_keep
    try:
        for name, kwargs in jobs.items():
            train(TrainConfig(**kwargs))
            torch.save(built[-1].state_dict(), os.path.join(dump, f"{name}-rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Three 2-rank runs made in one spawn: {job: (out folder, [rank 0 weights, rank 1 weights])}."""
    root = tmp_path_factory.mktemp("ddp")
    jobs = {obj: dict(objective=obj, out=str(root / obj), **STEPS, **TINY) for obj in ("mdm", "ar", "esolm")}
    ctx = mp.spawn(_worker, args=(2, _free_port(), jobs, str(root)), nprocs=2, join=False)
    t0 = time.time()
    while not ctx.join(timeout=5):
        if time.time() - t0 > DEADLINE_S:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"2-rank training did not finish in {DEADLINE_S} s")
    return {name: (root / name, [torch.load(root / f"{name}-rank{r}.pt") for r in range(2)]) for name in jobs}


def _log(out, key):
    return [r[key] for r in map(json.loads, open(out / "log.jsonl")) if key in r]


def _max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("objective", ["mdm", "ar", "esolm"])
def test_every_rank_holds_the_same_weights(two_ranks, objective):
    out, (w0, w1) = two_ranks[objective]
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    ck = load_checkpoint(out, "last")                  # rank 0 wrote the plain model (no DDP "module." prefix)
    assert ck["train_state"]["step"] == 20 and all(torch.equal(ck["state_dict"][k], w0[k]) for k in w0)
    assert len(_log(out, "loss")) == 2 and len(_log(out, "val_loss")) == 2   # one log, written by rank 0


@pytest.mark.parametrize("objective", ["mdm", "ar"])
def test_two_ranks_take_the_steps_of_one_process(two_ranks, tmp_path, objective):
    # the same global batch and the same noise per row: equal up to the order of float sums
    out, (w0, _) = two_ranks[objective]
    train(TrainConfig(objective=objective, out=str(tmp_path), **STEPS, **TINY))
    one = load_checkpoint(tmp_path, "last")["state_dict"]
    torch.testing.assert_close(_log(out, "loss"), _log(tmp_path, "loss"), rtol=1e-4, atol=0)
    torch.testing.assert_close(_log(out, "val_loss"), _log(tmp_path, "val_loss"), rtol=1e-4, atol=0)
    assert _max_diff(w0, one) < 1e-5


def test_grad_accumulation_takes_the_steps_of_one_batch(tmp_path):
    for accum in (1, 2):
        train(TrainConfig(objective="mdm", grad_accum=accum, out=str(tmp_path / str(accum)), **STEPS, **TINY))
    torch.testing.assert_close(_log(tmp_path / "2", "loss"), _log(tmp_path / "1", "loss"), rtol=1e-4, atol=0)
    assert _max_diff(load_checkpoint(tmp_path / "2", "last")["state_dict"],
                     load_checkpoint(tmp_path / "1", "last")["state_dict"]) < 1e-5


def test_torchrun_command_line_then_resume_on_one_process(tmp_path):
    """3 steps under torchrun on 2 processes (2 micro-batches each), then 3 more in one process:
    the same weights as 6 steps in one process."""
    args = ["--objective", "mdm", "--d-model", "32", "--n-layer", "1", "--n-head", "2", "--seq-len", "48",
            "--batch-size", "8", "--eval-every", "0", "--ckpt-every", "0", "--device", "cpu", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "minidlm", "train", *args, "--steps", "3", "--grad-accum", "2",
                          "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env, timeout=DEADLINE_S)
    assert run.returncode == 0, run.stderr[-3000:]
    summaries = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and json.loads(summaries[0])["steps"] == 3      # rank 0 alone prints
    common = dict(objective="mdm", eval_every=0, ckpt_every=0, **TINY)
    train(TrainConfig(steps=6, resume=True, out=str(tmp_path / "a"), **common))
    train(TrainConfig(steps=6, out=str(tmp_path / "b"), **common))
    a, b = (load_checkpoint(tmp_path / d, "last") for d in "ab")
    assert a["train_state"]["step"] == b["train_state"]["step"] == 6
    assert _max_diff(a["state_dict"], b["state_dict"]) < 1e-5


def test_batch_must_split_evenly(monkeypatch):
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=6, grad_accum=4)
    monkeypatch.setenv("WORLD_SIZE", "4")                 # as under torchrun --nproc_per_node=4
    with pytest.raises(ValueError, match="batch_size: expected a multiple of processes x grad_accum = 4 x 2"):
        train(TrainConfig(grad_accum=2, out="/tmp/minidlm-never", **{**TINY, "batch_size": 12}))
