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
