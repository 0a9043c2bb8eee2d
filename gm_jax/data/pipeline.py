"""Deterministic, step-indexed batching and per-batch transforms.

The global batch of step s is a pure function of (data seed, s): example order is a fresh
permutation per epoch, drawn from `default_rng([seed, epoch])`, and dynamic binarisation draws from
`default_rng([seed, 1, s])`. A resumed run therefore sees exactly the data an uninterrupted run sees,
and every process of a multi-host job builds the same global batch and feeds its own rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import ml_collections
import numpy as np

from gm_jax.core.errors import UserError
from gm_jax.data.sources import Source, get_source, resized

_BINARIZE = ("none", "dynamic", "static")


class DataPipeline:
    """Train batches by step and padded eval batches over a source's test split."""

    def __init__(self, source: Source, batch_size: int, seed: int, binarize: str = "none"):
        if binarize not in _BINARIZE:
            raise UserError(f"data.binarize must be one of {_BINARIZE}, got {binarize!r}")
        if source.train.size < 1:
            raise UserError(f"dataset {source.name} has an empty train split")
        self.source, self.batch_size, self.seed, self.binarize = source, batch_size, seed, binarize
        self.kind = source.kind
        self._perm_epoch, self._perm = -1, None

    @property
    def example_shape(self) -> tuple:
        """Shape of one example."""
        return self.source.train.shape

    def facts(self) -> dict:
        """What a family may need to know of the data, recorded in the config as `data.<key>`:
        shape, train_size, test_size, levels (discrete values per dimension; 0 = continuous), kind,
        and the extra features its batches carry beside "x" (labels "y", factors ...)."""
        first = _as_dict(self.source.train.get(np.arange(1)))
        return {
            "shape": tuple(int(d) for d in self.example_shape),
            "train_size": int(self.source.train.size),
            "test_size": int(self.source.test.size),
            "levels": 2 if self.binarize != "none" else int(self.source.levels),
            "kind": self.kind,
            "features": tuple(sorted(k for k in first if k != "x")),
        }

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, 0, epoch]).permutation(self.source.train.size)
            self._perm_epoch = epoch
        return self._perm

    def train_indices(self, step: int) -> np.ndarray:
        """Indices into the train split of the global batch of `step` (epochs may straddle a batch)."""
        n, b = self.source.train.size, self.batch_size
        pos = np.arange(step * b, (step + 1) * b, dtype=np.int64)
        out = np.empty(b, np.int64)
        for e in np.unique(pos // n):
            sel = pos // n == e
            out[sel] = self._permutation(int(e))[pos[sel] % n]
        return out

    def train_batch(self, step: int) -> dict:
        """{"x": float32 [B, *shape], ...} for `step`, transformed (binarised if configured)."""
        batch = _as_dict(self.source.train.get(self.train_indices(step)))
        x = batch["x"]
        if self.binarize == "dynamic":
            x = np.random.default_rng([self.seed, 1, step]).random(x.shape, dtype=np.float32) < x
        elif self.binarize == "static":
            x = self._static(x, self.train_indices(step), 2)
        return {**batch, "x": x.astype(np.float32)}

    def _static(self, x: np.ndarray, idx: np.ndarray, tag: int) -> np.ndarray:
        # One fixed Bernoulli draw per example: seeded by (seed, split tag, example index).
        u = np.stack(
            [np.random.default_rng([self.seed, tag, int(i)]).random(x.shape[1:], dtype=np.float32) for i in idx]
        )
        return u < x

    def eval_batches(self, batch_size: int, max_examples: int = -1) -> Iterator[dict]:
        """Test batches {"x", "mask"} of exactly `batch_size` rows; the last is zero-padded (mask 0).

        The test split is binarised once with a fixed seed when binarisation is on, so every
        evaluation of a run (and of every run with the same seed) sees the same binary test set.
        """
        n = self.source.test.size if max_examples < 0 else min(max_examples, self.source.test.size)
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            batch = _as_dict(self.source.test.get(idx))
            x = batch["x"]
            if self.binarize != "none":
                x = self._static(x, idx, 3)
            batch["x"] = x.astype(np.float32)
            batch["mask"] = np.ones(len(idx), np.float32)
            pad = batch_size - len(idx)
            if pad:
                batch = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)]) for k, v in batch.items()}
            yield batch


def _as_dict(got) -> dict:
    return dict(got) if isinstance(got, dict) else {"x": got}


def load(data_cfg: ml_collections.ConfigDict, batch_size: int, seed: int) -> DataPipeline:
    """Build the pipeline named by `data_cfg.name` (see `gm_jax.data.sources.get_source`).

    Args:
      data_cfg: fields `name`, optional `data_dir`, `binarize`, `image_size` (0: as stored; else
        images are made image_size x image_size, see `gm_jax.data.sources.resized`; point and
        sequence data ignore it, so one config serves images and the 2-D sets).
      batch_size: global batch size.
      seed: host-side data seed.
    """
    source = get_source(data_cfg.name, data_cfg.get("data_dir") or None)
    size = data_cfg.get("image_size", 0)
    if size and source.kind == "image":
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise UserError(f"data.image_size must be a positive integer (or 0), got {size!r}")
        source = resized(source, size)
    return DataPipeline(source, batch_size, seed, data_cfg.get("binarize", "none"))
