"""The static reading of a student's cells (no sandbox): every way of reaching the box's own
reporting code is flagged, honest notebook code is not, and a cell no reading can finish
is not taken for a clean one."""
import pytest

from autograder.tamper import classify, static_flags


@pytest.mark.parametrize("source, flag", [
    ("import os\nos.write = lambda fd, data: 0", "patches os.write"),
    ("import os\nos.write(4, b'{}')", "uses raw file descriptors (os.write)"),
    ("import os\nos.dup2(os.open('/dev/null', 0), 4)", "uses raw file descriptors (os.dup2)"),
    ("open(4, 'wb').write(b'{}')", "uses raw file descriptors (open of a number)"),
    ("import os as o\no._exit = print", "patches o._exit"),
    ("import inspect\ninspect.currentframe().f_back", "uses frame inspection"),
    ("[o for o in __import__('gc').get_objects()]", "uses a walk of the heap"),
    ("import sys\nsys._getframe(1).f_back.f_locals", "uses frame inspection"),
    ("try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame", "uses frame inspection"),
    ("send.__globals__['_write'] = print", "uses a function's insides"),
    ("import ctypes", "uses raw memory access"),
    ("np.isclose = lambda *a, **k: True", "patches np.isclose"),
    ("get_ipython().ast_transformers.append(None)", "installs an IPython AST transformer"),
])
def test_reaching_the_reporting_code_is_flagged(source, flag):
    assert flag in static_flags([source])


def test_honest_code_raises_no_flag():
    honest = ["import os\nos.environ['OMP_NUM_THREADS'] = '1'\nprint(os.listdir('.'))",
              "import numpy as np\nx = np.linspace(0, 1, 5)\nprint(np.isclose(x, x).all())",
              "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])",
              "!echo hello", "with open('notes.txt', 'w') as f:\n    f.write('ok')",
              "import gc\ngc.collect()", "import inspect\nprint(inspect.signature(print))",
              "for name in ['sin', 'cos']:\n    print(getattr(np, name)(0))",
              "open('../data/notes.txt')", "url = 'https://example.org/release/data.csv'",
              "print(np.stack([np.zeros(2), np.ones(2)]))"]
    assert static_flags(honest) == []


def test_a_cell_that_breaks_the_reading_is_not_a_clean_reading():
    """Out of stack (or memory) is no reading at all: it goes up, to be that file's row."""
    with pytest.raises((RecursionError, MemoryError)):  # the parser's stack, either way
        static_flags(["x = " + "-" * 100_000 + "1"])


def test_refused_calls_and_started_processes_are_notes_not_flags():
    attempts, notes = classify(["started a process", "refused system call flock",
                                "opened /source/x (outside the workspace)",
                                "tried a forbidden system call (add_key)"])
    assert notes == ["started a process", "refused system call flock"]
    assert attempts == ["opened /source/x (outside the workspace)",
                        "tried a forbidden system call (add_key)"]
