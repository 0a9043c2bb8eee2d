"""Baum-Welch iteration: gm_jax vs hmmlearn (implementation="scaling", its fastest), float64.

    python -m benchmarks.hmm_baum_welch [--seqs=100 --steps=1000 --k=16 --d=4 --iters=11 --devices=N]
    python -m benchmarks.hmm_baum_welch --platform=gpu     # gm_jax on the GPU

Both fit the same Gaussian (diag) HMM to the same sequences from the same initial parameters with
maximum-likelihood M-steps (hmmlearn: covars_prior=0; gm_jax: reg_covar=1e-12). Per-iteration time
is (best of `repeats` fits of `iters` iterations - best of `repeats` fits of one) / (iters - 1), so
set-up costs cancel; gm_jax's loop is compiled beforehand. On the CPU gm_jax runs on one CPU device
and with the sequences sharded over `--devices` CPU devices (default: one per core). The final
total log-likelihoods are printed side by side. Last line: `speedup <ratio> vs hmmlearn-scaling`
for the last gm_jax run (the sharded one on the CPU).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from benchmarks import hmm_setup


def _best(fn, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    a = hmm_setup.parse_args(lambda p: p.add_argument("--iters", type=int, default=11), repeats=3)
    if a.iters < 2:
        sys.exit("error: --iters must be at least 2")
    import jax
    import jax.numpy as jnp
    from hmmlearn.hmm import GaussianHMM

    from gm_jax.classical import hmm

    k, d = a.k, a.d
    em = hmm.Gaussian("diag", reg_covar=1e-12)
    (start, trans, means, cov), x, lengths = hmm_setup.problem(a, em)
    # Start away from the truth.
    init = (np.full(k, 1.0 / k), np.full((k, k), 1.0 / k) * 0.5 + 0.5 * np.eye(k), means + 0.5, cov * 1.5)

    def fit_ref(n_it):
        ref = GaussianHMM(
            k,
            covariance_type="diag",
            n_iter=n_it,
            tol=-1e300,
            init_params="",
            params="stmc",
            covars_prior=0.0,
            implementation="scaling",
        )
        ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = init
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ref.fit(x.reshape(-1, d), lengths)

    t1, _ = _best(lambda: fit_ref(1), a.repeats)
    tn, ref = _best(lambda: fit_ref(a.iters), a.repeats)
    ref_time = (tn - t1) / (a.iters - 1)
    ref_ll = ref.monitor_.history[-1]

    p0 = hmm.HMMParams(
        jnp.log(jnp.asarray(init[0])),
        jnp.log(jnp.asarray(init[1])),
        {"means": jnp.asarray(init[2]), "covariances": jnp.asarray(init[3])},
        em,
    )

    def timed(params, xs, ns):
        def fit(n_it):
            return jax.block_until_ready(hmm.fit(params, xs, ns, n_iter=n_it, tol=-np.inf, check=False))

        fit(1), fit(a.iters)  # compile
        t1, _ = _best(lambda: fit(1), a.repeats)
        tn, r = _best(lambda: fit(a.iters), a.repeats)
        return (tn - t1) / (a.iters - 1), float(r.history[-1])

    runs = [(label, *timed(*put(p0, x, lengths))) for label, put in hmm_setup.placements(a)]
    print(
        f"Baum-Welch, {a.seqs} sequences x {a.steps} steps, K={k} Gaussian diag D={d}, float64, "
        f"per iteration over {a.iters} iterations, best of {a.repeats}"
    )
    print(f"{'impl':<34}{'ms/iter':>9}{'final total loglik':>22}")
    for label, t, ll in runs:
        print(f"{label:<34}{1000 * t:>9.1f}{ll:>22.6f}")
    print(f"{'hmmlearn scaling':<34}{1000 * ref_time:>9.1f}{ref_ll:>22.6f}")
    hmm_setup.print_speedups(runs, ref_time)


if __name__ == "__main__":
    main()
