"""Mode coverage of gan, wgan and wgan_gp on the WGAN-GP 2-D sets: median of 3 seeds.

    python -m benchmarks.gan_2d [--steps=25000] [--seeds=0,1,2] [--models=gan,wgan,wgan_gp]
        [--sets=ring8_wgangp,grid25_wgangp,swissroll] [--out=DIR]

Each run is the model's `points` variant on the set (`load_config(model, data=set)`: the WGAN-GP
authors' `gan_toy.py` settings, see `experiments/configs/gan_base.py`), `train.num_steps`
discriminator updates, and the evaluation's 2500 samples (VEEGAN/PacGAN protocol: a sample is high
quality within 3 sigma of its nearest mode; a mode is covered with at least one). Prints one row per
model and set with the median (and the per-seed values) of modes covered, high-quality fraction and
KL of the mode histogram to uniform; the swiss roll has no modes and is judged by its picture
(`--out` keeps every run's workdir, whose samples/step_N.png draws the samples over the data).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from gm_jax import load_config
from gm_jax import train as loop

SETS = ("ring8_wgangp", "grid25_wgangp", "swissroll")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=25_000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--models", default="gan,wgan,wgan_gp")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", default="", help="keep each run's workdir under this directory")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for model in a.models.split(","):
        for data in a.sets.split(","):
            got = []
            for seed in seeds:
                cfg = load_config(model, data=data)
                cfg.seed = seed
                cfg.train.update(num_steps=a.steps, log_every=0, ckpt_every=0, sample_every=0)
                t0 = time.perf_counter()
                with tempfile.TemporaryDirectory() as tmp:
                    wd = os.path.join(a.out, f"{model}_{data}_s{seed}") if a.out else os.path.join(tmp, "w")
                    r = loop.train(model, cfg, wd)
                secs = time.perf_counter() - t0
                ev = r.eval
                got.append(
                    (ev.get("modes_covered", np.nan), ev.get("modes_high_quality", np.nan), ev.get("modes_kl", np.nan))
                )
                total = ev.get("modes_total", 0)
                print(
                    f"{model:8s} {data:14s} seed {seed}: modes {got[-1][0]:.0f}/{total:.0f} high-quality "
                    f"{got[-1][1]:.3f} KL {got[-1][2]:.3f} ({secs:.0f} s)",
                    flush=True,
                )
            g = np.array(got)
            rows.append((model, data, *np.median(g, 0), g))
    print(f"\n{'model':8s} {'set':14s} {'modes (median)':>14s} {'high-quality':>12s} {'KL':>7s}   per seed (modes)")
    for model, data, m, hq, kl, g in rows:
        per = " ".join(f"{v:.0f}" for v in g[:, 0])
        print(f"{model:8s} {data:14s} {m:14.0f} {hq:12.3f} {kl:7.3f}   {per}")


if __name__ == "__main__":
    main()
