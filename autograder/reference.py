"""The course's one reference implementation (instructor side only, never shipped).

Hidden tests and the graded question's accepted range are computed from these functions;
tests/test_reference.py pins them to the figures of the seed lesson (shared REFERENCE.md).
"""
import numpy as np

from gdlab.widgets import rising_epochs

# The quiz of lesson 2, as the seed lesson states it.
QUIZ = dict(x=np.array([1.0, 2.0, 3.0, 4.0]), y=0.5,
            w=np.array([0.5, -0.5, 0.3, 0.1]), learnrate=0.5)

# Lesson 3's graded question: the largest learning rate whose loss falls at every epoch.
STEADY_EPOCHS = 50
STEADY_SEED = 42


def sigmoid(x):
    """Logistic function, stable for large negative inputs (no overflow in exp)."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=float)))


def sigmoid_prime(x):
    """Derivative of the sigmoid, f'(h) = f(h)(1 - f(h))."""
    s = sigmoid(x)
    return s * (1 - s)


def one_step(x, y, w, learnrate):
    """Every quantity of one gradient step on one record, as a dict."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    h = np.dot(x, w)
    nn_output = sigmoid(h)
    error = y - nn_output
    error_term = error * sigmoid_prime(h)
    return dict(h=h, nn_output=nn_output, error=error, error_term=error_term,
                del_w=learnrate * error_term * x)


def step_given(x, y, w, learnrate):
    """The quantities `gdlab.diagnose.explain_step` names a slip from, for one record."""
    step = one_step(x, y, w, learnrate)
    return dict(x=x, y=y, w=w, learnrate=learnrate,
                **{name: step[name] for name in ("h", "nn_output", "error", "error_term")})


def gradient_step(x, y, w, learnrate):
    """The weight change del_w for one record."""
    return one_step(x, y, w, learnrate)["del_w"]


def sum_squared_error(features, targets, weights):
    """E = 1/2 sum over records and output units of (y - f(x . w))^2."""
    outputs = sigmoid(np.asarray(features) @ np.asarray(weights))
    return 0.5 * float(np.sum((np.asarray(targets) - outputs) ** 2))


def train(features, targets, weights, learnrate, epochs):
    """Full-batch gradient descent; returns (weights, losses), losses[k] = E after k epochs."""
    features, targets = np.asarray(features, dtype=float), np.asarray(targets, dtype=float)
    weights = np.array(weights, dtype=float)
    n_records = len(features)
    losses = [sum_squared_error(features, targets, weights)]
    for _ in range(epochs):
        nn_output = sigmoid(features @ weights)
        error_term = (targets - nn_output) * nn_output * (1 - nn_output)
        weights += learnrate * features.T @ error_term / n_records
        losses.append(sum_squared_error(features, targets, weights))
    return weights, np.array(losses)


def train_slips(features, targets, weights, learnrate, epochs):
    """What the classic data-set slips make of `train` on these inputs, as a list of
    (slip name, (weights, losses)) for `gdlab.diagnose.explain_training`."""
    features, targets = np.asarray(features, dtype=float), np.asarray(targets, dtype=float)
    n_records = len(features)

    def run(update):
        w = np.array(weights, dtype=float)
        losses = [sum_squared_error(features, targets, w)]
        for _ in range(epochs):
            w = update(w)
            losses.append(sum_squared_error(features, targets, w))
        return w, np.array(losses)

    def full_batch(scale):
        def update(w):
            out = sigmoid(features @ w)
            return w + scale * learnrate * features.T @ ((targets - out) * out * (1 - out))
        return update

    def per_record(scale):
        def update(w):
            w = w.copy()
            for x, y in zip(features, targets):
                out = sigmoid(x @ w)
                w += scale * learnrate * np.outer(x, (y - out) * out * (1 - out))
            return w
        return update

    return [("sum_update", run(full_batch(1.0))),
            ("per_record_update", run(per_record(1.0 / n_records))),
            ("per_record_update", run(per_record(1.0)))]


def falls_every_epoch(losses):
    """True when the loss never rises from one epoch to the next (as the widget counts a rise)."""
    return rising_epochs(losses).size == 0


def largest_steady_learnrate(features, targets, weights, epochs=STEADY_EPOCHS, lo=1e-2, hi=1e4):
    """Bisect (in log space) for the largest learnrate whose loss falls at every epoch."""
    steady = lambda rate: falls_every_epoch(train(features, targets, weights, rate, epochs)[1])
    assert steady(lo) and not steady(hi), "the bracket must straddle the boundary"
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if steady(mid) else (lo, mid)
    return lo


def steady_learnrate_range(features, targets, weights, epochs=STEADY_EPOCHS):
    """Accepted answers to the graded question: from half the boundary up to the boundary.

    A slider with log steps lands within a factor of two of it; past the boundary is wrong.
    """
    boundary = largest_steady_learnrate(features, targets, weights, epochs)
    return boundary / 2, boundary
