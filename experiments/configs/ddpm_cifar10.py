"""DDPM on CIFAR-10 at the paper's scale (Ho et al., 2020, section 4 and appendix B).

Launch (needs CIFAR-10 prepared for TFDS under data_dir):
    python -m experiments.run --config=experiments/configs/ddpm_cifar10.py --config.data.data_dir=<tfds dir>

The paper's model: T = 1000, linear betas 1e-4 ... 0.02, the 35.7M-parameter U-Net (128 base
channels, multipliers (1, 2, 2, 2), 2 residual blocks per resolution, self-attention at 16x16,
GroupNorm, dropout 0.1, sinusoidal time embedding), L_simple, Adam lr 2e-4 with 5000 warm-up steps
and gradient clipping at 1, batch 128, EMA 0.9999, random horizontal flips, 800k steps,
sigma_t^2 = beta_t.

Paper numbers (Table 1): FID 3.17 and Inception score 9.46 (50k samples against the training set,
Inception-v3 features), test NLL <= 3.75 bits/dim (the full bound over 256 levels: `vlb_bpd`).
Protocol: this repo has no Inception network (no weights can be downloaded here), so
`eval.features=auto` skips the image metrics on CIFAR-10; register an Inception extractor in
`gm_jax.metrics.sample_quality.EXTRACTORS` and set eval.features to report FID/IS comparable to the
paper's. DDIM (Song et al. 2020) on the same model: --config.sample.sampler=ddim with
sample.steps 50 and sample.spacing quadratic gives their FID 4.67 setting (eta 0).
"""

from experiments.configs import ddpm


def get_config(arg: str | None = None):
    cfg = ddpm.get_config(None)
    cfg.model.update(
        ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), dropout=0.1, random_flip=True
    )
    cfg.optim.update(lr=2e-4, ema_decay=0.9999, grad_clip=1.0, warmup_steps=5000)
    cfg.data.update(name="tfds:cifar10")
    cfg.train.update(num_steps=800_000, batch_size=128, log_every=1000, eval_every=100_000, ckpt_every=10_000)
    cfg.train.sample_every = 50_000
    cfg.eval.update(batch_size=256, num_samples=50_000, vlb_batch=25)
    if arg:
        raise ValueError(f"unknown config arg {arg!r}")
    return cfg
