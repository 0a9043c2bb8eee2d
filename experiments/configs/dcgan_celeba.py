"""DCGAN at paper scale (Radford et al., 2015): 64x64 faces (CelebA through TFDS; the paper used its
own 3M-face scrape and LSUN bedrooms, `--config.data.name=tfds:lsun/bedroom` for the latter).

Launch (CelebA prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/dcgan_celeba.py --config.data.data_dir=DIR

Paper setup: G z (100, uniform) -> 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3
(`model.channels`=128), D the mirror with strided convolutions, BatchNorm in both except G's output
and D's input, ReLU/tanh in G, LeakyReLU(0.2) in D, weights N(0, 0.02), Adam 2e-4 beta1 0.5,
minibatch 128; images centre-cropped and resized to 64x64 (`data.image_size`), scaled to [-1, 1].

Paper's number: none for faces (samples only); its quantitative result is CIFAR-10 classification
from D's features (82.8%). FID needs an Inception extractor registered in
`gm_jax.metrics.sample_quality.EXTRACTORS`; not measured in this repository (no CelebA offline).
"""

from experiments.configs import dcgan


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run, "smoke" for a tiny run of the same config."""
    cfg = dcgan.get_config(arg)
    cfg.data.name = "tfds:celeb_a"
    if arg != "smoke":
        cfg.model.channels = 128
        cfg.data.image_size = 64
        cfg.train.update(num_steps=100_000, log_every=500, ckpt_every=5000, sample_every=5000)
    else:
        cfg.data.image_size = 8
    cfg.eval.num_samples = 0
    return cfg
