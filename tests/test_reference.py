"""The reference implementation against the seed lesson's published figures (shared/REFERENCE.md)."""
import numpy as np
import pytest

from autograder import reference
from gdlab.data import initial_weights, load_study_habits

RTOL = 1e-9  # the tolerance REFERENCE.md states for these float64 results

WORKED_EXAMPLE = dict(x=[0.1, 0.3], y=0.2, w=[-0.8, 0.5], learnrate=0.5)
WORKED_EXAMPLE_FIGURES = dict(
    h=0.06999999999999998, nn_output=0.5174928576663897, error=-0.31749285766638974,
    error_term=-0.07927606158013764, del_w=[-0.003963803079006882, -0.011891409237020647])
QUIZ_FIGURES = dict(
    h=0.7999999999999999, nn_output=0.6899744811276125, error=-0.1899744811276125,
    error_term=-0.04063738360460799,
    del_w=[-0.020318691802303994, -0.04063738360460799, -0.06095607540691198, -0.08127476720921598])


@pytest.mark.parametrize("record, figures", [(WORKED_EXAMPLE, WORKED_EXAMPLE_FIGURES),
                                             (reference.QUIZ, QUIZ_FIGURES)],
                         ids=["worked_example", "quiz"])
def test_one_step_matches_seed_figures(record, figures):
    step = reference.one_step(**record)
    for name, value in figures.items():
        np.testing.assert_allclose(step[name], value, rtol=RTOL, err_msg=name)


def test_quiz_slope_and_published_printout():
    np.testing.assert_allclose(reference.sigmoid_prime(0.8), 0.2139096965202944, rtol=RTOL)
    printed = np.array2string(reference.gradient_step(**reference.QUIZ), precision=8)
    assert printed == "[-0.02031869 -0.04063738 -0.06095608 -0.08127477]"


def test_sigmoid_figures_and_stability():
    np.testing.assert_allclose(reference.sigmoid([1, 2, 3]),
                               [0.7310585786300049, 0.8807970779778823, 0.9525741268224334], rtol=RTOL)
    np.testing.assert_allclose(reference.sigmoid_prime([1, 2, 3]),
                               [0.19661193324148185, 0.10499358540350662, 0.045176659730912], rtol=RTOL)
    assert reference.sigmoid(0) == 0.5 and reference.sigmoid_prime(0) == 0.25
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(reference.sigmoid([-1000.0, 1000.0]), [0.0, 1.0])


def test_sum_squared_error_is_half_the_sum_over_records_and_outputs():
    features, targets = load_study_habits()
    # All outputs 0.5: E = 1/2 * 40 records * 2 outputs * 0.25.
    assert reference.sum_squared_error(features, targets, np.zeros((3, 2))) == pytest.approx(10.0)


def test_train_follows_the_classic_full_batch_update():
    features, targets = load_study_habits()
    w0 = initial_weights(3, 2, seed=42)
    weights, losses = reference.train(features, targets, w0, 1.0, 1)
    nn_output = reference.sigmoid(features @ w0)
    del_w = features.T @ ((targets - nn_output) * nn_output * (1 - nn_output))
    np.testing.assert_allclose(weights, w0 + del_w / len(features), rtol=RTOL)
    assert losses.shape == (2,) and losses[1] < losses[0]


def test_steady_learnrate_range_brackets_the_regimes():
    features, targets = load_study_habits()
    w0 = initial_weights(3, 2, seed=42)
    lo, hi = reference.steady_learnrate_range(features, targets, w0)
    assert hi == pytest.approx(2 * lo)
    assert reference.falls_every_epoch(reference.train(features, targets, w0, hi, 50)[1])
    assert not reference.falls_every_epoch(reference.train(features, targets, w0, hi * 1.05, 50)[1])
