"""Before anything is written: the config's own checks, and the family traced abstractly.

`check_config` checks the sections the loop reads (train, the eval sections' sizes, the compute
dtype, the optimizer); `dry_run` traces the family's `init`, one `train_step`, one evaluation batch
per eval section and `sample` with `jax.eval_shape` (no computation, no device memory), so a config
the family cannot build fails in one line before the workdir is touched. The contract's dynamic rules
(`gm_jax.family`) are checked on the traced outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import ml_collections

from gm_jax import family as contract
from gm_jax.core.config import non_negative_int, positive_int
from gm_jax.core.errors import UserError, first_line
from gm_jax.core.steps import check_optimizer


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """The train section, the eval sections' sample sizes, the compute dtype and the optimizer."""
    t = cfg.train
    for key in ("num_steps", "batch_size"):
        if not positive_int(t.get(key)):
            raise UserError(f"train.{key} must be a positive integer, got {t.get(key)!r}")
    for key in ("log_every", "eval_every", "ckpt_every", "sample_every", "num_samples"):
        if not non_negative_int(t.get(key, 0)):
            raise UserError(f"train.{key} must be a non-negative integer, got {t.get(key)!r}")
    k = t.get("steps_per_call", 1)
    if not positive_int(k):
        raise UserError(f"train.steps_per_call must be a positive integer, got {k!r}")
    bad = [key for key in ("num_steps", "log_every", "eval_every", "ckpt_every", "sample_every") if t.get(key, 0) % k]
    if bad:
        raise UserError(
            f"train.steps_per_call={k} must divide train.{bad[0]} ({t.get(bad[0])}): steps run {k} per call, so "
            "logging, evaluation, sampling and checkpoints fall on multiples of it"
        )
    dtype = cfg.get("model", {}).get("dtype", "float32")
    if dtype not in ("float32", "bfloat16"):
        raise UserError(f"model.dtype must be float32 or bfloat16 (the compute dtype), got {dtype!r}")
    if not positive_int(t.get("max_to_keep", 3)):
        raise UserError(
            f"train.max_to_keep must be a positive integer (checkpoints kept), got {t.get('max_to_keep')!r}"
        )
    for section in ("eval", "eval_periodic"):
        for key in ("num_samples", "sample_batch"):
            v = cfg.get(section, {}).get(key, 0)
            if not non_negative_int(v):
                raise UserError(f"{section}.{key} must be a non-negative integer, got {v!r}")
    if "optim" in cfg:
        check_optimizer(cfg.optim)


def eval_cfg(cfg: ml_collections.ConfigDict, section: str) -> ml_collections.ConfigDict:
    """The config evaluate sees: `cfg` with its `eval` section replaced by `section` when present."""
    if section == "eval" or section not in cfg:
        return cfg
    out = ml_collections.ConfigDict(cfg.to_dict())
    merged = dict(cfg.get("eval", {}).to_dict() if "eval" in cfg else {})
    merged.update(cfg[section].to_dict())
    out.eval = ml_collections.ConfigDict(merged)
    return out


def eval_batch_size(ecfg: Any, default: int, n_devices: int) -> int:
    """The eval section's batch rounded up to the devices (evaluation batches are padded)."""
    bs = int(ecfg.get("eval", {}).get("batch_size", default))
    return -(-max(bs, 1) // n_devices) * n_devices


def dry_run(
    spec: contract.FamilySpec,
    cfg: ml_collections.ConfigDict,
    init_fn: Callable,
    keys: Any,
    example: dict,
    eval_batches: Iterable[tuple[Any, dict]],
    train: bool,
    num_samples: int,
) -> Any:
    """The abstract state, after tracing init, one step (when training), `evaluate` on one batch per
    (eval config, batch) of `eval_batches`, and `sample`. Raises UserError in one line."""
    try:
        abstract = jax.eval_shape(init_fn, keys.init)
        if train:
            _, metrics = jax.eval_shape(lambda s, b: spec.train_step(s, b, keys.loop, cfg), abstract, example)
            contract.check_step_metrics(spec, metrics)
        for ecfg, batch in eval_batches:
            out = jax.eval_shape(lambda s, b, c=ecfg: spec.evaluate(s, b, keys.eval, c), abstract, batch)
            contract.check_eval_shapes(spec, out, len(batch["x"]))
        jax.eval_shape(lambda s: spec.sample(s, keys.sample, num_samples, cfg), abstract)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the family's own error, reported in one line
        raise UserError(f"the config does not build a {cfg.get('model_name', 'model')}: {first_line(e)}") from None
    return abstract
