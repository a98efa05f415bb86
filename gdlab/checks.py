"""Checks used by the course's test cells: plain messages that say what is wrong.

A check given a hidden expected value never prints it: it says how the answer differs
(shape, sign, size) and what to look at, and leaves the value out.
"""
import textwrap

import numpy as np

from . import diagnose

# `nbgrader validate` cuts every line of an error at about 90 characters; wrapped shorter,
# the whole message survives (with room for the "CheckFailed: " in front).
MESSAGE_WIDTH = 64


class CheckFailed(AssertionError):
    """A test cell's check failed; the message is meant for the learner."""


def fail(message):
    """Stop the test cell with a message for the learner, wrapped to stay readable everywhere."""
    raise CheckFailed(textwrap.fill(message, width=MESSAGE_WIDTH))


def expect(condition, message):
    """Fail with message unless condition holds (an assert that survives `python -O`)."""
    if not condition:
        fail(message)


def as_float_array(name, value):
    """Return value as a float array, or fail saying what type was found instead."""
    if value is None or value is Ellipsis:
        fail(f"`{name}` has no value yet: replace the placeholder with your computation.")
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        fail(f"`{name}` should be a number or an array of numbers, not {type(value).__name__}.")


def check_number(name, value):
    """Check that value is one finite real number (a float, int, NumPy scalar or 0-d array)."""
    array = as_float_array(name, value)
    if array.shape != ():
        fail(f"`{name}` should be a single number, but it has shape {array.shape}.")
    if not np.isfinite(array):
        fail(f"`{name}` is {float(array)}, not a finite number.")
    return float(array)


STEP_QUANTITIES = ("x", "y", "w", "learnrate", "h", "nn_output", "error", "error_term")


def expect_no_slip(name, values):
    """Fail with the classic mistake's name if quantity `name` of one gradient step is what a
    known slip makes of the others. `values` holds x, y, w, learnrate, h, nn_output, error,
    error_term and `name` (a visible check passes the notebook's own, `globals()`)."""
    try:
        slip = diagnose.explain_step(name, values[name],
                                     **{key: values[key] for key in STEP_QUANTITIES})
    except (KeyError, TypeError, ValueError):  # a quantity is not a number yet: nothing to name
        return
    if slip:
        fail(f"`{name}`: {slip}")


def check_shape(name, value, shape):
    """Check that value is an array-like of finite numbers with the given shape."""
    array = as_float_array(name, value)
    if array.shape != tuple(shape):
        fail(f"`{name}` should have shape {tuple(shape)}, but it has shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        fail(f"`{name}` contains values that are not finite (inf or nan).")
    return array


def check_close(name, value, expected, *, rtol=1e-9, atol=0.0, hint="", reveal=False,
                explain=None):
    """Check value against expected elementwise, within rtol (relative) and atol.

    reveal=True prints the expected value (for values the lesson already shows); otherwise
    the message describes the difference without it. `explain(value)` may name the classic
    mistake behind a wrong value (see `gdlab.diagnose`); its sentence replaces the hint.
    """
    expected = np.asarray(expected, dtype=float)
    slip = explain(value) if explain else None
    if slip:  # a known mistake is named before any message about shape or size
        fail(f"`{name}` is not the expected value. {slip}")
    array = check_shape(name, value, expected.shape)
    if np.allclose(array, expected, rtol=rtol, atol=atol):
        return array
    message = f"`{name}` is not the expected value"
    if reveal:
        message += f" {expected.tolist()}; you have {array.tolist()}"
    elif np.allclose(array, -expected, rtol=rtol, atol=atol):
        message += ": it has the right size but the wrong sign"
    message += "."
    fail(f"{message} {hint}".strip())
