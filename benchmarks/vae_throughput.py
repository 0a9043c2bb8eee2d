"""VAE train-step throughput: gm_jax (jit) vs the same network and loss in PyTorch eager, one run.

Network 784-512-20 (tanh MLP encoder/decoder, Gaussian q(z|x), Bernoulli decoder), batch 128, Adam,
one reparameterised sample per example, on random binary batches already in memory for both.

    python -m benchmarks.vae_throughput [--steps=1000] [--rounds=5] [--steps_per_call=1]

Prints a table, the FLOP floor of the step on this machine (measured matmul peak), and last
`speedup <ratio> vs torch-eager`.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

D, H, Z, B = 784, 512, 20, 128


def flops_per_step() -> float:
    """Dense-layer FLOPs of one train step: forward 2*MACs, backward twice the forward."""
    macs = D * H + H * 2 * Z + Z * H + H * D
    return 3 * 2 * macs * B


def matmul_peak_gflops() -> float:
    """Best sustained float32 GEMM rate of this machine through XLA (the floor's denominator)."""
    a = jnp.ones((1024, 1024), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(10):
            r = f(a)
        r.block_until_ready()
        best = max(best, 10 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9)
    return best


def jax_runner(x: np.ndarray, k: int = 1):
    """A function running n train steps of gm_jax's VAE (compiled, warmed up), k per compiled call
    (the loop's train.steps_per_call; here the same batch k times); returns steps/s."""
    from gm_jax.core.steps import scan_steps
    from gm_jax.models import vae

    cfg = ml_collections.ConfigDict(
        dict(
            model=dict(latent_dim=Z, hidden=(H,), activation="tanh", beta=1.0),
            optim=dict(name="adam", lr=1e-3, ema_decay=0.0),
            data=dict(shape=(D,)),
        )
    )
    batch = {"x": jnp.asarray(x)}
    box = [vae.init(jax.random.key(0), cfg, batch)]
    key = jax.random.key(1)
    if k == 1:
        step = jax.jit(lambda s, b, key: vae.train_step(s, b, key, cfg), donate_argnums=0)
    else:
        batch = {"x": jnp.asarray(np.broadcast_to(x, (k,) + x.shape))}
        step = jax.jit(lambda s, b, key: scan_steps(vae.train_step)(s, b, key, cfg), donate_argnums=0)
    for _ in range(3):
        box[0], m = step(box[0], batch, key)
    jax.block_until_ready(m)

    def run(n: int) -> float:
        calls = max(1, n // k)
        t = time.perf_counter()
        for _ in range(calls):
            box[0], m = step(box[0], batch, key)
        jax.block_until_ready(m)
        return calls * k / (time.perf_counter() - t)

    return run


def torch_runner(x: np.ndarray):
    """A function running n train steps of the same VAE in PyTorch eager; returns steps/s."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, 2 * Z))
    dec = nn.Sequential(nn.Linear(Z, H), nn.Tanh(), nn.Linear(H, D))
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    xb = torch.from_numpy(x)

    def step():
        mu, logvar = enc(xb).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = dec(z)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)
        loss = (rec + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(10):
        step()

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            loss = step()
        float(loss)
        return n / (time.perf_counter() - t)

    return run


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1000, help="steps per round and implementation")
    p.add_argument("--rounds", type=int, default=5, help="rounds, the implementations interleaved; medians")
    p.add_argument("--steps_per_call", type=int, default=1, help="k train steps per compiled call (lax.scan)")
    args = p.parse_args()
    import torch

    x = (np.random.default_rng(0).random((B, D)) < 0.3).astype(np.float32)
    peak = matmul_peak_gflops()
    floor_sps = peak * 1e9 / flops_per_step()
    k = args.steps_per_call
    runners = {"gm_jax (jit)": jax_runner(x, 1)}
    if k > 1:
        runners[f"gm_jax k={k}"] = jax_runner(x, k)
    runners["torch eager"] = torch_runner(x)
    # Rounds interleave the implementations, so a slow phase of a shared machine hits all of them.
    rates = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            rates[name].append(run(args.steps))
    med = {name: float(np.median(v)) for name, v in rates.items()}
    print(
        f"VAE {D}-{H}-{Z}, batch {B}, Adam; jax {jax.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); medians of {args.rounds} interleaved rounds of {args.steps} steps"
    )
    print(f"{'impl':<14}{'steps/s':>10}{'ms/step':>10}{'% of FLOP floor':>18}")
    for name, sps in med.items():
        print(f"{name:<14}{sps:>10.1f}{1000 / sps:>10.2f}{100 * sps / floor_sps:>17.1f}%")
    print(
        f"FLOP floor: {flops_per_step() / 1e6:.0f} MFLOP/step at {peak:.1f} GFLOP/s matmul peak = "
        f"{floor_sps:.0f} steps/s"
    )
    best = f"gm_jax k={k}" if k > 1 else "gm_jax (jit)"
    if k > 1:
        print(f"k=1: speedup {med['gm_jax (jit)'] / med['torch eager']:.2f} vs torch-eager")
    print(f"speedup {med[best] / med['torch eager']:.2f} vs torch-eager")


if __name__ == "__main__":
    main()
