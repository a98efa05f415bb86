"""`make lab`: JupyterLab on the course root serves the lessons and nbgrader's Formgrader."""
import urllib.request
from pathlib import Path

import pytest

from conftest import JUPYTER_TOKEN, lab_server

ROOT = Path(__file__).resolve().parents[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it (course root, nbgrader's extensions), on 127.0.0.1."""
    with lab_server(ROOT, tmp_path_factory.mktemp("jupyter-state")) as base:
        yield base


def test_lab_serves_the_course_notebooks(lab):
    status, body = get(f"{lab}/api/contents/release/02_gradient_step?token={JUPYTER_TOKEN}")
    assert status == 200 and "gradient_step.ipynb" in body


def test_formgrader_and_nbgrader_lab_extension_are_on(lab):
    status, body = get(f"{lab}/formgrader?token={JUPYTER_TOKEN}")
    assert status == 200 and "formgrader" in body.lower()
    status, body = get(f"{lab}/lab?token={JUPYTER_TOKEN}")
    assert status == 200 and "@jupyter/nbgrader" in body
