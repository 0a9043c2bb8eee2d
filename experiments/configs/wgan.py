"""WGAN (Arjovsky et al., 2017) with weight clipping on the embedded digits enlarged to 16x16, or on a 2-D set.

Launch:  python -m experiments.run --model=wgan
         python -m experiments.run --model=wgan --config.data.name=grid25_wgangp   (the `points` variant)

The paper's algorithm and the authors' `main.py`: a critic without sigmoid and losses without log,
every critic weight clipped to [-0.01, 0.01] after each critic update, RMSProp lr 5e-5 (PyTorch's
smoothing 0.99), minibatch 64, noise N(0, I)^100, the DCGAN nets with BatchNorm in both; n_critic 5
with the reference schedule: 100 critic updates per generator update for the first 25 generator
updates and at every 500th (`model.critic_boost`). Every critic update sees a fresh real batch: one
loop step is one critic update, so `train.num_steps` counts critic updates (the generator has
done `g_updates` of them). Differences from `main.py` at this scale: 4x4 kernels at 16x16 (its
DCGAN nets are 4x4 too), biases on G's output and the critic's first and last layers (its
`models/dcgan.py` has none: `wgan_lsun.py` builds it without), RMSProp's eps inside the square root
(optax's default; PyTorch adds it outside).

Sign of the logged estimate: the critic minimises E f(G(z)) - E f(x); `wasserstein` = -(that) =
E f(x) - E f(G(z)) >= 0 estimates W(P_r, P_g) times the critic's Lipschitz bound and falls as the
samples improve (the paper's Figures 3-4: it tracks sample quality).

The `points` variant (loaded by the CLI when `data.name` is a 2-D set) is WGAN-GP's `gan_toy.py` with
MODE = wgan: clipping 0.01, TensorFlow's RMSProp 5e-5 (decay 0.9, eps 1e-10 inside the root, the
squared-gradient average starting at 1), n_critic 5 without the boost schedule, minibatch 256, the
toy nets and 2-D noise; 25 000 critic updates.

The paper reports curves, no FID; the paper-scale config is `wgan_lsun.py`.

Expected (measured with the launch command, seed 0, 8000 critic updates = 1090 generator updates,
95 s on 2 CPU cores), 1000 samples on the in-repo digits features: digits-FID 7.47, KID 0.69 +-
0.51, precision 0.26, recall 0.76, classifier score 4.48; Wasserstein estimate 0.031 at the end.
"""

from experiments.configs.gan_base import base, smoke, toy


def points(cfg):
    """gan_toy.py's WGAN settings (MODE = wgan) on top of the shared toy setting."""
    toy(cfg)
    cfg.model.update(n_critic=5, critic_boost=False, clip=0.01)
    cfg.optim.update(dict(name="rmsprop", lr=5e-5, decay=0.9, eps=1e-10, initial_scale=1.0))
    return cfg


def get_config(arg: str | None = None):
    """Args: arg: None for the default run, "points" for the 2-D toy setting, "smoke" for a 4-step tiny run."""
    cfg = base("wgan", arg)
    cfg.model.update(
        dict(
            loss="wasserstein",
            arch="auto",
            image_arch="dcgan",
            z_dim=100,
            noise="gaussian",
            n_critic=5,
            critic_boost=True,
            boost_iters=100,
            boost_first=25,
            boost_every=500,
            clip=0.01,
            channels=64,
            kernel=4,
            biases="unnormalized",
            proj_norm="channel",
            g_norm="batch",
            d_norm="batch",
            point_hidden=(512, 512, 512),
            point_z_dim=2,
        )
    )
    cfg.optim.update(dict(name="rmsprop", lr=5e-5, decay=0.99, eps=1e-8))
    cfg.data.image_size = 16
    cfg.train.update(num_steps=8000, batch_size=64, log_every=500)
    if arg == "smoke":
        smoke(cfg)
        cfg.model.update(boost_iters=2, boost_first=1)
    elif arg == "points":
        points(cfg)
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing, 'points' or 'smoke'")
    return cfg
