"""Metrics: likelihood units (nats, bits/dim) and importance-weighted bounds."""

from gm_jax.metrics.likelihood import bits_per_dim, chunked_logmeanexp

__all__ = ["bits_per_dim", "chunked_logmeanexp"]
