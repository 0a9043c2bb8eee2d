"""Deterministic, step-indexed batching on Grain, with per-batch transforms as Grain operations.

The global batch of step s is a pure function of (data seed, s): example order is a fresh
permutation per epoch, drawn from `default_rng([seed, 0, epoch])`, and dynamic binarisation draws
from `default_rng([seed, 1, s])` over the global batch. A resumed run therefore sees exactly the data
an uninterrupted run sees.

Training batches come from `DataPipeline.train_iter`, a Grain dataset over step numbers:

    MapDataset.range(start, stop)          the step numbers (the index sampler: a pure function of s)
      .map(ReadRows)                       this process's rows of step s's global batch, and only those
      .map(Binarize)                       dynamic / static binarisation (the global draw, sliced)
      .map(Encode)                         images on a grid of levels cross to the device as uint8
      .batch(k)                            k steps stacked for `train.steps_per_call`
      .to_iter_dataset(ReadOptions)        reader threads and a prefetch buffer, so reading overlaps the step
      .mp_prefetch(...)                    optional worker processes (`data.num_workers`)

Process p of P reads rows [p * B/P, (p + 1) * B/P) of every global batch (the rows its devices hold
under `gm_jax.core.parallel.batch_sharded`), so the P processes read disjoint rows whose union is
the global batch. Evaluation batches read the same way (`eval_batches(..., rows=...)`).
"""

from __future__ import annotations

from collections.abc import Iterator

import grain
import ml_collections
import numpy as np

from gm_jax.core.errors import UserError
from gm_jax.core.parallel import process_slice
from gm_jax.data.sources import Source, get_source, resized, tfds_spec

_BINARIZE = ("none", "dynamic", "static")


def _as_dict(got) -> dict:
    return dict(got) if isinstance(got, dict) else {"x": got}


class ReadRows(grain.transforms.Map):
    """step -> {"x": float32 [B/P, ...], features..., "_step"}: this process's rows of step s."""

    def __init__(self, pipe: DataPipeline, rows: slice):
        self.pipe, self.rows = pipe, rows

    def map(self, step):
        idx = self.pipe.train_indices(int(step))[self.rows]
        batch = _as_dict(self.pipe.source.train.get(idx))
        batch["_step"] = np.int64(step)
        batch["_idx"] = idx
        return batch


class Binarize(grain.transforms.Map):
    """Dynamic binarisation: x ~ Bernoulli(grey level), redrawn every step; static: one fixed draw
    per example. The dynamic draw is made for the global batch and sliced, so a process's rows get
    the same bits as in a one-process run."""

    def __init__(self, pipe: DataPipeline, rows: slice):
        self.pipe, self.rows = pipe, rows

    def map(self, batch):
        mode = self.pipe.binarize
        if mode == "none":
            return batch
        x = batch["x"]
        if mode == "dynamic":
            shape = (self.pipe.batch_size,) + x.shape[1:]
            u = np.random.default_rng([self.pipe.seed, 1, int(batch["_step"])]).random(shape, dtype=np.float32)
            x = u[self.rows] < x
        else:
            x = self.pipe._static(x, batch["_idx"], 2)
        return {**batch, "x": x.astype(np.float32)}


class Encode(grain.transforms.Map):
    """Data on a grid of levels crosses to the device as uint8 (a quarter of float32's bytes);
    `DataPipeline.decode` turns it back into float32 inside the compiled step."""

    def __init__(self, levels: int):
        self.levels = levels

    def map(self, batch):
        batch = {k: v for k, v in batch.items() if not k.startswith("_")}
        if self.levels:
            batch["x"] = np.rint(batch["x"] * (self.levels - 1)).astype(np.uint8)
        return batch


