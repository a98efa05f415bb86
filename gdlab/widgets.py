"""Learning-rate explorers, built on the learner's own functions.

Each explorer draws once when created (so a notebook run headless shows a picture and
raises nothing) and again whenever a slider moves.

What an explorer shows is set as its Output widget's `outputs` (a rendered figure, lines of
text), never captured with `with output:`: run headless by nbclient (`nbgrader validate`, the
Validate button, `nbgrader autograde`), a cell that prints inside `with output:` now and then
never finishes (its kernel is idle, the run waits on; about 1 run in 20 with three at once).
"""
import base64

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.core.pylabtools import print_figure
from IPython import get_ipython
from IPython.display import display

from .learner import NotReady, call
from .plots import plot_error_surface, plot_loss


# Near a minimum, float rounding alone moves the loss by ~1e-15: a rise smaller than this
# fraction of the loss is not counted.
RISE_TOLERANCE = 1e-9


def rising_epochs(losses):
    """Return the epochs (1-based) at which the loss went up compared with the epoch before."""
    losses = np.asarray(losses, dtype=float)
    return np.flatnonzero(np.diff(losses) > RISE_TOLERANCE * np.abs(losses[:-1])) + 1


def describe_training(losses):
    """Name what a loss history shows: 'not finite', 'diverging', 'oscillating', 'slow' or 'converged'.

    diverging: the loss ends above where it started; oscillating: it rose at some epoch but
    ends lower; slow: the last tenth of the epochs still brought more than 2% of the total fall.
    """
    losses = np.asarray(losses, dtype=float)
    if not np.all(np.isfinite(losses)):
        return "not finite"
    if losses[-1] > losses[0]:
        return "diverging"
    if rising_epochs(losses).size:
        return "oscillating"
    tail = losses[-max(2, len(losses) // 10):]
    if tail[0] - tail[-1] > 0.02 * (losses[0] - losses[-1]):
        return "slow"
    return "converged"


VERDICT_SENTENCES = {
    "not finite": "The loss became inf or nan: the learning rate made training blow up. Move it down.",
    "diverging": "The loss ended higher than it started: the learning rate is too large.",
    "oscillating": "The loss went up at some epochs: the steps overshoot the minimum.",
    "slow": "The loss is still falling at the end: the learning rate is too small for this many epochs.",
    "converged": "The loss has levelled off: training converged.",
}


def _as_floats(value):
    """value as a float array, or None when it is not an array of numbers."""
    try:
        return None if value is None else np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def _returned(value):
    """A few words on what a learner's function returned, for a sentence."""
    if value is None:
        return "None (is a `return` missing?)"
    array = _as_floats(value)
    if array is None:
        return f"a {type(value).__name__} that is not an array of numbers"
    return f"an array of shape {array.shape}"


def weight_change(gradient_step, x, y, w, learnrate):
    """del_w from the learner's gradient_step, checked to hold one change per weight."""
    result = call(gradient_step, x, y, w, learnrate)
    del_w = _as_floats(result)
    if del_w is None or del_w.shape != w.shape:
        raise NotReady(f"`gradient_step` should return one change per weight (shape {w.shape}), "
                       f"but it returned {_returned(result)}.")
    return del_w


def loss_history(train, features, targets, weights, learnrate, epochs):
    """The losses from the learner's train, checked to be a pair (weights, losses) with one loss per epoch."""
    result = call(train, features, targets, weights, learnrate, epochs)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise NotReady("`train` should return a pair (weights, losses), but it returned "
                       f"{_returned(result)}.")
    losses = _as_floats(result[1])
    if losses is None or losses.shape != (epochs + 1,):
        raise NotReady(f"`train` should return {epochs + 1} losses for {epochs} epochs (the start, "
                       f"then one per epoch), but it returned {_returned(result[1])}.")
    return losses


def show_in(output, *, figure=None, lines=()):
    """Replace what `output` shows with `figure` (then closed) and `lines` of text, in one update."""
    shown = []
    if figure is not None:
        data = {"text/plain": "<Figure>"}
        if _draws_png():  # as the inline backend draws it
            data["image/png"] = base64.b64encode(print_figure(figure, "png")).decode("ascii")
        plt.close(figure)  # or pyplot would show it again after the cell
        shown.append({"output_type": "display_data", "metadata": {}, "data": data})
    if lines:
        shown.append({"output_type": "stream", "name": "stdout",
                      "text": "".join(f"{line}\n" for line in lines)})
    output.outputs = tuple(shown)


def _draws_png():
    """False where the shell has turned PNG figures off (the grader's box keeps figures as
    text, as a notebook's text view does, rather than pay for rendering them)."""
    shell = get_ipython()
    formatter = shell.display_formatter.formatters.get("image/png") if shell else None
    return formatter is None or formatter.enabled


def _sentence(output, text):
    show_in(output, lines=[str(text)])


def step_explorer(gradient_step, sigmoid, x, y, w, *, max_learnrate=20.0):
    """Slider over learnrate: the step del_w from the learner's gradient_step, and the error after it."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    slider = widgets.FloatSlider(value=0.5, min=0.0, max=max_learnrate, step=0.1,
                                 description="learnrate", continuous_update=False)
    output = widgets.Output()

    def update(change=None):
        learnrate = slider.value
        try:
            del_w = weight_change(gradient_step, x, y, w, learnrate)
            before = y - call(sigmoid, np.dot(x, w))
            after = y - call(sigmoid, np.dot(x, w + del_w))
        except NotReady as reason:
            return _sentence(output, reason)
        fig, (ax_step, ax_error) = plt.subplots(1, 2, figsize=(8, 3))
        ax_step.bar(np.arange(len(del_w)), del_w, color="tab:blue")
        ax_step.set_xticks(np.arange(len(del_w)), [f"w{i + 1}" for i in range(len(del_w))])
        ax_step.set_title("del_w, the change in each weight")
        ax_error.bar(["before", "after one step"], [before, after], color=["grey", "tab:orange"])
        ax_error.axhline(0, color="black", lw=0.5)
        ax_error.set_title("error = y - nn_output")
        fig.tight_layout()
        show_in(output, figure=fig,
              lines=[f"learnrate {learnrate:.1f}: error {before:+.4f} -> {after:+.4f}"])

    slider.observe(update, names="value")
    update()
    display(widgets.VBox([slider, output]))
    return slider, output


def training_explorer(train, features, targets, weights, *, epochs=50):
    """Sliders for learnrate (log scale) and epochs; plots the learner's loss history and names it."""
    learnrate = widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=3.5, step=0.05,
                                       description="learnrate", continuous_update=False,
                                       readout_format=".3g")
    n_epochs = widgets.IntSlider(value=epochs, min=5, max=300, step=5,
                                 description="epochs", continuous_update=False)
    output = widgets.Output()

    def update(change=None):
        try:
            losses = loss_history(train, features, targets, weights, learnrate.value, n_epochs.value)
        except NotReady as reason:
            return _sentence(output, reason)
        verdict = describe_training(losses)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        plot_loss(ax, losses)
        ax.set_title(f"learnrate {learnrate.value:.3g}: {verdict}")
        rises = rising_epochs(losses)
        lines = [f"E after {n_epochs.value} epochs: {float(losses[-1]):.4f} ({verdict}). "
                 + VERDICT_SENTENCES[verdict]]
        if rises.size:
            lines.append(f"The loss rose at {rises.size} epochs, first at epoch {rises[0]}.")
        show_in(output, figure=fig, lines=lines)

    learnrate.observe(update, names="value")
    n_epochs.observe(update, names="value")
    update()
    display(widgets.VBox([widgets.HBox([learnrate, n_epochs]), output]))
    return learnrate, n_epochs, output


def descent_path_explorer(gradient_step, activation, x, y, w_start, *, steps=30):
    """Slider over learnrate: the path of repeated steps on the two-weight error surface."""
    x, w_start = np.asarray(x, dtype=float), np.asarray(w_start, dtype=float)
    slider = widgets.FloatLogSlider(value=30.0, base=10, min=-1, max=2.5, step=0.05,
                                    description="learnrate", continuous_update=False,
                                    readout_format=".3g")
    output = widgets.Output()

    def update(change=None):
        path = [w_start]
        try:
            for _ in range(steps):
                path.append(path[-1] + weight_change(gradient_step, x, y, path[-1], slider.value))
        except NotReady as reason:
            return _sentence(output, reason)
        ax = plot_error_surface(x, y, activation, path)
        error = y - activation(np.dot(x, path[-1]))
        ax.set_title(f"{steps} steps at learnrate {slider.value:.3g}: error {error:+.4f}")
        show_in(output, figure=ax.figure)

    slider.observe(update, names="value")
    update()
    display(widgets.VBox([slider, output]))
    return slider, output
