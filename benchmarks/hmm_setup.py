"""What the HMM benchmarks share: their arguments, the devices gm_jax runs on, and the known
Gaussian HMM whose sampled sequences both libraries process (float64)."""

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
    p.add_argument("--devices", type=int, default=cores(), help="CPU devices to shard the sequences over")
    p.add_argument("--platform", choices=("cpu", "gpu"), default="cpu", help="where gm_jax runs")
    add_args(p)
    a = p.parse_args()
    jax.config.update("jax_enable_x64", True)
    if a.platform == "gpu":
        jax.config.update("jax_platforms", "cuda")
        a.devices = 1
        return a
    if a.devices < 1 or a.seqs % a.devices:
        sys.exit(f"error: --seqs={a.seqs} must split evenly over --devices={a.devices}")
    jax.config.update("jax_platforms", "cpu")  # the comparison is on the CPU
    jax.config.update("jax_num_cpu_devices", a.devices)
    return a


def placements(a):
    """(label, put) pairs gm_jax is timed with, put(params, x, lengths) placing the arrays: one
    device, then on the CPU with --devices > 1 the sequences sharded over those devices."""
    from gm_jax.core import parallel

    dev = jax.devices()[0]
    one = "1 GPU" if a.platform == "gpu" else "1 CPU device"
    out = [(f"gm_jax, {one}", lambda *arrays: jax.device_put(arrays, dev))]
    if a.devices > 1:
        mesh = parallel.make_mesh()
        shard, repl = parallel.batch_sharded(mesh), parallel.replicated(mesh)

        def put(params, x, lengths):
            return jax.device_put(params, repl), jax.device_put(x, shard), jax.device_put(lengths, shard)

        out.append((f"gm_jax, {a.devices} CPU devices (sharded)", put))
    return out


def print_speedups(runs, ref_time: float) -> None:
    """The closing lines: with several gm_jax runs (label, seconds, ...) the first one's speedup,
    then `speedup <ratio> vs hmmlearn-scaling` for the last."""
    if len(runs) > 1:
        print(f"1 device: speedup {ref_time / runs[0][1]:.2f}")
    print(f"speedup {ref_time / runs[-1][1]:.2f} vs hmmlearn-scaling")


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
    truth = hmm.HMMParams(np.log(start), np.log(trans), {"means": means, "covariances": cov}, emission)
    x, _ = hmm.sample(jax.random.key(0), jax.tree.map(jax.numpy.asarray, truth), a.steps, a.seqs)
    return (start, trans, means, cov), np.asarray(x), np.full(a.seqs, a.steps)
