"""β-VAE at paper scale (Higgins et al., 2017): the full 64x64 dSprites, β = 4, 10 latents.

Launch:  python -m experiments.run --config=experiments/configs/beta_vae_dsprites.py
         (procedural dSprites, generated here; `--config.data.name=tfds:dsprites` reads TFDS's copy of
         the released set for users who have it prepared)

Paper setup (dSprites, appendix): MLP encoder 4096-1200-1200-2x10 (ReLU), decoder 10-1200-1200-1200-
4096 (tanh), Bernoulli decoder, β = 4, Adagrad lr 1e-2, batch 64. Burgess et al.'s capacity
annealing (`--config.model.capacity_max=25 --config.model.capacity_steps=100000`) and convolutional
networks (`--config.model.architecture=conv`: 4 conv layers of 32 channels, 4x4 stride 2, then 256-unit
dense layers) are options of the same config.

Paper number: β-VAE metric 99.23 +- 0.1% (VAE 61.58%, InfoGAN 73.5%) on dSprites, a linear
classifier on mean |z1 - z2| over pairs sharing one factor. Not measured here (it needs hours on a GPU).
"""

import ml_collections

from experiments.configs import beta_vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: arg: None for the paper run, "smoke" for a tiny run of the same config."""
    cfg = beta_vae.get_config(arg)
    cfg.data.name = "dsprites"
    if arg != "smoke":
        cfg.model.update(hidden=(1200, 1200), decoder_hidden=(1200, 1200, 1200))
        cfg.train.update(num_steps=300_000, log_every=1000, eval_every=50_000, ckpt_every=10_000, sample_every=50_000)
        cfg.eval.update(beta_vae_train=10000, beta_vae_eval=5000, factor_vae_train=10000, factor_vae_eval=5000)
    return cfg
