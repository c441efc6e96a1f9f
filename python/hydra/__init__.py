"""Hydra: multi-task learning on any GPU wgpu can open, numpy in and numpy out.

    import hydra
    model = hydra.Model("examples/energy.toml")      # a TOML path, TOML text, or a dict
    report = model.fit(X, {"heating": y1, "cooling": y2}, X_val=Xv, y_val={...})
    pred = model.predict(X_test)                       # {"heating": array, "cooling": array}

Training and prediction run on the GPU with the GIL released; Ctrl-C stops training between
steps (the model keeps the parameters of its best epoch so far) and is raised after.
"""
import json
import os

import numpy as np

from . import _native, datasets, weighting
from ._native import CheckpointError, ConfigError, DataError, DeviceError, HydraError

__all__ = [
    "Model",
    "info",
    "weighting",
    "datasets",
    "HydraError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "DeviceError",
]


def info():
    """The adapter Hydra opens: ``{"adapter", "backend", "driver", "driver_info"}``."""
    return _native.info()


def _features(X, what="X"):
    """X as a C-contiguous float32 [n, features] array; anything else is refused clearly."""
    try:
        a = np.asarray(X)
    except Exception as e:  # noqa: BLE001 - anything numpy cannot take
        raise DataError(f"{what}: not an array ({e})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise DataError(f"{what}: numbers expected, got dtype {a.dtype}")
    if a.ndim != 2:
        raise DataError(f"{what}: a 2-D array [rows, features] expected, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{what}: shape {a.shape} has no rows or no features")
    a = np.ascontiguousarray(a, dtype=np.float32)
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{what}: row {r}, column {c} is {a[r, c]} (features must be finite)")
    return a


class Model:
    """A multi-task model described by a config: a TOML file's path, TOML text, or a dict with
    the config file's keys (``{"task": [...], "model": {...}, "train": {...}, "weighting":
    {...}}``). The ``[data]`` section is optional: the data come as arrays to :meth:`fit`."""

    def __init__(self, config):
        if isinstance(config, dict):
            self._native = _native.Model(json.dumps(config), "json", "<dict>", os.getcwd())
        elif isinstance(config, (str, os.PathLike)):
            path = os.fspath(config)
            if path.endswith(".toml") and os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                self._native = _native.Model(text, "toml", path, os.path.dirname(os.path.abspath(path)))
            elif path.endswith(".toml") and "\n" not in path:
                raise ConfigError(f"{path}: no such config file")
            else:
                self._native = _native.Model(path, "toml", "<string>", os.getcwd())
        elif isinstance(config, _native.Model):
            self._native = config
        else:
            raise ConfigError(f"a config is a path, TOML text or a dict, not {type(config).__name__}")

    @property
    def tasks(self):
        """The tasks as ``[(name, kind, classes)]``, in config order."""
        return self._native.tasks()

    def _labels(self, y, n, what):
        if not isinstance(y, dict):
            raise DataError(f"{what}: a dict task name -> array expected, not {type(y).__name__}")
        names = [t[0] for t in self.tasks]
        unknown = sorted(set(y) - set(names))
        if unknown:
            raise DataError(f"{what}: unknown task(s) {unknown} (tasks: {names})")
        out = []
        for name, kind, _ in self.tasks:
            if name not in y:
                # A task without labels here: every label missing.
                out.append(np.full(n, np.nan, dtype=np.float32))
                continue
            a = np.asarray(y[name])
            if a.ndim != 1 or a.shape[0] != n:
                raise DataError(f"{what}[{name!r}]: {n} labels expected (one per row), got shape {a.shape}")
            if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
                raise DataError(f"{what}[{name!r}]: numbers expected, got dtype {a.dtype}")
            out.append(np.ascontiguousarray(a, dtype=np.float32))
        return out

    def fit(self, X, y, *, X_val=None, y_val=None, callback=None):
        """Trains on ``X`` [n, features] and ``y``, a dict task name -> labels (NaN: a missing
        regression target; -1 or NaN: a missing class). ``callback(epoch, metrics)`` is called
        after every epoch and may return False to stop. Returns the training report: ``epoch``
        (list), per task ``train_loss``, ``val_loss`` and ``val_<metric>`` lists, ``best_epoch``,
        ``steps``."""
        X = _features(X)
        y = self._labels(y, X.shape[0], "y")
        if (X_val is None) != (y_val is None):
            raise DataError("give X_val and y_val together")
        if X_val is not None:
            X_val = _features(X_val, "X_val")
            y_val = self._labels(y_val, X_val.shape[0], "y_val")
        return self._native.fit(X, y, X_val, y_val, callback)

    def predict(self, X):
        """Per task: regression values [n], binary probabilities [n], class probabilities
        [n, classes]."""
        X = _features(X)
        out = {}
        for (name, kind, classes), p in zip(self.tasks, self._native.predict(X)):
            out[name] = p.reshape(X.shape[0], classes) if kind == "multiclass" else p
        return out

    def evaluate(self, X, y):
        """Per task, its metrics on ``X`` and ``y`` (as :meth:`fit` takes them)."""
        X = _features(X)
        mets = self._native.evaluate(X, self._labels(y, X.shape[0], "y"))
        return {t[0]: m for t, m in zip(self.tasks, mets)}

    def save(self, path):
        """Writes the model as the safetensors checkpoint ``hydra train --save`` writes."""
        self._native.save(os.fspath(path))

    @staticmethod
    def load(path):
        """A trained model from a checkpoint of ``hydra train --save`` or :meth:`save`."""
        return Model(_native.Model.load(os.fspath(path)))

    def parameters(self):
        """Every parameter, name -> array, with PyTorch's names and layouts."""
        return {n: np.asarray(v, dtype=np.float32).reshape(s) for n, s, v in self._native.parameters()}
