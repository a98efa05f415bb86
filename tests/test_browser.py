"""The learning-rate widgets and the student's path, in a real browser.

Debian's Chromium, driven by Playwright, against one JupyterLab started here (nbgrader's
extensions on, the news pop-up off) on a scratch copy of the course, in which
`solved/<assignment>/` holds each release notebook with its solution filled in
(tests/fixtures/submissions/<assignment>/passes_all.ipynb) and `release/` is as students get it.
Notebook 7 is checked on the same server, Voila on its own.

Screenshots and the measured response times go to build/test-artifacts/browser/.
GD_UPDATE_SCREENSHOTS=1 also rewrites the pictures notebooks/start_here.ipynb shows.
"""
import json
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from autograder.course import copy_course, open_course
from autograder.release import ensure_gradebook
from conftest import JUPYTER_TOKEN, jupyter_server, lab_server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

# `playwright install` cannot download a browser here; these flags keep Debian's Chromium
# from phoning home or needing a GPU or a user namespace (root in a container has neither).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
ARTEFACTS = ROOT / "build" / "test-artifacts" / "browser"
START_HERE = ROOT / "notebooks" / "start_here.ipynb"
START_HERE_IMAGES = ROOT / "notebooks" / "img"
SUBMISSIONS = ROOT / "tests" / "fixtures" / "submissions"
SOLVED = "solved"
# A learner notices a slider that takes longer than this to redraw.
RESPONSE_LIMIT = 2.0
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
TOAST = ".Toastify__toast"

# The notebook's kernel is connected and idle. The status dot alone says 'idle' before there is
# any kernel, and cells run then are silently skipped: the kernel's name must be there too.
KERNEL_READY = r"""() => {
    const name = document.querySelector('.jp-NotebookPanel-toolbar [data-jp-item-name="kernelName"]');
    const status = document.querySelector('.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator');
    return name !== null && status !== null && !name.textContent.includes('No Kernel')
        && status.dataset.status === 'idle';
}"""
# The source of every code cell, line by line (innerText would be empty for cells off screen).
CELL_SOURCES = r"""() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(
    cell => [...cell.querySelectorAll('.jp-InputArea-editor .cm-line')].map(line => line.textContent).join('\n'))"""
# Every code cell shows an execution count: the whole notebook ran.
ALL_CELLS_RAN = r"""() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\[\d+\]/.test(p.textContent));
}"""
NOTHING_RUNNING = r"""() => ![...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')]
    .some(p => p.textContent.includes('*'))"""
# The output area has its new picture and, if asked, a line of text containing `marker`.
REDRAWN = """([output, oldImage, marker]) => {
    const image = output.querySelector('img');
    return image !== null && image.src !== oldImage && output.innerText.includes(marker);
}"""

STEP_LINE = re.compile(r"learnrate ([\d.]+): error ([+-][\d.]+) -> ([+-][\d.]+)")
TRAINING_LINE = re.compile(r"E after (\d+) epochs: ([\d.]+) \(([a-z ]+)\)")

# Lesson 2's quiz as a newcomer might first write it (error_term without f'(h)), and fixed.
QUIZ_WITH_MISTAKE = """h = np.dot(x, w)
nn_output = sigmoid(h)
error = y - nn_output
error_term = error
del_w = learnrate * error_term * x
"""
QUIZ_FIXED = QUIZ_WITH_MISTAKE.replace("error_term = error\n", "error_term = error * sigmoid_prime(h)\n")
# Typed key by key: the editor indents the body after the `def` line by itself.
GRADIENT_STEP = """def gradient_step(x, y, w, learnrate):
h = np.dot(x, w)
error_term = (y - sigmoid(h)) * sigmoid_prime(h)
return learnrate * error_term * x
"""

