"""Shared test set-up: nothing may reach the network, and Jupyter/matplotlib write to temp dirs."""
import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("MINIDLM_SMOKE", "1")
_tmp = tempfile.mkdtemp(prefix="minidlm-tests-")
for var in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR"):
    os.environ.setdefault(var, os.path.join(_tmp, var.lower()))
os.environ.setdefault("HF_DATASETS_CACHE", os.path.join(_tmp, "hf_datasets"))
os.environ.setdefault("MPLBACKEND", "Agg")

# The exercise grader (options --impl / --impl-path / --task / --grade-json, the `task` marker, the
# `load` fixture). Importable as tests.exercises.grading_plugin from any working directory.
import sys as _sys
from pathlib import Path as _Path

_repo = str(_Path(__file__).resolve().parents[1])
if _repo not in _sys.path:
    _sys.path.insert(0, _repo)
pytest_plugins = ["tests.exercises.grading_plugin"]
