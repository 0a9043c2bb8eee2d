"""WGAN-GP at paper scale (Gulrajani et al., 2017, Table 3): CIFAR-10 32x32 through TFDS.

Launch (CIFAR-10 prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/wgan_gp_cifar10.py --config.data.data_dir=DIR

The authors' network (`igul222/improved_wgan_training`, `gan_cifar.py` with DIM = 128, MODE =
wgan-gp): G a dense projection of z (128, N(0, I)) to 4x4x512 with BatchNorm per unit (tflib's
`Batchnorm` over axis [0]: 8192 offsets and scales), 5x5 stride-2 transposed convolutions to
8x8x256, 16x16x128 and 32x32x3 with BatchNorm per channel and ReLU between, tanh output; the critic
5x5 stride-2 convolutions of 128, 256, 512 maps, LeakyReLU(0.2), no normalisation, a dense layer to
one value; every layer has a bias (tflib's default, before BatchNorm too). Parameters: G 5,179,907,
critic 4,114,689, equal to the code's (`tests/models/test_paper_params.py` derives them). Training as
the paper's Algorithm 1: lambda 10, n_critic 5, Adam 1e-4 beta (0, 0.9), minibatch 64, 200 000
generator updates (1 million critic updates: `train.num_steps` counts critic updates).

Differences from the code, all: the code's Adam has beta1 0.5 (`gan_cifar.py`) where Algorithm 1
says 0 (kept here); its layers are initialised He-uniform (convolutions) and Glorot-uniform (dense)
by tflib where this config keeps DCGAN's N(0, 0.02); its transposed convolutions are TensorFlow's
`conv2d_transpose` (the kernel flipped relative to the "SAME" `lax.conv_transpose` here: the same
family of functions); samples use BatchNorm's running statistics (the code samples with the batch's).

Paper's number: unsupervised Inception score 6.58 with these DCGAN-like nets and 7.86 +- 0.07 with
its ResNet (which this project does not build). The Inception score needs an Inception extractor
registered in `gm_jax.metrics.sample_quality.EXTRACTORS`; not measured in this repository (no
CIFAR-10 offline).
"""

from experiments.configs import wgan_gp


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run."""
    if arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing")
    cfg = wgan_gp.get_config(None)
    cfg.data.update(name="tfds:cifar10", image_size=0)
    cfg.model.update(channels=128, kernel=5, biases="all", proj_norm="unit", z_dim=128)
    cfg.train.update(num_steps=1_000_000, log_every=1000, ckpt_every=20_000, sample_every=20_000)
    cfg.eval.num_samples = 0
    return cfg
