from os import PathLike
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np
import numpy.typing as npt

from . import datasets as datasets
from . import weighting as weighting
from ._native import CheckpointError as CheckpointError
from ._native import ConfigError as ConfigError
from ._native import DataError as DataError
from ._native import DeviceError as DeviceError
from ._native import HydraError as HydraError

ArrayLike = npt.ArrayLike
Labels = Mapping[str, ArrayLike]
Report = dict[str, Any]

def info() -> dict[str, str]:
    """The adapter Hydra opens: adapter, backend, driver, driver_info."""

class Model:
    """A multi-task model described by a config: a TOML path, TOML text or a dict."""

    def __init__(self, config: Union[str, PathLike[str], Mapping[str, Any]]) -> None: ...
    @property
    def tasks(self) -> list[tuple[str, str, int]]:
        """The tasks as (name, kind, classes), in config order."""
    def fit(
        self,
        X: ArrayLike,
        y: Labels,
        *,
        X_val: Optional[ArrayLike] = None,
        y_val: Optional[Labels] = None,
        callback: Optional[Callable[[int, dict[str, dict[str, float]]], Optional[bool]]] = None,
    ) -> Report:
        """Trains; returns per-epoch losses and validation metrics, best_epoch and steps."""
    def predict(self, X: ArrayLike) -> dict[str, np.ndarray]:
        """Per task: values [n], binary probabilities [n] or class probabilities [n, classes]."""
    def evaluate(self, X: ArrayLike, y: Labels) -> dict[str, dict[str, float]]:
        """Per task, its metrics."""
    def save(self, path: Union[str, PathLike[str]]) -> None:
        """Writes the checkpoint `hydra train --save` writes."""
    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> "Model":
        """A trained model from a checkpoint."""
    def parameters(self) -> dict[str, np.ndarray]:
        """Every parameter by its PyTorch name."""
