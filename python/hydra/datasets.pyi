import numpy as np

NAMES: tuple[str, ...]

def load(name: str) -> dict[str, np.ndarray]:
    """A built-in dataset, column name -> array."""