class DataPipeline:
    """Train batches by step and padded eval batches over a source's test split.

    Args:
      source: the data.
      batch_size: the global batch.
      seed: host-side data seed.
      binarize: "none", "dynamic" or "static".
      num_threads: Grain reader threads (0: read in the consuming thread, no prefetch).
      prefetch: batches read ahead by those threads.
      num_workers: Grain worker processes (0: none).
    """

    def __init__(
        self,
        source: Source,
        batch_size: int,
        seed: int,
        binarize: str = "none",
        num_threads: int = 2,
        prefetch: int = 4,
        num_workers: int = 0,
    ):
        if binarize not in _BINARIZE:
            raise UserError(f"data.binarize must be one of {_BINARIZE}, got {binarize!r}")
        for key, v in (("num_threads", num_threads), ("prefetch", prefetch), ("num_workers", num_workers)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UserError(f"data.{key} must be a non-negative integer, got {v!r}")
        if source.train.size < 1:
            raise UserError(f"dataset {source.name} has an empty train split")
        self.source, self.batch_size, self.seed, self.binarize = source, batch_size, seed, binarize
        self.num_threads, self.prefetch, self.num_workers = num_threads, prefetch, num_workers
        self.kind = source.kind
        self._perm_cache: tuple[int, np.ndarray] | None = None  # (epoch, permutation); read by reader threads

    @property
    def example_shape(self) -> tuple:
        """Shape of one example."""
        return self.source.train.shape

    @property
    def levels(self) -> int:
        """Discrete values per dimension of the batches' "x" (2 when binarised; 0 = continuous)."""
        return 2 if self.binarize != "none" else int(self.source.levels)

    @property
    def encoded_levels(self) -> int:
        """Levels of the uint8 form the train batches cross in (0: they cross as float32)."""
        lv = self.levels
        return lv if self.kind == "image" and 2 <= lv <= 256 else 0

    def facts(self) -> dict:
        """What a family may need to know of the data, recorded in the config as `data.<key>`:
        shape, train_size, test_size, levels (discrete values per dimension; 0 = continuous), kind,
        and the extra features its batches carry beside "x" (labels "y", factors ...)."""
        first = _as_dict(self.source.train.get(np.arange(1)))
        return {
            "shape": tuple(int(d) for d in self.example_shape),
            "train_size": int(self.source.train.size),
            "test_size": int(self.source.test.size),
            "levels": self.levels,
            "kind": self.kind,
            "features": tuple(sorted(k for k in first if k != "x")),
        }

    def _permutation(self, epoch: int) -> np.ndarray:
        cached = self._perm_cache  # one read: the pair stays consistent under concurrent readers
        if cached is not None and cached[0] == epoch:
            return cached[1]
        perm = np.random.default_rng([self.seed, 0, epoch]).permutation(self.source.train.size)
        self._perm_cache = (epoch, perm)
        return perm

    def train_indices(self, step: int) -> np.ndarray:
        """Indices into the train split of the global batch of `step` (epochs may straddle a batch)."""
        n, b = self.source.train.size, self.batch_size
        pos = np.arange(step * b, (step + 1) * b, dtype=np.int64)
        out = np.empty(b, np.int64)
        for e in np.unique(pos // n):
            sel = pos // n == e
            out[sel] = self._permutation(int(e))[pos[sel] % n]
        return out

    def train_dataset(self, start: int, stop: int, steps_per_call: int = 1, process: tuple[int, int] = (0, 1)):
        """The Grain dataset of this process's encoded train batches for steps [start, stop).

        Args:
          start, stop: steps; (stop - start) must be a multiple of `steps_per_call`.
          steps_per_call: k > 1 stacks k consecutive steps into one element ([k, B/P, ...]).
          process: (process index, process count).
        Returns:
          a `grain.IterDataset` (reader threads and prefetch as configured).
        """
        rows = process_slice(self.batch_size, *process)
        ds = grain.MapDataset.range(start, stop)
        ds = ds.map(ReadRows(self, rows)).map(Binarize(self, rows)).map(Encode(self.encoded_levels))
        if steps_per_call > 1:
            ds = ds.batch(steps_per_call, drop_remainder=True)
        if self.num_threads:
            it = ds.to_iter_dataset(grain.ReadOptions(num_threads=self.num_threads, prefetch_buffer_size=self.prefetch))
        else:
            it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
        if self.num_workers:
            from absl import flags

            if not flags.FLAGS.is_parsed():  # Grain's workers read absl flags; a notebook never parses them
                flags.FLAGS.mark_as_parsed()
            it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.num_workers))
        return it

    def train_iter(self, start: int, stop: int, steps_per_call: int = 1, process: tuple[int, int] = (0, 1)):
        """Iterator over `train_dataset(...)`."""
        return iter(self.train_dataset(start, stop, steps_per_call, process))

    def decode(self, batch: dict) -> dict:
        """The float32 batch a family sees, from an encoded one (traceable; used inside the step)."""
        x = batch["x"]
        if x.dtype == np.uint8:
            lv = self.encoded_levels
            x = x.astype(np.float32) / np.float32(lv - 1)
        return {**batch, "x": x}

    def train_batch(self, step: int) -> dict:
        """{"x": float32 [B, *shape], ...}: the whole global batch of `step`, as a family sees it."""
        batch = ReadRows(self, slice(None)).map(step)
        batch = Binarize(self, slice(None)).map(batch)
        return {k: v for k, v in batch.items() if not k.startswith("_")} | {"x": batch["x"].astype(np.float32)}

    def _static(self, x: np.ndarray, idx: np.ndarray, tag: int) -> np.ndarray:
        # One fixed Bernoulli draw per example: seeded by (seed, split tag, example index).
        u = np.stack(
            [np.random.default_rng([self.seed, tag, int(i)]).random(x.shape[1:], dtype=np.float32) for i in idx]
        )
        return u < x

    def eval_batches(self, batch_size: int, max_examples: int = -1, rows: slice | None = None) -> Iterator[dict]:
        """Test batches {"x", ..., "mask"} of exactly `batch_size` rows; the last is zero-padded (mask 0).

        The test split is binarised once with a fixed seed when binarisation is on, so every
        evaluation of a run (and of every run with the same seed) sees the same binary test set.

        Args:
          batch_size: the global eval batch.
          max_examples: at most this many test examples (-1: all).
          rows: read only these rows of each global batch (a process's `process_slice`); "mask" is
            then still the global batch's [batch_size].
        """
        n = self.source.test.size if max_examples < 0 else min(max_examples, self.source.test.size)
        rows = rows or slice(0, batch_size)
        for start in range(0, n, batch_size):
            mask = (np.arange(start, start + batch_size) < n).astype(np.float32)
            pos = np.arange(start, start + batch_size)[rows]
            idx = pos[pos < n]
            batch = _as_dict(self.source.test.get(idx)) if len(idx) else _as_dict(self.source.test.get(np.arange(1)))
            if not len(idx):  # a process whose rows are all padding: one example's shapes, no rows
                batch = {k: v[:0] for k, v in batch.items()}
            x = batch["x"]
            if self.binarize != "none" and len(idx):
                x = self._static(x, idx, 3)
            batch["x"] = x.astype(np.float32)
            pad = len(pos) - len(idx)
            if pad:
                batch = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)]) for k, v in batch.items()}
            batch["mask"] = mask
            yield batch


