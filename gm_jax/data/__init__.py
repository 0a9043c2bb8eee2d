"""Data: sources (embedded and TFDS), transforms, and deterministic step-indexed batching."""

from gm_jax.data.pipeline import DataPipeline, load

__all__ = ["DataPipeline", "load"]
