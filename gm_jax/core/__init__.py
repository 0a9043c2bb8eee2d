"""The platform: run loop, train state, generic step, parallelism, checkpoints, writers.

Knows nothing about any model family; families plug in through four pure functions
(`init`, `train_step`, `evaluate`, `sample`), see `gm_jax.core.loop`.
"""
