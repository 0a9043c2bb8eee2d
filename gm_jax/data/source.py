"""The types every data source returns: `ArraySplit` (random access into one split) and `Source` (a
data set's splits and what kind of examples they hold), and `in_memory` for a split held in memory.
Every data module builds on these; none imports another data module for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class ArraySplit(NamedTuple):
    """One split: `get(indices)` -> float32 [len(indices), *shape], or a dict of arrays with the
    examples under "x" (e.g. sequences with their "length"); `shape` is that of one "x"."""

    get: Callable[[np.ndarray], np.ndarray]
    size: int
    shape: tuple


class Source(NamedTuple):
    """A dataset: train and test splits and what kind of examples they hold.

    `levels` is the number of discrete values a dimension takes (17 for the digits' grey levels 0..16,
    256 for uint8 images, 2 for binary data; 0 for continuous data), which bits/dim and
    dequantisation need. Mixture point sets also know their `modes` [K, D] and the per-coordinate
    std `mode_std` of each component, for the mode metrics. Sets generated from known factors
    (dSprites) carry a `factors` object that draws factor combinations and renders them, for the
    disentanglement metrics.
    """

    train: ArraySplit
    test: ArraySplit
    kind: str  # "image" | "points" | "sequence"
    name: str
    levels: int = 0
    modes: np.ndarray | None = None
    mode_std: float = 0.0
    factors: Any = None  # a generated set's ground-truth factors (`gm_jax.data.dsprites.FactorSet`)


def in_memory(x: np.ndarray, **extra: np.ndarray) -> ArraySplit:
    """A split held in memory; `extra` arrays (labels, factors) come beside "x" in every batch."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not extra:
        return ArraySplit(get=lambda idx: x[np.asarray(idx)], size=x.shape[0], shape=tuple(x.shape[1:]))
    return ArraySplit(
        get=lambda idx: {"x": x[np.asarray(idx)], **{k: v[np.asarray(idx)] for k, v in extra.items()}},
        size=x.shape[0],
        shape=tuple(x.shape[1:]),
    )
