"""Mixed precision for Linen models: compute in bfloat16, keep parameters and losses in float32.

`model.dtype` is the compute dtype of a neural family. With "bfloat16", `mixed_apply` casts the
float32 parameters and the float inputs to bfloat16 before `module.apply` and the float outputs
back to float32: every Dense / Conv then multiplies in bfloat16 (exactly what Flax's per-layer
`dtype=bfloat16, param_dtype=float32` does), while the optimizer, its state, the EMA and every
likelihood, loss and metric stay float32. Gradients reach the float32 parameters through the
casts. Normalisation statistics ("batch_stats") are kept float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str) -> Any:
    """The jnp dtype called `name` ("float32" or "bfloat16")."""
    if name not in DTYPES:
        raise ValueError(f"model.dtype must be float32 or bfloat16, got {name!r}")
    return DTYPES[name]


def cast_floats(tree: Any, dtype: Any) -> Any:
    """Every floating leaf of `tree` as `dtype`; other leaves unchanged."""

    def cast(x):
        if isinstance(x, jax.Array | np.ndarray | float) and jnp.issubdtype(jnp.result_type(x), jnp.floating):
            return jnp.asarray(x).astype(dtype)
        return x

    return jax.tree.map(cast, tree)


def mixed_apply(apply_fn: Callable, dtype: Any) -> Callable:
    """`apply_fn(variables, *args, **kwargs)` computing in `dtype`, returning float32.

    Args:
      apply_fn: a Linen `module.apply`.
      dtype: the compute dtype; float32 returns `apply_fn` itself.
    Returns:
      a function with `apply_fn`'s signature.
    """
    if jnp.dtype(dtype) == jnp.float32:
        return apply_fn

    def apply(variables, *args, **kwargs):
        variables = {k: (cast_floats(v, dtype) if k == "params" else v) for k, v in variables.items()}
        out = apply_fn(variables, *cast_floats(args, dtype), **kwargs)
        return cast_floats(out, jnp.float32)

    return apply
