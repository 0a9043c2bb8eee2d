"""GMM EM iteration: gm_jax vs scikit-learn GaussianMixture, same data, same initial parameters.

    python -m benchmarks.gmm_em [--n=200000 --d=16 --k=16 --iters=10] [--float64]
    python -m benchmarks.gmm_em --memory --n=10000000 --d=16 --k=64    # one iteration, peak RSS

Per-iteration time is (best of `repeats` fits of `iters` EM iterations - best of `repeats` fits of
one iteration) / (iters - 1), from the same initial parameters in both libraries (sklearn:
max_iter, tol=0; gm_jax: `fit(..., max_iter, tol=0)`, compiled beforehand), so set-up costs cancel;
the final mean log-likelihoods are printed side by side. Last line:
`speedup <ratio> vs sklearn`.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import jax
import numpy as np


def make_data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, d))
    comp = rng.integers(0, k, n)
    x = centers[comp] + rng.normal(0, 1, (n, d)) * rng.uniform(0.5, 1.5, (k, 1))[comp]
    w = np.full(k, 1.0 / k)
    means = x[rng.choice(n, k, replace=False)]
    cov = np.stack([np.cov(x[: min(n, 20000)].T) + 1e-3 * np.eye(d)] * k)
    return x, (w, means, cov)


def _best(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run_jax(x, init, iters, dtype, chunk, repeats=3):
    from gm_jax.classical import gmm

    xj = jax.numpy.asarray(x, dtype)
    p = gmm.GMMParams(*(jax.numpy.asarray(a, dtype) for a in init), "full")
    kw = dict(tol=0.0, params_init=p, chunk_size=chunk)

    def fit(n_it):
        return jax.block_until_ready(gmm.fit(xj, len(init[0]), "full", max_iter=n_it, **kw))

    fit(1), fit(iters)  # compile + warm up
    t1, _ = _best(lambda: fit(1), repeats)
    tn, r = _best(lambda: fit(iters), repeats)
    return (tn - t1) / (iters - 1), float(r.lower_bound)


def run_sklearn(x, init, iters, repeats=3):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    w, m, c = init

    def fit(n_it):
        sk = GaussianMixture(
            len(w),
            covariance_type="full",
            max_iter=n_it,
            tol=0.0,
            reg_covar=1e-6,
            weights_init=w,
            means_init=m,
            precisions_init=np.linalg.inv(c),
            init_params="random_from_data",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return sk.fit(x)

    t1, _ = _best(lambda: fit(1), repeats)
    tn, sk = _best(lambda: fit(iters), repeats)
    return (tn - t1) / (iters - 1), float(sk.lower_bound_)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--iters", type=int, default=11)
    p.add_argument("--chunk", type=int, default=0)
    p.add_argument("--float64", action="store_true")
    p.add_argument("--memory", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if a.float64:
        jax.config.update("jax_enable_x64", True)
    dtype = np.float64 if a.float64 else np.float32
    if a.memory:
        from gm_jax.classical import gmm

        # Generated block by block in float32, so the peak reflects the EM iteration, not the generator.
        rng = np.random.default_rng(1)
        centers = rng.normal(0, 3, (a.k, a.d)).astype(np.float32)
        x = np.empty((a.n, a.d), np.float32)
        for s in range(0, a.n, 1_000_000):
            e = min(a.n, s + 1_000_000)
            x[s:e] = centers[rng.integers(0, a.k, e - s)] + rng.standard_normal((e - s, a.d), np.float32)
        p0 = gmm.GMMParams(
            np.full(a.k, 1.0 / a.k, np.float32),
            x[rng.choice(a.n, a.k, replace=False)],
            np.stack([np.eye(a.d, dtype=np.float32) * 4] * a.k),
            "full",
        )
        xj = jax.device_put(x)
        del x
        t = time.perf_counter()
        r = gmm.fit(xj, a.k, "full", tol=0.0, max_iter=1, params_init=p0, chunk_size=a.chunk or 16384)
        jax.block_until_ready(r)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(
            f"N={a.n} D={a.d} K={a.k} float32, one EM iteration (incl. compile) {time.perf_counter() - t:.1f} s, "
            f"peak RSS {peak:.2f} GiB, lower bound {float(r.lower_bound):.4f}"
        )
        return
    x, init = make_data(a.n, a.d, a.k)
    xs = x.astype(dtype)
    tj, lj = run_jax(xs, init, a.iters, dtype, a.chunk or None, a.repeats)
    ts, ls = run_sklearn(xs.astype(np.float64) if a.float64 else xs, init, a.iters, a.repeats)
    print(
        f"GMM EM, full covariance, N={a.n} D={a.d} K={a.k}, {np.dtype(dtype).name}, {a.iters} iterations, "
        f"same initial parameters, gm_jax on {jax.devices()[0].device_kind}"
    )
    print(f"{'impl':<10}{'ms/iter':>10}{'final mean loglik':>20}")
    print(f"{'gm_jax':<10}{1000 * tj:>10.1f}{lj:>20.6f}")
    print(f"{'sklearn':<10}{1000 * ts:>10.1f}{ls:>20.6f}")
    print(f"speedup {ts / tj:.2f} vs sklearn")


if __name__ == "__main__":
    main()
