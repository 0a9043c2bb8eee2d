"""HMM forward-backward posteriors: gm_jax vs hmmlearn (implementation="scaling", its fastest), float64.

    python -m benchmarks.hmm_posteriors [--seqs=100 --steps=1000 --k=16 --d=4 --devices=N]
    python -m benchmarks.hmm_posteriors --platform=gpu     # gm_jax on the GPU

Both compute smoothed state posteriors of the same sequences under the same Gaussian (diag) HMM,
emission log-likelihoods included; the max absolute difference of the posteriors is printed.
On the CPU gm_jax runs twice: on one CPU device, and with the sequences sharded over `--devices`
CPU devices (default: one per core this process may use), as a user shards a batch over a mesh;
hmmlearn has no parallel mode. Last line: `speedup <ratio> vs hmmlearn-scaling` for the last
gm_jax run (the sharded one on the CPU).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import hmm_setup


def main():
    a = hmm_setup.parse_args(lambda p: None, repeats=5)
    import jax
    import jax.numpy as jnp
    from hmmlearn.hmm import GaussianHMM

    from gm_jax.classical import hmm

    k, d = a.k, a.d
    em = hmm.Gaussian("diag")
    (start, trans, means, cov), x, lengths = hmm_setup.problem(a, em)
    params = hmm.HMMParams(
        jnp.log(start), jnp.log(trans), {"means": jnp.asarray(means), "covariances": jnp.asarray(cov)}, em
    )

    ref = GaussianHMM(k, covariance_type="diag", implementation="scaling", init_params="")
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = start, trans, means, cov
    flat = x.reshape(-1, d)
    best_ref = np.inf
    for _ in range(a.repeats):
        t = time.perf_counter()
        pr = ref.predict_proba(flat, lengths)
        best_ref = min(best_ref, time.perf_counter() - t)

    fn = jax.jit(lambda p, x, n: hmm.posteriors(p, x, n, trans_counts=False).smoothed)

    def timed(params, x, n):
        out = fn(params, x, n).block_until_ready()
        best = np.inf
        for _ in range(a.repeats):
            t = time.perf_counter()
            out = fn(params, x, n).block_until_ready()
            best = min(best, time.perf_counter() - t)
        return best, float(np.abs(np.asarray(out).reshape(-1, k) - pr).max())

    runs = [(label, *timed(*put(params, x, lengths))) for label, put in hmm_setup.placements(a)]
    print(
        f"HMM posteriors, {a.seqs} sequences x {a.steps} steps, K={k} Gaussian diag D={d}, float64, best of {a.repeats}"
    )
    print(f"{'impl':<34}{'ms':>8}")
    for label, t, _ in runs:
        print(f"{label:<34}{1000 * t:>8.1f}")
    print(f"{'hmmlearn scaling':<34}{1000 * best_ref:>8.1f}")
    print(f"max |posterior difference| = {max(diff for _, _, diff in runs):.2e}")
    hmm_setup.print_speedups(runs, best_ref)


if __name__ == "__main__":
    main()
