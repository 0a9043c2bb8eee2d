"""HMM forward-backward posteriors: gm_jax vs hmmlearn (implementation="scaling", its fastest), float64.

    python -m benchmarks.hmm_posteriors [--seqs=100 --steps=1000 --k=16 --d=4 --devices=N]

Both compute smoothed state posteriors of the same sequences under the same Gaussian (diag) HMM,
emission log-likelihoods included; the max absolute difference of the posteriors is printed.
gm_jax runs twice: on one CPU device, and with the sequences sharded over `--devices` CPU devices
(default: one per core this process may use), as a user shards a batch over a mesh; hmmlearn has
no parallel mode. Last line: `speedup <ratio> vs hmmlearn-scaling` for the sharded run.
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
    from gm_jax.core import parallel

    k, d = a.k, a.d
    em = hmm.Gaussian("diag")
    (start, trans, means, cov), x, lengths = hmm_setup.problem(a, em)
    params = hmm.HMMParams(
        jnp.log(start), jnp.log(trans), {"means": jnp.asarray(means), "covariances": jnp.asarray(cov)}
    )

    ref = GaussianHMM(k, covariance_type="diag", implementation="scaling", init_params="")
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = start, trans, means, cov
    flat = x.reshape(-1, d)
    best_ref = np.inf
    for _ in range(a.repeats):
        t = time.perf_counter()
        pr = ref.predict_proba(flat, lengths)
        best_ref = min(best_ref, time.perf_counter() - t)

    fn = jax.jit(lambda p, x, n: hmm.posteriors(p, em, x, n, trans_counts=False).smoothed)

    def timed(params, x, n):
        out = fn(params, x, n).block_until_ready()
        best = np.inf
        for _ in range(a.repeats):
            t = time.perf_counter()
            out = fn(params, x, n).block_until_ready()
            best = min(best, time.perf_counter() - t)
        return best, float(np.abs(np.asarray(out).reshape(-1, k) - pr).max())

    dev = jax.devices()[0]
    one, diff1 = timed(*jax.device_put((params, x, lengths), dev))
    mesh = parallel.make_mesh()
    shard, repl = parallel.batch_sharded(mesh), parallel.replicated(mesh)
    many, diff = timed(jax.device_put(params, repl), jax.device_put(x, shard), jax.device_put(lengths, shard))
    print(
        f"HMM posteriors, {a.seqs} sequences x {a.steps} steps, K={k} Gaussian diag D={d}, float64, best of {a.repeats}"
    )
    print(f"{'impl':<34}{'ms':>8}")
    print(f"{'gm_jax, 1 CPU device':<34}{1000 * one:>8.1f}")
    print(f"{f'gm_jax, {a.devices} CPU devices (sharded)':<34}{1000 * many:>8.1f}")
    print(f"{'hmmlearn scaling':<34}{1000 * best_ref:>8.1f}")
    print(f"max |posterior difference| = {max(diff1, diff):.2e}")
    print(f"1 device: speedup {best_ref / one:.2f}")
    print(f"speedup {best_ref / many:.2f} vs hmmlearn-scaling")


if __name__ == "__main__":
    main()
