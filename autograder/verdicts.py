"""The checks behind every graded test cell, judged in the grader's own process.

Each check is built once per batch from a random generator the student cannot know:
it returns the probes the sandboxed run must answer (functions called with arguments,
answer cells re-run on other inputs, values read) and a `judge` that compares the plain
numbers that come back with `reference.py`. Expected values live only in the judge's
closure, here; the box only ever sees inputs. Each check does what its test cell in
`source/` does (same messages, same tolerances) plus variants on fresh inputs, so a
hard-coded or grader-detecting answer fails while an honest one scores as under nbgrader.
"""
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from gdlab import diagnose
from gdlab.checks import (CheckFailed, check_close, check_number, check_shape, expect,
                          expect_no_slip, fail)
from gdlab.data import initial_weights, load_study_habits
from gdlab.widgets import rising_epochs

from . import reference

class MissingCheck(LookupError):
    """A graded test cell has no check here (or a check has no test cell)."""


CHECKS = {}  # assignment -> {test grade_id: builder(rng) -> (probes dict, judge)}
QUIZ_NAMES = ("h", "nn_output", "error", "error_term", "del_w")


def check(assignment, grade_id):
    """Register a builder as the check behind test cell `grade_id` of `assignment`."""
    def register(builder):
        CHECKS.setdefault(assignment, {})[grade_id] = builder
        return builder
    return register


# ---------------------------------------------------------------- probes

def encode(value):
    """Inputs as the box reads them: arrays as {shape, data}, other values as they are."""
    if isinstance(value, (dict, bool, int, float)):
        return value  # plain numbers stay plain: `epochs` must arrive as an int
    array = np.asarray(value)
    if array.dtype.kind in "biuf":
        return {"shape": list(array.shape), "data": array.astype(float).ravel().tolist()}
    return value


def _probe(spec):
    """A probe with an id made from its content, so checks asking the same share one run."""
    text = json.dumps(spec, sort_keys=True)
    return {"id": hashlib.sha256(text.encode()).hexdigest()[:16], **spec}


def call(name, *args, swap=None, strict=False, over="warn"):
    """Call the learner's `name(*args)`; `swap` maps other names of theirs to constants
    that stand in for those functions during the call (to see whether `name` goes through
    them, from its values alone), `strict` turns warnings into errors, `over` is NumPy's
    overflow setting for the call."""
    return _probe({"kind": "call", "name": name, "args": [encode(a) for a in args],
                   "swap": swap or {}, "strict": strict, "over": over})


def ref(name):
    """An argument taken from the learner's namespace (their answer), not from the grader."""
    return {"ref": name}


def value(name):
    """The value the learner's notebook left in `name`."""
    return _probe({"kind": "value", "name": name})


def rerun(cell, collect, **inputs):
    """Set `inputs` in the learner's namespace, run their answer cell `cell` again, and
    read back the names in `collect`."""
    return _probe({"kind": "rerun", "cell": cell, "collect": list(collect),
                   "set": {k: encode(v) for k, v in inputs.items()}})


# ---------------------------------------------------------------- what came back

class Opaque:
    """Stands for a value the box could not turn into numbers (its type name is kept)."""


def decode(data):
    """The box's plain JSON back to Python: tuples, float arrays, or an `Opaque` stand-in."""
    if data is None:
        return None
    if "tuple" in data:
        return tuple(decode(item) for item in data["tuple"])
    if "shape" in data:
        array = np.array(data["data"], dtype=float).reshape(data["shape"])
        return array[()] if array.shape == () else array
    return type(str(data.get("type", "object")), (Opaque,), {})()


@dataclass
class Answers:
    """The probes' outcomes, looked up by the names a check gave its probes."""

    probes: dict
    outcomes: dict  # probe id -> the line the box sent for it
    failed_to_finish: str = "the run stopped before this check's code was called"

    def outcome(self, key):
        probe = self.probes[key]
        line = self.outcomes.get(probe["id"])
        if line is None:
            fail(f"No answer for this check: {self.failed_to_finish}.")
        return probe, line

    def __getattr__(self, key):
        if key.startswith("__") or key not in self.probes:
            raise AttributeError(key)
        probe, line = self.outcome(key)
        if not line.get("ok"):
            fail(f"{describe(probe)} raised {line.get('error', 'an error')}")
        return decode(line.get("value"))

    def error(self, key):
        """The error text of a probe that raised, else None."""
        _, line = self.outcome(key)
        return None if line.get("ok") else str(line.get("error", ""))



