"""Train-step time with float32 vs bfloat16 compute (`model.dtype`), VAE and DCGAN, one run.

    python -m benchmarks.bf16_step [--steps=200] [--batch=128]

VAE 784-512-20 (tanh MLP, Bernoulli decoder, Adam) and DCGAN 32x32x3 (64 base channels, z 100,
one D and one G update, Adam), batch 128, random data already on the device. Parameters,
optimizer state and losses are float32 in both; bfloat16 is the compute dtype of the networks
(gm_jax.nn.precision). Prints ms/step for each and `bf16 speedup <x>` per model; on a CPU without
bfloat16 matrix units the bfloat16 step is expected to be slower.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np


def _vae_cfg(dtype: str, batch: int):
    cfg = ml_collections.ConfigDict(
        dict(
            model=dict(latent_dim=20, hidden=(512,), activation="tanh", beta=1.0, dtype=dtype),
            optim=dict(name="adam", lr=1e-3, ema_decay=0.0),
            data=dict(shape=(784,)),
        )
    )
    x = (np.random.default_rng(0).random((batch, 784)) < 0.3).astype(np.float32)
    return cfg, {"x": x}


def _dcgan_cfg(dtype: str, batch: int):
    from gm_jax import load_config

    cfg = load_config("dcgan")
    cfg.model.update(channels=64, z_dim=100, dtype=dtype)
    cfg.data.update(shape=(32, 32, 3), kind="image", name="random")
    x = np.random.default_rng(0).random((batch, 32, 32, 3), dtype=np.float32)
    return cfg, {"x": x}


def time_step(fam, cfg, batch: dict, steps: int, warmup: int = 5) -> tuple[float, dict]:
    """(ms per step, last metrics) of `fam.train_step` compiled with a donated state, on `batch`
    placed on the default device once."""
    batch_dev = jax.device_put({k: jnp.asarray(v) for k, v in batch.items()})
    state = jax.jit(lambda k: fam.init(k, cfg, batch_dev))(jax.random.key(0))
    step = jax.jit(lambda s, b: fam.train_step(s, b, jax.random.key(1), cfg), donate_argnums=0)
    for _ in range(warmup):
        state, m = step(state, batch_dev)
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, batch_dev)
    jax.block_until_ready(m)
    return 1000 * (time.perf_counter() - t) / steps, m


def ms_per_step(model: str, dtype: str, steps: int, batch: int) -> tuple[float, float]:
    """(ms per step, loss after the timed steps) for `model` at compute dtype `dtype`."""
    from gm_jax.registry import get_family

    cfg, batch_np = (_vae_cfg if model == "vae" else _dcgan_cfg)(dtype, batch)
    ms, m = time_step(get_family(model), cfg, batch_np, steps)
    return ms, float(m["loss"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}", flush=True)
    for model in ("vae", "dcgan"):
        f32, _ = ms_per_step(model, "float32", args.steps, args.batch)
        bf16, _ = ms_per_step(model, "bfloat16", args.steps, args.batch)
        print(f"{model} batch {args.batch}: float32 {f32:.3f} ms/step, bfloat16 {bf16:.3f} ms/step", flush=True)
        print(f"{model} bf16 speedup {f32 / bf16:.2f}", flush=True)


if __name__ == "__main__":
    main()
