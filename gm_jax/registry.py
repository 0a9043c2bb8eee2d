"""Model name -> family module and config module. One explicit dict; importing this has no side effects.

`get_family(name)` resolves a name to its family as the contract sees it (`gm_jax.family.FamilySpec`),
checking the contract's rules for a registered family on the way (its functions, and its config's
`model_name` and `model.dtype`): a family that breaks one is refused in one line naming the rule.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, NamedTuple

from gm_jax.core.errors import UserError


class ModelSpec(NamedTuple):
    """Where a registered model lives: its family module and its config module."""

    family: str
    config: str


REGISTRY: dict[str, ModelSpec] = {
    "gmm": ModelSpec("gm_jax.classical.gmm", "experiments.configs.gmm"),
    "hmm": ModelSpec("gm_jax.classical.hmm", "experiments.configs.hmm"),
    "vae": ModelSpec("gm_jax.models.vae", "experiments.configs.vae"),
    "beta_vae": ModelSpec("gm_jax.models.vae", "experiments.configs.beta_vae"),
    "beta_tcvae": ModelSpec("gm_jax.models.vae", "experiments.configs.beta_tcvae"),
    "vqvae": ModelSpec("gm_jax.models.vqvae", "experiments.configs.vqvae"),
    "gan": ModelSpec("gm_jax.models.gan", "experiments.configs.gan"),
    "dcgan": ModelSpec("gm_jax.models.gan", "experiments.configs.dcgan"),
    "wgan": ModelSpec("gm_jax.models.gan", "experiments.configs.wgan"),
    "wgan_gp": ModelSpec("gm_jax.models.gan", "experiments.configs.wgan_gp"),
    "stylegan": ModelSpec("gm_jax.models.stylegan", "experiments.configs.stylegan"),
    "stylegan2": ModelSpec("gm_jax.models.stylegan", "experiments.configs.stylegan2"),
    "nice": ModelSpec("gm_jax.models.flows", "experiments.configs.nice"),
    "realnvp": ModelSpec("gm_jax.models.flows", "experiments.configs.realnvp"),
    "ddpm": ModelSpec("gm_jax.models.ddpm", "experiments.configs.ddpm"),
}


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(REGISTRY)


def _spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise UserError(f"unknown model {name!r}; registered: {', '.join(model_names())}")
    return REGISTRY[name]


@functools.cache
def get_family(name: str) -> Any:
    """The family of model `name` as a checked `gm_jax.family.FamilySpec` (raises UserError listing the
    names when unknown, or naming the contract rule a family breaks)."""
    from gm_jax import family as contract

    spec = contract.as_family(importlib.import_module(_spec(name).family), name)
    contract.check_config(name, load_config(name))
    return spec


def is_point_set(data_name: str | None) -> bool:
    """Whether `data_name` names one of the generated 2-D sets (`gm_jax.data.points`)."""
    from gm_jax.data.points import POINT_SETS

    return data_name in POINT_SETS


def load_config(name: str, arg: str | None = None, data: str | None = None) -> Any:
    """`get_config(arg)` of model `name`'s config module (arg "smoke" gives the tiny test config).

    `data` sets `data.name`; when it names a 2-D point set and no `arg` is given, a config module
    with a `points` variant (the GANs: `gan_toy.py`'s settings) is loaded with arg "points", as the
    CLI does for `--config.data.name=<2-D set>`.
    """
    module = importlib.import_module(_spec(name).config)
    if arg is None and is_point_set(data) and hasattr(module, "points"):
        arg = "points"
    cfg = module.get_config(arg)
    if data is not None:
        cfg.data.name = data
    return cfg


def config_path(name: str) -> str:
    """Filesystem path of model `name`'s config file (for `--config` defaults)."""
    return importlib.import_module(_spec(name).config).__file__
