"""Likelihood units and importance-weighted estimates.

Negative log-likelihoods are reported in nats per example and in bits per dimension:
bpd = nats / (D * ln 2). For images on a continuous scale the dequantisation offset
(D * log 256) belongs to the caller; for binary data no offset applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp


def bits_per_dim(nats: jax.Array, dims: int) -> jax.Array:
    """Convert a per-example NLL in nats to bits per dimension."""
    return nats / (dims * math.log(2.0))


def chunked_logmeanexp(log_w_fn: Callable[[jax.Array], jax.Array], key: jax.Array, k: int, chunk: int) -> jax.Array:
    """log (1/k) sum_i exp(log_w_i) over k importance samples, drawn `chunk` at a time.

    Memory stays O(chunk * B) for any k: chunks are folded into a running log-sum-exp inside
    `lax.scan`, which never exponentiates an unshifted weight.

    Args:
      log_w_fn: key -> log weights [chunk, B] for `chunk` fresh samples.
      key: PRNG key; chunk i uses fold_in(key, i).
      k: total number of samples; must be a multiple of `chunk` (or smaller than it).
      chunk: samples per chunk.
    Returns:
      [B] the log-mean-exp of all k log weights.
    """
    chunk = min(chunk, k)
    if k % chunk:
        raise ValueError(f"k={k} must be a multiple of chunk={chunk}")
    n_chunks = k // chunk

    def body(acc, i):
        lw = log_w_fn(jax.random.fold_in(key, i))  # [chunk, B]
        return jnp.logaddexp(acc, jax.nn.logsumexp(lw, axis=0)), None

    first = jax.nn.logsumexp(log_w_fn(jax.random.fold_in(key, 0)), axis=0)
    acc, _ = jax.lax.scan(body, first, jnp.arange(1, n_chunks))
    return acc - math.log(k)
