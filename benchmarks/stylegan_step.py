"""StyleGAN2 train step: gm_jax (jit, the family's own step) vs the same nets and losses in PyTorch eager.

32x32x3 images, batch 32, z = w = 128, mapping network of 8 equalised layers, 64 feature maps at
every resolution; G: learned 4x4 constant, per layer a modulated, demodulated 3x3 convolution (4x4
stride-2 transposed at each upsampling), noise with a learned scale, bias, LeakyReLU 0.2, a modulated
1x1 toRGB; style mixing with probability 0.9 and the tracked w average; D: 1x1 fromRGB, per resolution
a 3x3 and a 4x4 stride-2 convolution, minibatch standard deviation, 3x3 convolution, dense, logit.
One step: one D update (non-saturating logistic loss with R1, gamma 1, on every update: the double
backward pass) and one G update, Adam lr 0.002 beta (0, 0.99), EMA of G; random batches in memory.
The torch side demodulates the transposed convolution per output channel over its 4x4 taps, gm_jax
per output phase (the same multiply-adds).

    python -m benchmarks.stylegan_step [--steps=10]

Prints ms/step for gm_jax with every convolution as a matrix product (`model.conv_method=matmul`,
the default, which stays fast inside the lazy-R1 `lax.cond`) and with `lax.conv` ("subpixel"), the
same with lazy R1 every 16 steps (`model.r1_every=16`, averaged over 16 steps), torch eager, and last
`speedup <ratio> vs torch-eager` for the default method with R1 on every step.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import numpy as np

B, S, Z, F, MAP = 32, 32, 128, 64, 8
SQRT2 = math.sqrt(2)


def _cfg(method: str, r1_every: int):
    from gm_jax import load_config

    cfg = load_config("stylegan2")
    cfg.model.update(z_dim=Z, w_dim=Z, mapping_layers=MAP, fmap_base=F * S, fmap_max=F, r1_gamma=1.0, r1_every=r1_every)
    cfg.model.conv_method = method
    cfg.data.update(shape=(S, S, 3), kind="image", name="random", image_size=S)
    cfg.train.batch_size = B
    return cfg


def jax_ms_per_step(x: np.ndarray, steps: int, method: str, r1_every: int = 1) -> tuple[float, float]:
    from gm_jax.models import stylegan

    cfg = _cfg(method, r1_every)
    batch = {"x": jax.numpy.asarray(x)}
    state = jax.jit(lambda k: stylegan.init(k, cfg, batch))(jax.random.key(0))
    step = jax.jit(lambda s, b, k: stylegan.train_step(s, b, k, cfg), donate_argnums=0)
    key = jax.random.key(1)
    t = time.perf_counter()
    state, m = step(state, batch, key)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t
    for _ in range(2):
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
    from torch.nn import functional as fn

    torch.manual_seed(0)
    act = lambda h: fn.leaky_relu(h, 0.2)  # noqa: E731
    layers = 2 * int(math.log2(S)) - 2

    class EqLinear(nn.Module):
        def __init__(self, ci, co, gain=SQRT2, lr_mul=1.0, bias_init=0.0):
            super().__init__()
            self.w = nn.Parameter(torch.randn(co, ci) / lr_mul)
            self.b = nn.Parameter(torch.full((co,), bias_init / lr_mul))
            self.scale, self.lr_mul = gain * lr_mul / math.sqrt(ci), lr_mul

        def forward(self, h):
            return fn.linear(h, self.w * self.scale, self.b * self.lr_mul)

    class ModConv(nn.Module):
        def __init__(self, ci, co, k, up=False, demod=True):
            super().__init__()
            shape = (ci, co, 4, 4) if up else (co, ci, k, k)
            self.w = nn.Parameter(torch.randn(shape))
            self.affine = EqLinear(Z, ci, gain=1.0, bias_init=1.0)
            self.up, self.demod = up, demod
            self.gain = (math.sqrt(2) if k > 1 else 1.0) / math.sqrt((4 if up else k * k) * ci)

        def forward(self, h, w):
            s = self.affine(w)
            wt = self.w * self.gain
            h = h * s[:, :, None, None]
            if self.up:
                y = fn.conv_transpose2d(h, wt, stride=2, padding=1)
                sq = (wt**2).sum((2, 3)) / 4  # [Ci, Co]: each output pixel sees a quarter of the taps
            else:
                y = fn.conv2d(h, wt, padding=wt.shape[-1] // 2)
                sq = (wt**2).sum((2, 3)).t()
            if self.demod:
                y = y * torch.rsqrt((s**2) @ sq + 1e-8)[:, :, None, None]
            return y

    class Layer(nn.Module):
        def __init__(self, ci, co, up=False):
            super().__init__()
            self.conv = ModConv(ci, co, 3, up)
            self.noise_strength = nn.Parameter(torch.zeros(co))
            self.bias = nn.Parameter(torch.zeros(co))

        def forward(self, h, w):
            h = self.conv(h, w)
            noise = torch.randn(h.shape[0], 1, h.shape[2], h.shape[3])
            return act(h + noise * self.noise_strength[None, :, None, None] + self.bias[None, :, None, None])

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.mapping = nn.ModuleList([EqLinear(Z, Z, lr_mul=0.01) for _ in range(MAP)])
            self.const = nn.Parameter(torch.randn(1, F, 4, 4))
            mods = [Layer(F, F)]
            for _ in range(int(math.log2(S)) - 2):
                mods += [Layer(F, F, up=True), Layer(F, F)]
            self.layers = nn.ModuleList(mods)
            self.torgb = ModConv(F, 3, 1, demod=False)
            self.torgb_bias = nn.Parameter(torch.zeros(3))
            self.register_buffer("w_avg", torch.zeros(Z))

        def map(self, z):
            h = z * torch.rsqrt((z**2).mean(1, keepdim=True) + 1e-8)
            for layer in self.mapping:
                h = act(layer(h))
            return h

        def forward(self, n):
            w = self.map(torch.randn(n, Z))
            with torch.no_grad():
                self.w_avg.copy_(w.mean(0).lerp(self.w_avg, 0.995))
            ws = w[:, None].expand(n, layers, Z)
            if torch.rand(()) < 0.9:
                cross = int(torch.randint(1, layers, ()))
                w2 = self.map(torch.randn(n, Z))[:, None].expand(n, layers, Z)
                ws = torch.where(torch.arange(layers)[None, :, None] < cross, ws, w2)
            h = self.const.expand(n, -1, -1, -1)
            for i, layer in enumerate(self.layers):
                h = layer(h, ws[:, i])
            return self.torgb(h, ws[:, len(self.layers)]) + self.torgb_bias[None, :, None, None]

    class EqConv(nn.Module):
        def __init__(self, ci, co, k, down=False):
            super().__init__()
            self.w = nn.Parameter(torch.randn(co, ci, k, k))
            self.b = nn.Parameter(torch.zeros(co))
            self.scale = math.sqrt(2) / math.sqrt(k * k * ci)
            self.stride, self.pad = (2, 1) if down else (1, k // 2)

        def forward(self, h):
            return fn.conv2d(h, self.w * self.scale, self.b, stride=self.stride, padding=self.pad)

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.fromrgb = EqConv(3, F, 1)
            blocks = []
            for _ in range(int(math.log2(S)) - 2):
                blocks += [EqConv(F, F, 3), EqConv(F, F, 4, down=True)]
            self.blocks = nn.ModuleList(blocks)
            self.conv4 = EqConv(F + 1, F, 3)
            self.fc = EqLinear(16 * F, F)
            self.out = EqLinear(F, 1, gain=1.0)

        def forward(self, h):
            h = act(self.fromrgb(h))
            for block in self.blocks:
                h = act(block(h))
            g = 4
            y = h.reshape(g, -1, *h.shape[1:])
            y = ((y - y.mean(0)) ** 2).mean(0).add(1e-8).sqrt().mean((1, 2, 3)).repeat(g)
            h = torch.cat([h, y[:, None, None, None].expand(-1, 1, 4, 4)], 1)
            h = act(self.conv4(h))
            return self.out(act(self.fc(h.flatten(1))))[:, 0]

    g, d = G(), D()
    g_ema = [p.detach().clone() for p in g.parameters()]
    opt_g = torch.optim.Adam(g.parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8)
    real = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() * 2 - 1

    def step():
        with torch.no_grad():
            fake = g(B)
        r = real.detach().requires_grad_(True)
        real_logits = d(r)
        (grad,) = torch.autograd.grad(real_logits.sum(), r, create_graph=True)
        r1 = grad.square().sum((1, 2, 3)).mean()
        loss_d = fn.softplus(-real_logits).mean() + fn.softplus(d(fake)).mean() + 0.5 * r1
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = fn.softplus(-d(g(B))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for e, p in zip(g_ema, g.parameters(), strict=True):
                e.lerp_(p, 1 - 0.5 ** (B / 10_000))
        return loss_g

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    return 1000 * (time.perf_counter() - t) / steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    import torch

    x = np.random.default_rng(0).random((B, S, S, 3)).astype(np.float32)
    print(
        f"StyleGAN2 step {S}x{S}x3, batch {B}, z = w = {Z}, {F} feature maps, one D (R1 every step) + one G "
        f"update; jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    rows = {
        "conv_method=matmul": jax_ms_per_step(x, args.steps, "matmul"),
        "conv_method=subpixel": jax_ms_per_step(x, args.steps, "subpixel"),
        "matmul, lazy R1 every 16": jax_ms_per_step(x, 16, "matmul", 16),
    }
    t = torch_ms_per_step(x, args.steps)
    print(f"{'impl':<34}{'ms/step':>10}{'compile s':>11}")
    for name, (ms, c) in rows.items():
        print(f"{'gm_jax, ' + name:<34}{ms:>10.1f}{c:>11.1f}")
    print(f"{'torch eager':<34}{t:>10.1f}")
    print(f"speedup {t / rows['conv_method=matmul'][0]:.2f}x vs torch-eager")


if __name__ == "__main__":
    main()
