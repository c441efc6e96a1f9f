"""The weighting library on its own: a method's coefficients for given task gradients."""
import numpy as np

from . import _native


def methods():
    """Every weighting method's config name (the registry's list)."""
    return list(_native.methods())


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise _native.ConfigError(f"weighting parameter value {v!r}: a number, bool or string")


def coefficients(method, grads=None, losses=None, *, gram=None, **params):
    """Coefficients c of the update d = sum_t c_t g_t for one step of ``method``, from the
    task gradients ``grads`` [tasks, params] or their Gram matrix ``gram`` [tasks, tasks],
    and the task ``losses``. ``params`` are the method's ``[weighting]`` keys (e.g. ``c=0.4``
    for cagrad). Methods that keep state across steps give their first step."""
    if (grads is None) == (gram is None):
        raise _native.DataError("give grads or gram, one of them")
    m = np.ascontiguousarray(grads if gram is None else gram, dtype=np.float64)
    if m.ndim != 2:
        raise _native.DataError(f"a 2-D array expected, got shape {m.shape}")
    t = m.shape[0]
    losses = np.ones(t) if losses is None else np.ascontiguousarray(losses, dtype=np.float64)
    keys = "".join(f"{k} = {_toml_value(v)}\n" for k, v in params.items())
    text = f"method = {_toml_value(method)}\n" + keys
    return _native.coefficients(text, m, losses, gram is not None)
