"""What an evaluator works with: the family, the run's config and data, the mesh, keys and writer.

Compiled functions an evaluation needs (a batch of samples, the family's `evaluate` per eval config,
its `encode`) are built once per run here and reused by every periodic evaluation; `cache` holds
what an evaluator builds once per run (feature extractors and their reference statistics).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from gm_jax.core import parallel
from gm_jax.core.validation import eval_batch_size


class RunKeys(NamedTuple):
    """The run's PRNG keys: init, loop (the train steps fold the step in), evaluation, sampling and
    sample quality (from an index no train step uses), and the host-side data seed."""

    init: Any
    loop: Any
    eval: Any
    sample: Any
    quality: Any
    data_seed: int

    @classmethod
    def from_seed(cls, seed: int) -> RunKeys:
        init, data, loop = jax.random.split(jax.random.key(seed), 3)
        ev, smp, quality = jax.random.split(jax.random.fold_in(loop, 0xFFFFFFFF), 3)
        return cls(init, loop, ev, smp, quality, int(np.asarray(jax.random.key_data(data)).ravel()[-1]))


def images(got: Any) -> np.ndarray:
    """The "x" of what a split's `get` returns (an array, or a dict with features)."""
    return got["x"] if isinstance(got, dict) else got


class Context:
    """One run's evaluation context (see the module docstring)."""

    def __init__(self, spec, cfg, data, mesh, keys: RunKeys, writer):
        self.spec, self.cfg, self.data, self.mesh, self.keys, self.writer = spec, cfg, data, mesh, keys, writer
        self.repl = parallel.replicated(mesh)
        self.rows = parallel.batch_sharded(mesh)
        self.cache: dict[str, Any] = {}
        self._draw: dict[int, Any] = {}
        self._encode: Any = None

    @property
    def kind(self) -> str:
        return self.data.kind

    def batch_size(self, ecfg: Any) -> int:
        """The eval batch of an eval config, a multiple of the devices."""
        return eval_batch_size(ecfg, self.cfg.train.batch_size, self.mesh.devices.size)

    def test_batch(self, size: int) -> dict:
        """The first `size` test examples (padded), without their mask."""
        batch = next(self.data.eval_batches(size, size))
        batch.pop("mask")
        return batch

    def draw(self, state, n: int, batch: int, key) -> np.ndarray:
        """n samples drawn in compiled batches whose rows are sharded over the devices."""
        n_dev = self.mesh.devices.size
        bs = -(-max(1, min(batch, n)) // n_dev) * n_dev
        if bs not in self._draw:
            spec, cfg = self.spec, self.cfg
            self._draw[bs] = jax.jit(
                lambda s, k: spec.sample(s, k, bs, cfg), in_shardings=(self.repl, self.repl), out_shardings=self.rows
            )
        fn = self._draw[bs]
        parts = [np.asarray(parallel.to_host(fn(state, jax.random.fold_in(key, i)))) for i in range(-(-n // bs))]
        return np.concatenate(parts)[:n]

    def encode(self, state, x: np.ndarray) -> np.ndarray:
        """The family's `encode` of host images, in compiled batches sharded over the devices."""
        bs = eval_batch_size({"eval": {"batch_size": 256}}, 256, self.mesh.devices.size)
        if self._encode is None:
            spec, cfg = self.spec, self.cfg
            self._encode = jax.jit(
                lambda s, v: spec.encode(s, v, cfg), in_shardings=(self.repl, self.rows), out_shardings=self.repl
            )
        out = []
        for lo in range(0, len(x), bs):
            part = x[lo : lo + bs]
            pad = bs - len(part)
            if pad:
                part = np.concatenate([part, np.zeros((pad,) + part.shape[1:], part.dtype)])
            codes = self._encode(state, parallel.shard_batch({"x": part}, self.mesh)["x"])
            out.append(np.asarray(parallel.to_host(codes))[: bs - pad])
        return np.concatenate(out)

    def train_images(self, limit: int | None = None) -> np.ndarray:
        """The train split's images (the first `limit`), read in blocks of 1024."""
        train = self.data.source.train
        n = train.size if limit is None else min(train.size, limit)
        return np.concatenate([images(train.get(np.arange(i, min(i + 1024, n)))) for i in range(0, n, 1024)])
