"""DDPM sampling time: DDIM with S steps vs the ancestral chain of all T = 1000 steps.

The default digits U-Net (`experiments/configs/ddpm.py`: 32 base channels, multipliers (1, 2)),
a batch of 500 8x8 samples, each chain one compiled `fori_loop` / `scan`; timed after compilation,
best of 2.

    python -m benchmarks.ddpm_sampling [--batch=500] [--steps=50]

Prints seconds per batch for each sampler, their compile times, and last
`ddim <S> steps <ratio>x faster than ancestral`.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args()
    from gm_jax import load_config
    from gm_jax.models import ddpm

    cfg = load_config("ddpm")
    cfg.data.update(shape=(8, 8, 1), kind="image", name="digits", levels=17)
    state = jax.jit(lambda k: ddpm.init(k, cfg, {"x": jnp.zeros((1, 8, 8, 1))}))(jax.random.key(0))
    rows = {}
    for sampler in ("ancestral", "ddim"):
        c = cfg.copy_and_resolve_references()
        c.sample.update(sampler=sampler, steps=args.steps, eta=0.0)
        fn = jax.jit(lambda s, k, c=c: ddpm.sample(s, k, args.batch, c))
        t = time.perf_counter()
        jax.block_until_ready(fn(state, jax.random.key(1)))
        compile_s = time.perf_counter() - t
        best = float("inf")
        for i in range(2):
            t = time.perf_counter()
            jax.block_until_ready(fn(state, jax.random.key(2 + i)))
            best = min(best, time.perf_counter() - t)
        rows[sampler] = (best, compile_s)
    print(
        f"DDPM sampling, {args.batch} samples 8x8x1, T={cfg.model.timesteps}; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}"
    )
    print(f"{'sampler':<26}{'s/batch':>9}{'compile s':>11}")
    print(f"{'ancestral (T steps)':<26}{rows['ancestral'][0]:>9.2f}{rows['ancestral'][1]:>11.1f}")
    print(f"{f'ddim (S={args.steps}, eta=0)':<26}{rows['ddim'][0]:>9.2f}{rows['ddim'][1]:>11.1f}")
    print(f"ddim {args.steps} steps {rows['ancestral'][0] / rows['ddim'][0]:.1f}x faster than ancestral")


if __name__ == "__main__":
    main()
