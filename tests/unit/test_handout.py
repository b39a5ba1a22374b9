"""The course can be handed out without solutions/ (the solved exercises and the worked answers):
the copy grades a learner's exercises, and no lesson needs a file from solutions/."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [p for p in out.splitlines() if (REPO / p).is_file()]


def test_no_lesson_reads_the_solutions():
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        code = [("".join(c["source"])) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert not any("solutions" in src for src in code), f"{nb.name} reads solutions/, which a hand-out lacks"


def test_a_copy_without_solutions_grades_the_exercises(tmp_path):
    course = tmp_path / "course"
    for rel in _tracked():
        if rel.split("/")[0] in ("solutions", ".git"):
            continue
        (course / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, course / rel)
    assert not (course / "solutions").exists() and (course / "exercises").is_dir()
    out = tmp_path / "grade.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/exercises", "--impl=exercises", "--task", "2.1,7.5",
                           "-q", "-p", "no:cacheprovider", "--grade-json", str(out)],
                          cwd=course, capture_output=True, text=True, timeout=300, env=env)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    grade = json.loads(out.read_text())
    assert set(grade["tasks"]) == {"2.1", "7.5"} and grade["total"] == 0 and grade["possible"] > 0
    assert grade["impl"] == str((course / "exercises").resolve())
    for t in grade["tasks"].values():
        assert {tuple(e["types"]) for e in t["errors"]} == {("NotImplementedError",)}
