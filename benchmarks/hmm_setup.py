"""What the HMM benchmarks share: their arguments, the CPU devices, and the known Gaussian HMM
whose sampled sequences both libraries process (float64)."""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(add_args, repeats: int) -> argparse.Namespace:
    """Common arguments plus `add_args(parser)`'s; sets up `--devices` CPU devices (before the
    backend starts, so call this first)."""
    p = argparse.ArgumentParser()
    p.add_argument("--seqs", type=int, default=100)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--d", type=int, default=4)
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--devices", type=int, default=cores())
    add_args(p)
    a = p.parse_args()
    if a.devices < 1 or a.seqs % a.devices:
        sys.exit(f"error: --seqs={a.seqs} must split evenly over --devices={a.devices}")
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")  # the comparison is on the CPU
    jax.config.update("jax_num_cpu_devices", a.devices)
    return a


def problem(a, emission):
    """A K-state Gaussian (diag) HMM with sticky transitions and `--seqs` sequences of `--steps`
    steps sampled from it: ((start, trans, means, cov) as numpy arrays, x [S, T, D], lengths [S])."""
    from gm_jax.classical import hmm

    rng = np.random.default_rng(0)
    k, d = a.k, a.d
    start = rng.dirichlet(np.ones(k))
    trans = rng.dirichlet(np.ones(k), k) + 4 * np.eye(k)
    trans /= trans.sum(1, keepdims=True)
    means = rng.normal(0, 2, (k, d))
    cov = rng.uniform(0.5, 1.5, (k, d))
    truth = hmm.HMMParams(np.log(start), np.log(trans), {"means": means, "covariances": cov})
    x, _ = hmm.sample(jax.random.key(0), jax.tree.map(jax.numpy.asarray, truth), emission, a.steps, a.seqs)
    return (start, trans, means, cov), np.asarray(x), np.full(a.seqs, a.steps)
