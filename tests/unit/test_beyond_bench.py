"""benchmarks/beyond_mask.py (lesson 15): a quick run writes both parts and their commands, the rows
are the counts and scores of the samples drawn, the verdicts follow the numbers, and the claims
report reads them."""
import json
import shutil
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from minidlm.checkpoint import save_checkpoint
from minidlm.evaluate import sample_stories, story_report
from minidlm.model import Model, ModelConfig
from minidlm.tokenizer import load_tokenizer
from minidlm.viz_beyond import beyond_mask_figure, draw_quality

from benchmark_loader import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "data" / "checkpoints" / "tales-mdm-nano" / "tokenizer.json"

bm, report = load_benchmark("beyond_mask"), load_benchmark("report")


def _tiny(folder: Path, seed: int) -> Path:
    """A random 1-layer model on the shipped tokenizer, L = 16, saved as a one-tag folder."""
    tok = load_tokenizer(TOKENIZER)
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=16, n_layer=1, n_head=2, d_model=32, mask_id=tok.mask_id)
    save_checkpoint(folder, Model(cfg), model_config=cfg.to_dict(), tag="model")
    shutil.copy(TOKENIZER, folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("beyond")
    mdm, udlm = _tiny(tmp / "mdm", 0), _tiny(tmp / "udlm", 1)
    out = tmp / "beyond_mask_cpu.json"
    bm.main(["--quick", "--json", str(out), "--mdm", str(mdm), "--udlm", str(udlm)])
    return json.loads(out.read_text()), out, mdm


def test_quick_run_writes_both_parts(quick):
    res, out, _ = quick
    assert out.with_suffix(".png").exists()
    assert set(bm.PARTS) <= set(res) and set(res["commands"]) == set(bm.PARTS)
    assert set(res["verdict"]) == {"uniform", "remdm"}
    for part in bm.PARTS:
        assert res[part]["n"] == 8 and res[part]["L"] == 16
        for x in res[part]["rows"]:
            assert x["n"] == 8 and 0 <= x["valid"] <= 1 and 0 <= x["well_formed_sentences"] <= 1
            if x["sampler"] in ("udlm", "mdm_low_confidence", "mdm_ancestral"):
                assert 1 <= x["calls_per_story"] <= x["steps"]      # never more calls than steps
            if x["sampler"] == "udlm":
                assert x["calls_per_story"] == x["steps"]           # one call per step, always
    labels = {x["label"] for x in res["remdm"]["rows"]}
    assert {"MDM ancestral", "ReMDM cap 0.02", "ReMDM loop 0.02", "MDM low-confidence"} == labels
    samplers = {x["sampler"] for x in res["uniform"]["rows"]}
    assert samplers == {"udlm", "mdm_low_confidence", "mdm_ancestral"}
    assert res["uniform"]["val_nelbo"] == {"udlm": None, "mdm": None}      # no card, no training record


def test_a_row_is_the_score_of_the_samples_drawn(quick):
    res, _, mdm_dir = quick
    from minidlm.checkpoint import load_model
    model, _ = load_model(mdm_dir)
    tok = load_tokenizer(mdm_dir / "tokenizer.json")
    row = next(x for x in res["remdm"]["rows"] if x["label"] == "ReMDM cap 0.02" and x["steps"] == 8)
    texts, calls = sample_stories(model, tok, 8, steps=8, seed=0, return_calls=True,
                                  remdm=dict(strategy="cap", eta_cap=0.02))
    rep = story_report(texts)
    assert row["calls_per_story"] == calls and row["example"] == texts[0]
    assert (row["valid"], row["well_formed_sentences"]) == (rep["valid"], rep["well_formed_sentences"])


def test_missing_uniform_model(tmp_path, quick, monkeypatch):
    monkeypatch.delenv("MINIDLM_SMOKE", raising=False)
    out = tmp_path / "b.json"
    with pytest.raises(SystemExit, match="--udlm"):
        bm.main(["--parts", "uniform", "--json", str(out), "--udlm", str(tmp_path / "none")])
    out.write_text(json.dumps({"uniform": {"rows": []}}))
    bm.main(["--quick", "--parts", "uniform", "--json", str(out), "--udlm", str(tmp_path / "none"),
             "--mdm", str(quick[2])])
    assert "uniform" not in json.loads(out.read_text())                      # quick: skipped, an old result dropped


# ----------------------------------------------------------------------------- verdicts on made-up numbers

def _row(sampler, steps, valid, wf=0.5, n=128, label=None):
    return {"sampler": sampler, "label": label or sampler, "steps": steps, "n": n, "valid": valid,
            "well_formed_sentences": wf, "calls_per_story": steps}


def _uniform(udlm, lowconf, anc, L=64):
    rows = []
    for T, u, lc, a in zip((4, 8, 16, 32, 64), udlm, lowconf, anc):
        rows += [_row("udlm", T, u), _row("mdm_low_confidence", min(T, L - 1), lc), _row("mdm_ancestral", T, a)]
    return bm.verdict_uniform(rows, L)


def test_compare_uses_the_noise_then_well_formed_sentences():
    a, b = _row("x", 8, 0.50), _row("y", 8, 0.55)                          # 2 SE of the difference ~ 0.12
    assert bm.compare(a, b) == 0
    assert bm.compare(_row("x", 8, 0.30), _row("y", 8, 0.60)) == -1
    assert bm.compare(_row("x", 8, 0.0, wf=0.6), _row("y", 8, 0.0, wf=0.2)) == 1   # level on valid: sentences
    assert bm.compare(_row("x", 8, 0.0, wf=0.0), _row("y", 8, 0.0, wf=0.0)) == 0
    assert bm.compare(_row("x", 8, 1 / 8, n=8), _row("y", 8, 0.0, n=8)) == 0      # one story is no margin


def test_uniform_verdict_follows_the_numbers():
    low = [0.0, 0.05, 0.3, 0.6, 0.9]
    v = _uniform([0.4, 0.5, 0.3, 0.6, 0.5], low, low)                      # ahead at 4-8, behind at 64
    assert v["claim"] == "partly" and v["few_steps_max"] == 8
    assert v["short"] == "ahead in few steps, behind at 64 calls"
    assert [p["cmp"] for p in v["per_steps"]] == [1, 1, 0, 0, -1]
    assert _uniform([0.4, 0.5, 0.3, 0.6, 0.9], low, low)["claim"] == "yes"          # level at many steps
    assert _uniform([0.0, 0.5, 0.3, 0.6, 0.9], low, low)["claim"] == "partly"       # ahead at 8 only
    assert _uniform([0.0, 0.0, 0.0, 0.0, 0.0], low, low)["claim"] == "no"
    v = _uniform([0.4, 0.5, 0.3, 0.6, 0.9], [0.5, 0.6, 0.3, 0.6, 0.9], low)        # the better masked sampler counts
    assert v["claim"] == "no" and v["per_steps"][0]["masked"] == "mdm_low_confidence"
    assert "4 calls: UDLM 40% valid" in v["text"]


def test_uniform_verdict_needs_few_steps():
    rows = [_row("udlm", 32, 0.5), _row("mdm_ancestral", 32, 0.1)]
    assert bm.verdict_uniform(rows, 64) is None


def _remdm(anc, settings):
    rows = [_row("mdm_ancestral", T, v, label="MDM ancestral") for T, v in zip((16, 32, 64, 128, 256), anc)]
    for label, vals in settings.items():
        rows += [_row("remdm_cap", T, v, label=label) for T, v in zip((16, 32, 64, 128, 256), vals)]
    return bm.verdict_remdm(rows)


def test_remdm_verdict_follows_the_numbers():
    anc = [0.0, 0.2, 0.4, 0.45, 0.45]
    v = _remdm(anc, {"cap 0.01": anc, "cap 0.02": [0.0, 0.2, 0.7, 0.8, 0.9]})
    assert v["claim"] == "yes" and v["best_setting"] == "cap 0.02"
    assert v["short"] == "cap 0.02 ahead at 64, 128, 256 steps, behind at none"
    assert [p["cmp"] for p in v["per_setting"]["cap 0.02"]] == [0, 0, 1, 1, 1]
    v = _remdm(anc, {"cap 0.05": [0.0, 0.0, 0.2, 0.8, 0.9]})                      # hurts at 32 and 64 steps
    assert v["claim"] == "partly" and "behind at 32, 64" in v["short"]
    assert _remdm(anc, {"cap 0.02": anc, "loop": [0.0, 0.2, 0.4, 0.4, 0.4]})["claim"] == "no"
    assert _remdm(anc, {"cap 0.02": [0.0, 0.2, 0.4, 0.9, 0.45]})["claim"] == "partly"   # not at the most steps
    assert bm.verdict_remdm([_row("mdm_ancestral", 16, 0.1)]) is None


def test_remdm_verdict_compares_at_about_equal_calls():
    """Ancestral stops calling once a row is full, so its 256 steps may cost what ReMDM's 64 do."""
    anc = [0.0, 0.2, 0.4, 0.45, 0.45]
    rows = [dict(_row("mdm_ancestral", T, v, label="MDM ancestral"), calls_per_story=c)
            for T, v, c in zip((16, 32, 64, 128, 256), anc, (16, 28, 40, 50, 57))]
    rows += [dict(_row("remdm_cap", T, v, label="cap 0.02"), calls_per_story=c)
             for T, v, c in zip((16, 32, 64), (0.0, 0.2, 0.7), (16, 30, 55))]
    text = bm.verdict_remdm(rows)["text"]
    assert "at about equal calls: cap 0.02 64 steps (55 calls) 70% vs ancestral 256 steps (57 calls) 45% valid" in text
    assert "cap 0.02 16 steps (16 calls)" not in text                       # same steps: no extra comparison


# ----------------------------------------------------------------------------- report and figure

def test_report_reads_the_json(quick, tmp_path):
    res = quick[0]
    low = [0.0, 0.05, 0.3, 0.6, 0.9]
    res["verdict"]["uniform"] = _uniform([0.4, 0.5, 0.3, 0.6, 0.5], low, low)
    res["verdict"]["remdm"] = _remdm([0.0] * 5, {"cap 0.02": [0.0, 0.0, 0.0, 0.5, 0.5]})
    (tmp_path / "beyond_mask_cpu.json").write_text(json.dumps(res))
    r = report.Report(tmp_path, tmp_path / "RESULTS.md")
    u, m = report.claim_uniform(r), report.claim_remdm(r)
    assert u[2] == "partly: ahead in few steps, behind at 64 calls" and "4 calls 40% vs 0% (50% vs 50%)" in u[1]
    assert m[2] == "partly: cap 0.02 ahead at 128, 256 steps"
    res["verdict"]["uniform"]["claim"] = "yes"
    (tmp_path / "beyond_mask_cpu.json").write_text(json.dumps(res))
    assert report.claim_uniform(r)[2] == "reproduced"
    md = report.render_results(r)
    assert "## Beyond [MASK]" in md and "| UDLM ancestral |" in md and "| ReMDM loop 0.02 |" in md
    assert "beyond_mask" in report.PARTS and {report.claim_uniform, report.claim_remdm} <= set(report.CLAIMS)


def test_figure_checks_its_input():
    with pytest.raises(ValueError, match="res"):
        beyond_mask_figure({})
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="metric"):
        draw_quality(ax, [_row("x", 4, 0.1, label="x")], metric="perplexity")
    with pytest.raises(ValueError, match="lacks"):
        draw_quality(ax, [{"label": "x", "valid": 0.1}])
    plt.close(fig)
