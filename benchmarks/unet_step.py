"""DDPM U-Net train step: gm_jax (jit, the family's own step) vs the same network and loss in PyTorch eager.

16x16x3 images, batch 64; the U-Net of `gm_jax.nn.unet` at 64 base channels, multipliers (1, 2, 2),
2 residual blocks per resolution, self-attention at 8x8, dropout 0.1 (6.47M parameters); L_simple
at uniform random t of the linear schedule (T = 1000); gradient clipping at norm 1, Adam 2e-4 and an
EMA of the weights (0.9999) in both. Random batches already in memory for both.

    python -m benchmarks.unet_step [--steps=10] [--size=16] [--batch=64]

Prints ms/step and compile time for gm_jax, ms/step for torch, and last
`speedup <ratio> vs torch-eager`.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

CH, MULT, BLOCKS, DROPOUT = 64, (1, 2, 2), 2, 0.1


def _cfg(size: int):
    from gm_jax import load_config

    cfg = load_config("ddpm")
    cfg.model.update(ch=CH, ch_mult=MULT, num_res_blocks=BLOCKS, attn_resolutions=(size // 2,), dropout=DROPOUT)
    cfg.optim.update(ema_decay=0.9999, grad_clip=1.0, warmup_steps=0)
    cfg.data.update(shape=(size, size, 3), kind="image", name="random", levels=256)
    return cfg


def jax_ms_per_step(x: np.ndarray, steps: int) -> tuple[float, float, int]:
    from gm_jax.models import ddpm

    cfg = _cfg(x.shape[1])
    batch = {"x": jnp.asarray(x)}
    state = jax.jit(lambda k: ddpm.init(k, cfg, batch))(jax.random.key(0))
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
    step = jax.jit(lambda s, b, k: ddpm.train_step(s, b, k, cfg), donate_argnums=0)
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
    return 1000 * (time.perf_counter() - t) / steps, compile_s, n_params


def torch_ms_per_step(x: np.ndarray, steps: int) -> tuple[float, int]:
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)
    size = x.shape[1]

    def groups(c):
        g = max(1, min(32, c // 4))
        while c % g:
            g -= 1
        return g

    def temb_of(t, dim):
        half = dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        args = t.float()[:, None] * freqs[None]
        return torch.cat([torch.sin(args), torch.cos(args)], -1)

    class Res(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.n1, self.c1 = nn.GroupNorm(groups(cin), cin, eps=1e-6), nn.Conv2d(cin, cout, 3, padding=1)
            self.t = nn.Linear(4 * CH, cout)
            self.n2, self.c2 = nn.GroupNorm(groups(cout), cout, eps=1e-6), nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
            self.drop = nn.Dropout(DROPOUT)

        def forward(self, x, temb):
            h = self.c1(F.silu(self.n1(x))) + self.t(F.silu(temb))[:, :, None, None]
            h = self.c2(self.drop(F.silu(self.n2(h))))
            return self.skip(x) + h

    class Attn(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.n = nn.GroupNorm(groups(c), c, eps=1e-6)
            self.q, self.k, self.v, self.o = (nn.Linear(c, c) for _ in range(4))

        def forward(self, x):
            b, c, h, w = x.shape
            y = self.n(x).flatten(2).transpose(1, 2)  # [b, hw, c]
            att = torch.softmax(self.q(y) @ self.k(y).transpose(1, 2) / math.sqrt(c), -1)
            return x + self.o(att @ self.v(y)).transpose(1, 2).reshape(b, c, h, w)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.t1, self.t2 = nn.Linear(CH, 4 * CH), nn.Linear(4 * CH, 4 * CH)
            self.cin = nn.Conv2d(3, CH, 3, padding=1)
            self.down, chans, c, res = nn.ModuleList(), [CH], CH, size
            for i, m in enumerate(MULT):
                for _ in range(BLOCKS):
                    self.down.append(
                        nn.ModuleList([Res(c, CH * m), Attn(CH * m) if res == size // 2 else nn.Identity()])
                    )
                    c = CH * m
                    chans.append(c)
                if i != len(MULT) - 1:
                    self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                    chans.append(c)
                    res //= 2
            self.mid = nn.ModuleList([Res(c, c), Attn(c), Res(c, c)])
            self.up = nn.ModuleList()
            for i, m in reversed(list(enumerate(MULT))):
                for _ in range(BLOCKS + 1):
                    cs = chans.pop()
                    self.up.append(
                        nn.ModuleList([Res(c + cs, CH * m), Attn(CH * m) if res == size // 2 else nn.Identity()])
                    )
                    c = CH * m
                if i != 0:
                    self.up.append(nn.Conv2d(c, c, 3, padding=1))
                    res *= 2
            self.nout, self.cout = nn.GroupNorm(groups(c), c, eps=1e-6), nn.Conv2d(c, 3, 3, padding=1)

        def forward(self, x, t):
            temb = self.t2(F.silu(self.t1(temb_of(t, CH))))
            hs = [self.cin(x)]
            for mod in self.down:
                if isinstance(mod, nn.ModuleList):
                    hs.append(mod[1](mod[0](hs[-1], temb)))
                else:
                    hs.append(mod(hs[-1]))
            h = self.mid[2](self.mid[1](self.mid[0](hs[-1], temb)), temb)
            for mod in self.up:
                if isinstance(mod, nn.ModuleList):
                    h = mod[1](mod[0](torch.cat([h, hs.pop()], 1), temb))
                else:
                    h = mod(F.interpolate(h, scale_factor=2, mode="nearest"))
            return self.cout(F.silu(self.nout(h)))

    net = UNet()
    ema = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    betas = np.linspace(1e-4, 0.02, 1000)
    ac = torch.tensor(np.cumprod(1 - betas), dtype=torch.float32)
    x0 = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() * 2 - 1
    b = x0.shape[0]

    def step():
        t = torch.randint(0, 1000, (b,))
        eps = torch.randn_like(x0)
        a = ac[t][:, None, None, None]
        loss = F.mse_loss(net(a.sqrt() * x0 + (1 - a).sqrt() * eps, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            params = list(net.parameters())
            torch._foreach_mul_(ema, 0.9999)
            torch._foreach_add_(ema, params, alpha=1 - 0.9999)
        return loss

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    return 1000 * (time.perf_counter() - t0) / steps, sum(p.numel() for p in net.parameters())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    import torch

    x = np.random.default_rng(0).random((args.batch, args.size, args.size, 3)).astype(np.float32)
    ms, compile_s, n = jax_ms_per_step(x, args.steps)
    t, n_torch = torch_ms_per_step(x, args.steps)
    print(
        f"DDPM U-Net step {args.size}x{args.size}x3, batch {args.batch}, {n / 1e6:.2f}M params (torch "
        f"{n_torch / 1e6:.2f}M); jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    print(f"{'impl':<20}{'ms/step':>10}{'compile s':>11}")
    print(f"{'gm_jax':<20}{ms:>10.1f}{compile_s:>11.1f}")
    print(f"{'torch eager':<20}{t:>10.1f}")
    print(f"speedup {t / ms:.2f}x vs torch-eager")


if __name__ == "__main__":
    main()
