"""Train-state pytrees.

One `TrainState` serves every family: single-optimizer models keep a params tree and one optax
state; GAN families keep dicts keyed "g"/"d" in both; EM families keep parameters and no optimizer
state. Optimizers themselves are rebuilt from the config inside the step, so the state holds arrays
only and checkpoints/restores as a plain pytree.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training.

    Attributes:
      step: scalar int32, number of completed steps.
      params: trainable parameters (for GANs: {"g": ..., "d": ...}).
      opt_state: optax state(s), same keys as params for multi-optimizer families; None for EM.
      model_state: non-trainable collections (e.g. {"batch_stats": ...}); {} when unused.
      ema_params: exponential moving average of params used for eval/sampling, or None. For a dict of
        networks (GANs) it may average some of them: {"g": ...} beside params {"g": ..., "d": ...}.
    """

    step: jax.Array
    params: Any
    opt_state: Any = None
    model_state: Any = flax.struct.field(default_factory=dict)
    ema_params: Any = None

    @classmethod
    def create(cls, params: Any, opt_state: Any = None, model_state: Any = None, ema_params: Any = None):
        """A state at step 0."""
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=opt_state,
            model_state={} if model_state is None else model_state,
            ema_params=ema_params,
        )

    def eval_params(self) -> Any:
        """Parameters to evaluate and sample with: the EMA where kept, the raw params elsewhere.

        Always the tree shape of `params`: with params {"g", "d"} and an EMA of "g" only, the result is
        {"g": EMA of g, "d": d}, as without an EMA it is {"g": g, "d": d}.
        """
        if self.ema_params is None:
            return self.params
        if (
            isinstance(self.params, dict)
            and isinstance(self.ema_params, dict)
            and set(self.ema_params) < set(self.params)
        ):
            return {**self.params, **self.ema_params}
        return self.ema_params


def ema_update(ema: Any, new: Any, decay: float) -> Any:
    """ema <- decay * ema + (1 - decay) * new, leafwise."""
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, new)
