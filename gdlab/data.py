"""The lesson's small data set, loaded from the file shipped with the package."""
import csv
from importlib import resources

import numpy as np

FEATURE_COLUMNS = ("hours_studied", "hours_slept")
TARGET_COLUMNS = ("passed_maths", "passed_physics")


def read_study_habits():
    """Return the raw table as a dict of column name -> float array."""
    text = resources.files("gdlab").joinpath("data/study_habits.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    return {name: np.array([float(row[name]) for row in rows]) for name in rows[0]}


def standardise(columns):
    """Scale each column to mean 0 and standard deviation 1, so one learning rate suits all."""
    columns = np.asarray(columns, dtype=float)
    return (columns - columns.mean(axis=0)) / columns.std(axis=0)


def load_study_habits():
    """Return (features, targets) ready for training.

    features: shape (40, 3), the two standardised features and a column of ones (the bias);
    targets: shape (40, 2), one column per output unit (maths, physics), 0.0 or 1.0.
    """
    table = read_study_habits()
    raw = np.column_stack([table[name] for name in FEATURE_COLUMNS])
    features = np.column_stack([standardise(raw), np.ones(len(raw))])
    targets = np.column_stack([table[name] for name in TARGET_COLUMNS])
    return features, targets


def initial_weights(n_inputs, n_outputs, seed):
    """Return a seeded weight matrix w_ij of shape (n_inputs, n_outputs).

    Drawn from a normal distribution with scale 1/sqrt(n_inputs), as in the classic lesson,
    so that h starts small and the sigmoid starts where its slope is largest.
    """
    rng = np.random.default_rng(seed)
    return rng.normal(scale=n_inputs ** -0.5, size=(n_inputs, n_outputs))
