"""The one generic single-optimizer train step, built from a family's loss function.

Gradient families (VAE, VQ-VAE, flows, DDPM) write only

    loss_fn(params, model_state, batch, rng, cfg) -> (loss, (metrics, new_model_state))

and get a pure `train_step(state, batch, key, cfg)` with optax update and optional EMA. Randomness
comes from `fold_in(key, state.step)`, so nothing random lives in the state and a resumed run draws
the same numbers as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import optax

from gm_jax.core.state import TrainState, ema_update

LossFn = Callable[[Any, Any, Any, jax.Array, Any], tuple[jax.Array, tuple[dict, Any]]]


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Build an optax optimizer from an `optim` config section.

    Args:
      optim: fields `name` (adam|adamw|rmsprop|sgd|adagrad), `lr`, optional `b1`, `b2`, `eps`,
        `weight_decay`, `momentum`, `grad_clip` (global norm; 0 = off), `warmup_steps`.
    Returns:
      The optax transformation.
    """
    name = optim.name
    lr: Any = optim.lr
    warmup = optim.get("warmup_steps", 0)
    if warmup:
        lr = optax.linear_schedule(0.0, optim.lr, warmup)
    if name == "adam":
        tx = optax.adam(lr, b1=optim.get("b1", 0.9), b2=optim.get("b2", 0.999), eps=optim.get("eps", 1e-8))
    elif name == "adamw":
        tx = optax.adamw(
            lr, b1=optim.get("b1", 0.9), b2=optim.get("b2", 0.999), weight_decay=optim.get("weight_decay", 1e-4)
        )
    elif name == "rmsprop":
        tx = optax.rmsprop(lr, decay=optim.get("decay", 0.9), eps=optim.get("eps", 1e-8))
    elif name == "sgd":
        tx = optax.sgd(lr, momentum=optim.get("momentum", None) or None)
    elif name == "adagrad":
        tx = optax.adagrad(lr)
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    clip = optim.get("grad_clip", 0.0)
    if clip:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    return tx


def make_train_step(loss_fn: LossFn) -> Callable[[TrainState, Any, jax.Array, Any], tuple[TrainState, dict]]:
    """Wrap a loss into the family interface's `train_step`.

    Args:
      loss_fn: see module docstring; `metrics` must not contain "loss" (it is added here).
    Returns:
      train_step(state, batch, key, cfg) -> (state, metrics); pure, no jit inside.
    """

    def train_step(state: TrainState, batch: Any, key: jax.Array, cfg: Any):
        rng = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng, cfg)
        tx = make_optimizer(cfg.optim)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = state.ema_params
        if ema is not None:
            ema = ema_update(ema, params, cfg.optim.ema_decay)
        metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
        new = state.replace(
            step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state, ema_params=ema
        )
        return new, metrics

    return train_step


def init_state(params: Any, cfg: Any, model_state: Any = None) -> TrainState:
    """A step-0 state for a single-optimizer family (EMA kept when `cfg.optim.ema_decay` > 0)."""
    tx = make_optimizer(cfg.optim)
    ema = params if cfg.optim.get("ema_decay", 0.0) else None
    return TrainState.create(params=params, opt_state=tx.init(params), model_state=model_state, ema_params=ema)
