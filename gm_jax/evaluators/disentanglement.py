"""Disentanglement of a family's `encode` on data generated from known factors (`eval.disentanglement`):
the β-VAE metric, the FactorVAE metric and MIG (`gm_jax.metrics.disentanglement`), their sample sizes
from `eval.beta_vae_train`, `beta_vae_eval`, `factor_vae_train`, `factor_vae_eval`, `mig_samples`,
`pairs`."""

from __future__ import annotations

from gm_jax.core.config import require, require_positive_int
from gm_jax.core.errors import UserError
from gm_jax.metrics import disentanglement

SIZES = ("beta_vae_train", "beta_vae_eval", "factor_vae_train", "factor_vae_eval", "mig_samples")


def check(ctx, ev: dict, section: str) -> None:
    if not ev.get("disentanglement", False):
        return
    if ctx.data.source.factors is None:
        raise UserError(
            f"{section}.disentanglement needs data generated from known factors (dsprites, dsprites32); "
            f"{ctx.data.source.name} has none"
        )
    if ctx.spec.encode is None:
        raise UserError(f"{section}.disentanglement needs a family with an encoder; this one has none")
    for key in SIZES:
        require_positive_int(f"{section}.{key}", ev.get(key, 1))
    v = ev.get("pairs", 64)
    require(isinstance(v, int) and not isinstance(v, bool) and v >= 2, f"{section}.pairs", "an integer >= 2", v)


def run(ctx, state, ecfg) -> dict:
    ev = ecfg.get("eval", {})
    if not ev.get("disentanglement", False):
        return {}
    sizes = {k: int(ev[k]) for k in (*SIZES, "pairs") if k in ev}
    return disentanglement.all_scores(
        lambda x: ctx.encode(state, x), ctx.data.source.factors, seed=int(ctx.cfg.seed), **sizes
    )
