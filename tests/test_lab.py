"""`make lab`: JupyterLab on the course root serves the lessons and nbgrader's Formgrader."""
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "course-test-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it (course root, nbgrader's extensions), on 127.0.0.1."""
    port = free_port()
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", "--notebook-dir=.", "--ServerApp.port_retries=0", "--allow-root"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"JUPYTER_RUNTIME_DIR": str(runtime), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                get(f"{base}/api/status?token={TOKEN}", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_lab_serves_the_course_notebooks(lab):
    status, body = get(f"{lab}/api/contents/release/02_gradient_step?token={TOKEN}")
    assert status == 200 and "gradient_step.ipynb" in body


def test_formgrader_and_nbgrader_lab_extension_are_on(lab):
    status, body = get(f"{lab}/formgrader?token={TOKEN}")
    assert status == 200 and "formgrader" in body.lower()
    status, body = get(f"{lab}/lab?token={TOKEN}")
    assert status == 200 and "@jupyter/nbgrader" in body
