"""The install story stays true: environment.yml mirrors pyproject.toml, and CI runs the README."""
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONDA_NAMES = {"torch": "pytorch"}   # PyPI name -> conda-forge name where they differ


def _split(req: str):
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_mirrors_pyproject():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in proj["dependencies"] + proj["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",))
    for name, spec in wanted.items():
        cname = CONDA_NAMES.get(name, name)
        assert cname in conda, f"environment.yml lacks {cname} (pyproject has {name}{spec})"
        assert conda[cname] == spec, f"{cname}: environment.yml says {conda[cname]!r}, pyproject {spec!r}"
    py = proj["requires-python"]
    assert conda["python"] == py
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_section and "-e ." in pip_section[0]["pip"], "the conda env installs minidlm itself"


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    script = (ROOT / ".ci" / "run").read_text()
    awk = re.search(r"extract\(\) \{\n(.*?)\n\}", script, re.S).group(1)
    for tag in ("setup", "test"):
        out = subprocess.run(["bash", "-c", f"extract() {{\n{awk}\n}}\nextract {tag}"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        block = re.search(rf"<!-- ci:{tag} -->\n```bash\n(.*?)\n```", readme, re.S).group(1).strip()
        assert out == block and out, tag
    assert "pytest" in re.search(r"<!-- ci:test -->\n```bash\n(.*?)\n```", readme, re.S).group(1)