response_seconds = {}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def browser_available():
    """Skip the module on a machine without Chromium or Playwright.

    With GD_REQUIRE_BROWSER=1 (CI sets it) every test fails instead: a machine that lost its
    browser must not pass by skipping the widgets and the student's path.
    """
    if not CHROMIUM.exists():
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    elif sync_playwright is None:
        missing = "Playwright is not installed (pip install -e '.[test]')"
    else:
        return
    if os.environ.get("GD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required: {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture(scope="module", autouse=True)
def artefacts(browser_available):
    """A clean artefact folder; the measured response times are written there at the end."""
    shutil.rmtree(ARTEFACTS, ignore_errors=True)
    ARTEFACTS.mkdir(parents=True)
    yield ARTEFACTS
    (ARTEFACTS / "response_seconds.json").write_text(json.dumps(response_seconds, indent=1) + "\n")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A scratch course: release/ untouched, solved/ with the solutions in, a gradebook for the formgrader."""
    course = copy_course(open_course(ROOT), tmp_path_factory.mktemp("browser") / "course")
    for assignment in course.assignments():
        ensure_gradebook(course, assignment)
        released = next((course.release_dir / assignment).glob("*.ipynb"))
        solved = course.root / SOLVED / assignment / released.name
        solved.parent.mkdir(parents=True)
        shutil.copyfile(SUBMISSIONS / assignment / "passes_all.ipynb", solved)
    return course


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory):
    """One JupyterLab for the module, serving the scratch course."""
    with lab_server(course.root, tmp_path_factory.mktemp("lab-state")) as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with a fresh profile: no cookies, settings or cache from anyone's own browsing."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS, viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def script_errors():
    """Uncaught script errors of the test's tab (a test may drop ones it knows are not the course's)."""
    return []


@pytest.fixture
def page(browser, lab, script_errors, request):
    """A tab; afterwards its kernels are shut down and no script error may have reached the page.

    Its last state is saved as `<test name>-end.png`: what a failed test left on the screen.
    """
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.on("pageerror", lambda error: script_errors.append(error.message))
    yield page
    screenshot(page, f"{request.node.name}-end")
    page.close()
    shut_down_kernels(lab)
    assert not script_errors, f"uncaught errors in the page: {script_errors}"


def shut_down_kernels(lab):
    """Stop every kernel the tab started, so kernels do not pile up over the module."""
    def call(method, path):
        request = urllib.request.Request(f"{lab}{path}?token={JUPYTER_TOKEN}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    for kernel in call("GET", "/api/kernels"):
        call("DELETE", f"/api/kernels/{kernel['id']}")


# ---------------------------------------------------------------- what a user does

def open_in_lab(page, lab, path):
    """Open a notebook in JupyterLab, in a reset workspace (no tabs left by earlier tests)."""
    page.goto(f"{lab}/lab/tree/{path}?token={JUPYTER_TOKEN}&reset")
    page.wait_for_function(KERNEL_READY, timeout=60_000)


def menu(page, top, item):
    """Click a menu-bar item, then an entry of its menu, as a user does."""
    page.locator(".lm-MenuBar-item").filter(has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-item").filter(has_text=re.compile(f"^{re.escape(item)}")).first.click()


def run_all(page):
    """Run > Run All Cells, and wait until every code cell has run."""
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(ALL_CELLS_RAN, timeout=90_000)


def restart_and_run_all(page):
    """Kernel > Restart Kernel and Run All Cells, confirmed, as the header cell asks before submitting."""
    menu(page, "Kernel", "Restart Kernel and Run All Cells")
    page.locator(".jp-Dialog .jp-mod-accept").click()


def stderr_outputs(page):
    """Text of every stderr output and traceback on the page."""
    return page.locator(STDERR).all_inner_texts()


def printed(page, line):
    """How many outputs show `line` (outputs only: a test cell's source holds the same words)."""
    return page.locator(".jp-OutputArea-output", has_text=line).count()


def code_cell(page, containing):
    """The code cell whose text contains `containing`, pinned by position (typing changes its text)."""
    matches = [i for i, text in enumerate(page.evaluate(CELL_SOURCES)) if containing in text]
    assert matches, f"no code cell contains {containing!r}"
    return page.locator(".jp-Notebook .jp-CodeCell").nth(matches[0])


def retype(page, cell, text):
    """Select everything in the cell's editor and type `text` over it, key by key."""
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type(text)


def validate(page):
    """Press nbgrader's Validate button; return the result dialog (still open)."""
    page.locator(".jp-NotebookPanel-toolbar .jp-ToolbarButtonComponent", has_text="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("#validation-message").wait_for(timeout=90_000)
    return dialog


def explorer(page, nth=0):
    """The nth widget box holding a slider and its output area."""
    return (page.locator(".widget-vbox").filter(has=page.locator(".widget-slider"))
            .filter(has=page.locator(".widget-output")).nth(nth))


def slider(box, label="learnrate"):
    return box.locator(".widget-slider").filter(has=box.page.locator(".widget-label", has_text=label))


def output_state(box):
    """(text, picture source) of an explorer's output area."""
    output = box.locator(".widget-output")
    image = output.locator("img")
    return output.inner_text(), image.get_attribute("src") if image.count() else None


def redraw_after(box, act, *, marker="", timing=None):
    """Do `act` (a slider move), wait until the output has a new picture and text; return it."""
    output = box.locator(".widget-output")
    _, old_image = output_state(box)
    started = time.monotonic()
    act()
    box.page.wait_for_function(REDRAWN, arg=[output.element_handle(), old_image, marker], timeout=15_000)
    if timing:
        response_seconds[timing] = round(time.monotonic() - started, 3)
        assert response_seconds[timing] < RESPONSE_LIMIT, f"{timing}: slow to redraw"
    return output_state(box)[0]


def type_value(box, value, *, label="learnrate", marker="", timing=None):
    """Type a value into the slider's readout, press Enter, wait for the redraw; return the new text."""
    readout = slider(box, label).locator(".widget-readout")

    def act():
        readout.click()
        box.page.keyboard.press("Control+a")
        box.page.keyboard.type(value)
        box.page.keyboard.press("Enter")
    return redraw_after(box, act, marker=marker, timing=timing)


def press_key(box, key, *, label="learnrate", marker="", timing=None):
    """Focus the slider's handle and press `key` (ArrowRight: one step up)."""
    handle = slider(box, label).locator(".noUi-handle")

    def act():
        handle.focus()
        box.page.keyboard.press(key)
    return redraw_after(box, act, marker=marker, timing=timing)


def readout(box, label="learnrate"):
    return slider(box, label).locator(".widget-readout").inner_text()


def screenshot(target, name):
    """Save a screenshot of a page or an element as a test artefact; return its path."""
    path = ARTEFACTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


def save_for_start_here(page, name):
    """Rewrite notebooks/img/<name>.png (GD_UPDATE_SCREENSHOTS=1 only): 128 colours keep it small."""
    if os.environ.get("GD_UPDATE_SCREENSHOTS") != "1":
        return
    from PIL import Image
    shot = screenshot(page, f"start_here_{name}")
    START_HERE_IMAGES.mkdir(exist_ok=True)
    Image.open(shot).convert("RGB").quantize(128).save(START_HERE_IMAGES / f"{name}.png", optimize=True)


def training_figures(text):
    """(epochs, final E, verdict) from the training explorer's sentence."""
    match = TRAINING_LINE.search(text)
    assert match, f"no 'E after ... epochs' line in {text!r}"
    return int(match[1]), float(match[2]), match[3]


def step_figures(text):
    """(learnrate, error before, error after) from the step explorer's line."""
    match = STEP_LINE.search(text)
    assert match, f"no 'learnrate ...: error ... -> ...' line in {text!r}"
    return float(match[1]), float(match[2]), float(match[3])


# ---------------------------------------------------------------- the assignments, solved

def test_lesson_1_runs_and_draws_the_sigmoid(page, lab):
    open_in_lab(page, lab, f"{SOLVED}/01_sigmoid/sigmoid.ipynb")
    run_all(page)
    assert not stderr_outputs(page)
    assert printed(page, "sigmoid_prime: checks passed.") == 1
    figure = page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img").last
    figure.scroll_into_view_if_needed()
    assert figure.evaluate("img => img.naturalWidth") > 300
    screenshot(page, "lesson1_sigmoid_plot")


def run_to_explorer(page, lab, path):
    """Open `path`, run every cell (no stderr output on the way) and return its explorer."""
    open_in_lab(page, lab, path)
    run_all(page)
    assert not stderr_outputs(page)
    box = explorer(page)
    box.scroll_into_view_if_needed()
    return box


def test_step_explorer_follows_the_maths(page, lab):
    """A larger rate takes a larger step: the error after it shrinks, then overshoots past zero."""
    box = run_to_explorer(page, lab, f"{SOLVED}/02_gradient_step/gradient_step.ipynb")
    _, before, at_default = step_figures(output_state(box)[0])
    assert readout(box) == "0.50"

    _, start, small = step_figures(type_value(box, "0.1", marker="learnrate 0.1", timing="step, typed"))
    _, _, larger = step_figures(press_key(box, "ArrowRight", marker="learnrate 0.2", timing="step, key"))
    assert readout(box) == "0.20"
    _, _, overshoot = step_figures(type_value(box, "2", marker="learnrate 2.0"))
    screenshot(box, "lesson2_step_explorer_overshoot")
    # One picture: the explorer's own, not a second copy pyplot shows after the cell.
    assert code_cell(page, "step_explorer(").locator("img").count() == 1

    assert start == before < 0  # the output is too high: the error before the step is negative
    assert before < small < larger < at_default < 0  # each larger step gets closer to the target
    assert overshoot > 0  # far too large a step jumps past it: the error changes sign
    assert not stderr_outputs(page)


def test_training_explorer_follows_the_maths(page, lab):
    """Slow, then converged, then oscillating, then diverging, as the learning rate grows."""
    box = run_to_explorer(page, lab, f"{SOLVED}/03_gradient_descent/gradient_descent.ipynb")
    epochs, at_one, verdict = training_figures(output_state(box)[0])
    assert (epochs, verdict) == (50, "converged") and readout(box) == "1.00"
    screenshot(box, "lesson3_training_explorer_rate_1")

    _, at_tenth, slow = training_figures(type_value(box, "0.1", marker="(slow)", timing="training, typed"))
    _, at_ten, fast = training_figures(type_value(box, "10", marker="(converged)"))
    # 10^(1 - 0.05): the log slider's one notch down from 10, still in the stable range.
    _, _, near_ten = training_figures(press_key(box, "ArrowLeft", marker="converged", timing="training, key"))
    assert readout(box) == "8.91" and near_ten == "converged"
    screenshot(box, "lesson3_training_explorer_rate_10")
    # Past the stable range (about 36 for 50 epochs, lesson 3's own question).
    oscillating = type_value(box, "100", marker="(oscillating)")
    screenshot(box, "lesson3_training_explorer_rate_100")
    _, at_thousand, diverging = training_figures(type_value(box, "1000", marker="(diverging)"))
    screenshot(box, "lesson3_training_explorer_rate_1000")
    assert code_cell(page, "training_explorer(").locator("img").count() == 1

    assert at_tenth > at_one > at_ten  # a larger stable rate gets further in 50 epochs
    assert "The loss rose at" in oscillating and "first at epoch" in oscillating
    assert at_thousand > at_one  # past the stable range the loss rises instead of falling
    assert (slow, fast, diverging) == ("slow", "converged", "diverging")
    assert not stderr_outputs(page)


# ---------------------------------------------------------------- the ungraded lessons

# lesson, value typed, readout after one step up, what the timings and screenshot are called
LESSON_SLIDERS = [("learning_rate", "0.9", "0.95", "learning_rate slider"),
                  ("error_surface", "1", "1.12", "descent path")]


@pytest.mark.parametrize("lesson, typed, one_step_up, name", LESSON_SLIDERS)
def test_lesson_slider_redraws(page, lab, lesson, typed, one_step_up, name):
    open_in_lab(page, lab, f"notebooks/{lesson}.ipynb")
    run_all(page)
    box = explorer(page)
    type_value(box, typed, timing=f"{name}, typed")
    press_key(box, "ArrowRight", timing=f"{name}, key")
    assert readout(box) == one_step_up
    screenshot(box, f"{lesson}_slider")
    assert not stderr_outputs(page)


def test_learning_rate_lesson_shows_only_the_figure(page, lab):
    open_in_lab(page, lab, "notebooks/learning_rate.ipynb")
    run_all(page)
    text, image = output_state(explorer(page))
    assert image and "Axes" not in text
    # One picture: the slider's own, not a second copy pyplot shows after the cell.
    assert code_cell(page, "widgets.VBox([learnrate, picture])").locator("img").count() == 1


# ---------------------------------------------------------------- other front ends

# Notebook 7.6's own bundle (notebook_core) raises these while loading any notebook page, with
# every extension disabled too: a settings-schema lookup and its file-browser restore.
NOTEBOOK_7_OWN_ERRORS = {"Cannot read properties of undefined (reading 'schema')",
                         "Command 'filebrowser:open-path' not registered."}


def test_notebook_7_runs_the_training_explorer(page, lab, script_errors):
    page.goto(f"{lab}/notebooks/{SOLVED}/03_gradient_descent/gradient_descent.ipynb?token={JUPYTER_TOKEN}")
    page.wait_for_function(KERNEL_READY, timeout=60_000)
    run_all(page)
    box = explorer(page)
    box.scroll_into_view_if_needed()
    assert training_figures(output_state(box)[0])[2] == "converged"
    text = type_value(box, "100", marker="(oscillating)", timing="training, Notebook 7")
    assert "The loss rose at" in text
    screenshot(page, "notebook7_training_explorer")
    assert not stderr_outputs(page)
    script_errors[:] = [error for error in script_errors if error not in NOTEBOOK_7_OWN_ERRORS]


def test_voila_renders_the_training_explorer(course, browser, tmp_path):
    notebook = f"{SOLVED}/03_gradient_descent/gradient_descent.ipynb"
    with jupyter_server("voila", course.root, tmp_path, "--Voila.ip=127.0.0.1", notebook,
                        ready_path="/voila/static/") as voila:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        try:
            # Voila streams the page while it runs the notebook: wait for the widget, not for `load`.
            page.goto(voila, wait_until="commit")
            box = explorer(page)
            box.locator(".widget-output img").wait_for(timeout=90_000)
            assert training_figures(output_state(box)[0])[2] == "converged"
            text = type_value(box, "1000", marker="(diverging)", timing="training, Voila")
            assert "The loss ended higher than it started" in text
            screenshot(page, "voila_training_explorer")
            # Voila shows outputs only: the learner's code and the test cells' source stay hidden.
            assert "def train" not in page.locator("body").inner_text()
        finally:
            page.close()


# ---------------------------------------------------------------- the instructor's side

def test_formgrader_lists_the_assignments(page, lab, course):
    page.goto(f"{lab}/formgrader?token={JUPYTER_TOKEN}")
    rows = page.locator("table tbody tr")
    rows.filter(has_text=course.assignments()[0]).wait_for()  # the table fills in after a "Loading" row
    names = [row.locator("td").first.inner_text() for row in rows.all()]
    assert names == course.assignments()
    screenshot(page, "formgrader")


# ---------------------------------------------------------------- the student's path

def test_student_opens_fills_in_validates_and_reads_the_messages(page, lab, course):
    """The path start_here.ipynb describes: open, answer, run, validate, fix, validate again."""
    path = "release/02_gradient_step/gradient_step.ipynb"
    released = json.loads((course.root / path).read_text())
    open_in_lab(page, lab, path)
    quiz = code_cell(page, "# YOUR CODE HERE\nraise NotImplementedError()")
    function = code_cell(page, "def gradient_step(")
    data = code_cell(page, "learnrate = 0.5\nx = np.array([1, 2, 3, 4])")
    # The picture start_here.ipynb shows: the locked data, the answer cell, the Validate button.
    data.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    screenshot(page, "student_1_opened")
    save_for_start_here(page, "assignment_open")

    # A locked cell (the data) ignores typing; the answer cells take it.
    locked_text = data.locator(".cm-content").inner_text()
    data.locator(".cm-content").click()
    page.keyboard.type("w = 0")
    assert data.locator(".cm-content").inner_text() == locked_text
    assert data.locator(".cm-editor.jp-mod-readOnly").count() == 1
    retype(page, quiz, QUIZ_WITH_MISTAKE)
    retype(page, function, GRADIENT_STEP)

    restart_and_run_all(page)
    failed = code_cell(page, '"""Check error_term')
    traceback = failed.locator(STDERR).filter(has_text="CheckFailed: ")
    traceback.wait_for(timeout=60_000)
    page.wait_for_function(NOTHING_RUNNING)  # Run All stops at the failed check
    failed.scroll_into_view_if_needed()
    screenshot(page, "student_2_check_failed")
    # The traceback echoes the test's source; the message for the learner is its last part.
    message = traceback.inner_text().rsplit("CheckFailed: ", 1)[1].strip()
    assert "error_term" in message

    dialog = validate(page)
    assert dialog.locator(".validation-failed").count() == 1
    assert '"""Check error_term' in dialog.inner_text() and message in dialog.inner_text()
    body = dialog.locator("#validation-message")
    body.evaluate("body => body.scrollTop = body.scrollHeight")  # down to the message, as a reader scrolls
    screenshot(page, "student_3_validate_failed")
    save_for_start_here(page, "validate_failed")
    dialog.locator(".jp-mod-accept").click()

    retype(page, quiz, QUIZ_FIXED)
    restart_and_run_all(page)
    code_cell(page, "step_explorer(").locator(".widget-output", has_text="learnrate 0.5").wait_for(timeout=60_000)
    page.wait_for_function(ALL_CELLS_RAN)
    assert not stderr_outputs(page)
    for name in ("h", "nn_output", "error", "error_term", "del_w", "gradient_step"):
        assert printed(page, f"{name}: checks passed.") == 1, name

    dialog = validate(page)
    assert "Success! Your notebook passes all the tests." in dialog.inner_text()
    screenshot(page, "student_4_validate_passed")
    assert page.locator(TOAST).count() == 0  # no news pop-up over the notebook
    dialog.locator(".jp-mod-accept").click()

    # Validate saved the notebook first: on disk is what the student would hand in.
    saved = json.loads((course.root / path).read_text())
    sources = ["".join(cell["source"]) for cell in saved["cells"]]
    assert QUIZ_FIXED.strip() in [source.strip() for source in sources]
    assert ([cell["metadata"].get("nbgrader") for cell in saved["cells"]]
            == [cell["metadata"].get("nbgrader") for cell in released["cells"]])


def test_start_here_shows_the_committed_screenshots():
    """start_here.ipynb's pictures exist, are small, and every picture in img/ is used."""
    text = "".join("".join(cell["source"]) for cell in json.loads(START_HERE.read_text())["cells"])
    linked = re.findall(r"!\[[^\]]+\]\((img/[^)]+\.png)\)", text)
    assert linked, "start_here.ipynb shows no screenshot"
    for link in linked:
        image = START_HERE.parent / link
        assert image.is_file() and image.stat().st_size < 200_000, link
    assert sorted(p.name for p in START_HERE_IMAGES.glob("*.png")) == sorted(Path(l).name for l in linked)
