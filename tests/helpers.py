"""Shared test helpers."""

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
