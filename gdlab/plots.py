"""Pictures for the lessons. Every function takes the learner's code as an argument."""
import matplotlib.pyplot as plt
import numpy as np

from .learner import NotReady, call


def plot_sigmoid(sigmoid, sigmoid_prime, lo=-6.0, hi=6.0):
    """Plot the learner's sigmoid and its derivative on [lo, hi]; explain instead if unwritten."""
    h = np.linspace(lo, hi, 241)
    try:
        f, df = call(sigmoid, h), call(sigmoid_prime, h)
    except NotReady as reason:
        print(reason)
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(h, f, label="sigmoid(h)")
    ax.plot(h, df, label="sigmoid_prime(h)")
    ax.axhline(0.25, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("h")
    ax.legend()
    ax.set_title("The sigmoid and its slope (largest at h = 0, where it is 1/4)")
    plt.show()
    return fig


def plot_loss(ax, losses, *, label=None):
    """Draw a loss history on ax, one point per epoch, on a log scale when it spans decades."""
    losses = np.asarray(losses, dtype=float)
    ax.plot(np.arange(len(losses)), losses, marker=".", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("sum of squared errors E")
    finite = losses[np.isfinite(losses)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")


def error_surface(x, y, activation, w1, w2):
    """Return E = 1/2 (y - f(w1 x1 + w2 x2))^2 on the grid of weights w1 x w2 (one record)."""
    W1, W2 = np.meshgrid(w1, w2)
    return 0.5 * (y - activation(W1 * x[0] + W2 * x[1])) ** 2


def plot_error_surface(x, y, activation, path=None, *, span=6.0, ax=None):
    """Contour the error of the two-weight example, with an optional descent path of weights."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    centre = np.zeros(2) if path is None else np.asarray(path)[0]
    w1 = np.linspace(centre[0] - span, centre[0] + span, 121)
    w2 = np.linspace(centre[1] - span, centre[1] + span, 121)
    contours = ax.contourf(w1, w2, error_surface(x, y, activation, w1, w2), levels=30, cmap="viridis")
    plt.colorbar(contours, ax=ax, label="E")
    if path is not None:
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], "w.-", lw=1, ms=4)
        ax.plot(*path[0], "wo", ms=7)
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    return ax
