"""DCGAN train step: gm_jax (jit, the family's own step) vs the same nets and losses in PyTorch eager.

32x32x3 images, batch 64, z 100; G 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3 (transposed 4x4
stride-2 convolutions, BatchNorm, ReLU, tanh); D 32 -> 16x16x64 -> 8x8x128 -> 4x4x256 -> logit (4x4
stride-2 convolutions, BatchNorm but on the input layer, LeakyReLU 0.2); Adam 2e-4, beta1 0.5; one
D update (real and fake batches) and one non-saturating G update per step; random batches already
in memory for both.

    python -m benchmarks.dcgan_step [--steps=20]

Prints ms/step for each way of computing G's transposed convolutions (`model.conv_method`: the
sub-pixel 2x2 convolution, the same as one matrix product, and XLA's conv_transpose) and for torch,
the compile time of each, and last `speedup <ratio> vs torch-eager` for the default method (matmul).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

B, S, Z, CH = 64, 32, 100, 64


def jax_ms_per_step(x: np.ndarray, steps: int, method: str) -> tuple[float, float]:
    from gm_jax import load_config
    from gm_jax.models import gan

    cfg = load_config("dcgan")
    cfg.model.update(conv_method=method, channels=CH, z_dim=Z)
    cfg.data.update(shape=(S, S, 3), kind="image", name="random")
    batch = {"x": jnp.asarray(x)}
    state = jax.jit(lambda k: gan.init(k, cfg, batch))(jax.random.key(0))
    step = jax.jit(lambda s, b, k: gan.train_step(s, b, k, cfg), donate_argnums=0)
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

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(Z, 4 * 4 * 4 * CH, bias=False)
            self.bn0 = nn.BatchNorm2d(4 * CH)
            self.net = nn.Sequential(
                nn.ConvTranspose2d(4 * CH, 2 * CH, 4, 2, 1, bias=False),
                nn.BatchNorm2d(2 * CH),
                nn.ReLU(),
                nn.ConvTranspose2d(2 * CH, CH, 4, 2, 1, bias=False),
                nn.BatchNorm2d(CH),
                nn.ReLU(),
                nn.ConvTranspose2d(CH, 3, 4, 2, 1),
                nn.Tanh(),
            )

        def forward(self, z):
            h = torch.relu(self.bn0(self.proj(z).view(-1, 4 * CH, 4, 4)))
            return self.net(h)

    d = nn.Sequential(
        nn.Conv2d(3, CH, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(CH, 2 * CH, 4, 2, 1, bias=False),
        nn.BatchNorm2d(2 * CH),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * CH, 4 * CH, 4, 2, 1, bias=False),
        nn.BatchNorm2d(4 * CH),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4 * CH, 1),
    )
    g = G()
    for mod in list(g.modules()) + list(d.modules()):
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(mod.weight, 0.0, 0.02)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() * 2 - 1
    bce = nn.functional.binary_cross_entropy_with_logits
    ones, zeros = torch.ones(B), torch.zeros(B)

    def step():
        fake = g(torch.rand(B, Z) * 2 - 1)
        loss_d = bce(d(real).view(-1), ones) + bce(d(fake.detach()).view(-1), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        fake = g(torch.rand(B, Z) * 2 - 1)
        loss_g = bce(d(fake).view(-1), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return loss_g

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

    x = np.random.default_rng(0).random((B, S, S, 3)).astype(np.float32)
    print(
        f"DCGAN step {S}x{S}x3, batch {B}, one D + one G update, Adam; jax {jax.__version__} on "
        f"{jax.devices()[0].platform}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    rows = {}
    for method in ("subpixel", "matmul", "xla"):
        rows[method] = jax_ms_per_step(x, args.steps, method)
    t = torch_ms_per_step(x, args.steps)
    print(f"{'impl':<34}{'ms/step':>10}{'compile s':>11}")
    for method, (ms, c) in rows.items():
        print(f"{'gm_jax, conv_method=' + method:<34}{ms:>10.1f}{c:>11.1f}")
    print(f"{'torch eager':<34}{t:>10.1f}")
    default = rows["matmul"][0]  # the GAN family's default conv_method
    print(f"speedup {t / default:.2f}x vs torch-eager")


if __name__ == "__main__":
    main()
