"""benchmarks/latency.py: quick mode on a tiny model writes every row, and its timing hooks change nothing."""
import importlib.util
import json
from pathlib import Path

import torch

from minidlm.esolm import esolm_schedule

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("latency_bench", ROOT / "benchmarks" / "latency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_run_rows_and_ordering(tmp_path):
    lat = _load()
    out = tmp_path / "lat.json"
    lat.main(["--quick", "--tiny", "--json", str(out), "--lengths", "8", "16"])
    res = json.loads(out.read_text())
    assert out.with_suffix(".png").exists()
    assert {"platform", "cores", "torch", "device", "dtype", "threads"} <= set(res["machine"])
    rows = {(r["sampler"], r["N"]): r for r in res["rows"]}
    assert set(rows) == {(s, N) for s in lat.SAMPLERS for N in (8, 16)}
    eps = 1e-6
    for (s, N), r in rows.items():
        assert 0 < r["first_commit_s"] <= r["ttft_s"] <= r["full_s"] + eps, r
        assert 1 <= r["first_commit_step"] <= r["ttft_step"] <= r["nfe"], r
        assert r["nfe"] == r["T"], r
    for N in (8, 16):
        assert rows[("ar_cache", N)]["nfe"] == N
        assert rows[("ar_cache", N)]["ttft_step"] == 1                      # AR writes position P first
        assert rows[("mdm_T16", N)]["nfe"] == min(16, N)
        assert rows[("mdm_T=N/4", N)]["nfe"] == N // 4
        assert rows[("esolm_a1", N)]["nfe"] == min(16, N)
        n_diff, sizes = esolm_schedule(N, 0.25, generator=0)                 # the sampler's own first draw
        assert (rows[("esolm_a0.25", N)]["nfe"], rows[("esolm_a0.25", N)]["n_diffusion"]) == (len(sizes), n_diff)
    s = res["summary"]
    assert s["N"] == 16 and set(s["vs_ar"]) == set(lat.SAMPLERS) - {"ar_cache"}


def test_clock_hooks_leave_tokens_unchanged():
    lat = _load()
    model = lat.build_model(torch.device("cpu"), torch.float32, tiny=True)
    prompt = lat.make_prompt(8)
    for name, (T, fn) in lat.samplers(model, prompt, 12).items():
        plain, _ = fn()
        with lat.CallClock(model, "cpu") as clock:
            hooked, tr = fn()
        assert torch.equal(plain, hooked), name
        assert len(clock.starts) == len(clock.ends) == tr.nfe, name
        assert all(a <= b for a, b in zip(clock.starts, clock.ends)), name
    assert not model._forward_hooks and not model._forward_pre_hooks      # removed on exit


def test_summary_ratios():
    lat = _load()
    rows = []
    for N, ar, mdm in ((16, 1.0, 2.0), (32, 2.0, 1.5), (64, 4.0, 2.0)):
        rows.append({"sampler": "ar_cache", "N": N, "full_s": ar, "ttft_s": 0.1, "first_commit_s": 0.1})
        rows.append({"sampler": "mdm_T16", "N": N, "full_s": mdm, "ttft_s": mdm, "first_commit_s": 0.2})
    s = lat.summary(rows)
    assert s["N"] == 64
    assert s["vs_ar"]["mdm_T16"] == {"full_s": 0.5, "ttft_s": 20.0, "first_commit_s": 2.0}
    assert s["full_faster_than_ar_from_N"]["mdm_T16"] == 32
    assert s["ttft_over_full"]["mdm_T16"] == 1.0
