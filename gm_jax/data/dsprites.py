"""A procedural dSprites (Matthey et al., 2017): 2-D shapes from five independent factors, rendered
on demand, so nothing is downloaded.

Factors, as in the released set: shape (square, ellipse, heart), scale (6 values, 0.5..1), orientation
(40 values in [0, 2 pi)), position x and y (32 values each, in [0, 1]); 3 * 6 * 40 * 32 * 32 =
737,280 combinations, indexed in that row-major order like the released `latents_classes`. Images
are binary, `resolution` x `resolution` (64 in the original), the shape's centre at
(0.2 + 0.6 pos) of the canvas. The original's own pictures are not reproduced pixel for pixel;
what matters for the disentanglement literature, five known, independently varied factors, is.
As in the original, a square at orientations 90 degrees apart (and an ellipse 180 degrees apart) is
the same picture: the factor index is distinct, the image need not be.

`FactorSet` draws factor combinations and renders them, which the β-VAE and FactorVAE metrics need
(images of chosen factors, not only the stored ones). Registered sources (`gm_jax.data.sources`):
- "dsprites": 64 x 64, all 737,280 combinations in the train split;
- "dsprites32": 32 x 32 with positions and orientations subsampled (16 positions per axis, 10
  orientations): 3 * 6 * 10 * 16 * 16 = 46,080 combinations, the CPU default.
Test split: a fixed random 4096 of the combinations (seed 0). Batches carry "factors" (int32 class
indices [5]) beside "x".

"tfds:dsprites" reads the released set through TFDS (`tfds_dsprites`, for users who have it
prepared): binary images as 0/1, the five `label_*` features as "factors", the same fixed test split
carved from its only (train) split, and, when all 737,280 images are there, a factor set that
"renders" chosen factors by looking them up in the released order, so the metrics run on it too.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from gm_jax.data.source import ArraySplit, Source

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FULL_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
TEST_SIZE = 4096
_SUPERSAMPLE = 3  # sub-pixel samples per axis


class FactorSet(NamedTuple):
    """Factor grid of a procedural set: `sizes` values per factor, every `stride`-th of the full grid."""

    sizes: tuple
    stride: tuple
    resolution: int

    @property
    def n(self) -> int:
        return int(np.prod(self.sizes))

    def factors(self, index: np.ndarray) -> np.ndarray:
        """Class indices [N, 5] of combination indices [N] (row-major over `sizes`)."""
        return np.stack(np.unravel_index(np.asarray(index, np.int64), self.sizes), 1).astype(np.int32)

    def index(self, factors: np.ndarray) -> np.ndarray:
        """Inverse of `factors`."""
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.sizes)

    def sample_factors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n combinations drawn uniformly: [n, 5] class indices."""
        return np.stack([rng.integers(0, s, n) for s in self.sizes], 1).astype(np.int32)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """Binary images [N, R, R, 1] float32 of class indices [N, 5] (of this set's grid)."""
        f = np.asarray(factors, np.int64) * np.asarray(self.stride)
        return render_full(f, self.resolution)


