"""What every GAN config shares: sections, training intervals, evaluation, the smoke and toy variants.

Not a model of its own: `gan.py`, `dcgan.py`, `wgan.py` and `wgan_gp.py` call `base` and set their
paper's settings. Point data (`--config.data.name=ring8_wgangp` and the other 2-D sets of
`gm_jax.data.points`) needs no other flag: the CLI then loads the config's `points` variant (`toy`
below plus each model's own `gan_toy.py` settings), `model.arch=auto` picks MLP nets
(`model.point_hidden`, noise of `model.point_z_dim`), and the evaluation reports mode coverage on
2500 samples.
"""

import ml_collections

from experiments.configs.platform import add_platform_keys


def base(name: str, arg: str | None) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model_name = name
    cfg.seed = 0
    cfg.model = ml_collections.ConfigDict({})
    cfg.optim = ml_collections.ConfigDict(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999, ema_decay=0.0, grad_clip=0.0))
    # Keys that differ for the discriminator (two-timescale setups); empty: the same as optim.
    cfg.optim_d = ml_collections.ConfigDict({})
    cfg.data = ml_collections.ConfigDict(dict(name="digits", data_dir="", binarize="none", image_size=0))
    cfg.train = ml_collections.ConfigDict(
        dict(
            num_steps=5000,
            batch_size=64,
            log_every=250,
            eval_every=1000,
            ckpt_every=2500,
            sample_every=2500,
            num_samples=64,
            max_to_keep=3,
            init_from="",
        )
    )
    cfg.eval = ml_collections.ConfigDict(
        dict(
            batch_size=256,
            num_examples=-1,
            num_samples=1000,
            sample_batch=500,
            features="auto",
            feature_cache="",
            kid_subset=100,
            mode_samples=2500,
            mode_min_count=1,
            parzen_samples=0,
        )
    )
    # Periodic evaluations: the same sample-quality stage on fewer samples (mode coverage on 2500).
    cfg.eval_periodic = ml_collections.ConfigDict(dict(num_samples=500, parzen_samples=0))
    cfg.sample = ml_collections.ConfigDict({})
    return add_platform_keys(cfg)


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
    cfg.train.update(
        num_steps=4, batch_size=16, log_every=1, eval_every=0, ckpt_every=2, sample_every=0, num_samples=16
    )
    cfg.eval.update(batch_size=16, num_examples=32, num_samples=64, sample_batch=32, mode_samples=64)
    if cfg.eval.parzen_samples:
        cfg.eval.parzen_samples = 64
    return cfg
