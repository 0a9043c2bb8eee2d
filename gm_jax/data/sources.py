"""Data sources: embedded sets that need no network, and TFDS through `tfds.data_source`.

Every source returns an `ArraySplit` per split: random access by index into float32 examples.
Images are [H, W, C] in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from absl import logging as absl_logging

from gm_jax.core.errors import UserError
from gm_jax.data import dsprites
from gm_jax.data.points import POINT_SETS
from gm_jax.data.source import ArraySplit, Source, in_memory


def digits(test_size: int = 297) -> Source:
    """scikit-learn's 1797 8x8 handwritten digits (grey levels 0..16 scaled to [0, 1]).

    The split is a fixed permutation (seed 0): the last `test_size` examples are the test set.
    Batches carry the class labels as "y" (int32).
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = raw.images.astype(np.float32) / 16.0  # [1797, 8, 8]
    perm = np.random.default_rng(0).permutation(x.shape[0])
    x, y = x[perm][..., None], raw.target[perm].astype(np.int32)
    return Source(
        in_memory(x[:-test_size], y=y[:-test_size]),
        in_memory(x[-test_size:], y=y[-test_size:]),
        "image",
        "digits",
        levels=17,
    )


def _square(x: np.ndarray, side: int) -> np.ndarray:
    """An image [H, W, C] centre-cropped to a square, resized (bilinear, antialiased) to `side`."""
    h, w = x.shape[:2]
    s = min(h, w)
    x = x[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    if s == side:
        return x
    import jax

    out = jax.image.resize(x.astype(np.float32), (side, side, x.shape[2]), "linear", antialias=True)
    return np.clip(np.round(np.asarray(out)), 0, 255).astype(x.dtype)


HOLDOUT = 10_000  # test examples held out of a TFDS set that has only a train split (at most a tenth)


def _scalar_features(ds) -> dict[str, str]:
    """The scalar numeric features of a TFDS set besides its image, as {tfds name: batch key}
    ("label" becomes "y", as the embedded digits carry it)."""
    out = {}
    for key, feat in ds.dataset_info.features.items():
        if key == "image" or tuple(getattr(feat, "shape", (None,))) != ():
            continue
        try:
            dtype = np.dtype(feat.np_dtype)  # not `.dtype`, which imports TensorFlow
        except (AttributeError, TypeError):
            continue
        if dtype.kind in "biuf":
            out[key] = "y" if key == "label" else key
    return out


def tfds_source(
    name: str,
    data_dir: str | None,
    train_split: str = "train",
    test_splits=("test", "validation"),
    explicit_test: bool = False,
) -> Source:
    """An image dataset read through `tfds.data_source` (array_record; TensorFlow not needed).

    uint8 images are scaled by 1/255; binary datasets (binarized_mnist) are read as x > 0. The test
    split is the first of `test_splits` the set has (LSUN has "validation"); a set with only a train
    split (CelebA-HQ) has a fixed random `HOLDOUT` of it (at most a tenth) held out as the test split.
    A config name goes after a slash: "celeb_a_hq/256", "lsun/church_outdoor".

    Raises:
      UserError: unknown dataset, or dataset not prepared in `data_dir`.
    """
    hint = (
        f"prepare it with `tfds build {name} --file_format=array_record"
        + (f" --data_dir={data_dir}`" if data_dir else "` (and pass --config.data.data_dir)")
        + ", or run offline with --config.data.name=digits"
    )
    where = data_dir or "the default TFDS data dir"
    train = _open_split(name, train_split, data_dir)
    if train is None:
        raise UserError(f"TFDS dataset {name!r} split {train_split!r} not found in {where}; {hint}")
    test = next((ds for ds in (_open_split(name, t, data_dir) for t in test_splits) if ds is not None), None)
    if test is None and explicit_test:
        raise UserError(f"TFDS dataset {name!r} split {test_splits[0]!r} not found in {where}; {hint}")
    # Binary-ness from the data: uint8 pixels that never exceed 1 in the first examples (dSprites,
    # binarized_mnist) are 0/1 images, not grey levels to divide by 255.
    first_max = max(int(np.asarray(train[i]["image"]).max()) for i in range(min(len(train), 64)))
    binary = name.startswith("binarized") or first_max <= 1
    extra = _scalar_features(train)
    if test is not None:
        tr, te = _tfds_split(train, binary, extra), _tfds_split(test, binary, extra)
    else:
        n = len(train)
        held = np.sort(np.random.default_rng(0).choice(n, max(1, min(HOLDOUT, n // 10)), replace=False))
        tr = _tfds_split(train, binary, extra, np.setdiff1d(np.arange(n), held))
        te = _tfds_split(train, binary, extra, held)
    return Source(tr, te, "image", "tfds:" + name, levels=2 if binary else 256)


def _open_split(name: str, split: str, data_dir: str | None):
    """The TFDS data source of one split, or None when it is not there."""
    import tensorflow_datasets as tfds

    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS warns while probing; the caller's error says it all
    try:
        ds = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        len(ds)
        return ds
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(f"unknown TFDS dataset {name!r}; use a TFDS name or --config.data.name=digits") from None
    except Exception:  # noqa: BLE001 - any failure to open means the data (or this split) is not there
        return None
    finally:
        absl_logging.set_verbosity(verbosity)


def _tfds_split(ds, binary: bool, extra: dict, index: np.ndarray | None = None) -> ArraySplit:
    """A TFDS split (or the rows `index` of it) as an `ArraySplit`; images of varying size (LSUN) are
    centre-cropped to squares of the first image's shorter side."""
    shape = tuple(np.asarray(ds[0]["image"]).shape)
    varying = None in tuple(ds.dataset_info.features["image"].shape)
    if varying:
        side = min(shape[:2])
        shape = (side, side, shape[2])

    def get(idx):
        rows = [int(i) for i in (idx if index is None else index[np.asarray(idx, np.int64)])]
        records = [ds[i] for i in rows]
        x = np.stack(
            [_square(np.asarray(r["image"]), shape[0]) if varying else np.asarray(r["image"]) for r in records]
        )
        x = (x > 0).astype(np.float32) if binary else x.astype(np.float32) / 255.0
        if not extra:
            return x
        return {"x": x, **{k: np.asarray([r[f] for r in records]) for f, k in extra.items()}}

    return ArraySplit(get=get, size=len(ds) if index is None else len(index), shape=shape)


# Image sets some configs name that are not in the TFDS catalog (a user prepares them under that
# name): the shape of their images, for describing a model without the data.
UNCATALOGUED = {"ffhq": (None, None, 3)}


def tfds_spec(name: str, data_dir: str | None, image_size: int = 0) -> Source:
    """A TFDS image set as its metadata describes it, without reading one record: splits that return
    zero images of the declared shape (`image_size` x `image_size` for sets of varying size) and zero
    scalar features, the sizes the metadata records (1 where it records none), 2 levels for the binary
    sets (binarized_mnist, dsprites) and 256 for the others. For `--mode=describe`, which needs shapes.

    Raises:
      UserError: unknown dataset, or images of varying size without `image_size`.
    """
    import tensorflow_datasets as tfds

    base = name[len("tfds:") :] if name.startswith("tfds:") else name
    shape, extra, sizes = UNCATALOGUED.get(base.split("/")[0]), {}, {}
    if shape is None:
        verbosity = absl_logging.get_verbosity()
        absl_logging.set_verbosity(absl_logging.ERROR)
        try:
            info = tfds.builder(base, data_dir=data_dir).info
        except tfds.core.registered.DatasetNotFoundError:
            raise UserError(f"unknown TFDS dataset {base!r}; use a TFDS name or --config.data.name=digits") from None
        finally:
            absl_logging.set_verbosity(verbosity)
        shape = tuple(info.features["image"].shape)
        sizes = {k: v.num_examples for k, v in info.splits.items()} if info.splits else {}
        for key, feat in info.features.items():
            if key != "image" and tuple(getattr(feat, "shape", (None,))) == () and base != "dsprites":
                try:
                    dtype = np.dtype(feat.np_dtype)
                except (AttributeError, TypeError):
                    continue
                if dtype.kind in "biuf":
                    extra["y" if key == "label" else key] = ((), dtype)
    if base == "dsprites":
        extra = {"factors": ((5,), np.dtype(np.int32))}
    if None in shape[:2]:
        if not image_size:
            raise UserError(f"{name} has images of varying size: set data.image_size to describe a model of it")
        shape = (image_size, image_size, shape[2])
    binary = base.startswith("binarized") or base == "dsprites"

    def split(n: int) -> ArraySplit:
        def get(idx):
            x = np.zeros((len(np.asarray(idx)), *shape), np.float32)
            if not extra:
                return x
            return {"x": x, **{k: np.zeros((len(x), *sh), dt) for k, (sh, dt) in extra.items()}}

        return ArraySplit(get=get, size=max(int(n), 1), shape=shape)

    test = sizes.get("test", sizes.get("validation", 0))
    return Source(split(sizes.get("train", 0)), split(test), "image", "tfds:" + base, levels=2 if binary else 256)


# Known parameters of the generated 2-D mixture ("gmm2d"): weights, means, covariances.
GMM2D_TRUE = (
    np.array([0.5, 0.3, 0.2]),
    np.array([[0.0, 0.0], [4.0, 4.0], [-4.0, 3.0]]),
    np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.6, -0.2], [-0.2, 0.4]], [[1.5, 0.0], [0.0, 0.3]]]),
)


def gmm2d(n: int = 3000, test_size: int = 600) -> Source:
    """Points from a 3-component 2-D Gaussian mixture with known parameters `GMM2D_TRUE` (seed 0)."""
    w, mu, cov = GMM2D_TRUE
    rng = np.random.default_rng(0)
    comp = rng.choice(len(w), size=n, p=w)
    chol = np.linalg.cholesky(cov)
    x = mu[comp] + np.einsum("nij,nj->ni", chol[comp], rng.standard_normal((n, 2)))
    x = x.astype(np.float32)
    return Source(in_memory(x[:-test_size]), in_memory(x[-test_size:]), "points", "gmm2d")


# Known parameters of the HMM behind "hmm_seq": start, transitions, Gaussian means, covariances.
HMM_TRUE = (
    np.array([0.6, 0.3, 0.1]),
    np.array([[0.90, 0.07, 0.03], [0.05, 0.85, 0.10], [0.10, 0.10, 0.80]]),
    np.array([[-3.0, 0.0], [0.0, 3.0], [3.0, -1.0]]),
    np.array([[[1.0, 0.3], [0.3, 0.6]], [[0.5, 0.0], [0.0, 0.5]], [[0.8, -0.2], [-0.2, 0.9]]]),
)


def hmm_sequences(n: int = 240, test_size: int = 48, min_len: int = 50, max_len: int = 150) -> Source:
    """Sequences of ragged length sampled from the known Gaussian HMM `HMM_TRUE` (seed 0).

    Each example is {"x": [max_len, 2] zero-padded, "length": int}.
    """
    start, trans, means, cov = HMM_TRUE
    rng = np.random.default_rng(0)
    chol = np.linalg.cholesky(cov)
    x = np.zeros((n, max_len, 2), np.float32)
    lengths = rng.integers(min_len, max_len + 1, n).astype(np.int32)
    for i in range(n):
        z = rng.choice(3, p=start)
        for t in range(lengths[i]):
            if t:
                z = rng.choice(3, p=trans[z])
            x[i, t] = means[z] + chol[z] @ rng.standard_normal(2)

    def split(sl):
        xs, ls = x[sl], lengths[sl]
        return ArraySplit(
            get=lambda idx: {"x": xs[np.asarray(idx)], "length": ls[np.asarray(idx)]},
            size=xs.shape[0],
            shape=tuple(xs.shape[1:]),
        )

    return Source(split(slice(0, n - test_size)), split(slice(n - test_size, n)), "sequence", "hmm_seq")


EMBEDDED: dict[str, Callable[[], Source]] = {"digits": digits, "gmm2d": gmm2d, "hmm_seq": hmm_sequences}


def _embedded() -> dict[str, Callable[[], Source]]:
    return {**EMBEDDED, "dsprites": dsprites.dsprites, "dsprites32": dsprites.dsprites32, **POINT_SETS}


def resized(source: Source, size: int) -> Source:
    """`source` with its images made `size` x `size`.

    An integer multiple of a square source's side repeats every pixel (nearest neighbour: average
    pooling by the same factor gives back the original exactly, which the digits features rely on);
    any other size centre-crops to a square and resizes bilinearly with antialiasing, after which
    the data has no discrete levels (`levels` 0).
    """
    if source.kind != "image":
        raise UserError(f"data.image_size applies to images; {source.name} holds {source.kind}")
    h, w, c = source.train.shape
    if (h, w) == (size, size):
        return source
    if h == w and size % h == 0:
        f = size // h

        def fn(x):
            return np.repeat(np.repeat(x, f, axis=1), f, axis=2)

    else:
        import jax

        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2

        def fn(x):
            x = x[:, top : top + s, left : left + s]
            out = jax.image.resize(x, (x.shape[0], size, size, c), "linear", antialias=True)
            return np.clip(np.asarray(out), 0.0, 1.0)

    def split(sp: ArraySplit) -> ArraySplit:
        def get(idx):
            got = sp.get(idx)
            if isinstance(got, dict):
                return {**got, "x": fn(got["x"]).astype(np.float32)}
            return fn(got).astype(np.float32)

        return ArraySplit(get=get, size=sp.size, shape=(size, size, c))

    # Interpolated pixels are no longer on the stored grey levels: the data is then continuous.
    levels = source.levels if h == w and size % h == 0 else 0
    return source._replace(train=split(source.train), test=split(source.test), levels=levels)


def get_source(
    name: str, data_dir: str | None = None, train_split: str | None = None, test_split: str | None = None
) -> Source:
    """Resolve `name`: an embedded set (EMBEDDED, the 2-D sets of `gm_jax.data.points`) or "tfds:<name>".

    `train_split` / `test_split` name TFDS splits (slicing such as "train[:90%]" allowed); embedded
    sets have their own fixed splits and refuse them.

    Raises:
      UserError: unknown name or missing data.
    """
    if name == "tfds:dsprites":  # only a train split, binary images, factors as labels
        if train_split or test_split:
            raise UserError("tfds:dsprites has one split and a fixed held-out test set; leave data.*_split empty")

        return dsprites.tfds_dsprites(data_dir)
    if name.startswith("tfds:"):
        tests = (test_split,) if test_split else ("test", "validation")
        return tfds_source(name[len("tfds:") :], data_dir, train_split or "train", tests, bool(test_split))
    if train_split or test_split:
        raise UserError(f"data.train_split / data.test_split name TFDS splits; {name!r} has fixed splits")
    embedded = _embedded()
    if name in embedded:
        return embedded[name]()
    known = ", ".join(sorted(n for n in embedded if n not in POINT_SETS))
    raise UserError(
        f"unknown dataset {name!r}; embedded: {known}; 2-D sets: {', '.join(POINT_SETS)}; "
        "or tfds:<name> with --config.data.data_dir"
    )
