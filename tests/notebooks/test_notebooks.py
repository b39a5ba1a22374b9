"""Every lesson notebook runs from a clean kernel, top to bottom, without an error (in smoke mode),
and every notebook is stored clean: no outputs, no execution counts.

Each notebook is executed with nbclient in a fresh kernel whose working directory is notebooks/,
with MINIDLM_SMOKE=1 (training and sweeps shrink to seconds), Hugging Face offline, and IPython,
Jupyter and matplotlib writing to temporary folders. The wall time of each notebook is written to
``notebook_times.json`` in pytest's temporary folder, and also to
``benchmarks/results/notebook_times.json`` when MINIDLM_NOTEBOOK_TIMES=1 (or to the path that
variable names).
"""
import json
import os
import re
import subprocess
import time
from pathlib import Path
from queue import Empty

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
PER_CELL_TIMEOUT = 300        # seconds; a whole notebook should take well under a minute in smoke mode
PER_NOTEBOOK_TIMEOUT = 420

_times: dict[str, float] = {}


class PollingClient(nbclient.NotebookClient):
    """nbclient waits for a cell's reply with one long poll of the shell socket. After a cell that
    shows an ipywidget, that poll sometimes misses a reply that has already arrived and sleeps
    until the cell's whole timeout (jupyter/nbclient#312: the kernel idle, the next cell never
    starts; seen here after `interact` cells, 10 minutes at a time). This client polls in short
    slices instead, checking for a ready message before each one, so a missed wake-up costs half a
    second, and the cell's timeout still applies."""

    SLICE = 0.5

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        channel = kc.shell_channel
        get_msg = channel.get_msg

        async def sliced_get_msg(timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                for wait in (0, self.SLICE):
                    if deadline is not None:
                        wait = min(wait, max(0.0, deadline - time.monotonic()))
                    try:
                        return await get_msg(timeout=wait)
                    except Empty:
                        pass
                if deadline is not None and time.monotonic() >= deadline:
                    raise Empty

        channel.get_msg = sliced_get_msg
        return kc


def _repo_notebooks() -> list[Path]:
    """Notebooks that git tracks or would add (tracked + untracked, not ignored); every file in
    notebooks/ when this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "notebooks"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return NOTEBOOKS
    return sorted(ROOT / p for p in out.splitlines() if p.endswith(".ipynb") and (ROOT / p).exists())


@pytest.fixture(scope="session")
def times_file(tmp_path_factory):
    """Collects the execution times and writes them out at the end of the session."""
    path = tmp_path_factory.getbasetemp() / "notebook_times.json"
    yield path
    if not _times:
        return
    record = {"notebooks": dict(sorted(_times.items())), "total_s": round(sum(_times.values()), 1),
              "smoke": True, "cpu_count": os.cpu_count(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    path.write_text(json.dumps(record, indent=1))
    wanted = os.environ.get("MINIDLM_NOTEBOOK_TIMES")
    if wanted:
        out = ROOT / "benchmarks" / "results" / "notebook_times.json" if wanted == "1" else Path(wanted)
        out.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(out.read_text()) if out.exists() else {}
        merged = {**previous.get("notebooks", {}), **record["notebooks"]}
        record.update(notebooks=dict(sorted(merged.items())), total_s=round(sum(merged.values()), 1))
        out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"\nnotebook execution times: {path}")


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    """The kernel inherits this process's environment: make it the smoke, offline, sandboxed one."""
    monkeypatch.setenv("MINIDLM_SMOKE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    for var in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR"):
        d = tmp_path / var.lower()
        d.mkdir()
        monkeypatch.setenv(var, str(d))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks in notebooks/")
@pytest.mark.timeout(PER_NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean(path, kernel_env, times_file):
    nb = nbformat.read(path, as_version=4)
    client = PollingClient(nb, timeout=PER_CELL_TIMEOUT, startup_timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NB_DIR)}})
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name}: a cell raised an error\n{e}", pytrace=False)
    finally:
        _times[path.name] = round(time.perf_counter() - start, 2)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {[e.get('ename') for e in errors]}"
    _assert_widgets_have_static_figures(nb, path.name)
    print(f"{path.name}: {_times[path.name]:.1f} s")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_CALL = re.compile(r"^[^#\n]*\b(interact|denoising_player|forward_slider|mask_explorer)\(", re.M)


def _assert_widgets_have_static_figures(nb, name):
    """A widget shows nothing on GitHub, nbviewer or in exported HTML: a code cell beside each
    widget cell that displayed a widget (just before it, or just after it) must draw the widget's
    default setting as a plain image."""
    code = [c for c in nb.cells if c.cell_type == "code"]

    def draws(i):
        return 0 <= i < len(code) and any("image/png" in o.get("data", {}) for o in code[i].get("outputs", []))

    def shows_widget(cell):                  # a widget cell whose code did not run (a GPU-only cell) shows nothing
        return any(WIDGET_VIEW in o.get("data", {}) for o in cell.get("outputs", []))

    for i, cell in enumerate(code):
        if WIDGET_CALL.search(cell.source) and shows_widget(cell):
            assert draws(i - 1) or draws(i + 1), (
                f"{name}: the widget cell {cell.source.splitlines()[0]!r} has no static figure (an image "
                "output) in the code cell just before or just after it")


@pytest.mark.parametrize("path", _repo_notebooks(), ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel must be python3"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, (f"{path.name}: cells {dirty} hold outputs or execution counts; clear them before "
                       "committing (Edit > Clear Outputs of All Cells, or `jupyter nbconvert --clear-output --inplace`)")
