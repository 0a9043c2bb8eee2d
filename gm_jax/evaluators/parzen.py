"""The Parzen-window estimate (`eval.parzen_samples` > 0, Goodfellow et al.'s legacy number):
Gaussian kernels on that many samples, sigma chosen on the first half of the test split from
`eval.parzen_sigmas`, the mean log-likelihood of the second half in nats (`gm_jax.metrics.parzen`).
High variance and poor above a few dimensions: reported as the paper reports it, not as a ranking."""

from __future__ import annotations

import jax
import numpy as np

from gm_jax.core.config import require_non_negative_int
from gm_jax.core.errors import UserError
from gm_jax.evaluators.context import images
from gm_jax.metrics import parzen


def check(ctx, ev: dict, section: str) -> None:
    require_non_negative_int(f"{section}.parzen_samples", ev.get("parzen_samples", 0))
    if ev.get("parzen_samples", 0) and ctx.kind not in ("image", "points"):
        raise UserError(f"{section}.parzen_samples needs image or point data; the data is {ctx.kind}")


def run(ctx, state, ecfg) -> dict:
    ev = ecfg.get("eval", {})
    n = int(ev.get("parzen_samples", 0))
    if n <= 0:
        return {}
    test = ctx.data.source.test
    x = images(test.get(np.arange(test.size)))
    half = len(x) // 2
    key = jax.random.fold_in(ctx.keys.quality, 1)
    samples = ctx.draw(state, n, int(ev.get("sample_batch", 0)) or 1000, key)
    grid = ev.get("parzen_sigmas", None) or (parzen.POINT_SIGMAS if ctx.kind == "points" else parzen.IMAGE_SIGMAS)
    return parzen.parzen(samples, x[:half], x[half:], tuple(float(g) for g in grid))