def describe(probe):
    if probe["kind"] == "rerun":
        return f"Running your `{probe['cell']}` cell again"
    if probe["kind"] == "value":
        return f"Reading `{probe['name']}`"
    return f"Calling `{probe['name']}`"


def pair(result, name):
    """Unpack what `train` returned, failing as the notebook's test would."""
    expect(isinstance(result, tuple) and len(result) == 2,
           f"{name} should return a pair (weights, losses).")
    return result


@dataclass
class Verdict:
    """One test cell's outcome: points earned of `points`, and the message if it failed."""

    grade_id: str
    passed: bool
    message: str = ""


@dataclass
class Plan:
    """The checks of one assignment for one batch: every probe to run and every judge."""

    assignment: str
    probes: list = field(default_factory=list)
    judges: dict = field(default_factory=dict)  # grade_id -> (named probes, judge)

    def judge(self, outcomes, failed_to_finish=None):
        """A `Verdict` per test cell from the box's probe lines (id -> line)."""
        verdicts = {}
        for grade_id, (named, judge) in self.judges.items():
            answers = Answers(named, outcomes)
            if failed_to_finish:
                answers.failed_to_finish = failed_to_finish
            try:
                judge(answers)
                verdicts[grade_id] = Verdict(grade_id, True)
            except CheckFailed as failure:
                verdicts[grade_id] = Verdict(grade_id, False, str(failure))
            except Exception as error:  # a value shaped unlike any answer: still a fail
                verdicts[grade_id] = Verdict(grade_id, False,
                                             f"Your answer could not be checked ({type(error).__name__}).")
        return verdicts


def plan(assignment, seed):
    """Build the checks of `assignment` for a batch whose hidden variants come from `seed`."""
    built = Plan(assignment)
    seen = set()
    for grade_id, builder in CHECKS.get(assignment, {}).items():
        digest = hashlib.sha256(f"{seed}:{grade_id}".encode()).digest()
        named, judge = builder(np.random.default_rng(int.from_bytes(digest[:8], "big")))
        built.judges[grade_id] = (named, judge)
        for probe in named.values():
            if probe["id"] not in seen:
                seen.add(probe["id"])
                built.probes.append(probe)
    return built


# ---------------------------------------------------------------- 01_sigmoid

def _warned(error):
    return error is not None and error.startswith(("RuntimeWarning", "FloatingPointError"))


@check("01_sigmoid", "test_sigmoid_values")
def sigmoid_values(rng):
    h, fresh = rng.normal(scale=5, size=50), rng.normal(scale=4, size=7)
    probes = dict(zero=call("sigmoid", 0.0), three=call("sigmoid", [-1.0, 0.0, 1.0]),
                  grid=call("sigmoid", np.zeros((2, 3))), known=call("sigmoid", [1.0, 2.0, 3.0]),
                  plus=call("sigmoid", h), minus=call("sigmoid", -h), fresh=call("sigmoid", fresh))

    def judge(got):
        check_close("sigmoid(0)", got.zero, 0.5, reveal=True)
        three = [0.2689414213699951, 0.5, 0.7310585786300049]
        check_close("sigmoid([-1.0, 0.0, 1.0])", got.three, three, reveal=True,
                    explain=lambda v: diagnose.explain_sigmoid(v, three))
        check_close("sigmoid of a 2 x 3 array", got.grid, np.full((2, 3), 0.5), reveal=True)
        known = [0.7310585786300049, 0.8807970779778823, 0.9525741268224334]
        check_close("sigmoid([1, 2, 3])", got.known, known, rtol=1e-9,
                    hint="Check the formula 1 / (1 + e^(-x)) on a few more inputs.",
                    explain=lambda v: diagnose.explain_sigmoid(v, known))
        check_close("sigmoid(-h)", got.minus, 1 - check_shape("sigmoid(h)", got.plus, (50,)),
                    rtol=1e-9, atol=1e-12,
                    hint="The sigmoid is symmetric: sigmoid(-h) = 1 - sigmoid(h) for every h.")
        want = reference.sigmoid(fresh)
        check_close("sigmoid on other inputs", got.fresh, want, rtol=1e-9, atol=1e-12,
                    hint="Check the formula 1 / (1 + e^(-x)) on a few more inputs.",
                    explain=lambda v: diagnose.explain_sigmoid(v, want))
    return probes, judge


