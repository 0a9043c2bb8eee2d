"""`--mode=describe`: every network's parameter count from an abstract init, without data or device memory.

    python -m experiments.run --config=<any config> --mode=describe --workdir=DIR

prints a table of parameters per top-level module of the state's `params` (and one level below it:
a GAN's "g" -> "mapping", "synthesis"), their total, and the non-trainable state (BatchNorm
statistics, tracked averages, an EMA copy), and writes `DIR/model_summary.json`:

    {"networks": {"<name>": <params>, ...}, "total_params": <int>, "non_trainable": {"<name>": <count>}}

The family's `init` is traced with `jax.eval_shape` on an example batch of the data's shapes: an
embedded set is generated as usual (it is small), a TFDS set is described by its metadata
(`gm_jax.data.sources.tfds_spec`), never read. A second stage (`train.init_from`) reads its first
stage's config.json and traces that stage's init too, abstractly. Nothing else is written; a config
the family cannot build is one `error:` line.
"""

from __future__ import annotations

import json
from typing import Any

import jax
import ml_collections
import numpy as np

from gm_jax.core import paths, validation
from gm_jax.core.errors import UserError, first_line
from gm_jax.data import load


def count(tree: Any) -> int:
    """Number of scalars in the array leaves of `tree` (arrays or ShapeDtypeStructs)."""
    return int(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree) if hasattr(x, "shape")))


def _breakdown(params: Any) -> dict:
    """{top-level name: (count, {sub-module: count})} of a params tree."""
    if not isinstance(params, dict):
        return {"params": (count(params), {})}
    out = {}
    for k, v in params.items():
        modules = isinstance(v, dict) and len(v) > 1 and all(isinstance(sv, dict) for sv in v.values())
        out[str(k)] = (count(v), {str(sk): count(sv) for sk, sv in v.items()} if modules else {})
    return out


def _non_trainable(state: Any) -> dict:
    out = {}
    ms = getattr(state, "model_state", None)
    if isinstance(ms, dict):
        out.update({str(k): count(v) for k, v in ms.items() if count(v)})
    elif ms is not None and count(ms):
        out["model_state"] = count(ms)
    ema = getattr(state, "ema_params", None)
    if ema is not None and count(ema):
        out["ema"] = count(ema)
    return out


def _abstract_parent(init_from: str):
    """A first stage for a second stage's abstract init: its config and family, and its state as
    shapes (from its own abstract init); nothing but its config.json is read."""
    from gm_jax.registry import get_family
    from gm_jax.stages import Parent, read_config

    path, pcfg = read_config(init_from)
    spec = get_family(pcfg.model_name)
    data = load(pcfg.data, pcfg.train.batch_size, 0, spec_only=True)
    pcfg.data.update(data.facts())
    example = data.train_batch(0)
    state = jax.eval_shape(lambda k: spec.init(k, pcfg, example), jax.random.key(0))
    return Parent(state, pcfg, spec, path)


def summarize(spec: Any, cfg: ml_collections.ConfigDict) -> dict:
    """The parameter summary of `cfg`'s networks (see the module docstring), from an abstract init.

    Args:
      spec: the family (`gm_jax.family.FamilySpec`, or a registry name).
      cfg: the config.
    Raises:
      UserError: a config the family cannot build, or data it cannot describe.
    """
    if isinstance(spec, str):
        from gm_jax.registry import get_family

        spec = get_family(spec)
    validation.check_config(cfg)
    data = load(cfg.data, cfg.train.batch_size, 0, spec_only=True)
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.data.update(data.facts())
    example = data.train_batch(0)
    init_from = cfg.train.get("init_from", "")
    parent = _abstract_parent(init_from) if init_from else None
    try:
        if parent is None:
            state = jax.eval_shape(lambda k: spec.init(k, cfg, example), jax.random.key(0))
        else:
            state = jax.eval_shape(
                lambda k, ps: spec.init(k, cfg, example, parent=parent._replace(state=ps)),
                jax.random.key(0),
                parent.state,
            )
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the family's own error, in one line
        raise UserError(f"the config does not build a {cfg.get('model_name', 'model')}: {first_line(e)}") from None
    parts = _breakdown(state.params)
    return {
        "model": cfg.get("model_name"),
        "data_shape": [int(d) for d in cfg.data.shape],
        "networks": {k: n for k, (n, _) in parts.items()},
        "modules": {k: subs for k, (_, subs) in parts.items() if subs},
        "total_params": count(state.params),
        "non_trainable": _non_trainable(state),
    }


def table(summary: dict) -> str:
    """The summary as aligned text: one row per network (its modules indented), then the totals."""
    rows = []
    for name, n in summary["networks"].items():
        rows.append((name, n))
        rows.extend((f"  {name}/{sub}", m) for sub, m in summary["modules"].get(name, {}).items())
    rows.append(("total", summary["total_params"]))
    rows.extend((f"non-trainable {k}", v) for k, v in summary["non_trainable"].items())
    width = max(len(r[0]) for r in rows)
    head = f"{summary['model']} on data of shape {tuple(summary['data_shape'])}"
    return "\n".join([head] + [f"{name:<{width}}  {n:>14,}" for name, n in rows])


def describe(spec: Any, cfg: ml_collections.ConfigDict, workdir: str) -> dict:
    """`summarize`, printed as a table and written to `workdir`/model_summary.json; returns the summary."""
    summary = summarize(spec, cfg)
    out = {k: summary[k] for k in ("networks", "total_params", "non_trainable")}
    out.update(model=summary["model"], modules=summary["modules"], data_shape=summary["data_shape"])
    workdir = paths.resolve(workdir)
    if paths.exists(workdir) and not paths.isdir(workdir):
        raise UserError(f"workdir {workdir} exists and is not a directory; choose another --workdir")
    if jax.process_index() == 0:
        try:
            paths.write_text(paths.join(workdir, "model_summary.json"), json.dumps(out, indent=2, sort_keys=True))
        except OSError as e:
            raise UserError(f"cannot write {workdir}/model_summary.json: {e.strerror or e}") from None
        print(table(summary), flush=True)
    return out
