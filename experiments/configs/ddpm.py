"""DDPM (Ho et al., 2020) on the embedded 8x8 digits: the CPU default run.

Launch:  python -m experiments.run --model=ddpm
         python -m experiments.run --model=ddpm --mode=sample --workdir=<run> --config.sample.sampler=ddim
         python -m experiments.run --config=experiments/configs/ddpm.py:smoke   (seconds)

The paper's diffusion: T = 1000, linear betas 1e-4 ... 0.02, eps-prediction, L_simple, data scaled to
[-1, 1], sigma_t^2 = beta_t, ancestral sampling with x0-hat clipped, EMA of the weights for
evaluation and sampling, Adam lr 2e-4, dropout, GroupNorm, sinusoidal time embedding, self-attention
at the paper's relative resolution (the second-highest: 16x16 of 32, here 4x4 of 8). Departures for
the CPU default: a U-Net of 32 base channels, multipliers (1, 2), one residual block per
resolution, dropout 0.1, EMA 0.999 (paper 0.9999 over 800k steps), batch 64, 5000 steps, no flips
(digits are not mirror-symmetric), 8x8 digits as stored (the data's 17 levels in the discretised
decoder).

Evaluation: the full bound (all T terms) in bits/dim over the 17 levels (uniform = 4.09), each term
group logged; periodic evaluations estimate the diffusion sum from 50 timesteps, one from each of
50 geometric strata (the first 12 timesteps exact; on the run below 2.98-3.01 over six draws). Sample
quality of 1000 samples by the configured sampler (`sample.sampler`: ancestral or ddim with
`sample.steps`, `sample.eta`, `sample.spacing`).

Expected (measured, seed 0, 5000 steps at 5.4-7.1 steps/s, 29 min 26 s on 2 CPU cores in all,
the cores shared with another run for part of it; about 16 min of it is the final evaluation: 999
bound terms for 297 digits and 1000 ancestral chains of 1000 steps): test vlb_bpd 2.996 (132.90
nats; L_T 2e-5, L_0 3e-7, diffusion terms by quarter of t 2.857/0.120/0.017/0.001: the bound sits
in the smallest t), mse_eps 0.088; ancestral samples (1000): digits-FID 0.56, KID -0.03,
precision/recall 0.76/0.90; DDIM 50 steps, eta 0 (`--mode=eval --config.sample.sampler=ddim`, 61 s
with a 50-term bound): FID 0.79, KID -0.03, precision/recall 0.68/0.93. Held-out real digits
(297): FID 1.77.
"""

import ml_collections

from experiments.configs.base import base, smoke


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: arg: None for the default run, "smoke" for a 3-step tiny run."""
    cfg = base(
        "ddpm",
        model=dict(
            timesteps=1000,
            schedule="linear",
            beta_start=1e-4,
            beta_end=0.02,
            ch=32,
            ch_mult=(1, 2),
            num_res_blocks=1,
            attn_resolutions=(4,),
            dropout=0.1,
            random_flip=False,
        ),
        optim=dict(lr=2e-4, ema_decay=0.999, grad_clip=1.0, warmup_steps=500),
        train=dict(batch_size=64, log_every=500),
        eval=dict(batch_size=300, vlb_terms=0, vlb_batch=50, clip_denoised=True),
        eval_periodic=dict(vlb_terms=50, num_samples=0),
        # Sampling options: may change at --mode=sample / --mode=eval on a finished workdir.
        sample=dict(sampler="ancestral", variance="beta", steps=50, eta=0.0, spacing="uniform", clip_denoised=True),
    )
    if arg == "smoke":
        cfg.model.update(timesteps=20, ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(), dropout=0.1)
        cfg.optim.update(warmup_steps=0)
        smoke(cfg, vlb_batch=10)
        cfg.sample.steps = 5
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
