"""Classical latent-variable models fitted by EM: jnp/lax only, no Flax, no optimizer."""

from __future__ import annotations

import dataclasses

import jax


def params_pytree(*data_fields: str, meta: str):
    """A frozen dataclass registered as a pytree whose `meta` field (the covariance type, the
    emission model) is static: part of the tree structure, so the parameters pass through `jit`
    and `vmap` as they are."""

    def wrap(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        return jax.tree_util.register_dataclass(cls, data_fields=list(data_fields), meta_fields=[meta])

    return wrap
