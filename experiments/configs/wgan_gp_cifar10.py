"""WGAN-GP at paper scale (Gulrajani et al., 2017, Table 3): CIFAR-10 32x32 through TFDS.

Launch (CIFAR-10 prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/wgan_gp_cifar10.py --config.data.data_dir=DIR

Paper setup (Algorithm 1): lambda 10, n_critic 5, Adam 1e-4 beta (0, 0.9), minibatch 64, no
BatchNorm in the critic, 200 000 generator updates (1 million critic updates: `train.num_steps`
counts critic updates). The nets here are the DCGAN ones (`model.channels`=128 at 32x32).

Paper's number: unsupervised Inception score 6.58 with DCGAN-like nets and 7.86 +- 0.07 with its
ResNet (which this project does not build). The Inception score needs an Inception extractor
registered in `gm_jax.metrics.sample_quality.EXTRACTORS`; not measured in this repository (no
CIFAR-10 offline).
"""

from experiments.configs import wgan_gp


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run, "smoke" for a tiny run of the same config."""
    cfg = wgan_gp.get_config(arg)
    cfg.data.name = "tfds:cifar10"
    if arg != "smoke":
        cfg.model.channels = 128
        cfg.data.image_size = 0
        cfg.train.update(num_steps=1_000_000, log_every=1000, ckpt_every=20_000, sample_every=20_000)
    else:
        cfg.data.image_size = 8
    cfg.eval.num_samples = 0
    return cfg
