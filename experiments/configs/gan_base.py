"""What every GAN config shares: sections, training intervals, evaluation, the smoke and toy variants.

Not a model of its own: `gan.py`, `dcgan.py`, `wgan.py` and `wgan_gp.py` call `base` and set their
paper's settings. Point data (`--config.data.name=ring8_wgangp` and the other 2-D sets of
`gm_jax.data.points`) needs no other flag: the CLI then loads the config's `points` variant (`toy`
below plus each model's own `gan_toy.py` settings), `model.arch=auto` picks MLP nets
(`model.point_hidden`, noise of `model.point_z_dim`), and the evaluation reports mode coverage on
2500 samples.
"""

import ml_collections

from experiments.configs import base as shared


def base(name: str, arg: str | None) -> ml_collections.ConfigDict:
    del arg
    cfg = shared.base(
        name,
        optim=dict(lr=2e-4, b1=0.5),
        train=dict(batch_size=64, eval_every=1000),
        eval=dict(mode_samples=2500, mode_min_count=1, parzen_samples=0),
        # Periodic evaluations: the same sample-quality stage on fewer samples (mode coverage on 2500).
        eval_periodic=dict(num_samples=500, parzen_samples=0),
    )
    # Keys that differ for the discriminator (two-timescale setups); empty: the same as optim.
    cfg.optim_d = ml_collections.ConfigDict({})
    return cfg


def toy(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The WGAN-GP authors' 2-D toy setting (`gan_toy.py`) every GAN shares: 8 Gaussians by default,
    minibatch 256, ReLU MLPs of 3 x 512 units in both nets (He-uniform hidden layers, Glorot-uniform
    output, as its tflib `Linear`), 2-D Gaussian noise; 25 000 discriminator updates and mode
    coverage on 2500 samples at the end (`benchmarks.gan_2d` measures where the runs stand)."""
    cfg.data.update(name="ring8_wgangp", image_size=0)
    cfg.model.update(point_hidden=(512, 512, 512), point_z_dim=2, noise="gaussian")
    cfg.train.update(num_steps=25_000, batch_size=256, log_every=1000, eval_every=0, ckpt_every=5000, sample_every=5000)
    cfg.eval.update(num_samples=0, parzen_samples=0)
    cfg.eval_periodic.update(num_samples=0, parzen_samples=0)
    return cfg


def smoke(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A few steps of tiny nets (8x8 images, 8 channels) for tests."""
    cfg.model.update(z_dim=8, channels=8, g_hidden=(16,), d_hidden=(16,), point_hidden=(16, 16))
    cfg.data.image_size = 0
    shared.smoke(cfg, mode_samples=64)
    cfg.train.num_steps = 4
    if cfg.eval.parzen_samples:
        cfg.eval.parzen_samples = 64
    return cfg
