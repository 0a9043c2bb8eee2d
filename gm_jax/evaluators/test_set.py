"""The family's own per-example metrics (`evaluate`), averaged over the test split.

Evaluation batches are padded and masked, so any test-set size works on any device count; each
process reads its own rows. A family with `summarize` may return per-example vectors [B, K]: their
test-set means are summarised into eval.json and drawn as bar charts (samples/<name>_eval.png).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from gm_jax.core import parallel


def check(ctx, ev: dict, section: str) -> None:
    del ctx, ev, section  # the shapes are checked when evaluate is traced (gm_jax.core.validation)


def run(ctx, state, ecfg) -> dict:
    """{metric: mean over the test set}, and the family's summary of vector metrics."""
    bs = ctx.batch_size(ecfg)
    key = ("evaluate", id(ecfg))
    if key not in ctx.cache:  # one compilation per eval config, reused by every periodic evaluation
        spec = ctx.spec
        ctx.cache[key] = jax.jit(
            lambda s, b, k: spec.evaluate(s, b, k, ecfg), in_shardings=(ctx.repl, ctx.rows, ctx.repl)
        )
    fn = ctx.cache[key]
    sums: dict[str, Any] = {}
    count = 0.0
    n_max = ecfg.get("eval", {}).get("num_examples", -1)
    for i, batch in enumerate(ctx.data.eval_batches(bs, n_max, parallel.process_slice(bs))):
        mask = batch.pop("mask")
        out = parallel.to_host(fn(state, parallel.shard_local(batch, ctx.mesh), jax.random.fold_in(ctx.keys.eval, i)))
        for k, v in out.items():
            v = np.asarray(v, np.float64)
            part = np.sum(v * mask.reshape((-1,) + (1,) * (v.ndim - 1)), 0)  # a scalar, or [K] for a vector
            sums[k] = sums.get(k, 0.0) + (float(part) if v.ndim == 1 else part)
        count += float(mask.sum())
    means = {k: v / max(count, 1.0) for k, v in sums.items()}
    ev = {k: v for k, v in means.items() if np.ndim(v) == 0}
    vectors = {k: v for k, v in means.items() if np.ndim(v) == 1}
    if vectors:
        ev.update({k: float(v) for k, v in ctx.spec.summarize(vectors, ecfg).items()})
        for k, v in vectors.items():
            ctx.writer.bars(f"samples/{k}_eval", v)
    return ev
