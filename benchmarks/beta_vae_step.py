"""64x64 convolutional β-VAE train step: gm_jax (jit, the family's own step) vs the same network and
loss in PyTorch eager.

Burgess et al.'s network: encoder 4 convolutions 4x4 stride 2 of 32 channels (64 -> 4), dense 256,
256, 2 x 10 latents; decoder dense 256, 256, 4x4x32, 4 transposed convolutions 4x4 stride 2 (32, 32,
32, 1); ReLU; Bernoulli decoder; loss -log p(x|z) + beta KL (beta 4), one z sample; Adam 1e-4; batch
64 of random binary 64x64x1 images already in memory.

    python -m benchmarks.beta_vae_step [--steps=20]

Prints ms/step for each way gm_jax computes the decoder's transposed convolutions
(`model.conv_method`), their compile times, torch's, and last `speedup <ratio> vs torch-eager` for
the family's default (matmul).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

B, S, Z, CH, H = 64, 64, 10, 32, 256


def jax_ms_per_step(x: np.ndarray, steps: int, method: str) -> tuple[float, float]:
    from gm_jax import load_config
    from gm_jax.models import vae

    cfg = load_config("beta_vae")
    cfg.model.update(
        architecture="conv", conv_channels=(CH,) * 4, conv_dense=(H, H), conv_method=method, latent_dim=Z, beta=4.0
    )
    cfg.optim.update(name="adam", lr=1e-4)
    cfg.data.update(shape=(S, S, 1), kind="image", name="random", train_size=737_280)
    batch = {"x": jnp.asarray(x)}
    state = jax.jit(lambda k: vae.init(k, cfg, batch))(jax.random.key(0))
    step = jax.jit(lambda s, b, k: vae.train_step(s, b, k, cfg), donate_argnums=0)
    key = jax.random.key(1)
    t = time.perf_counter()
    state, m = step(state, batch, key)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t
    for _ in range(3):
        state, m = step(state, batch, key)
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, batch, key)
    jax.block_until_ready(m)
    return 1000 * (time.perf_counter() - t) / steps, compile_s


def torch_ms_per_step(x: np.ndarray, steps: int) -> float:
    import torch
    from torch import nn

    torch.manual_seed(0)
    enc = nn.Sequential(
        nn.Conv2d(1, CH, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(CH, CH, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(CH, CH, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(CH, CH, 4, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(CH * 4 * 4, H),
        nn.ReLU(),
        nn.Linear(H, H),
        nn.ReLU(),
        nn.Linear(H, 2 * Z),
    )
    dec = nn.Sequential(
        nn.Linear(Z, H),
        nn.ReLU(),
        nn.Linear(H, H),
        nn.ReLU(),
        nn.Linear(H, CH * 4 * 4),
        nn.ReLU(),
        nn.Unflatten(1, (CH, 4, 4)),
        nn.ConvTranspose2d(CH, CH, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(CH, CH, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(CH, CH, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(CH, 1, 4, 2, 1),
        nn.Flatten(),
    )
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-4)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    xf = xt.reshape(B, -1)

    def step():
        mu, logvar = enc(xt).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = dec(z)
        log_px = -nn.functional.binary_cross_entropy_with_logits(logits, xf, reduction="none").sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        loss = -(log_px - 4.0 * kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    return 1000 * (time.perf_counter() - t) / steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    import torch

    x = (np.random.default_rng(0).random((B, S, S, 1)) < 0.1).astype(np.float32)
    print(
        f"conv β-VAE step {S}x{S}x1, batch {B}, Adam; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    rows = {method: jax_ms_per_step(x, args.steps, method) for method in ("subpixel", "matmul", "xla")}
    t = torch_ms_per_step(x, args.steps)
    print(f"{'impl':<34}{'ms/step':>10}{'compile s':>11}")
    for method, (ms, c) in rows.items():
        print(f"{'gm_jax, conv_method=' + method:<34}{ms:>10.1f}{c:>11.1f}")
    print(f"{'torch eager':<34}{t:>10.1f}")
    print(f"speedup {t / rows['matmul'][0]:.2f}x vs torch-eager")


if __name__ == "__main__":
    main()
