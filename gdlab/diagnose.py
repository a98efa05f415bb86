"""Name the classic mistake behind a wrong value, in one or two plain sentences.

Every function here is *given* the quantities a step is built from (the learner's own, in
a visible check; the expected ones, in a hidden check) and compares what the learner got
with what each classic slip would have produced from them. It never prints a value, so a
hidden check can use it without revealing what it expected. The formulas it applies are the
ones the lesson's worked example shows.
"""
import numpy as np

SLIPS = {
    "error_sign": "The sign is flipped: error is the target minus the output, y - nn_output. "
                  "With the sign flipped, every weight moves the wrong way.",
    "no_slope": "f'(h) is missing: error_term is the error times the slope of the sigmoid "
                "at h, f'(h) = sigmoid(h) * (1 - sigmoid(h)).",
    "h_slope": "The slope uses h itself: f'(h) is sigmoid(h) * (1 - sigmoid(h)), "
               "not h * (1 - h).",
    "half_slope": "Only half the slope goes through the sigmoid: f'(h) is "
                  "sigmoid(h) * (1 - sigmoid(h)), not sigmoid(h) * (1 - h).",
    "no_sigmoid": "nn_output is h itself: the output of the network is sigmoid(h).",
    "exponent_sign": "This is sigmoid(-h): check the sign of the exponent in 1 / (1 + e^(-h)).",
    "learnrate_twice": "The learning rate is applied twice: del_w = learnrate * error_term * x "
                       "uses it once.",
    "no_learnrate": "The learning rate is missing: del_w = learnrate * error_term * x.",
    "summed": "del_w is one number: it needs one entry per weight (learnrate * error_term * x), "
              "not their sum.",
    "x_w_swapped": "del_w is built from the weights: the change of each weight is proportional "
                   "to its input x, not to the weight.",
    "sum_update": "The update uses the sum over the records: divide by the number of records "
                  "(the mean), as the lesson does.",
    "mean_loss": "E is a sum over records and output units (times 1/2), not a mean.",
    "no_half": "Keep the factor 1/2 in E = 1/2 * sum of (y - output)^2.",
    "loss_before_update": "The loss history is one epoch behind: record the loss after the "
                          "weights change (and once before the first epoch).",
    "per_record_update": "The weights change inside the record loop: the lesson updates once "
                         "per epoch, with the mean change over all records.",
    "not_finite": "The values are not finite: training diverged because the learning rate is "
                  "too large. Try smaller ones with the training explorer's slider.",
}


def _same(got, candidate, rtol=1e-6):
    """True if got equals candidate (same shape, finite, within rtol)."""
    try:
        got, candidate = np.asarray(got, dtype=float), np.asarray(candidate, dtype=float)
    except (TypeError, ValueError):
        return False
    return (got.shape == candidate.shape and bool(np.all(np.isfinite(got)))
            and np.allclose(got, candidate, rtol=rtol, atol=1e-12))


def first_slip(got, expected, candidates):
    """The message of the first slip whose value `got` equals (and the right answer does
    not), or None. `candidates` is a list of (slip name, value)."""
    try:
        values = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return None
    if values.size and not np.all(np.isfinite(values)):
        return SLIPS["not_finite"]
    for slip, candidate in candidates:
        if _same(got, candidate) and not _same(expected, candidate):
            return SLIPS[slip]
    return None


def one_step_slips(name, *, x, y, w, learnrate, h, nn_output, error, error_term):
    """What each classic slip makes of quantity `name` ('nn_output', 'error', 'error_term' or
    'del_w') of one gradient step, built from the given upstream quantities."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    right_del_w = learnrate * error_term * x
    if name == "nn_output":
        return [("no_sigmoid", h), ("exponent_sign", 1 - nn_output)]
    if name == "error":
        return [("error_sign", nn_output - y)]
    slope_free = {"no_slope": error, "h_slope": error * h * (1 - h),
                  "half_slope": error * nn_output * (1 - h), "error_sign": -error_term}
    if name == "error_term":
        return list(slope_free.items())
    if name == "del_w":
        return ([(slip, learnrate * term * x) for slip, term in slope_free.items()]
                + [("learnrate_twice", learnrate * right_del_w),
                   ("no_learnrate", error_term * x),
                   ("summed", np.sum(right_del_w)),
                   ("x_w_swapped", learnrate * error_term * w)])
    return []


def explain_sigmoid(got, expected):
    """The message for wrong sigmoid values: the flipped exponent, sigmoid(-x) = 1 - sigmoid(x)."""
    expected = np.asarray(expected, dtype=float)
    return first_slip(got, expected, [("exponent_sign", 1 - expected)])


def explain_step(name, got, **given):
    """The message for a wrong `name` of one gradient step, or None (see `one_step_slips`).

    A slip counts only where it differs from the step done right from the same quantities.
    """
    x = np.asarray(given["x"], dtype=float)
    nn_output, error, error_term = given["nn_output"], given["error"], given["error_term"]
    right = {"nn_output": 1 / (1 + np.exp(-np.asarray(given["h"], dtype=float))),
             "error": given["y"] - nn_output,
             "error_term": error * nn_output * (1 - nn_output),
             "del_w": given["learnrate"] * error_term * x}
    return first_slip(got, right.get(name), one_step_slips(name, **given))


def explain_training(got_weights, got_losses, expected, slips):
    """The message for a wrong result of `train`, or None.

    `expected` is the right (weights, losses); `slips` lists (slip name, (weights, losses)),
    what each slip produces on the same inputs.
    """
    for got in (got_losses, got_weights):
        message = first_slip(got, None, [])
        if message:
            return message
    for slip, (weights, losses) in slips:
        if _same(got_weights, weights) and _same(got_losses, losses) \
                and not _same(expected[0], weights):
            return SLIPS[slip]
    if _same(got_weights, expected[0]):
        shifted = np.concatenate([np.asarray(expected[1])[:1], np.asarray(expected[1])[:-1]])
        if _same(got_losses, shifted):
            return SLIPS["loss_before_update"]
    return None


def explain_loss(got, expected, *, n_records, n_outputs):
    """The message for a wrong sum of squared errors, or None."""
    return first_slip(got, expected, [("mean_loss", expected / n_records),
                                      ("mean_loss", expected / (n_records * n_outputs)),
                                      ("no_half", 2 * expected)])
