"""benchmarks/report.py: the claims' verdicts follow the numbers, the committed report is in sync
with its JSON, and the quick report builds end to end."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["report"] = mod                        # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


report = _load_report()


def _reversal(tmp_path, ar_rev, mdm_rev):
    runs = [{"objective": "ar", "seed": 0, "steps": 10, "seconds": 1.0,
             "final": {"forward": 1.0, "reverse": ar_rev, "infill_by_ranking": 0.9, "reverse_seen": 1.0}},
            {"objective": "mdm", "seed": 0, "steps": 10, "seconds": 1.0,
             "final": {"forward": 0.9, "reverse": mdm_rev, "infill": 0.8, "reverse_seen": 0.9}}]
    (tmp_path / "reversal_cpu.json").write_text(json.dumps({"machine": "m", "facts": 4, "test_facts": 2, "runs": runs}))
    return report.Report(tmp_path, tmp_path / "RESULTS.md")


def test_reversal_verdict_follows_the_margin(tmp_path):
    assert report.claim_reversal(_reversal(tmp_path, 0.0, 0.5))[2] == "reproduced"
    assert report.claim_reversal(_reversal(tmp_path, 0.0, 0.05))[2] == "partly: inside the seen sentence; weakly in a new one"
    assert report.claim_reversal(_reversal(tmp_path, 0.0, 0.0))[2] == "partly: inside the seen sentence only"
    r = _reversal(tmp_path, 0.0, 0.05)
    rv = json.loads((tmp_path / "reversal_cpu.json").read_text())
    rv["runs"][1]["final"]["infill"] = 0.2                          # no infill either: nothing reproduced
    (tmp_path / "reversal_cpu.json").write_text(json.dumps(rv))
    assert report.claim_reversal(r)[2] == "not reproduced"
    assert "only a little better" in report.section_reversal(_reversal(tmp_path, 0.0, 0.05))
    words = report.section_reversal(_reversal(tmp_path, 0.0, 0.0))
    assert "does no better" in words and "80%" in words


def _spectrum(tmp_path, values):
    rows = [{"alpha0": a, "variant": v, "val_nelbo": n, "ppl_bound": 2.0 ** n, "steps": 5, "batch_size": 8,
             "seconds": 1.0} for a, v, n in values]
    (tmp_path / "spectrum").mkdir(exist_ok=True)
    (tmp_path / "spectrum" / "spectrum.json").write_text(json.dumps(rows))
    return report.Report(tmp_path, tmp_path / "RESULTS.md")


def test_spectrum_counts_inversions_along_ar_then_b(tmp_path):
    mono = [(0.0, "AR", 1.0), (0.0, "B", 1.1), (0.5, "B", 1.2), (1.0, "B", 1.3), (1.0, "A", 1.25)]
    assert report.claim_spectrum(_spectrum(tmp_path, mono))[2] == "reproduced"
    bumpy = [(0.0, "AR", 1.0), (0.0, "B", 1.4), (0.5, "B", 1.2), (1.0, "B", 1.3)]
    assert report.claim_spectrum(_spectrum(tmp_path, bumpy))[2] == "partly (1 inversion)"
    assert "NOT monotone" in report.spectrum_words(json.loads((tmp_path / "spectrum" / "spectrum.json").read_text()))


def test_missing_results_give_no_claims(tmp_path):
    r = report.Report(tmp_path, tmp_path / "RESULTS.md")
    assert all(f(r) is None for f in report.CLAIMS)
    assert "No results yet" in report.headline_table(r)


def test_readme_section_needs_its_markers():
    with pytest.raises(ValueError, match="README: expected the markers"):
        report.replace_section("no markers here", "x")
    text = f"a\n{report.BEGIN}\nold\n{report.END}\nb"
    assert report.replace_section(text, "NEW") == "a\nNEW\nb"


def test_committed_results_match_their_json():
    """RESULTS.md and the README's section are exactly what the committed JSON renders to."""
    report.main(["--check"])
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| ") and "**" in line]
    assert rows and all(line.replace("\\|", "").count("|") == 5 for line in rows), "a claim row has a stray '|'"


def test_quick_report_builds(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), "--quick", "--results", str(tmp_path)],
                   check=True, env=env, cwd=ROOT, timeout=900, stdout=subprocess.DEVNULL)
    md = (tmp_path / "RESULTS.md").read_text()
    for heading in ("The review's claims", "Pareto", "Cache speed-up", "Latency", "likelihood spectrum",
                    "reversal curse", "How long each part took"):
        assert heading in md, heading
    claims = [line for line in md.splitlines() if line.startswith("| ") and "**" in line]
    assert len(claims) == len(report.CLAIMS)
    log = json.loads((tmp_path / "report_runs.json").read_text())
    assert set(log) == set(report.PARTS)


def test_reversal_benchmark_names_are_one_token_anywhere():
    """The reversal benchmark's word tokens: a name has the same single id at the start of a sentence
    and after a space (byte-level BPE would give two ids), and decoding inverts encoding."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import reversal_curse as rc
    finally:
        sys.path.pop(0)
    from minidlm.reversal import make_reversal_task
    task = make_reversal_task(n_facts=6, seed=1, repeats=1)
    tok = rc.WordTokenizer.from_texts(task.train_texts)
    person, pet = task.facts[0]
    fwd, rev = tok.encode(f"{person} has a pet named {pet}."), tok.encode(f"{pet} is the pet of {person}.")
    assert fwd[0] == rev[-2] and fwd[-2] == rev[0]                  # same ids in both positions
    assert tok.decode(fwd) == f"{person} has a pet named {pet} ."
    assert len(fwd) == 7 and tok.mask_id not in fwd
