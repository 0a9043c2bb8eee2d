"""Mode coverage of gan, wgan and wgan_gp on the WGAN-GP 2-D sets: median of 3 seeds.

    python -m benchmarks.gan_2d [--steps=4000] [--seeds=0,1,2] [--models=gan,wgan,wgan_gp]

Each run is the model's own config with `--config.data.name=<set>` (WGAN-GP's toy nets for every
model, the model's own losses, optimizer and schedule), `train.num_steps` discriminator updates and
the evaluation's 2500 samples (VEEGAN/PacGAN protocol: a sample is high quality within 3 sigma of
its nearest mode; a mode is covered with at least one). Prints one row per model and set with the
median (and the three values) of modes covered, high-quality fraction and KL of the mode histogram
to uniform.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

from gm_jax import load_config
from gm_jax.core import loop

SETS = ("ring8_wgangp", "grid25_wgangp")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--models", default="gan,wgan,wgan_gp")
    ap.add_argument("--sets", default=",".join(SETS))
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for model in a.models.split(","):
        for data in a.sets.split(","):
            got = []
            for seed in seeds:
                cfg = load_config(model)
                cfg.seed = seed
                cfg.data.name = data
                cfg.train.update(num_steps=a.steps, log_every=0, ckpt_every=0, sample_every=0)
                cfg.eval.parzen_samples = 0
                with tempfile.TemporaryDirectory() as wd:
                    r = loop.train(model, cfg, wd)
                got.append((r.eval["modes_covered"], r.eval["modes_high_quality"], r.eval["modes_kl"]))
                print(
                    f"{model:8s} {data:14s} seed {seed}: modes {got[-1][0]:.0f}/{r.eval['modes_total']:.0f} "
                    f"high-quality {got[-1][1]:.3f} KL {got[-1][2]:.3f}",
                    flush=True,
                )
            g = np.array(got)
            rows.append((model, data, *np.median(g, 0), g))
    print(f"\n{'model':8s} {'set':14s} {'modes (median)':>14s} {'high-quality':>12s} {'KL':>7s}   per seed (modes)")
    for model, data, m, hq, kl, g in rows:
        print(f"{model:8s} {data:14s} {m:14.0f} {hq:12.3f} {kl:7.3f}   {' '.join(f'{v:.0f}' for v in g[:, 0])}")


if __name__ == "__main__":
    main()
