"""WGAN-GP (Gulrajani et al., 2017) on the embedded digits enlarged to 16x16, or on a 2-D toy set.

Launch:  python -m experiments.run --model=wgan_gp
         python -m experiments.run --model=wgan_gp --config.data.name=ring8_wgangp   (the `points` variant)

The paper's Algorithm 1: gradient penalty lambda = 10 on random interpolates of real and generated
examples, no weight clipping, n_critic = 5, Adam alpha 1e-4, beta1 0, beta2 0.9, minibatch 64; no
BatchNorm in the critic (`model.d_norm=none`; "layer" is the paper's suggested replacement), the
generator keeps it; noise N(0, I)^128. The nets are the DCGAN ones at this scale (4x4 kernels,
biases where no BatchNorm follows; the paper-scale config `wgan_gp_cifar10.py` builds the authors'
CIFAR-10 nets). `wasserstein` (logged every step) is -(critic loss without the penalty) =
E f(x) - E f(G(z)).

The `points` variant (loaded by the CLI when `data.name` is a 2-D set; `--config=...wgan_gp.py:points`)
is the authors' `gan_toy.py`: lambda 0.1 ("smaller lambda seems to help for toy tasks"), minibatch
256, Adam 1e-4 with beta = (0.5, 0.9), n_critic 5, 2-D Gaussian noise, ReLU MLPs of 3 x 512 in both
nets with tflib's initialisation; 25 000 critic updates (5000 generator updates; the authors ran
100 000 generator updates). Measured by `python -m benchmarks.gan_2d`: README.

The paper's number: CIFAR-10 Inception score 7.86 +- 0.07 with a ResNet (6.58 for its DCGAN-like
nets); the paper-scale config is `wgan_gp_cifar10.py`.

Expected (measured with the launch command, seed 0, 8000 critic updates = 1600 generator updates,
654 s on 2 CPU cores; the penalty's second derivatives through the critic dominate), 1000 samples
on the in-repo digits features: digits-FID 2.49, KID 0.13 +- 0.53, precision 0.42, recall 0.85,
classifier score 5.36; Wasserstein estimate 1.21 at the end.
"""

from experiments.configs.gan_base import base, smoke, toy


def points(cfg):
    """gan_toy.py's WGAN-GP settings on top of the shared toy setting."""
    toy(cfg)
    cfg.model.update(gp_weight=0.1, n_critic=5)
    cfg.optim.update(dict(name="adam", lr=1e-4, b1=0.5, b2=0.9))
    return cfg


def get_config(arg: str | None = None):
    """Args: arg: None for the default run, "points" for the 2-D toy setting, "smoke" for a 4-step tiny run."""
    cfg = base("wgan_gp", arg)
    cfg.model.update(
        dict(
            loss="wasserstein",
            arch="auto",
            image_arch="dcgan",
            z_dim=128,
            noise="gaussian",
            n_critic=5,
            gp_weight=10.0,
            channels=64,
            kernel=4,
            biases="unnormalized",
            proj_norm="channel",
            g_norm="batch",
            d_norm="none",
            point_hidden=(512, 512, 512),
            point_z_dim=2,
        )
    )
    cfg.optim.update(dict(name="adam", lr=1e-4, b1=0.0, b2=0.9))
    cfg.data.image_size = 16
    cfg.train.update(num_steps=8000, batch_size=64, log_every=500)
    if arg == "smoke":
        smoke(cfg)
        cfg.model.n_critic = 2
    elif arg == "points":
        points(cfg)
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing, 'points' or 'smoke'")
    return cfg
