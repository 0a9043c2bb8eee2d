"""The smallest complete family, to copy when adding a model: a diagonal Gaussian fitted by gradient
descent on the negative log-likelihood.

It keeps the contract of `gm_jax.family` with the helpers a real family uses: the `model` section as
a frozen dataclass (`gm_jax.core.config.model_section`, so a typo in a key fails at init) checked
with `require_*`, the generic step from a loss (`gm_jax.core.steps.make_train_step`), per-example
metrics from `evaluate`, and samples from `sample`. `get_config` is what its
`experiments/configs/<name>.py` would hold. `tests/core/test_family.py` trains it through
`gm_jax.train.train` and checks it against the closed form (the data's mean and standard deviation).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.core.config import model_section, require_range
from gm_jax.core.state import TrainState
from gm_jax.core.steps import init_state, make_train_step


@dataclasses.dataclass(frozen=True)
class GaussianConfig:
    """The `model` section."""

    init_log_std: float = 0.0
    dtype: str = "float32"  # the compute dtype every optimizer-trained family's config carries

    @classmethod
    def from_cfg(cls, cfg: Any) -> GaussianConfig:
        m = model_section(cls, cfg, "example_gaussian")
        require_range("model.init_log_std", m.init_log_std, -10.0, 10.0)
        return m


def init(key: jax.Array, cfg: Any, example_batch: dict) -> TrainState:
    """Mean 0, log-std `init_log_std` per dimension; the optimizer state from `cfg.optim`."""
    del key
    m = GaussianConfig.from_cfg(cfg)
    d = int(np.prod(cfg.data.shape))
    # Explicit float32: an array built from a Python float is weakly typed, and the step would be
    # compiled again once the first update makes it strongly typed.
    log_std = jnp.full((d,), m.init_log_std, jnp.float32)
    return init_state({"mean": jnp.zeros((d,), jnp.float32), "log_std": log_std}, cfg)


def _nll(params, x: jax.Array) -> jax.Array:
    """-log N(x; mean, diag(exp(log_std))^2) per example [B], in nats."""
    x = x.reshape(x.shape[0], -1)
    z = (x - params["mean"]) * jnp.exp(-params["log_std"])
    return jnp.sum(0.5 * z**2 + params["log_std"] + 0.5 * math.log(2 * math.pi), axis=-1)


def loss_fn(params, model_state, batch, rng, cfg, step):
    del rng, cfg, step
    nll = _nll(params, batch["x"])
    return jnp.mean(nll), ({"nll_nats": jnp.mean(nll)}, model_state)


train_step = make_train_step(loss_fn)


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """Per-example test NLL [B] in nats (the loop averages it over the test set)."""
    del key, cfg
    return {"nll_nats": _nll(state.eval_params(), batch["x"])}


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n draws from the fitted Gaussian, in the data's shape."""
    p = state.eval_params()
    eps = jax.random.normal(key, (n,) + p["mean"].shape)
    return (p["mean"] + jnp.exp(p["log_std"]) * eps).reshape((n,) + tuple(cfg.data.shape))


def get_config(arg: str | None = None):
    """The config the family's `experiments/configs/<name>.py` would return (2-D points, Adam)."""
    from experiments.configs.base import base, smoke

    cfg = base(
        "example_gaussian",
        model=dict(init_log_std=0.0, dtype="float32"),
        optim=dict(lr=0.05),
        data=dict(name="gmm2d"),
        train=dict(num_steps=600, batch_size=200, log_every=0, eval_every=0, ckpt_every=600, sample_every=0),
        eval=dict(batch_size=200, num_samples=0),
    )
    if arg == "smoke":
        smoke(cfg)
    return cfg
