"""Lesson 00's classroom demo works in a real browser: JupyterLab (headless, loopback only) opens
notebooks/00_welcome.ipynb in Chromium, runs every cell from the Run menu, the denoising player
renders, and pressing Play advances the story. A screenshot goes to
tests/browser/artifacts/lesson00.png.

Needs Debian's Chromium (`apt-get install chromium`) and the Python package `playwright` (the
`test` extra). Playwright's own browser download is never used. Skipped when either is missing.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/00_welcome.ipynb"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:                      # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian/Ubuntu: apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="the playwright Python package is not installed (pip install playwright)"),
    pytest.mark.timeout(240),
]


def _die_with_parent():
    """Linux: the server gets SIGTERM if pytest itself is killed, so no server outlives a test run."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 with no token, its config and state in temp folders."""
    pytest.importorskip("jupyterlab")
    env = dict(os.environ, MINIDLM_SMOKE="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        (tmp_path / var.lower()).mkdir()
        env[var] = str(tmp_path / var.lower())
    env.pop("MPLBACKEND", None)          # the kernel uses the inline backend
    # no "get Jupyter news?" toast over the page
    labconfig = tmp_path / "jupyter_config_dir" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    # never autosave: the notebook in the repository must stay exactly as committed (no outputs)
    settings = tmp_path / "lab_settings"
    docmanager = settings / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "lab_workspaces")
    port = _free_port()
    log = open(tmp_path / "jupyter.log", "w")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           "--ServerApp.password=", f"--ServerApp.root_dir={ROOT}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f"jupyter lab did not start in 60 s:\n{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
                time.sleep(0.5)
        with urllib.request.urlopen(f"{url}/lab/api/settings/@jupyterlab/docmanager-extension:plugin", timeout=10) as r:
            assert json.load(r)["settings"].get("autosave") is False, "autosave is on: the test could write outputs"
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)             # the server shuts its kernels down
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)       # the group holds only this server and its kernels
            proc.wait(timeout=10)
        log.close()


def _step(page) -> int:
    text = page.locator(".mdlm-step").first.text_content()
    return int(re.match(r"step (\d+)", text).group(1))


def test_classroom_demo_plays_in_jupyterlab(jupyter_lab):
    stored = (ROOT / NOTEBOOK).read_bytes()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lesson00.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{jupyter_lab}/lab/tree/{NOTEBOOK}", wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            # wait for the kernel, then Run > Run All Cells
            page.wait_for_function("() => { const bar = document.querySelector('#jp-main-statusbar');"
                                   " return bar && /Python[^\\n]*\\| Idle/.test(bar.innerText); }", timeout=90_000)
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            # the player: its HTML card appears with the step counter at 0 and every slot masked
            page.wait_for_selector(".jp-OutputArea .mdlm-card", timeout=90_000)
            assert _step(page) == 0
            assert page.locator(".mdlm-card .mdlm-mask").count() == 63
            assert page.locator(".widget-play").count() >= 1 and page.locator(".widget-slider").count() >= 1
            # let the remaining cells finish so the kernel answers the widget at once
            page.wait_for_function(
                "() => ![...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.textContent.includes('*'))",
                timeout=120_000)
            tokens_before = page.locator(".mdlm-card .mdlm-tok").count()

            page.locator(".widget-play button").first.click()                   # Play
            page.wait_for_function("() => { const s = document.querySelector('.mdlm-step');"
                                   " return s && parseInt(s.textContent.match(/step (\\d+)/)[1]) >= 4; }",
                                   timeout=60_000)
            assert _step(page) >= 4
            masked_now = page.locator(".mdlm-card .mdlm-mask").count()
            assert masked_now < 63, "Play advanced the counter but nothing was unmasked"
            assert page.locator(".mdlm-card .mdlm-tok").count() >= tokens_before
            # a little further, so that the screenshot shows words as well as boxes
            page.wait_for_function("() => { const s = document.querySelector('.mdlm-step');"
                                   " return s && parseInt(s.textContent.match(/step (\\d+)/)[1]) >= 20; }",
                                   timeout=60_000)
            assert page.locator(".mdlm-card .mdlm-tok").count() > tokens_before, "no words were revealed"
            page.locator(".mdlm-card").first.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "lesson00-failure.png"))
            raise
        finally:
            browser.close()
    assert (ROOT / NOTEBOOK).read_bytes() == stored, "the browser session changed the notebook on disk"
    assert shot.stat().st_size > 10_000
    print(f"\nscreenshot: {shot}")
