"""Every command-line mistake is one line, ``error: ...`` naming the option, with a non-zero exit
and no traceback (``python -m minidlm``, __main__.py); nothing is written before the checks pass."""
import shutil
import subprocess
import sys

import pytest

from minidlm.__main__ import main
from minidlm.data import DATA_DIR

CKPTS = DATA_DIR / "checkpoints"
MDM, AR, ESO = (str(CKPTS / n) for n in ("tales-mdm-nano", "tales-ar-nano", "tales-esolm-nano"))
TINY_TRAIN = ["--d-model", "32", "--n-layer", "1", "--n-head", "2", "--batch-size", "8", "--no-progress"]


def run_cli(argv, capsys):
    """(exit status, stderr) of ``python -m minidlm ARGV``, in this process."""
    try:
        rc = main(argv)
    except SystemExit as e:                                  # argparse's own refusals
        rc = e.code
    return rc, capsys.readouterr().err


CASES = [
    # (argv, the option the message must name)
    (["demo", "--steps", "0"], "--steps"),
    (["demo", "--steps", "64", "--no-animation"], "--steps"),
    (["demo", "--seconds", "-1"], "--seconds"),
    (["demo", "--seconds", "nan"], "--seconds"),
    (["demo", "--strategy", "ancestral"], "--strategy"),
    (["demo", "--ckpt", "/no/such/folder"], "--ckpt"),
    (["demo", "--ckpt", AR, "--no-animation"], "--ckpt"),
    (["demo", "--ckpt", ESO, "--no-animation"], "--ckpt"),
    (["demo", "--seed", "x"], "--seed"),
    (["sample", "--ckpt", "/no/such/folder"], "--ckpt"),
    (["sample", "--ckpt", str(CKPTS / "ship.py")], "--ckpt"),
    (["sample", "--ckpt", str(CKPTS)], "--ckpt"),
    (["sample", "--ckpt", AR], "--strategy"),
    (["sample", "--ckpt", MDM, "--strategy", "ar"], "--strategy"),
    (["sample", "--ckpt", ESO, "--strategy", "low_confidence"], "--strategy"),
    (["sample", "--ckpt", MDM, "--length", "0"], "--length"),
    (["sample", "--ckpt", MDM, "--length", "1"], "--length"),
    (["sample", "--ckpt", MDM, "--length", "1000"], "--length"),
    (["sample", "--ckpt", MDM, "--temperature", "nan"], "--temperature"),
    (["sample", "--ckpt", MDM, "--temperature", "inf"], "--temperature"),
    (["sample", "--ckpt", MDM, "--temperature", "0"], "--temperature"),
    (["sample", "--ckpt", MDM, "--temperature", "-1"], "--temperature"),
    (["sample", "--ckpt", MDM, "--n", "0"], "--n"),
    (["sample", "--ckpt", MDM, "--steps", "0"], "--steps"),
    (["sample", "--ckpt", MDM, "--steps", "100"], "--steps"),
    (["sample", "--ckpt", MDM, "--strategy", "ancestral", "--steps", "1000000"], "--steps"),
    (["sample", "--ckpt", MDM, "--strategy", "adaptive", "--threshold", "0"], "--threshold"),
    (["sample", "--ckpt", MDM, "--strategy", "adaptive", "--threshold", "1.5"], "--threshold"),
    (["sample", "--ckpt", ESO, "--strategy", "esolm", "--alpha0", "2"], "--alpha0"),
    (["sample", "--ckpt", MDM, "--block-length", "0"], "--block-length"),
    (["sample", "--ckpt", MDM, "--strategy", "bogus"], "--strategy"),
    (["sample", "--ckpt", MDM, "--strategy", "bd3lm"], "--strategy"),
    (["sample", "--ckpt", MDM, "--steps-per-block", "0"], "--steps-per-block"),
    (["train", "--objective", "bd3lm", "--block-size", "0"], "--block-size"),
    (["train", "--objective", "bd3lm", "--block-size", "65"], "--block-size"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--seq-len", "100000"], "--seq-len"),
    (["train", "--seq-len", "0"], "--seq-len"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--batch-size", "10", "--grad-accum", "3"], "--batch-size"),
    (["train", "--warmup", "-1"], "--warmup"),
    (["train", "--max-seconds", "-5"], "--max-seconds"),
    (["train", "--objective", "gpt"], "--objective"),
    (["train", "--preset", "huge"], "--preset"),
    (["train", "--alpha0", "1.5", "--objective", "esolm"], "--alpha0"),
    (["train", "--device", "gpu0"], "--device"),
    (["train", "--objective", "ar", "--anneal-steps", "10"], "--anneal-steps"),
    (["train", "--objective", "ar", "--shift-logits"], "--shift-logits"),
    (["train", "--data", "/no/such/corpus.txt"], "--data"),
    (["train", "--tokenizer", "/no/such/tok.json"], "--tokenizer"),
    (["train", "--init-from", "/no/such/run"], "--init-from"),
    (["train", "--data", "hf:"], "--data"),
    (["train", "--resume", "--overwrite"], "--overwrite"),
]


@pytest.mark.parametrize("argv, option", CASES, ids=[" ".join(a[:1] + a[-2:]).replace(str(CKPTS), "ck")
                                                     for a, _ in CASES])
def test_a_mistake_is_one_line_naming_the_option(argv, option, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")               # main() would otherwise set torch's threads
    if argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "run")]
    rc, err = run_cli(argv, capsys)
    assert rc not in (0, None)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and option in lines[0], err
    assert not (tmp_path / "run").exists()                   # nothing written before the checks pass


def test_train_into_a_copy_of_a_shipped_model_is_refused_untouched(tmp_path, capsys):
    dst = tmp_path / "mdm"
    shutil.copytree(MDM, dst)
    before = {p.name: p.read_bytes() for p in dst.iterdir()}
    rc, err = run_cli(["train", "--out", str(dst), "--steps", "1"] + TINY_TRAIN, capsys)
    assert rc == 2 and err.startswith("error: --out: ") and "--overwrite" in err
    rc, err = run_cli(["train", "--out", str(dst), "--steps", "1", "--resume"] + TINY_TRAIN, capsys)
    assert rc == 2 and err.startswith("error: --resume: ")
    assert {p.name: p.read_bytes() for p in dst.iterdir()} == before


def test_train_overwrite_then_resume_round_trip(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_cli(["train", "--out", out, "--steps", "2", "--eval-every", "0"] + TINY_TRAIN, capsys)[0] == 0
    assert run_cli(["train", "--out", out, "--steps", "2"] + TINY_TRAIN, capsys)[0] == 2
    assert run_cli(["train", "--out", out, "--steps", "2", "--overwrite"] + TINY_TRAIN, capsys)[0] == 0
    rc, err = run_cli(["train", "--out", out, "--steps", "4", "--resume"] + TINY_TRAIN, capsys)
    assert rc == 0 and "steps was 2, now 4" in err


@pytest.mark.parametrize("argv", [
    ["demo", "--ckpt", AR],
    ["sample", "--ckpt", "/no/such/folder"],
    ["train", "--device", "cuda", "--steps", "1"],
    ["train", "--steps", "1", "--data", "hf:"],
], ids=["demo", "sample", "train-device", "train-data"])
def test_no_traceback_from_the_real_command(argv, tmp_path):
    """The installed entry point, in its own process (one per subcommand): one line, exit 2."""
    if "train" in argv:
        argv = argv + ["--out", str(tmp_path / "run")]
    p = subprocess.run([sys.executable, "-m", "minidlm", *argv], capture_output=True, text=True, timeout=120)
    if "cuda" in argv and p.returncode == 0:
        pytest.skip("this machine has CUDA")
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.startswith("error: "), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
