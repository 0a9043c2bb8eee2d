"""Second stages: a run that starts from a finished first stage (`train.init_from=<workdir>`).

The family's `init` receives `parent`, a `Parent(state, cfg, family, workdir)`: the first stage's
latest state restored into its own abstract state (built from its config.json and family) and
replicated on the current mesh, whatever device count it was trained on, and its config, so the
second stage need not repeat the first's architecture. Nothing is written to the first stage's
workdir. A first stage may itself be a second stage (its own parent is restored first).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import jax
import ml_collections

from gm_jax.core import parallel, paths
from gm_jax.core.checkpoint import Checkpointer, abstract_like
from gm_jax.core.errors import UserError


class Parent(NamedTuple):
    """A finished first stage, as a second stage's `init` receives it.

    Attributes:
      state: its latest TrainState, placed replicated on the current mesh.
      cfg: its config (with its data facts).
      family: its family (`gm_jax.family.FamilySpec`).
      workdir: where it lives.
    """

    state: Any
    cfg: Any
    family: Any
    workdir: str


def read_config(init_from: str) -> tuple[str, ml_collections.ConfigDict]:
    """(the first stage's resolved path, its config) from its config.json."""
    path = paths.resolve(init_from)
    record = paths.join(path, "config.json")
    if not paths.exists(record):
        raise UserError(f"train.init_from={init_from}: no gm_jax run there (no config.json)")
    try:
        return path, ml_collections.ConfigDict(json.loads(paths.read_text(record))["config"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"train.init_from={init_from}: unreadable config.json") from None


def load_parent(init_from: str, mesh) -> Parent:
    """A finished run restored into its own abstract state, replicated on `mesh`. Reads only.

    Raises:
      UserError: no gm_jax run there, no checkpoint, or an unreadable one.
    """
    from gm_jax import data as data_lib
    from gm_jax.evaluators import RunKeys
    from gm_jax.registry import get_family

    path, pcfg = read_config(init_from)
    if not paths.isdir(paths.join(path, "checkpoints")):
        raise UserError(f"train.init_from={init_from}: no checkpoint there; train the first stage first")
    spec = get_family(pcfg.model_name)
    pdata = data_lib.load(pcfg.data, pcfg.train.batch_size, RunKeys.from_seed(pcfg.seed).data_seed)
    pcfg.data.update(pdata.facts())
    example = pdata.train_batch(0)
    grand = load_parent(pcfg.train.init_from, mesh) if pcfg.train.get("init_from", "") else None

    def init_fn(key):
        if grand is None:
            return spec.init(key, pcfg, example)
        return spec.init(key, pcfg, example, parent=grand)

    abstract = jax.eval_shape(init_fn, jax.random.key(0))
    ck = Checkpointer(paths.join(path, "checkpoints"), create=False)
    if ck.latest_step() is None:
        raise UserError(f"train.init_from={init_from}: no checkpoint there; train the first stage first")
    state = ck.restore(abstract_like(abstract, parallel.replicated(mesh)))
    ck.close()
    return Parent(state, pcfg, spec, path)
