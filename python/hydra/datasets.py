"""The built-in datasets (the same tables ``[data] dataset = ...`` reads)."""
import numpy as np

from . import _native

NAMES = ("energy", "parkinsons", "digits", "mmoe", "recsys")


def load(name):
    """A built-in dataset as a dict column name -> array: float64 where every cell is a
    number (an empty cell is NaN), else the cells as strings."""
    out = {}
    for col, cells in _native.dataset_columns(name):
        try:
            out[col] = np.array([float(c) if c != "" else np.nan for c in cells], dtype=np.float64)
        except ValueError:
            out[col] = np.array(cells, dtype=object)
    return out
