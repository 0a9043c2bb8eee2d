"""Metrics: likelihood units (nats, bits/dim), importance-weighted bounds, set-level sample quality
(`gm_jax.metrics.sample_quality`)."""

from gm_jax.metrics.likelihood import bits_per_dim, chunked_logmeanexp

__all__ = ["bits_per_dim", "chunked_logmeanexp"]
