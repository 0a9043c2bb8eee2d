"""What the classical models' entry points say when float64 input would silently become float32."""

from __future__ import annotations

import warnings

import jax
import numpy as np

_warned = False


def warn_if_float64_dropped(where: str, *arrays) -> bool:
    """Warn once per process when a float64 input meets a float32-only JAX (x64 off).

    Returns whether this call warned.
    """
    global _warned
    if _warned or jax.config.jax_enable_x64:
        return False
    for a in jax.tree_util.tree_leaves(arrays):
        if getattr(a, "dtype", None) == np.float64:
            _warned = True
            warnings.warn(
                f"{where}: float64 input is computed in float32 because JAX's x64 mode is off; to keep "
                "float64, call it inside `with jax.enable_x64(True):` (or set "
                "jax.config.update('jax_enable_x64', True) first)",
                UserWarning,
                stacklevel=3,
            )
            return True
    return False