def _inside(shape: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether shape-frame points (u, v) (the unit box is the largest shape) lie inside each shape."""
    square = (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    ellipse = u**2 + (v / 0.5) ** 2 <= 1.0
    # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, pointing down, scaled into the unit box
    hx, hy = u * 1.15, -v * 1.15 + 0.25
    heart = (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3 <= 0
    return np.where(shape == 0, square, np.where(shape == 1, ellipse, heart))


_HALF = 0.19  # template half-width, in canvas units: holds the largest shape at any orientation


@functools.lru_cache(maxsize=4)
def _templates(resolution: int) -> np.ndarray:
    """Supersampled masks [3, 6, 40, T, T] of every (shape, scale, orientation), centred."""
    s = resolution * _SUPERSAMPLE
    t = 2 * int(np.ceil(_HALF * s))
    g = (np.arange(t) - t / 2 + 0.5) / s  # canvas units about the centre
    gy, gx = np.meshgrid(g, g, indexing="ij")
    sh, sc, th = np.meshgrid(np.arange(3), np.arange(6), np.arange(FULL_SIZES[2]), indexing="ij")
    sh, sc, th = (a.reshape(-1, 1, 1) for a in (sh, sc, th))
    theta = 2 * np.pi * th / FULL_SIZES[2]
    r = 0.16 * (0.5 + 0.1 * sc)  # half-size of the shape: 0.08 .. 0.16 of the canvas
    c, si = np.cos(theta), np.sin(theta)
    u, v = (c * gx + si * gy) / r, (-si * gx + c * gy) / r
    return _inside(sh, u, v).reshape(3, 6, FULL_SIZES[2], t, t)


def render_full(factors: np.ndarray, resolution: int = 64) -> np.ndarray:
    """Binary images [N, R, R, 1] float32 of class indices [N, 5] on the full grid `FULL_SIZES`.

    The shape's mask (drawn at 3x3 sub-pixels per pixel) is placed with its centre at
    (0.2 + 0.6 pos) of the canvas, rounded to a sub-pixel, and a pixel is on when at least half of
    its sub-pixels are.
    """
    f = np.asarray(factors, np.int64)
    n, s = f.shape[0], _SUPERSAMPLE
    tpl = _templates(resolution)
    t = tpl.shape[-1]
    size = resolution * s
    centre = lambda p: np.rint((0.2 + 0.6 * p / (FULL_SIZES[3] - 1)) * size).astype(np.int64)  # noqa: E731
    oy, ox = centre(f[:, 4]) - t // 2, centre(f[:, 3]) - t // 2
    out = np.empty((n, resolution, resolution, 1), np.float32)
    ti = np.arange(t)
    for lo in range(0, n, 512):
        hi = min(n, lo + 512)
        canvas = np.zeros((hi - lo, size, size), np.uint8)
        b = np.arange(hi - lo)[:, None, None]
        rows = oy[lo:hi, None, None] + ti[None, :, None]
        cols = ox[lo:hi, None, None] + ti[None, None, :]
        canvas[b, rows, cols] = tpl[f[lo:hi, 0], f[lo:hi, 1], f[lo:hi, 2]]
        frac = canvas.reshape(hi - lo, resolution, s, resolution, s).sum((2, 4), dtype=np.int32)
        out[lo:hi, ..., 0] = frac * 2 >= s * s
    return out


FULL = FactorSet(FULL_SIZES, (1, 1, 1, 1, 1), 64)
SMALL = FactorSet((3, 6, 10, 16, 16), (1, 1, 4, 2, 2), 32)


def source(factor_set: FactorSet, name: str):
    """The train split (every combination) and a fixed random test split of `factor_set` as a Source."""
    test_idx = np.sort(np.random.default_rng(0).choice(factor_set.n, min(TEST_SIZE, factor_set.n), replace=False))
    shape = (factor_set.resolution, factor_set.resolution, 1)

    def split(index_of) -> ArraySplit:
        size = factor_set.n if index_of is None else len(index_of)

        def get(idx):
            combo = np.asarray(idx, np.int64) if index_of is None else index_of[np.asarray(idx, np.int64)]
            f = factor_set.factors(combo)
            return {"x": factor_set.render(f), "factors": f}

        return ArraySplit(get=get, size=size, shape=shape)

    return Source(split(None), split(test_idx), "image", name, levels=2, factors=factor_set)


_TFDS_FACTORS = ("label_shape", "label_scale", "label_orientation", "label_x_position", "label_y_position")


class ReleasedFactors(NamedTuple):
    """The released dSprites as a factor set: chosen factors are looked up by their index in the
    released (row-major) order."""

    ds: object
    sizes: tuple = FULL_SIZES

    @property
    def n(self) -> int:
        return int(np.prod(self.sizes))

    def sample_factors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return FULL.sample_factors(rng, n)

    def render(self, factors: np.ndarray) -> np.ndarray:
        idx = FULL.index(factors)
        return np.stack([np.asarray(self.ds[int(i)]["image"]) > 0 for i in idx]).astype(np.float32)


def tfds_dsprites(data_dir: str | None):
    """The released dSprites through `tfds.data_source` (see the module docstring)."""
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging

    from gm_jax.core.errors import UserError

    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        ds = tfds.data_source("dsprites", split="train", data_dir=data_dir, download=False)
        n = len(ds)
    except Exception:  # noqa: BLE001 - any failure to open means the data is not there
        where = data_dir or "the default TFDS data dir"
        raise UserError(
            f"TFDS dataset 'dsprites' not found in {where}; prepare it with `tfds build dsprites "
            "--file_format=array_record`, or run offline with --config.data.name=dsprites (generated here)"
        ) from None
    finally:
        absl_logging.set_verbosity(verbosity)
    test_idx = np.sort(np.random.default_rng(0).choice(n, min(TEST_SIZE, n // 2), replace=False))
    train_idx = np.setdiff1d(np.arange(n), test_idx) if n < FULL.n else np.arange(n)

    def split(index_of) -> ArraySplit:
        def get(idx):
            rows = [ds[int(i)] for i in index_of[np.asarray(idx, np.int64)]]
            x = np.stack([np.asarray(r["image"]) > 0 for r in rows]).astype(np.float32)
            f = np.array([[int(r[k]) for k in _TFDS_FACTORS] for r in rows], np.int32)
            return {"x": x, "factors": f}

        return ArraySplit(get=get, size=len(index_of), shape=(64, 64, 1))

    # All combinations present (the released set): chosen factors can be looked up, so the metrics run.
    factors = ReleasedFactors(ds) if n == FULL.n else None
    return Source(split(train_idx), split(test_idx), "image", "tfds:dsprites", levels=2, factors=factors)


def dsprites() -> object:
    """64 x 64, the full factor grid (737,280 combinations)."""
    return source(FULL, "dsprites")


def dsprites32() -> object:
    """32 x 32, positions and orientations subsampled (46,080 combinations): the CPU default."""
    return source(SMALL, "dsprites32")
