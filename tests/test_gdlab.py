"""The student-side package: data, checks, learner calls, widgets; and that it holds no answer."""
import ast
import csv
import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from autograder import reference
from gdlab import checks, data, widgets
from gdlab.learner import NotReady, call

GDLAB = Path(data.__file__).resolve().parent


def make_rows():
    """The generator script shipped beside the data file (a script, not a module of gdlab)."""
    namespace = {}
    exec(compile((GDLAB / "data" / "make_study_habits.py").read_text(), "make_study_habits.py", "exec"),
         namespace)
    return namespace["make_rows"]()


def test_data_set_ships_with_provenance_and_regenerates_byte_for_byte():
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["hours_studied", "hours_slept", "passed_maths", "passed_physics"])
    writer.writerows(make_rows())
    assert (GDLAB / "data" / "study_habits.csv").read_text() == buffer.getvalue()
    assert "Provenance" in (GDLAB / "data" / "README.md").read_text()


def test_loaded_data_are_standardised_with_a_bias_column():
    features, targets = data.load_study_habits()
    assert features.shape == (40, 3) and targets.shape == (40, 2)
    np.testing.assert_allclose(features[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(features[:, :2].std(axis=0), 1)
    assert np.all(features[:, 2] == 1) and set(np.unique(targets)) == {0.0, 1.0}


def test_initial_weights_are_seeded():
    np.testing.assert_array_equal(data.initial_weights(3, 2, seed=42), data.initial_weights(3, 2, seed=42))
    assert not np.array_equal(data.initial_weights(3, 2, seed=42), data.initial_weights(3, 2, seed=0))


def test_hidden_check_messages_never_show_the_expected_value():
    expected = [-0.020318691802303994, -0.04063738360460799]
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_close("del_w", [0.020318691802303994, 0.04063738360460799], expected)
    message = " ".join(str(failure.value).split())  # messages are wrapped for nbgrader validate
    assert "right size but the wrong sign" in message
    assert "0.0203" not in message and "0.0406" not in message
    assert all(len(line) <= checks.MESSAGE_WIDTH for line in str(failure.value).splitlines())


@pytest.mark.parametrize("value, words", [
    (None, "no value yet"), ("abc", "not str"), ([1.0, 2.0], "single number"), (np.inf, "not a finite"),
])
def test_check_number_says_what_is_wrong(value, words):
    with pytest.raises(checks.CheckFailed, match=words):
        checks.check_number("h", value)


def test_check_shape_accepts_a_list_or_an_array():
    for del_w in ([1.0, 2.0, 3.0, 4.0], np.arange(4.0)):
        assert checks.check_shape("del_w", del_w, (4,)).shape == (4,)
    with pytest.raises(checks.CheckFailed, match=r"(?s)shape \(4,\).*shape \(\)"):
        checks.check_shape("del_w", 0.5, (4,))


def test_learner_call_turns_failures_into_sentences():
    def unwritten(x):
        raise NotImplementedError()

    def broken(x):
        return x / "a"

    with pytest.raises(NotReady, match="not written yet"):
        call(unwritten, 1)
    with pytest.raises(NotReady, match="raised TypeError"):
        call(broken, 1)
    assert call(abs, -2) == 2


@pytest.mark.parametrize("learnrate, verdict", [
    (0.1, "slow"), (10.0, "converged"), (100.0, "oscillating"), (1000.0, "diverging")])
def test_describe_training_names_the_four_regimes(learnrate, verdict):
    features, targets = data.load_study_habits()
    _, losses = reference.train(features, targets, data.initial_weights(3, 2, seed=42), learnrate, 50)
    assert widgets.describe_training(losses) == verdict


def test_describe_training_flags_non_finite_losses():
    assert widgets.describe_training([1.0, np.inf, np.nan]) == "not finite"


def shown(output):
    """The text an explorer's output area shows under its figure."""
    return "".join(item.get("text", "") for item in output.outputs if item["output_type"] == "stream")


def has_figure(output):
    return any("image/png" in item.get("data", {}) for item in output.outputs)


def test_explorers_explain_an_unwritten_function_in_a_sentence():
    def train(*args):
        raise NotImplementedError()

    features, targets = data.load_study_habits()
    _, _, output = widgets.training_explorer(train, features, targets, np.zeros((3, 2)))
    assert "`train` is not written yet" in shown(output) and "Traceback" not in shown(output)
    assert not has_figure(output)


def test_step_explorer_redraws_when_the_slider_moves():
    x, y, w = reference.QUIZ["x"], reference.QUIZ["y"], reference.QUIZ["w"]
    slider, output = widgets.step_explorer(reference.gradient_step, reference.sigmoid, x, y, w)
    assert shown(output) == "learnrate 0.5: error -0.1900 -> -0.0475\n" and has_figure(output)
    first_figure = output.outputs[0]
    slider.value = 5.0  # a step that overshoots: the error changes sign
    assert shown(output) == "learnrate 5.0: error -0.1900 -> +0.4950\n"
    assert has_figure(output) and output.outputs[0] != first_figure


def test_explorers_leave_no_figure_open_for_pyplot_to_show_again():
    x, y, w = reference.QUIZ["x"], reference.QUIZ["y"], reference.QUIZ["w"]
    before = plt.get_fignums()
    slider, _ = widgets.step_explorer(reference.gradient_step, reference.sigmoid, x, y, w)
    slider.value = 2.0
    assert plt.get_fignums() == before


def test_training_explorer_names_the_regime_it_draws():
    features, targets = data.load_study_habits()
    learnrate, _, output = widgets.training_explorer(reference.train, features, targets,
                                                     data.initial_weights(3, 2, seed=42))
    assert "(converged)" in shown(output)
    learnrate.value = 1000.0
    assert "(diverging)" in shown(output) and "The loss rose at" in shown(output)


def test_student_package_defines_no_course_answer():
    answers = {"sigmoid", "sigmoid_prime", "gradient_step", "sum_squared_error", "train"}
    for path in GDLAB.rglob("*.py"):
        tree = ast.parse(path.read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert not defined & answers, f"{path.name} defines {defined & answers}"
        assert "autograder" not in path.read_text(), f"{path.name} imports the instructor's package"


@pytest.mark.parametrize("returned, words", [
    (None, "is a `return` missing?"), (0.1, "shape (4,)), but it returned an array of shape ()"),
    ([[1, 2], [3]], "a list that is not an array of numbers")])
def test_step_explorer_explains_a_wrong_return_value(returned, words):
    x, y, w = reference.QUIZ["x"], reference.QUIZ["y"], reference.QUIZ["w"]
    _, output = widgets.step_explorer(lambda *args: returned, reference.sigmoid, x, y, w)
    assert words in shown(output) and "Traceback" not in shown(output)


@pytest.mark.parametrize("train, words", [
    (lambda *args: None, "should return a pair (weights, losses)"),
    (lambda f, t, w, rate, epochs: (w, np.zeros(epochs)), "should return 51 losses for 50 epochs")])
def test_training_explorer_explains_a_wrong_return_value(train, words):
    features, targets = data.load_study_habits()
    _, _, output = widgets.training_explorer(train, features, targets, np.zeros((3, 2)))
    assert words in shown(output) and "Traceback" not in shown(output)