def load(data_cfg: ml_collections.ConfigDict, batch_size: int, seed: int, spec_only: bool = False) -> DataPipeline:
    """Build the pipeline named by `data_cfg.name` (see `gm_jax.data.sources.get_source`).

    Args:
      data_cfg: fields `name`, optional `data_dir`, `binarize`, `image_size` (0: as stored; else
        images are made image_size x image_size, see `gm_jax.data.sources.resized`; point and
        sequence data ignore it, so one config serves images and the 2-D sets), `train_split` and
        `test_split` (TFDS split names, slicing such as "train[:90%]" allowed), `num_threads`,
        `prefetch`, `num_workers` (Grain reader threads, batches read ahead, worker processes).
      batch_size: global batch size.
      seed: host-side data seed.
      spec_only: a TFDS set is described by its metadata (`gm_jax.data.sources.tfds_spec`) and never
        read: batches hold zeros of the right shapes (embedded sets are generated as usual).
    """
    size = data_cfg.get("image_size", 0)
    if size and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise UserError(f"data.image_size must be a positive integer (or 0), got {size!r}")
    if spec_only and data_cfg.name.startswith("tfds:"):
        source = tfds_spec(data_cfg.name, data_cfg.get("data_dir") or None, data_cfg.get("image_size", 0) or 0)
    else:
        source = get_source(
            data_cfg.name,
            data_cfg.get("data_dir") or None,
            train_split=data_cfg.get("train_split", "") or None,
            test_split=data_cfg.get("test_split", "") or None,
        )
    if size and source.kind == "image":
        source = resized(source, size)
    return DataPipeline(
        source,
        batch_size,
        seed,
        data_cfg.get("binarize", "none"),
        num_threads=data_cfg.get("num_threads", 2),
        prefetch=data_cfg.get("prefetch", 4),
        num_workers=data_cfg.get("num_workers", 0),
    )
