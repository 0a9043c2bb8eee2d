"""Mesh, batch sharding, replication and multi-host start.

One 1-D ("data",) mesh over every device of every process: state replicated, batch sharded along
its leading axis. Works unchanged on 1 CPU, fake CPU devices, a GPU, or a multi-host pod; `jax.pmap`
is not used (maintenance mode in current JAX).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gm_jax.core.errors import UserError

DATA_AXIS = "data"

_ENV_HINTS = ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "OMPI_COMM_WORLD_SIZE")


def multihost_requested_by_env() -> bool:
    """True when the environment looks like a multi-host launch (coordinator, SLURM, TPU pod, MPI)."""
    return any(os.environ.get(k) for k in _ENV_HINTS)


def init_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Start `jax.distributed` once per process; arguments left None are auto-detected by JAX.

    Args:
      coordinator_address: "host:port" of process 0.
      num_processes: total number of processes.
      process_id: this process's index.
    """
    if jax.distributed.is_initialized():
        return
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )


def make_mesh() -> Mesh:
    """A 1-D mesh over all global devices, axis name "data"."""
    return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, axis: int = 0) -> NamedSharding:
    """Sharding that splits the batch axis (the leading one unless `axis` says) over the data axis."""
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), DATA_AXIS))


def check_global_batch(batch_size: int, mesh: Mesh) -> None:
    """Refuse a global batch that the devices cannot split evenly.

    Raises:
      UserError: batch_size not a positive multiple of the device count (or process count).
    """
    n = mesh.devices.size
    if batch_size <= 0:
        raise UserError(f"train.batch_size must be positive, got {batch_size}")
    if batch_size % n:
        raise UserError(
            f"global batch {batch_size} is not divisible by the {n} devices; "
            f"use a multiple of {n} (--config.train.batch_size=...)"
        )


def process_slice(global_rows: int, process_index: int | None = None, process_count: int | None = None) -> slice:
    """The rows of a global batch a process reads and feeds (processes hold contiguous equal slices:
    the rows their devices hold under `batch_sharded`). Defaults: this process of this job."""
    i = jax.process_index() if process_index is None else process_index
    per = global_rows // (jax.process_count() if process_count is None else process_count)
    return slice(i * per, (i + 1) * per)


def shard_batch(global_batch: Any, mesh: Mesh) -> Any:
    """Turn a host-side global batch (numpy pytree, identical on every process) into sharded arrays.

    Each process contributes only its own rows, as on a real pod where hosts read disjoint data.

    Args:
      global_batch: pytree of numpy arrays with leading axis = global batch.
      mesh: the data mesh.
    Returns:
      pytree of global `jax.Array`s sharded along the leading axis.
    """
    return shard_local(jax.tree.map(lambda x: np.asarray(x)[process_slice(np.shape(x)[0])], global_batch), mesh)


def shard_local(local_batch: Any, mesh: Mesh, leading: int = 0) -> Any:
    """Global arrays from this process's rows (`process_slice`) of a batch.

    Args:
      local_batch: pytree of numpy arrays; axis `leading` holds this process's rows.
      mesh: the data mesh.
      leading: the batch axis (1 for k stacked steps [k, B/P, ...]).
    Returns:
      pytree of global `jax.Array`s sharded along that axis over the data axis.
    """
    sharding = batch_sharded(mesh, leading)
    n = jax.process_count()

    def put(x):
        x = np.asarray(x)
        shape = x.shape[:leading] + (x.shape[leading] * n,) + x.shape[leading + 1 :]
        return jax.make_array_from_process_local_data(sharding, x, shape)

    return jax.tree.map(put, local_batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a pytree replicated on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def to_host(tree: Any) -> Any:
    """Fetch a (replicated or fully addressable) pytree to numpy on this host."""
    from jax.experimental import multihost_utils

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(get, tree)
