"""Reading submissions in bounded helpers (no sandbox): what comes back for honest,
unreadable, slow, greedy and crashing files, and that a helper lost to one file costs the
next file nothing."""
import json
from pathlib import Path

import pytest

from autograder.core import Submission
from autograder.reading import Reader
from autograder.sandbox import Limits
from autograder.submission import read_notebook

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "release" / "01_sigmoid" / "sigmoid.ipynb"


class Spec:
    release_nb = read_notebook(RELEASE.read_bytes())[0]
    others = {}


def with_cell(source):
    notebook = json.loads(RELEASE.read_text())
    notebook["cells"].append({"cell_type": "code", "metadata": {}, "source": source,
                              "outputs": [], "execution_count": None})
    return json.dumps(notebook).encode()


@pytest.fixture(scope="module")
def reader():
    with Reader(1, Limits(read_seconds=4, read_memory_mb=150)) as one:
        yield one


def read(reader, data):
    return reader.read(Spec, Submission("s", data, "0", name="sigmoid.ipynb"))


def test_an_honest_file_comes_back_matched_and_read(reader):
    answer = read(reader, with_cell("import numpy as np\nprint(np.pi)"))
    assert answer["static"] == [] and answer["notes"] == []
    assert "import numpy as np\nprint(np.pi)" in answer["matched"]["cells"]


def test_a_file_that_is_no_notebook_says_why(reader):
    assert read(reader, b"{ not json") == {"unreadable": "sigmoid.ipynb: not valid JSON at line 1"}


def test_a_slow_file_passes_the_time_bound_and_the_next_file_is_read(reader):
    assert read(reader, with_cell("%pwd\n" * 40_000)) == {
        "bound": "reading it took longer than 4 s"}
    assert "static" in read(reader, with_cell("x = 1"))


def test_a_greedy_file_passes_the_memory_bound(reader):
    answer = read(reader, with_cell("a = 1\n" * 400_000))
    assert answer.get("bound") in ("reading it needed more than 150 MB of memory",
                                   "reading it took longer than 4 s")
    assert "static" in read(reader, with_cell("x = 1"))


def test_a_file_that_crashes_the_reading_comes_back_as_a_crash(reader):
    answer = read(reader, with_cell('=%"""#,='))
    assert answer["crash"] == "IndexError: list index out of range"
    assert "Traceback" in answer["traceback"]
