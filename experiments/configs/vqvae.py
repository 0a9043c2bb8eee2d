"""VQ-VAE (van den Oord et al., 2017) on the embedded 8x8 digits: the CPU default run (first stage).

Launch:  python -m experiments.run --model=vqvae

Model: DeepMind's example layout (`model.layout=sonnet`: the first strided convolution at half
width, a 3x3 convolution after the strided ones, a 1x1 convolution to the codes; the paper's own
layout, `model.layout=paper`, is the paper-scale config's) scaled to 8x8 images: two 4x4 stride-2
convolutions (8x8 -> a 2x2 code grid), 2 residual blocks of 64 channels (32 in the residual
branch), K = 64 codes of 16 dimensions, commitment 0.25, EMA codebook (decay 0.99), dead-code
restarts every 500 steps, Bernoulli decoder on dynamically binarised digits, Adam 2e-4 (the
paper's), batch 100.

Measured (seed 0, this command, 5000 steps, 3 min 6 s on 2 CPU cores with the final evaluation):
test reconstruction 11.98 nats (0.270 bits/dim); bound under the factorised code-usage prior 28.51
nats = 0.643 bits/dim (prior 16.53 nats); per-step perplexity 57 of 64 codes; samples digits-FID
3.12, precision 0.35, recall 0.93. Second stage (`--config.train.init_from=<that workdir>`, 5000
steps, 2 min): prior 15.60 nats, bound 27.58 nats = 0.622 bits/dim, samples digits-FID 1.34,
precision 0.49, recall 0.97. Paper: CIFAR-10 4.67 bits/dim with its PixelCNN prior
(`vqvae_cifar10.py`).
"""

import ml_collections

from experiments.configs import vae
from experiments.configs.platform import add_platform_keys


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: arg: None for the default run, "smoke" for a 3-step tiny run."""
    cfg = vae.get_config(arg)
    cfg.model_name = "vqvae"
    cfg.model = ml_collections.ConfigDict(
        dict(
            num_codes=64,
            code_dim=16,
            hidden=64,
            res_blocks=2,
            res_hidden=32,
            downsample=2,
            commitment=0.25,
            ema=True,
            ema_decay=0.99,
            ema_eps=1e-5,
            restart_every=500,
            restart_threshold=0.01,
            decoder="bernoulli",
            layout="sonnet",
        )
    )
    cfg.optim.update(name="adam", lr=2e-4)
    # The second stage (--config.train.init_from=<this run's workdir>): a causal transformer over the
    # code grid; the model section above must stay the first stage's.
    cfg.prior = ml_collections.ConfigDict(dict(layers=2, width=128, heads=4))
    cfg.train.update(num_steps=5000, eval_every=2500, ckpt_every=2500, sample_every=2500)
    cfg.eval = ml_collections.ConfigDict(
        dict(
            batch_size=100,
            num_examples=-1,
            num_samples=1000,
            sample_batch=500,
            features="auto",
            feature_cache="",
            kid_subset=100,
        )
    )
    cfg.eval_periodic = ml_collections.ConfigDict(dict(num_samples=0))
    if arg == "smoke":
        cfg.model.update(num_codes=8, code_dim=4, hidden=8, res_blocks=1, res_hidden=4, restart_every=2)
        cfg.prior.update(layers=1, width=16, heads=2)
        cfg.train.update(
            num_steps=3, batch_size=16, log_every=1, eval_every=0, ckpt_every=2, sample_every=0, num_samples=16
        )
        cfg.eval.update(batch_size=16, num_examples=32, num_samples=64, sample_batch=32)
    return add_platform_keys(cfg)
