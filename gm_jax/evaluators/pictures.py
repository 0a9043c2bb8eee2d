"""Pictures at every sampling (`train.sample_every`, the end of a run, `--mode=sample`):
`train.num_samples` samples as a grid (`samples/step_N.png`; point samples as a scatter over the
training points' density, and `.npy`), and from the family's hooks: reconstructions beside the
test batch (`samples/recon_step_N.png`), its `figures` of a test batch (`samples/<name>_step_N.png`),
and on 2-D points its density on a grid beside the data (`samples/density_step_N.png`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.core import parallel, paths
from gm_jax.core.writer import density_grid
from gm_jax.evaluators.context import images

GRID = 128  # density grid side


def run(ctx, state, step: int) -> dict:
    """Draw this step's pictures into the workdir; returns {} (nothing for eval.json)."""
    spec, writer = ctx.spec, ctx.writer
    key = jax.random.fold_in(ctx.keys.sample, step)
    samples = np.asarray(parallel.to_host(_compiled(ctx, "sample")(state, key)))
    if samples.ndim == 4:
        writer.image_grid(f"samples/step_{step}", samples)
    elif writer.enabled:
        paths.save_npy(paths.join(writer.workdir, "samples", f"step_{step}.npy"), samples)
        if samples.ndim == 2:
            writer.scatter(f"samples/step_{step}", samples, background=_points(ctx))
            if spec.log_density is not None and tuple(ctx.cfg.data.shape) == (2,):
                ref = _points(ctx)
                grid = jnp.asarray(density_grid(ref, GRID))
                log_p = np.asarray(parallel.to_host(_compiled(ctx, "log_density")(state, grid)))
                writer.density(f"samples/density_step_{step}", log_p.reshape(GRID, GRID), ref)
    if ctx.kind != "image":
        return {}
    if spec.figures is not None:
        batch = parallel.shard_batch(ctx.test_batch(ctx.batch_size({"eval": {}})), ctx.mesh)
        for name, grid in parallel.to_host(_compiled(ctx, "figures")(state, batch, key)).items():
            grid = np.asarray(grid)
            writer.image_grid(f"samples/{name}_step_{step}", grid.reshape((-1,) + grid.shape[2:]), cols=grid.shape[1])
    if spec.reconstruct is not None:
        bs = ctx.cfg.train.batch_size
        batch = ctx.test_batch(bs)
        rec = np.asarray(
            parallel.to_host(_compiled(ctx, "reconstruct")(state, parallel.shard_batch(batch, ctx.mesh), key))
        )
        orig = batch["x"][:32]
        pairs = np.stack([orig, rec[:32]], 1).reshape((-1,) + orig.shape[1:])
        writer.image_grid(f"samples/recon_step_{step}", pairs)
    return {}


def _compiled(ctx, what: str):
    """This run's compiled `sample` (of train.num_samples), `reconstruct`, `figures` or `log_density`."""
    key = ("pictures", what)
    if key not in ctx.cache:
        spec, cfg = ctx.spec, ctx.cfg
        n = cfg.train.get("num_samples", 64) or 1
        fn = {
            "sample": lambda s, k: spec.sample(s, k, n, cfg),
            "reconstruct": lambda s, b, k: spec.reconstruct(s, b, k, cfg),
            "figures": lambda s, b, k: spec.figures(s, b, k, cfg),
            "log_density": lambda s, x: spec.log_density(s, x, cfg),
        }[what]
        ctx.cache[key] = jax.jit(fn, out_shardings=ctx.repl)
    return ctx.cache[key]


def _points(ctx) -> np.ndarray | None:
    """Up to 20 000 training points, drawn under point samples as the data's density."""
    if ctx.kind != "points":
        return None
    train = ctx.data.source.train
    return images(train.get(np.arange(min(train.size, 20_000))))
