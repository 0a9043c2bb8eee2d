"""The one generic single-optimizer train step, built from a family's loss function.

Gradient families (VAE, VQ-VAE, flows, DDPM) write only

    loss_fn(params, model_state, batch, rng, cfg, step) -> (loss, (metrics, new_model_state))

and get a pure `train_step(state, batch, key, cfg)` with optax update and optional EMA. `step` is the
number of updates done before this one (an int32 scalar, traced), for schedules inside the loss
(capacity annealing, dead-code restarts, lazy regularisation). Randomness comes from
`fold_in(key, state.step)`, so nothing random lives in the state and a resumed run draws the same
numbers as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState, ema_update

LossFn = Callable[[Any, Any, Any, jax.Array, Any, jax.Array], tuple[jax.Array, tuple[dict, Any]]]


def _adam(lr, o):
    return optax.adam(lr, b1=o.get("b1", 0.9), b2=o.get("b2", 0.999), eps=o.get("eps", 1e-8))


def _adamw(lr, o):
    return optax.adamw(
        lr, b1=o.get("b1", 0.9), b2=o.get("b2", 0.999), eps=o.get("eps", 1e-8), weight_decay=o.get("weight_decay", 1e-4)
    )


def _rmsprop(lr, o):
    # initial_scale: the squared-gradient average's starting value (TF1's RMSPropOptimizer: 1; PyTorch: 0)
    return optax.rmsprop(
        lr,
        decay=o.get("decay", 0.9),
        eps=o.get("eps", 1e-8),
        initial_scale=o.get("initial_scale", 0.0),
        eps_in_sqrt=o.get("eps_in_sqrt", True),  # TF: sqrt(v + eps); PyTorch: sqrt(v) + eps
        momentum=o.get("momentum", None) or None,
    )


def _sgd(lr, o):
    final = o.get("momentum_final", 0.0)
    if not final:
        return optax.sgd(lr, momentum=o.get("momentum", None) or None)
    # momentum rising linearly from `momentum` at step momentum_start to momentum_final at step
    # momentum_end (pylearn2's MomentumAdjustor, counted in steps)
    m0, s0, s1 = float(o.get("momentum", 0.0) or 0.0), o.get("momentum_start", 0), o.get("momentum_end", 1)

    def momentum(count):
        frac = jnp.clip((count - s0) / max(s1 - s0, 1), 0.0, 1.0)
        return m0 + (final - m0) * frac

    return optax.inject_hyperparams(optax.sgd)(learning_rate=lr, momentum=momentum)


def _adagrad(lr, o):
    return optax.adagrad(lr, eps=o.get("eps", 1e-7))


# name -> builder(learning rate or schedule, optim section); every builder reads its own options
# from the section with the optax defaults.
OPTIMIZERS: dict[str, Callable[[Any, Any], optax.GradientTransformation]] = {
    "adam": _adam,
    "adamw": _adamw,
    "rmsprop": _rmsprop,
    "sgd": _sgd,
    "adagrad": _adagrad,
}


def check_optimizer(optim: Any) -> None:
    """Refuse an `optim` section that names no known optimizer or has a non-positive/non-finite lr.

    "none" is accepted (EM families); raises UserError.
    """
    name = optim.get("name", None)
    if name == "none":
        return
    if name not in OPTIMIZERS:
        raise UserError(f"optim.name must be one of {sorted(OPTIMIZERS)} (or none), got {name!r}")
    lr = optim.get("lr", None)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 or lr == float("inf"):
        raise UserError(f"optim.lr must be a positive number, got {lr!r}")


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Build an optax optimizer from an `optim` config section.

    Args:
      optim: fields `name` (see OPTIMIZERS), `lr`, optional `b1`, `b2`, `eps`, `weight_decay`
        (AdamW's decoupled decay), `decay`, `momentum`, `initial_scale`, `eps_in_sqrt` (RMSProp), `l2` (coupled L2:
        l2 * p added to the gradient before the optimizer, as Theano's and PyTorch's weight decay on
        Adam), `grad_clip` (global norm; 0 = off), `warmup_steps`, `lr_decay` and `min_lr` (lr divided
        by lr_decay every step, floored at min_lr), and for SGD `momentum_final`, `momentum_start`,
        `momentum_end` (momentum rising linearly between those steps).
    Returns:
      The optax transformation.
    """
    check_optimizer(optim)
    lr: Any = optim.lr
    warmup = optim.get("warmup_steps", 0)
    if warmup:
        lr = optax.linear_schedule(0.0, optim.lr, warmup)
    decay = optim.get("lr_decay", 0.0)
    if decay:  # lr / lr_decay^t, never below min_lr (pylearn2's ExponentialDecay)
        base, floor = optim.lr, optim.get("min_lr", 0.0)
        lr = lambda count: jnp.maximum(base * decay ** (-count.astype(jnp.float32)), floor)  # noqa: E731
    tx = OPTIMIZERS[optim.name](lr, optim)
    l2 = optim.get("l2", 0.0)
    if l2:
        tx = optax.chain(optax.add_decayed_weights(l2), tx)
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
        (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng, cfg, state.step)
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


def scan_steps(train_step: Callable) -> Callable:
    """k train steps in one call: `train_step` scanned over k stacked batches.

    Args:
      train_step: a family's train_step(state, batch, key, cfg) -> (state, metrics).
    Returns:
      fn(state, batches, key, cfg) -> (state, metrics stacked [k, ...]), where every leaf of
      `batches` has a leading axis k; the same updates as k calls of `train_step`.
    """

    def multi(state, batches, key, cfg):
        return jax.lax.scan(lambda s, b: train_step(s, b, key, cfg), state, batches)

    return multi
