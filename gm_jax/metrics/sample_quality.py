"""Set-level sample quality: FID, KID, precision/recall and a classifier score on learned features.

The features come from a pluggable extractor (`FeatureExtractor`: images [N, H, W, C] in [0, 1] ->
(features [N, F], class logits [N, C] or None)). The default is a small classifier trained in-repo on
the embedded digits (seeded, cached, its test accuracy reported), so the numbers are named
"digits-FID", "digits-KID", ... and are comparable between runs of this repo only, never with
Inception FID. A user with Inception weights passes an extractor built on them and gets
paper-comparable numbers through the same functions.

- FID (Heusel et al., 2017): |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)), statistics in float64.
- KID (Binkowski et al., 2018): unbiased MMD^2 with the kernel (x.y / F + 1)^3, mean and std over
  random subsets.
- Precision / recall (Kynkaanniemi et al., 2019): a generated sample is "precise" when it falls in
  the k-NN ball of some real sample; a real sample is "recalled" when it falls in the k-NN ball of
  some generated one (k = 3 as in the paper).
- Classifier score (the Inception-score analogue): exp E_x KL(p(y|x) || p(y)).

Reference statistics can be saved to and compared with an `.npz` of (mu, sigma).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from gm_jax.core import compilation_cache

FeatureFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


class FeatureExtractor(NamedTuple):
    """A named feature map for set-level metrics.

    Attributes:
      name: prefix of the metric names ("digits" gives "digits_fid", ...).
      fn: images [N, H, W, C] in [0, 1] -> (features [N, F], logits [N, classes] or None).
      image_shape: the [H, W, C] it accepts.
      info: facts to report beside the metrics (e.g. the classifier's test accuracy).
    """

    name: str
    fn: FeatureFn
    image_shape: tuple
    info: dict


# ----------------------------------------------------------------------------- statistics


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [F] and covariance [F, F] of features [N, F], accumulated in float64."""
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2)
    (symmetric PSD, so the eigenvalues are real and clipped at 0), which avoids a complex sqrtm.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(ev, 0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets [N, F], [M, F]."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def save_stats(path: str, features: np.ndarray) -> None:
    """Write (mu, sigma) of `features` to an .npz (atomically)."""
    mu, sigma = gaussian_stats(features)
    tmp = path + ".tmp.npz"
    np.savez(tmp, mu=mu, sigma=sigma)
    os.replace(tmp, path)


def load_stats(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) from an .npz written by `save_stats` (or any with those two arrays)."""
    with np.load(path) as z:
        return np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)


def kid(
    features_a: np.ndarray, features_b: np.ndarray, n_subsets: int = 50, subset_size: int = 100, seed: int = 0
) -> tuple[float, float]:
    """Kernel inception distance (unbiased MMD^2, cubic polynomial kernel): (mean, std) over subsets."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty(n_subsets)
    for i in range(n_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = m * (m - 1)
        out[i] = (kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean()
    return float(out.mean()), float(out.std())


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None], 0.0)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k-NN manifolds."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)

    def radii(x):  # distance to the k-th nearest other point
        d = _pairwise_sq(x, x)
        return np.sqrt(np.sort(d, axis=1)[:, min(k, len(x) - 1)])

    def coverage(manifold, probe):
        r = radii(manifold)
        return float(np.mean(np.any(np.sqrt(_pairwise_sq(probe, manifold)) <= r[None], axis=1)))

    return coverage(real, fake), coverage(fake, real)


def classifier_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp E_x KL(p(y|x) || p(y)) (the Inception-score formula on any classifier): mean, std over splits."""
    lg = np.asarray(logits, np.float64)
    lg = lg - lg.max(1, keepdims=True)
    logp = lg - np.log(np.exp(lg).sum(1, keepdims=True))
    scores = []
    for part in np.array_split(logp, max(1, min(splits, len(logp)))):
        p = np.exp(part)
        logpy = np.log(p.mean(0) + 1e-300)
        scores.append(np.exp(np.mean(np.sum(p * (part - logpy), 1))))
    return float(np.mean(scores)), float(np.std(scores))


def compare(extractor: FeatureExtractor, images: np.ndarray, reference: tuple, kid_subset: int = 100) -> dict:
    """Every metric of `images` against a reference.

    Args:
      extractor: the feature map.
      images: [N, H, W, C] in [0, 1].
      reference: (features [M, F], (mu, sigma)) of the real data.
      kid_subset: KID subset size.
    Returns:
      {"<name>_fid", "<name>_kid", "<name>_kid_std", "<name>_precision", "<name>_recall",
       "<name>_score", "<name>_score_std", "<name>_classes"} (the last three only when the extractor
      gives logits; `classes_covered`).
    """
    feats, logits = extractor.fn(images)
    ref_feats, (mu, sigma) = reference
    n = extractor.name
    out = {f"{n}_fid": frechet_distance(*gaussian_stats(feats), mu, sigma)}
    out[f"{n}_kid"], out[f"{n}_kid_std"] = kid(feats, ref_feats, subset_size=kid_subset)
    out[f"{n}_precision"], out[f"{n}_recall"] = precision_recall(ref_feats, feats)
    if logits is not None:
        out[f"{n}_score"], out[f"{n}_score_std"] = classifier_score(logits)
        out[f"{n}_classes"] = classes_covered(logits)
    return out


def classes_covered(logits: np.ndarray, min_fraction: float = 0.01) -> float:
    """How many classes the classifier assigns to at least `min_fraction` of the samples (argmax),
    a count of the modes a sampler reaches: 1 for a sampler collapsed onto one digit, 10 for one
    that draws every digit."""
    pred = np.argmax(np.asarray(logits), axis=1)
    counts = np.bincount(pred, minlength=np.asarray(logits).shape[1])
    return float(np.sum(counts >= max(1.0, min_fraction * len(pred))))


# ----------------------------------------------------------------------------- digits classifier

DIGITS_HIDDEN = (128, 64)  # the last hidden layer's activations are the features


def _mlp_apply(params: list, x: np.ndarray | object, xp=np) -> tuple:
    h = x.reshape(x.shape[0], -1)
    for w, b in params[:-1]:
        h = xp.maximum(h @ w + b, 0.0)
    w, b = params[-1]
    return h, h @ w + b


def train_digits_classifier(seed: int = 0, steps: int = 600) -> tuple[list, float]:
    """An MLP on the embedded digits' train split (grey levels in [0, 1]): (params, test accuracy).

    Adam on the full batch of 1500 digits with small random shifts (one pixel), seeded, so the same
    seed gives the same features everywhere.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from gm_jax.data.sources import digits

    src = digits()
    tr = src.train.get(np.arange(src.train.size))
    te = src.test.get(np.arange(src.test.size))
    xtr, ytr, xte, yte = tr["x"], tr["y"], te["x"], te["y"]
    key = jax.random.key(seed)
    sizes = (64,) + DIGITS_HIDDEN + (10,)
    params = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = jax.random.normal(jax.random.fold_in(key, i), (a, b)) * np.sqrt(2.0 / a)
        params.append((w, jnp.zeros(b)))
    tx = optax.adam(3e-3)
    opt = tx.init(params)
    pad = np.pad(xtr, ((0, 0), (1, 1), (1, 1), (0, 0)))

    def loss(p, x, y):
        _, logits = _mlp_apply(p, x, jnp)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(p, o, x, y):
        g = jax.grad(loss)(p, x, y)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        dy, dx = rng.integers(0, 3, 2)
        x = pad[:, dy : dy + 8, dx : dx + 8]
        params, opt = step(params, opt, jnp.asarray(x), jnp.asarray(ytr))
    params = [(np.asarray(w), np.asarray(b)) for w, b in params]
    acc = float(np.mean(np.argmax(_mlp_apply(params, xte)[1], 1) == yte))
    return params, acc


def default_cache_dir() -> str:
    """$GM_JAX_CACHE, else ~/.cache/gm_jax."""
    return compilation_cache.user_cache_dir()


def digits_extractor(cache_dir: str | None = None, seed: int = 0) -> FeatureExtractor:
    """The digits classifier as a feature extractor, trained once and cached as an .npz."""
    cache_dir = cache_dir or default_cache_dir()
    tag = hashlib.sha1(json.dumps([DIGITS_HIDDEN, seed, 600]).encode()).hexdigest()[:10]
    path = os.path.join(cache_dir, f"digits_classifier_{tag}.npz")
    params, acc = None, None
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                n = int(z["n_layers"])
                params = [(z[f"w{i}"], z[f"b{i}"]) for i in range(n)]
                acc = float(z["test_accuracy"])
        except (OSError, KeyError, ValueError):
            params = None
    if params is None:
        params, acc = train_digits_classifier(seed)
        try:
            os.makedirs(cache_dir, exist_ok=True)
            arrays = {f"w{i}": w for i, (w, _) in enumerate(params)} | {f"b{i}": b for i, (_, b) in enumerate(params)}
            tmp = path + f".{os.getpid()}.tmp.npz"
            np.savez(tmp, n_layers=len(params), test_accuracy=acc, **arrays)
            os.replace(tmp, path)
        except OSError:
            pass  # an unwritable cache only costs retraining next time

    def fn(images):
        x = np.asarray(images, np.float32)
        if x.shape[1:3] != (8, 8):  # digits enlarged k times (data.image_size): average k x k blocks
            n, h, w, c = x.shape
            x = x.reshape(n, 8, h // 8, 8, w // 8, c).mean((2, 4))
        feats, logits = _mlp_apply(params, x)
        return feats, logits

    return FeatureExtractor("digits", fn, (8, 8, 1), {"digits_classifier_test_accuracy": acc})


EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {"digits": digits_extractor}
# The image shape each extractor is made for (None: any), checked before a run starts; images whose
# side is a multiple of it are accepted too (they are average-pooled down to it).
EXTRACTOR_SHAPES: dict[str, tuple | None] = {"digits": (8, 8, 1)}


def accepts(name: str, shape: tuple) -> bool:
    """Whether extractor `name` takes images of `shape` [H, W, C]: its own shape or an integer
    enlargement of it."""
    base = EXTRACTOR_SHAPES.get(name)
    if base is None:
        return True
    shape = tuple(shape)
    return (
        len(shape) == 3
        and shape[2] == base[2]
        and shape[0] % base[0] == 0
        and shape[1] % base[1] == 0
        and shape[0] // base[0] == shape[1] // base[1]
    )


def get_extractor(name: str, cache_dir: str | None = None) -> FeatureExtractor:
    """A registered extractor by name (see EXTRACTORS; add yours there, e.g. one built on Inception)."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown sample-quality features {name!r}; one of {sorted(EXTRACTORS)}")
    return EXTRACTORS[name](cache_dir)


def real_data_floor(n: int | None = None, cache_dir: str | None = None) -> dict:
    """The metrics of held-out real digits (the test split, or its first n) against the train split:
    the best a model can expect at that sample size."""
    from gm_jax.data.sources import digits

    ex = digits_extractor(cache_dir)
    src = digits()
    train = src.train.get(np.arange(src.train.size))["x"]
    test = src.test.get(np.arange(src.test.size if n is None else min(n, src.test.size)))["x"]
    ref = ex.fn(train)[0]
    return compare(ex, test, (ref, gaussian_stats(ref))) | ex.info | {"num_samples": len(test)}


if __name__ == "__main__":
    print(json.dumps(real_data_floor(), indent=2, sort_keys=True))