@check("01_sigmoid", "test_sigmoid_stable")
def sigmoid_stable(rng):
    tails = np.sign(rng.uniform(-1, 1, size=6)) * rng.uniform(711, 1e4, size=6)
    probes = dict(extremes=call("sigmoid", [-1000.0, 0.0, 1000.0], strict=True),
                  tails=call("sigmoid", [-800.0, -710.5, 710.5, 800.0], strict=True),
                  fresh=call("sigmoid", tails, strict=True))

    def judge(got):
        warned = got.error("extremes")
        expect(not _warned(warned), f"sigmoid warned for x = -1000 ({warned}). "
                                    "Use a form that never computes e to a huge power.")
        check_close("sigmoid([-1000, 0, 1000])", got.extremes, [0.0, 0.5, 1.0], reveal=True)
        for key, name in (("tails", "sigmoid far in the tails"), ("fresh", "sigmoid far out")):
            expect(not _warned(got.error(key)), "sigmoid warned for an input beyond +-710. "
                                                "Use a form that never computes e to a huge power.")
            want = [0.0, 0.0, 1.0, 1.0] if key == "tails" else reference.sigmoid(tails)
            check_close(name, getattr(got, key), want, atol=1e-300)
    return probes, judge


@check("01_sigmoid", "test_sigmoid_prime")
def sigmoid_prime_values(rng):
    fresh = rng.normal(scale=3, size=7)
    # Two stand-ins for "sigmoid" during two calls: going through sigmoid, in whatever form
    # (s * (1 - s), sigmoid(x) * sigmoid(-x)), the answers differ; a formula of its own, not.
    # Both below 1/2, where s * (1 - s) is one-to-one (0.3 and 0.7 would give the same).
    stand_ins = rng.uniform(0.05, 0.2), rng.uniform(0.3, 0.45)
    probes = dict(zero=call("sigmoid_prime", 0.0), grid=call("sigmoid_prime", np.zeros((2, 2))),
                  through_low=call("sigmoid_prime", [1.0, 2.0], swap={"sigmoid": stand_ins[0]}),
                  through_high=call("sigmoid_prime", [1.0, 2.0], swap={"sigmoid": stand_ins[1]}),
                  known=call("sigmoid_prime", [1.0, 2.0, 3.0]),
                  far=call("sigmoid_prime", [-1000.0], over="ignore"),
                  fresh=call("sigmoid_prime", fresh))

    def judge(got):
        check_close("sigmoid_prime(0)", got.zero, 0.25, reveal=True)
        check_close("sigmoid_prime of a 2 x 2 array", got.grid, np.full((2, 2), 0.25), reveal=True)
        low, high = (np.asarray(v, dtype=float) for v in (got.through_low, got.through_high))
        expect(low.shape == high.shape and not np.allclose(low, high, rtol=1e-6, atol=1e-12),
               "sigmoid_prime should call your sigmoid function rather than repeat its formula.")
        check_close("sigmoid_prime([1, 2, 3])", got.known,
                    [0.19661193324148185, 0.10499358540350662, 0.045176659730912], rtol=1e-9,
                    hint="The slope is f(x) * (1 - f(x)), with f the sigmoid of the same x.")
        check_close("sigmoid_prime(-1000)", got.far, [0.0], atol=1e-300,
                    hint="Far from zero the sigmoid is flat: its slope should be 0.")
        check_close("sigmoid_prime on other inputs", got.fresh, reference.sigmoid_prime(fresh),
                    rtol=1e-9, atol=1e-15,
                    hint="The slope is f(x) * (1 - f(x)), with f the sigmoid of the same x.")
    return probes, judge


