"""Mesh handling shared by the classical models (GMM and HMM).

Their EM steps sum statistics over sharded rows and return small replicated results; under a mesh
with explicit axes every such contraction would need its output sharding spelled out, so they run
with the axes made automatic.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import AxisType, PartitionSpec


def auto_axes_if_explicit(fn):
    """`fn` with the context mesh's explicit axes made automatic and its outputs replicated.

    Under a mesh with explicit axes (`jax.make_mesh`'s default, used with `jax.set_mesh`) every
    contraction over a sharded axis needs its output sharding spelled out. The classical models sum
    statistics over sharded rows and return small replicated results, so they run with the axes
    automatic, as under this project's own meshes. Array arguments (tracers included) pass through;
    everything else (strings, emission models, Python numbers) is closed over.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.empty or AxisType.Explicit not in mesh.axis_types:
            return fn(*args, **kwargs)
        leaves, treedef = jax.tree.flatten((args, kwargs))
        is_array = [isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves]

        def inner(*arrays):
            it = iter(arrays)
            full = [next(it) if a else leaf for leaf, a in zip(leaves, is_array, strict=True)]
            a, k = jax.tree.unflatten(treedef, full)
            return fn(*a, **k)

        arrays = [leaf for leaf, a in zip(leaves, is_array, strict=True) if a]
        return jax.sharding.auto_axes(inner, out_sharding=PartitionSpec())(*arrays)

    return wrapped
