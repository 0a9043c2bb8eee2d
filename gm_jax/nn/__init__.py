"""Linen blocks shared by several families."""

from gm_jax.nn.mlp import MLP, activation

__all__ = ["MLP", "activation"]
