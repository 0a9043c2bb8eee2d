"""The family contract: what a model family is to the training loop. Written down here and nowhere else.

A family is a module (or any object) with four pure functions, no `jit` inside:

    init(key, cfg, example_batch[, parent]) -> TrainState
    train_step(state, batch, key, cfg) -> (state, metrics)
    evaluate(state, batch, key, cfg) -> {name: per-example values [B]}
    sample(state, key, n, cfg) -> samples (images [n, H, W, C] in [0, 1], points [n, D], sequences)

and any of these optional hooks; the loop does what each line says when the family has it:

    reconstruct(state, batch, key, cfg) -> images     drawn beside the batch at every sampling
                                                      (samples/recon_step_N.png)
    log_density(state, x, cfg) -> log p(x) [N]       for 2-D points: drawn on a grid beside the data
                                                      at every sampling (samples/density_step_N.png)
    figures(state, batch, key, cfg) -> {name: images [rows, cols, H, W, C]}
                                                      any picture of a test batch, drawn row by row at
                                                      every sampling (samples/<name>_step_N.png)
    encode(state, x, cfg) -> codes [B, Z]             on data generated from known factors, with
                                                      `eval.disentanglement` on, scored by the β-VAE
                                                      and FactorVAE metrics and MIG
    summarize(vectors, cfg) -> {name: scalar}         `evaluate` may then also return per-example
                                                      vectors [B, K], averaged over the test set,
                                                      summarised into eval.json and drawn as bar
                                                      charts (samples/<name>_eval.png)

Rules, each checked where it can first be checked, each broken one a one-line `UserError` naming it:
- the four functions exist and are callable (`as_family`, when a family is resolved);
- a registered family's config has `model_name` equal to its registry key, and a family trained by
  an optimizer (`optim.name` other than "none") has a `model.dtype` key, the compute dtype
  (`check_config`, when a registered family is resolved);
- `init` takes `parent` if the config names a first stage (`train.init_from`);
- `train_step`'s metrics include "loss" (`check_step_metrics`, when the step is traced before a run);
- `evaluate` returns per-example values [B], or [B, K] for a family with `summarize`
  (`check_eval_shapes`, when evaluation is traced before a run).

What a family may read, besides its own config sections: `state.step` inside `train_step`;
`cfg.data.shape`, `train_size`, `test_size`, `levels` (discrete values per dimension: 17 for the
digits, 256 for uint8 images, 2 for binary data, 0 for continuous), `kind` ("image", "points",
"sequence") and `features` (what batches carry besides "x"), derived from the data; `cfg.sample`
(sampling options, which may change when a finished run is evaluated or sampled again); `parent`
(`gm_jax.stages.Parent`: the first stage's state, config and family) when `train.init_from` names a
finished first stage. Batches arrive as float32 whatever crossed to the device, and the same
`train_step` serves one step per call and k scanned steps (`train.steps_per_call`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Protocol

from gm_jax.core.errors import UserError

REQUIRED = ("init", "train_step", "evaluate", "sample")
HOOKS = ("reconstruct", "log_density", "figures", "encode", "summarize")


class Family(Protocol):
    """The required part of the contract (see the module docstring for the optional hooks)."""

    def init(self, key: Any, cfg: Any, example_batch: dict) -> Any: ...

    def train_step(self, state: Any, batch: dict, key: Any, cfg: Any) -> tuple[Any, dict]: ...

    def evaluate(self, state: Any, batch: dict, key: Any, cfg: Any) -> dict: ...

    def sample(self, state: Any, key: Any, n: int, cfg: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """A family as the loop sees it: the four functions, each optional hook or None, and whether
    `init` takes a first stage."""

    name: str
    init: Callable
    train_step: Callable
    evaluate: Callable
    sample: Callable
    reconstruct: Callable | None = None
    log_density: Callable | None = None
    figures: Callable | None = None
    encode: Callable | None = None
    summarize: Callable | None = None
    takes_parent: bool = False


def as_family(obj: Any, name: str = "") -> FamilySpec:
    """The contract's view of a family module or object.

    Raises:
      UserError: a required function is missing or not callable, or a hook is not callable.
    """
    if isinstance(obj, FamilySpec):
        return obj
    name = name or getattr(obj, "__name__", type(obj).__name__)
    missing = [f for f in REQUIRED if not callable(getattr(obj, f, None))]
    if missing:
        raise UserError(f"family {name} breaks the contract (gm_jax.family): no callable {', '.join(missing)}")
    hooks = {h: getattr(obj, h, None) for h in HOOKS}
    bad = [h for h, f in hooks.items() if f is not None and not callable(f)]
    if bad:
        raise UserError(f"family {name} breaks the contract (gm_jax.family): {', '.join(bad)} is not callable")
    try:
        takes_parent = "parent" in inspect.signature(obj.init).parameters
    except (TypeError, ValueError):
        takes_parent = False
    return FamilySpec(name, *(getattr(obj, f) for f in REQUIRED), **hooks, takes_parent=takes_parent)


def check_config(name: str, cfg: Any) -> None:
    """The config rules of a registered family (`model_name`, `model.dtype`)."""
    if cfg.get("model_name") != name:
        raise UserError(
            f"family {name} breaks the contract (gm_jax.family): its config's model_name is "
            f"{cfg.get('model_name')!r}, not its registry key {name!r}"
        )
    if cfg.get("optim", {}).get("name", "none") != "none" and "dtype" not in cfg.get("model", {}):
        raise UserError(
            f"family {name} breaks the contract (gm_jax.family): a family trained by an optimizer needs model.dtype"
        )


def check_parent(spec: FamilySpec) -> None:
    """A second stage needs an `init` that takes the first stage."""
    if not spec.takes_parent:
        raise UserError(f"train.init_from names a first stage, but {spec.name}'s init takes no parent")


def check_step_metrics(spec: FamilySpec, metrics: dict) -> None:
    if "loss" not in metrics:
        raise UserError(
            f"family {spec.name} breaks the contract (gm_jax.family): train_step's metrics must include "
            f"'loss', got {sorted(metrics)}"
        )


def check_eval_shapes(spec: FamilySpec, out: dict, batch: int) -> None:
    for k, v in out.items():
        vector = len(v.shape) == 2 and v.shape[0] == batch and spec.summarize is not None
        if tuple(v.shape) != (batch,) and not vector:
            raise UserError(
                f"evaluate's metric {k!r} has shape {tuple(v.shape)}; it must be per-example [{batch}], or "
                f"[{batch}, K] for a family with `summarize` (set-level metrics of samples come from the "
                "sample-quality stage)"
            )
