"""Shared test helpers."""

import jax
import numpy as np


def random_covariances(rng: np.random.Generator, k: int, d: int, cov_type: str, base: float, spread: float):
    """Random SPD covariances base*I + A A^T in the layout of `cov_type` (full/diag/spherical/tied)."""
    a = rng.normal(0, spread, (k, d, d))
    full = np.eye(d) * base + np.einsum("kij,klj->kil", a, a)
    return {
        "full": full,
        "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
        "spherical": full.trace(axis1=1, axis2=2) / d,
        "tied": full.mean(0),
    }[cov_type]


def imprecise_products(fn, *args) -> list[str]:
    """Matrix products in `jax.jit(fn).lower(*args)` that do not ask for full precision. On GPUs and
    TPUs JAX's default for float32 products keeps 10 or 8 mantissa bits (TF32, bfloat16 passes);
    on the CPU it makes no difference, so this reads what the program asks for."""
    text = jax.jit(fn).lower(*args).as_text()
    return [line.strip() for line in text.splitlines() if "dot_general" in line and "[HIGHEST, HIGHEST]" not in line]
