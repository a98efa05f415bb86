"""Verdicts, judged in the grader's process: the reference passes, mistakes fail, and no
hidden expected value reaches a message or the box. No sandbox needed: the probes are
answered here, by a stand-in for the learner's namespace."""
import json

import numpy as np
import pytest

from autograder import reference, verdicts
from autograder.verdicts import QUIZ_NAMES

ASSIGNMENTS = ["01_sigmoid", "02_gradient_step", "03_gradient_descent"]


def encoded(value):
    """What the box sends back for a value (the worker's encoding)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return {"tuple": [encoded(v) for v in value]}
    array = np.asarray(value, dtype=float)
    return {"shape": list(array.shape), "data": array.ravel().tolist()}


def given(value):
    """An input as the box decodes it: arrays from {shape, data}, plain numbers as they are."""
    if isinstance(value, dict) and "shape" in value:
        return np.array(value["data"], dtype=float).reshape(value["shape"])
    return value


def learner(**changes):
    """A namespace that answers like a correct learner, with `changes` swapped in."""
    def quiz(x, y, w, learnrate):
        step = reference.one_step(x, y, w, learnrate)
        return tuple(step[name] for name in QUIZ_NAMES)

    def sigmoid_prime(x):
        s = names["sigmoid"](x)
        return s * (1 - s)

    names = dict(sigmoid=reference.sigmoid, sigmoid_prime=sigmoid_prime, quiz=quiz,
                 gradient_step=reference.gradient_step, sum_squared_error=reference.sum_squared_error,
                 train=reference.train, largest_steady_learnrate=30.0)
    names.update(changes)
    return names


def answer(probes, names):
    """Answer every probe from `names`, as the box would: {probe id: line}."""
    lines = {}
    for probe in probes:
        try:
            if probe["kind"] == "value":
                value, extra = names[probe["name"]], {}
            elif probe["kind"] == "rerun":
                inputs = {k: given(v) for k, v in probe["set"].items()}
                value, extra = names["quiz"](**inputs), {}
            else:
                args = [names[a["ref"]] if isinstance(a, dict) and "ref" in a else given(a)
                        for a in probe["args"]]
                saved = dict(names)
                for name, constant in probe["swap"].items():  # as the box does
                    names[name] = lambda x, c=constant: np.full(np.shape(x), c)
                try:
                    with np.errstate(all="ignore"):
                        value = names[probe["name"]](*args)
                finally:
                    names.update(saved)
                extra = {}
            lines[probe["id"]] = {"probe": probe["id"], "ok": True, "value": encoded(value), **extra}
        except Exception as error:
            lines[probe["id"]] = {"probe": probe["id"], "ok": False,
                                  "error": f"{type(error).__name__}: {error}"}
    return lines


def judged(assignment, names, seed=7):
    plan = verdicts.plan(assignment, seed)
    return plan.judge(answer(plan.probes, names))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_passes_every_check(assignment):
    results = judged(assignment, learner())
    assert results and all(v.passed for v in results.values()), \
        {k: v.message for k, v in results.items() if not v.passed}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nothing_answered_fails_every_check_with_a_reason(assignment):
    plan = verdicts.plan(assignment, 7)
    results = plan.judge({}, failed_to_finish="the run timed out")
    assert all(not v.passed and "the run timed out" in v.message for v in results.values())


def test_hard_coded_quiz_values_fail_on_the_hidden_records():
    published = reference.one_step(**reference.QUIZ)
    frozen = tuple(published[name] for name in QUIZ_NAMES)
    results = judged("02_gradient_step", learner(quiz=lambda **inputs: frozen))
    assert not any(results[f"test_{name}"].passed for name in QUIZ_NAMES)
    assert "re-run on another record" in results["test_h"].message


def test_a_function_that_recognises_the_published_inputs_fails():
    def sneaky(x, y, w, learnrate):
        known = np.allclose(np.ravel(x)[:2], [0.1, 0.3]) if np.size(x) == 2 else False
        return reference.gradient_step(x, y, w, learnrate) if known else np.zeros(np.size(x))
    assert not judged("02_gradient_step", learner(gradient_step=sneaky))["test_gradient_step"].passed


def test_sigmoid_prime_must_go_through_sigmoid():
    def own_formula(x):
        e = np.exp(-np.abs(np.asarray(x, dtype=float)))
        return e / (1 + e) ** 2
    results = judged("01_sigmoid", learner(sigmoid_prime=own_formula))
    assert not results["test_sigmoid_prime"].passed
    assert "should call your sigmoid" in results["test_sigmoid_prime"].message


def test_classic_mistakes_lose_exactly_their_checks():
    wrong_sign = learner(sigmoid=lambda x: 1 / (1 + np.exp(np.asarray(x, dtype=float))))
    assert not judged("01_sigmoid", wrong_sign)["test_sigmoid_values"].passed
    total = lambda f, t, w: reference.sum_squared_error(f, t, w) * 2  # noqa: E731
    results = judged("03_gradient_descent", learner(sum_squared_error=total))
    assert not results["test_sum_squared_error"].passed
    too_small = judged("03_gradient_descent", learner(largest_steady_learnrate=1.0))
    assert not too_small["test_largest_steady_learnrate"].passed
    assert too_small["test_train_values"].passed


def test_the_box_sees_inputs_only_and_variants_change_with_the_seed():
    low, high = verdicts.steady_range()
    for assignment in ASSIGNMENTS:
        first = json.dumps(verdicts.plan(assignment, 1).probes)
        assert first != json.dumps(verdicts.plan(assignment, 2).probes)
        assert first == json.dumps(verdicts.plan(assignment, 1).probes)
        for secret in (0.7999999999999999, 0.6899744811276125, -0.04063738360460799, low, high):
            assert repr(secret) not in first


def test_failure_messages_never_show_a_hidden_value():
    results = judged("02_gradient_step", learner(quiz=lambda **i: (0.5, 0.5, 0.5, 0.1, np.zeros(4))))
    text = " ".join(v.message for v in results.values())
    for hidden in ("0.7999", "0.6899", "-0.1899", "-0.0406", "-0.0203"):
        assert hidden not in text


def test_every_test_cell_of_the_course_has_a_check():
    from autograder.course import open_course
    from autograder.grade import load_assignment
    course = open_course(".")
    for assignment in ASSIGNMENTS:
        assert set(verdicts.CHECKS[assignment]) == set(load_assignment(course, assignment).points)
