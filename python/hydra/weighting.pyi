from typing import Optional

import numpy as np
import numpy.typing as npt

def methods() -> list[str]:
    """Every weighting method's config name."""

def coefficients(
    method: str,
    grads: Optional[npt.ArrayLike] = None,
    losses: Optional[npt.ArrayLike] = None,
    *,
    gram: Optional[npt.ArrayLike] = None,
    **params: float | int | bool | str,
) -> np.ndarray:
    """Coefficients c of d = sum_t c_t g_t for one step of the method."""
