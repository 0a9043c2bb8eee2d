"""Mode coverage of point samples on a 2-D set whose modes are known (`gm_jax.data.points`):
`eval.mode_samples` (2500, the VEEGAN/PacGAN protocol; 0 = off) samples scored by
`gm_jax.metrics.modes`: modes covered with at least `eval.mode_min_count` high-quality samples,
the high-quality fraction (within 3 sigma of the nearest mode) and the KL of their mode histogram
to uniform."""

from __future__ import annotations

from gm_jax.core.config import require_non_negative_int
from gm_jax.metrics import modes


def check(ctx, ev: dict, section: str) -> None:
    for key in ("mode_min_count", "mode_samples"):
        require_non_negative_int(f"{section}.{key}", ev.get(key, 0))


def run(ctx, state, ecfg) -> dict:
    ev = ecfg.get("eval", {})
    src, n = ctx.data.source, int(ev.get("mode_samples", 2500))
    if ctx.kind != "points" or n <= 0 or src.modes is None:
        return {}
    points = ctx.draw(state, n, int(ev.get("sample_batch", 0)) or 2500, ctx.keys.quality)
    got = modes.mode_metrics(points, src.modes, src.mode_std, min_count=int(ev.get("mode_min_count", 1)) or 1)
    return {**got, "modes_num_samples": float(n)}
