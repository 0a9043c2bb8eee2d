"""Multi-layer perceptron used by the VAE family and by toy/2-D models."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "softplus": nn.softplus,
    "elu": nn.elu,
    "gelu": nn.gelu,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation function called `name` (tanh, relu, leaky_relu, softplus, elu, gelu)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense layers with an activation between them and none after the last.

    Attributes:
      features: output width of each layer; the last is the output size.
      act: activation name.
    """

    features: Sequence[int]
    act: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # [..., D_in] -> [..., features[-1]]
        f = activation(self.act)
        for i, width in enumerate(self.features):
            x = nn.Dense(width, name=f"dense_{i}")(x)
            if i < len(self.features) - 1:
                x = f(x)
        return x
