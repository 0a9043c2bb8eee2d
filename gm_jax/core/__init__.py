"""The platform every family runs on, knowing nothing of any family, data set or metric: train state,
the generic single-optimizer step, parallelism, checkpoints, writers, workdirs, config validation.

It imports nothing from the layers above it (`gm_jax.data`, `gm_jax.metrics`, `gm_jax.evaluators`,
`gm_jax.registry`, the families); `gm_jax.train` composes them. The family contract is
`gm_jax.family`.
"""
