"""benchmarks/block_diffusion.py and data_constrained.py (lesson 14): quick runs write every part, the
counts they report are the counts made, and the claims report reads them."""
import json
from pathlib import Path

import pytest
import torch

from benchmark_loader import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_BD3 = ROOT / "data" / "checkpoints" / "tales-bd3lm-nano"

bd, dc, report = load_benchmark("block_diffusion"), load_benchmark("data_constrained"), load_benchmark("report")


@pytest.fixture(scope="module")
def bd_quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bd")
    out, runs = tmp / "block_diffusion_cpu.json", tmp / "runs"
    bd.main(["--quick", "--parts", "block_sizes", "cache_speed", "--json", str(out), "--runs", str(runs)])
    bd3 = SHIPPED_BD3 if (SHIPPED_BD3 / "card.json").exists() else runs / "bd3-K8"
    bd.main(["--quick", "--parts", "quality", "--json", str(out), "--bd3", str(bd3)])   # merged into the same JSON
    return json.loads(out.read_text()), out


def _fed(L, K, spb, cached):
    """Tokens fed by bd3_generate without [EOS]: cached, block b's first call feeds blocks b-1 and b
    (the just-finished block enters the cache), the others block b only; uncached, every call feeds
    the whole prefix up to the end of block b."""
    n = L // K
    if cached:
        return spb * K + sum(2 * K + (spb - 1) * K for _ in range(1, n))
    return sum(spb * (b + 1) * K for b in range(n))


def test_block_sizes_part(bd_quick):
    res, out = bd_quick
    assert out.with_suffix(".png").exists()
    assert set(bd.PARTS) <= set(res) and set(res["commands"]) == set(bd.PARTS)
    rows = res["block_sizes"]["rows"]
    assert [x["block_size"] for x in rows] == [8, 64]
    assert all(0 < x["val_nelbo"] < 20 for x in rows)
    for K in (8, 64):                                             # each run trained the steps asked, as bd3lm
        info = json.loads((out.parent / "runs" / f"bd3-K{K}" / "last.json").read_text())
        assert info["train_state"]["step"] == 3
        assert info["train_state"]["train_config"]["block_size"] == K


def test_cache_part_counts_are_the_counts_made(bd_quick):
    rows = bd_quick[0]["cache_speed"]["rows"]
    assert {x["L"] for x in rows} == {32, 64}
    for x in rows:
        L, K, spb = x["L"], x["block_size"], x["steps_per_block"]
        assert x["calls_cached"] == x["calls_uncached"] == L // K * spb
        assert x["tokens_fed_cached"] == _fed(L, K, spb, True)
        assert x["tokens_fed_uncached"] == _fed(L, K, spb, False)
        assert x["tokens_fed_cached"] < x["tokens_fed_uncached"]
        assert x["fed_ratio"] == pytest.approx(x["tokens_fed_uncached"] / x["tokens_fed_cached"])
        assert x["speedup"] == pytest.approx(x["seconds_uncached"] / x["seconds_cached"])
        if "fed_per_call_cached" in x:
            assert len(x["fed_per_call_cached"]) == x["calls_cached"]
            assert sum(x["fed_per_call_cached"]) == x["tokens_fed_cached"]


def test_quality_part(bd_quick):
    q = bd_quick[0]["quality"]
    by = {}
    for x in q["rows"]:
        by.setdefault(x["sampler"], []).append(x)
        assert x["n"] == q["n"] == 8 and 0 <= x["valid"] <= 1
        assert x["calls_per_story"] > 0
        assert x["tokens_per_call"] * x["calls_per_story"] <= 63 + 1e-9      # never more tokens than the row holds
    assert set(by) == {"bd3lm", "mdm_semi_ar", "mdm", "esolm"}
    one = next(x for x in by["bd3lm"] if x.get("steps_per_block") == 1)
    assert 1 <= one["calls_per_story"] <= 64 // one["block_size"]           # one call per block, stops at [EOS]
    for x in by["mdm_semi_ar"] + by["mdm"]:                                  # fixed length: 63 tokens, T calls
        assert x["calls_per_story"] == x["steps"]
        assert x["tokens_per_call"] == pytest.approx(63 / x["steps"])


