"""Disentanglement metrics from an encoder's means and the ground-truth factors of a generated set.

- `beta_vae_score` (Higgins et al., 2017): for a factor k drawn uniformly, L pairs of images that share
  factor k (every other factor drawn afresh) are encoded; the mean |z1 - z2| over the pairs is one
  example labelled k. A linear classifier (multinomial logistic regression) is fitted on `n_train`
  such examples; the score is its accuracy on `n_eval` others. Chance: 1 / (number of factors).
- `factor_vae_score` (Kim & Mnih, 2018): each code dimension is divided by its standard deviation
  over `n_global` random images (dimensions whose standard deviation is below `prune`, 0.05, are
  dropped as collapsed: a VAE's unused latents have means near 0 everywhere); for a factor k held
  at a random value over L images, the dimension of least variance votes for k. The majority-vote
  classifier (dimension -> factor) is built on `n_train` votes and scored on `n_eval` others.
- `mig` (Chen et al., 2018): every code dimension is discretised into `n_bins` equal-width bins over
  its range (the discretisation of Locatello et al.'s disentanglement_lib, 20 bins), I(z_j; v_k) is
  the plug-in mutual information of the binned codes and the factor classes, and the score is the
  mean over factors of (largest - second largest I) / H(v_k).

`encode(images [N, H, W, C]) -> codes [N, Z]` is any host-side function (the training loop passes
the family's compiled `encode`); `factor_set` draws factor classes and renders them
(`gm_jax.data.dsprites.FactorSet`). Every draw comes from `rng`, so a score is reproducible.
Accumulations are in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Encode = Callable[[np.ndarray], np.ndarray]


def _encode_factors(encode: Encode, factor_set, factors: np.ndarray) -> np.ndarray:
    return np.asarray(encode(factor_set.render(factors)), np.float64)


def beta_vae_score(
    encode: Encode, factor_set, rng: np.random.Generator, n_train: int = 1000, n_eval: int = 500, pairs: int = 64
) -> dict:
    """Higgins et al.'s metric: accuracy of a linear classifier predicting the shared factor."""
    from sklearn.linear_model import LogisticRegression

    n_factors = len(factor_set.sizes)

    def examples(n):
        feats, labels = [], []
        for _ in range(n):
            k = int(rng.integers(n_factors))
            a, b = factor_set.sample_factors(rng, pairs), factor_set.sample_factors(rng, pairs)
            b[:, k] = a[:, k]
            za, zb = _encode_factors(encode, factor_set, np.concatenate([a, b])).reshape(2, pairs, -1)
            feats.append(np.mean(np.abs(za - zb), 0))
            labels.append(k)
        return np.stack(feats), np.asarray(labels)

    xtr, ytr = examples(n_train)
    xev, yev = examples(n_eval)
    if len(np.unique(ytr)) < 2:
        return {"beta_vae_score": float("nan")}
    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    return {
        "beta_vae_score": float(np.mean(clf.predict(xev) == yev)),
        "beta_vae_train_accuracy": float(np.mean(clf.predict(xtr) == ytr)),
    }


def factor_vae_score(
    encode: Encode,
    factor_set,
    rng: np.random.Generator,
    n_train: int = 800,
    n_eval: int = 400,
    votes_batch: int = 64,
    n_global: int = 5000,
    prune: float = 0.05,
) -> dict:
    """Kim & Mnih's metric: accuracy of the majority vote (dimension of least normalised variance -> factor)."""
    n_factors = len(factor_set.sizes)
    z = _encode_factors(encode, factor_set, factor_set.sample_factors(rng, n_global))
    std = np.std(z, 0)
    active = std >= prune
    if not active.any():
        return {"factor_vae_score": float("nan"), "factor_vae_active_dims": 0.0}
    scale = np.where(active, std, 1.0)

    def votes(n):
        out = np.zeros((n, 2), np.int64)
        for i in range(n):
            k = int(rng.integers(n_factors))
            f = factor_set.sample_factors(rng, votes_batch)
            f[:, k] = rng.integers(factor_set.sizes[k])
            zz = _encode_factors(encode, factor_set, f) / scale
            v = np.where(active, np.var(zz, 0, ddof=1), np.inf)
            out[i] = int(np.argmin(v)), k
        return out

    tr, ev = votes(n_train), votes(n_eval)
    table = np.zeros((z.shape[1], n_factors), np.int64)
    np.add.at(table, (tr[:, 0], tr[:, 1]), 1)
    vote_of = np.argmax(table, 1)
    return {
        "factor_vae_score": float(np.mean(vote_of[ev[:, 0]] == ev[:, 1])),
        "factor_vae_train_accuracy": float(np.mean(vote_of[tr[:, 0]] == tr[:, 1])),
        "factor_vae_active_dims": float(active.sum()),
    }


def _discretise(z: np.ndarray, n_bins: int) -> np.ndarray:
    """Each column into n_bins equal-width bins over its range ([N, Z] -> int [N, Z])."""
    lo, hi = z.min(0), z.max(0)
    width = np.where(hi > lo, (hi - lo) / n_bins, 1.0)
    return np.clip(((z - lo) / width).astype(np.int64), 0, n_bins - 1)


def _mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) of two integer label arrays."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1), np.float64)
    np.add.at(joint, (ai, bi), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])))


def _entropy(a: np.ndarray) -> float:
    _, counts = np.unique(a, return_counts=True)
    p = counts / counts.sum()
    return float(-np.sum(p * np.log(p)))


def mig(codes: np.ndarray, factors: np.ndarray, n_bins: int = 20) -> dict:
    """Mutual information gap of codes [N, Z] against factor classes [N, K] (needs Z >= 2)."""
    zb = _discretise(np.asarray(codes, np.float64), n_bins)
    factors = np.asarray(factors)
    gaps, mis = [], []
    for k in range(factors.shape[1]):
        h = _entropy(factors[:, k])
        if h <= 0:
            continue
        mi = np.sort([_mutual_info(zb[:, j], factors[:, k]) for j in range(zb.shape[1])])[::-1]
        mis.append(mi[0] / h)
        gaps.append((mi[0] - mi[1]) / h if len(mi) > 1 else mi[0] / h)
    return {"mig": float(np.mean(gaps)), "mig_top_mi_normalised": float(np.mean(mis)), "mig_bins": float(n_bins)}


def mig_score(encode: Encode, factor_set, rng: np.random.Generator, n: int = 10000, n_bins: int = 20) -> dict:
    """MIG on n uniformly drawn factor combinations."""
    f = factor_set.sample_factors(rng, n)
    return mig(_encode_factors(encode, factor_set, f), f, n_bins)


def all_scores(encode: Encode, factor_set, seed: int = 0, **sizes) -> dict:
    """The three metrics with their sample sizes (`sizes`: beta_vae_train, beta_vae_eval,
    factor_vae_train, factor_vae_eval, mig_samples, pairs), each from its own seeded generator."""
    pairs = int(sizes.get("pairs", 64))

    def size(key: str, default: int) -> int:
        return int(sizes.get(key, default))

    out = {}
    out.update(
        beta_vae_score(
            encode,
            factor_set,
            np.random.default_rng([seed, 1]),
            size("beta_vae_train", 1000),
            size("beta_vae_eval", 500),
            pairs,
        )
    )
    out.update(
        factor_vae_score(
            encode,
            factor_set,
            np.random.default_rng([seed, 2]),
            size("factor_vae_train", 800),
            size("factor_vae_eval", 400),
            pairs,
        )
    )
    out.update(mig_score(encode, factor_set, np.random.default_rng([seed, 3]), size("mig_samples", 10000)))
    return out