# ---------------------------------------------------------------- 02_gradient_step

QUIZ_EXPECTED = dict(h=0.7999999999999999, nn_output=0.6899744811276125,
                     error=-0.1899744811276125, error_term=-0.04063738360460799,
                     del_w=[-0.020318691802303994, -0.04063738360460799, -0.06095607540691198,
                            -0.08127476720921598])
QUIZ_HINTS = dict(h="h is the sum of each input times its weight: np.dot(x, w).",
                  nn_output="nn_output is sigmoid(h), with h from the cell above.",
                  error="error is the target minus the output: y - nn_output.",
                  error_term="error_term is the error times f'(h): error * sigmoid_prime(h).",
                  del_w="del_w is learnrate * error_term * x, one entry per input.")


def quiz_records(rng):
    """The quiz as published, plus two records of the same size the learner has not seen
    (four inputs, as the quiz has: writing out x[0]*w[0] + ... + x[3]*w[3] is honest)."""
    records = [dict(x=np.array([1, 2, 3, 4]), y=np.array(0.5),
                    w=np.array([0.5, -0.5, 0.3, 0.1]), learnrate=0.5)]
    for n_inputs in (4, 4):
        records.append(dict(x=rng.normal(size=n_inputs).round(2), y=np.array(rng.uniform()),
                            w=rng.normal(scale=0.5, size=n_inputs).round(2),
                            learnrate=float(rng.uniform(0.1, 2.0))))
    return records


def _is_number(value):
    try:
        return np.asarray(value, dtype=float).shape == ()
    except (TypeError, ValueError):
        return False


def step_explainer(name, record):
    """Name the slip behind a wrong `name` of one step, from the expected upstream values."""
    given = reference.step_given(**record)
    return lambda value: diagnose.explain_step(name, value, **given)


def quiz_check(name, visible):
    """The check of one quiz quantity: the visible test, the seed value, then the variants."""
    def builder(rng):
        records = quiz_records(rng)
        probes = {f"run{i}": rerun("quiz", QUIZ_NAMES, **record) for i, record in enumerate(records)}
        position = QUIZ_NAMES.index(name)

        def judge(got):
            published = dict(zip(QUIZ_NAMES, got.run0))
            if name != "h":  # the visible check names a slip from the learner's own numbers
                mine = {k: published[k] for k in QUIZ_NAMES if k != "del_w"}
                if all(_is_number(v) for v in mine.values()):
                    expect_no_slip(name, {**records[0], **published})
            visible(published)
            for i, record in enumerate(records):
                want = reference.one_step(record["x"], record["y"], record["w"], record["learnrate"])
                check_close(name if i == 0 else f"{name} (your quiz cell re-run on another record)",
                            getattr(got, f"run{i}")[position], want[name], rtol=1e-9,
                            hint=QUIZ_HINTS[name], explain=step_explainer(name, record))
        return probes, judge
    return builder


check("02_gradient_step", "test_h")(quiz_check("h", lambda v: check_number("h", v["h"])))
check("02_gradient_step", "test_nn_output")(quiz_check("nn_output", lambda v: expect(
    0 < check_number("nn_output", v["nn_output"]) < 1,
    "nn_output should lie between 0 and 1: it is the sigmoid of h.")))
check("02_gradient_step", "test_error")(quiz_check("error", lambda v: expect(
    abs(check_number("error", v["error"])) < 1,
    "error should lie between -1 and 1: the target and the output are both between 0 and 1.")))
check("02_gradient_step", "test_error_term")(quiz_check("error_term", lambda v: expect(
    abs(check_number("error_term", v["error_term"])) <= abs(check_number("error", v["error"])) / 4,
    "error_term is the error times f'(h), and f'(h) is at most 1/4: "
    "it cannot be larger than error / 4.")))