def test_heldout_loss_is_fixed_and_ar_is_the_mean_nll():
    from minidlm.data import shipped_tales_blocks
    from minidlm.objectives import ar_objective
    from minidlm.train import TrainConfig, build_model
    _, val, tok = shipped_tales_blocks(64, 0)
    val = val[:12]
    torch.manual_seed(0)
    for obj in ("mdm", "bd3lm"):
        cfg = TrainConfig(objective=obj, block_size=8, out="unused")
        model = build_model(cfg, tok)
        a = bd.heldout_loss(model, val, cfg, tok.mask_id, passes=2, batch=5)
        assert a == bd.heldout_loss(model, val, cfg, tok.mask_id, passes=2, batch=5)       # same noise each call
        assert a != bd.heldout_loss(model, val, cfg, tok.mask_id, passes=1, batch=5)       # another average
    cfg = TrainConfig(objective="ar", out="unused")
    model = build_model(cfg, tok).eval()
    with torch.no_grad():
        want = ar_objective(model, val).item()                   # equal rows: the mean of batches = the whole mean
    assert bd.heldout_loss(model, val, cfg, tok.mask_id, batch=4) == pytest.approx(want, rel=1e-5)


def test_data_constrained_quick(tmp_path):
    out = tmp_path / "dc.json"
    dc.main(["--quick", "--json", str(out), "--stories", "64", "--epochs", "2"])
    res = json.loads(out.read_text())
    assert out.with_suffix(".png").exists()
    assert set(res["runs"]) == set(dc.OBJECTIVES)
    for r in res["runs"].values():
        curve = r["curve"]
        assert [c["epoch"] for c in curve] == [1, 2]
        assert r["steps"] == curve[-1]["step"] == 2 * (64 // res["settings"]["batch_size"])
        best = min(curve, key=lambda c: c["val_loss"])
        assert (r["best_epoch"], r["best_val_loss"]) == (best["epoch"], best["val_loss"])
        assert r["final_val_loss"] == curve[-1]["val_loss"]
    assert res["verdict"]["claim"] in ("reproduced", "not reproduced",
                                       "partly: AR overfits, diffusion keeps improving but stays above AR's best")


def _runs(curves):
    out = {}
    for k, c in curves.items():
        best = min(range(len(c)), key=c.__getitem__)
        out[k] = {"curve": [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(c)], "best_epoch": best + 1,
                  "best_val_loss": c[best], "final_val_loss": c[-1]}
    return out


def test_verdict_follows_the_curves():
    u_shape, falling, high_falling = [2.0, 1.0, 1.2, 1.5], [3.0, 2.0, 1.5, 0.9], [3.0, 2.5, 2.0, 1.8]
    v = dc.verdict(_runs({"ar": u_shape, "mdm": falling}))
    assert v["claim"] == "reproduced" and v["lowest"] == "mdm"
    assert "epoch 2 (1.000) and rose to 1.500 by epoch 4" in v["text"] and "MDM's still fell" in v["text"]
    assert dc.verdict(_runs({"ar": u_shape, "mdm": high_falling}))["claim"].startswith("partly")
    v = dc.verdict(_runs({"ar": falling, "mdm": high_falling}))
    assert v["claim"] == "not reproduced" and not v["ar_overfit"] and "AR's held-out loss" in v["text"]
    flat = [2.0, 1.0, 1.0 + dc.TOL / 2, 1.0 + dc.TOL / 2]                   # a rise within the tolerance is no overfit
    assert not dc.verdict(_runs({"ar": flat, "mdm": falling}))["ar_overfit"]


def test_report_reads_both(bd_quick, tmp_path):
    (tmp_path / "block_diffusion_cpu.json").write_text(bd_quick[1].read_text())
    r = report.Report(tmp_path, tmp_path / "RESULTS.md")
    assert report.claim_data_constrained(r) is None
    rows = bd_quick[0]["block_sizes"]["rows"]
    ok = rows[0]["val_nelbo"] <= rows[1]["val_nelbo"]
    assert report.claim_block_sizes(r)[2] == ("reproduced" if ok else "partly (1 inversion)")
    assert report.claim_block_cache(r)[1].count("fewer tokens fed") == 1
    md = report.render_results(r)
    assert "## Block diffusion, BD3-LM" in md and "| bd3lm |" in md
    assert {"block_diffusion", "data_constrained"} <= set(report.PARTS)
