"""HMM forward-backward posteriors: gm_jax vs hmmlearn (implementation="scaling", its fastest), float64.

    python -m benchmarks.hmm_posteriors [--seqs=100 --steps=1000 --k=16 --d=4 --devices=N]

Both compute smoothed state posteriors of the same sequences under the same Gaussian (diag) HMM,
emission log-likelihoods included; the max absolute difference of the posteriors is printed.
gm_jax runs twice: on one CPU device, and with the sequences sharded over `--devices` CPU devices
(default: one per core this process may use), as a user shards a batch over a mesh; hmmlearn has
no parallel mode. Last line: `speedup <ratio> vs hmmlearn-scaling` for the sharded run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def _cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seqs", type=int, default=100)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--d", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--devices", type=int, default=_cores())
    a = p.parse_args()
    if a.devices < 1 or a.seqs % a.devices:
        sys.exit(f"error: --seqs={a.seqs} must split evenly over --devices={a.devices}")
    # Before the backend starts: the comparison is on the CPU, with the requested device count.
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", a.devices)
    from hmmlearn.hmm import GaussianHMM

    from gm_jax.classical import hmm
    from gm_jax.core import parallel

    rng = np.random.default_rng(0)
    k, d = a.k, a.d
    start = rng.dirichlet(np.ones(k))
    trans = rng.dirichlet(np.ones(k), k) + 4 * np.eye(k)
    trans /= trans.sum(1, keepdims=True)
    means = rng.normal(0, 2, (k, d))
    cov = rng.uniform(0.5, 1.5, (k, d))
    em = hmm.Gaussian("diag")
    params = hmm.HMMParams(
        jnp.log(start), jnp.log(trans), {"means": jnp.asarray(means), "covariances": jnp.asarray(cov)}
    )
    x, _ = hmm.sample(jax.random.key(0), params, em, a.steps, a.seqs)
    x = np.asarray(x)
    lengths = np.full(a.seqs, a.steps)

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