check("02_gradient_step", "test_del_w")(quiz_check("del_w", lambda v: check_shape(
    "del_w", v["del_w"], (4,))))


@check("02_gradient_step", "test_gradient_step")
def gradient_step_values(rng):
    seeded = np.random.default_rng(20261129)
    records = []
    for n_inputs in (1, 3, 6):  # the notebook's hidden records, then fresh ones
        records.append((seeded.normal(size=n_inputs), seeded.normal(size=n_inputs),
                        seeded.uniform(), seeded.uniform(0.1, 2.0)))
    for n_inputs in (2, 5):
        records.append((rng.normal(size=n_inputs), rng.normal(size=n_inputs),
                        rng.uniform(), rng.uniform(0.1, 2.0)))
    worked = dict(x=np.array([0.1, 0.3]), y=0.2, w=np.array([-0.8, 0.5]), learnrate=0.5)
    probes = dict(worked=call("gradient_step", *worked.values()))
    probes.update({f"record{i}": call("gradient_step", *record) for i, record in enumerate(records)})

    def judge(got):
        check_close("gradient_step on the worked example", got.worked,
                    [-0.003963803079006882, -0.011891409237020647], rtol=1e-9, reveal=True,
                    explain=step_explainer("del_w", worked))
        for i, (x, y, w, rate) in enumerate(records):
            want = reference.one_step(x, y, w, rate)
            check_close(f"gradient_step on a record with {len(x)} inputs",
                        getattr(got, f"record{i}"), want["del_w"], rtol=1e-9,
                        hint="Use only the function's parameters, not the x, y, w of the cells above.",
                        explain=step_explainer("del_w", dict(x=x, y=y, w=w, learnrate=rate)))
    return probes, judge


# ---------------------------------------------------------------- 03_gradient_descent

def lesson_data():
    """Lesson 3's data and starting weights, as its locked cells make them."""
    features, targets = load_study_habits()
    return features, targets, initial_weights(features.shape[1], targets.shape[1], seed=42)


def other_data(rng, n_records=12, n_inputs=4, n_outputs=3):
    """A small data set the learner has never seen: a bias column and targets in [0, 1]."""
    features = np.column_stack([rng.normal(size=(n_records, n_inputs - 1)), np.ones(n_records)])
    return features, rng.uniform(size=(n_records, n_outputs))


@check("03_gradient_descent", "test_sum_squared_error")
def sum_squared_error_values(rng):
    features, targets, _ = lesson_data()
    cases = [(features, targets, initial_weights(3, 2, seed=seed) * 3) for seed in (0, 1, 2)]
    cases.append((np.random.default_rng(7).normal(size=(5, 4)), np.eye(5, 2),
                  np.random.default_rng(8).normal(size=(4, 2))))
    fresh_x, fresh_y = other_data(rng)
    cases += [(features, targets, rng.normal(scale=2, size=(3, 2))),
              (fresh_x, fresh_y, rng.normal(size=(4, 3)))]
    probes = dict(zero=call("sum_squared_error", features, targets, np.zeros((3, 2))))
    probes.update({f"case{i}": call("sum_squared_error", *case) for i, case in enumerate(cases)})

    def judge(got):
        check_close("sum_squared_error with zero weights",
                    check_number("sum_squared_error(...)", got.zero), 10.0, rtol=1e-9, reveal=True,
                    explain=lambda v: diagnose.explain_loss(v, 10.0, n_records=len(targets),
                                                            n_outputs=targets.shape[1]))
        for i, case in enumerate(cases):
            same_data = case[0] is features
            want = reference.sum_squared_error(*case)
            shape = np.shape(case[1])
            check_close("sum_squared_error on other weights" if same_data
                        else "sum_squared_error on other data",
                        getattr(got, f"case{i}"), want, rtol=1e-9,
                        explain=lambda v, want=want, shape=shape: diagnose.explain_loss(
                            v, want, n_records=shape[0], n_outputs=shape[1]),
                        hint="Sum over every record and every output unit, and keep the factor 1/2."
                        if same_data else
                        "Use the function's parameters, not the features and targets of this notebook.")
    return probes, judge


@check("03_gradient_descent", "test_train_shapes")
def train_shapes(rng):
    features, targets, weights = lesson_data()
    probes = dict(trained=call("train", features, targets, weights, 1.0, 5),
                  start=call("sum_squared_error", features, targets, weights))

    def judge(got):
        trained, losses = pair(got.trained, "train")
        slip = diagnose.first_slip(losses, None, [])
        if slip:
            fail(f"`losses` is not right. {slip}")
        check_shape("the trained weights", trained, weights.shape)
        losses = check_shape("losses", losses, (6,))
        check_close("losses[0]", losses[0], got.start, rtol=1e-9,
                    hint="losses[0] is the error before any update.")
        expect(losses[-1] < losses[0], "With learnrate 1 the loss should fall: check the sign of the update.")
    return probes, judge


@check("03_gradient_descent", "test_train_values")
def train_values(rng):
    features, targets, weights = lesson_data()
    cases = [(features, targets, initial_weights(3, 2, seed=seed), rate, epochs)
             for seed, rate, epochs in ((42, 1.0, 20), (0, 10.0, 30), (1, 0.3, 10))]
    fresh_x, fresh_y = other_data(rng)
    cases += [(fresh_x, fresh_y, rng.normal(scale=0.5, size=(4, 3)), float(rng.uniform(0.5, 5)),
               int(rng.integers(3, 15)))]
    probes = dict(untrained=call("train", features, targets, weights, 1.0, 0))
    probes.update({f"case{i}": call("train", *case) for i, case in enumerate(cases)})

    def judge(got):
        untrained, start = pair(got.untrained, "train")
        check_close("train with epochs=0", untrained, weights, rtol=0, reveal=True,
                    hint="With no epochs the weights should come back unchanged.")
        check_shape("losses with epochs=0", start, (1,))
        for i, case in enumerate(cases):
            want_w, want_losses = reference.train(*case)
            got_w, got_losses = pair(getattr(got, f"case{i}"), "train")
            slip = diagnose.explain_training(got_w, got_losses, (want_w, want_losses),
                                             reference.train_slips(*case))
            if slip:
                fail(f"`train` is not right. {slip}")
            check_close("the loss history", got_losses, want_losses, rtol=1e-7,
                        hint="Compute losses[0] before the first update and one loss after each epoch.")
            check_close("the trained weights", got_w, want_w, rtol=1e-7,
                        hint="Update the weights once per epoch by learnrate * del_w / n_records.")
    return probes, judge


_STEADY_RANGE = {}


def steady_range():
    """The accepted range of the graded learning rate (bisection on the reference, once)."""
    if not _STEADY_RANGE:
        _STEADY_RANGE["range"] = reference.steady_learnrate_range(*lesson_data(),
                                                                  epochs=reference.STEADY_EPOCHS)
    return _STEADY_RANGE["range"]


@check("03_gradient_descent", "test_largest_steady_learnrate")
def largest_steady_learnrate(rng):
    features, targets, weights = lesson_data()
    probes = dict(answer=value("largest_steady_learnrate"),
                  losses=call("train", features, targets, weights, ref("largest_steady_learnrate"),
                              reference.STEADY_EPOCHS))

    def judge(got):
        answer = check_number("largest_steady_learnrate", got.answer)
        expect(answer > 0, "A learning rate is a positive number.")
        _, losses = pair(got.losses, "train")
        expect(np.all(np.isfinite(np.asarray(losses, dtype=float))), diagnose.SLIPS["not_finite"])
        expect(rising_epochs(np.asarray(losses, dtype=float)).size == 0,
               "At that learning rate the loss rises at some epoch: try a smaller one.")
        low, high = steady_range()
        expect(low <= answer, "The loss still falls at every epoch for learning rates well above "
                              "yours: look for the largest.")
        expect(answer <= high, "At that learning rate the loss rises at some epoch when training "
                               "is done right: check train against the lesson, then look again.")
    return probes, judge
