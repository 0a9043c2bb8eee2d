"""DCGAN at paper scale (Radford et al., 2015): 64x64 faces (CelebA through TFDS; the paper used its
own 3M-face scrape and LSUN bedrooms, `--config.data.name=tfds:lsun/bedroom` for the latter).

Launch (CelebA prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/dcgan_celeba.py --config.data.data_dir=DIR

The authors' network and settings (`Newmu/dcgan_code`, `faces/train_uncond_dcgan.py`): G z (100,
U[-1, 1]) -> a projection to 4x4x1024 with BatchNorm per unit (16 384 means and variances) -> 5x5
stride-2 transposed convolutions 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3, BatchNorm per channel
after each but the last, ReLU, tanh output; D the mirror with 5x5 stride-2 convolutions of 128, 256,
512, 1024 maps, BatchNorm after all but the first, LeakyReLU(0.2), a dense layer to one logit; no
biases anywhere (the BatchNorm offsets are the only ones); weights N(0, 0.02), BatchNorm gains
N(1, 0.02); Adam 2e-4, beta1 0.5, with the code's L2 weight decay 1e-5 added to the gradients of every
parameter (`optim.l2`); minibatch 128; 25 epochs of 350 000 faces, which the code spends
alternating one G and one D update per minibatch: 34 180 D updates here (one loop step is one D and
one G update). Parameters: G 18,885,760, D 17,232,768, equal to the code's
(`tests/models/test_paper_params.py` derives them). Images centre-cropped and resized to 64x64
(`data.image_size`), scaled to [-1, 1].

Differences from the code, all: samples are drawn with BatchNorm's running statistics (the code
normalises every sampled minibatch by its own statistics); the strided convolutions' zero padding
is XLA's "SAME" (1 before, 2 after each spatial axis) where Theano's `border_mode=(2, 2)` pads 2
before and uses 1 of the 2 after; one G and one D update per loop step on different z, where the
code alternates them over consecutive minibatches.

Paper's number: none for faces (samples only); its quantitative result is CIFAR-10 classification
from D's features (82.8%). FID needs an Inception extractor registered in
`gm_jax.metrics.sample_quality.EXTRACTORS`; not measured in this repository (no CelebA offline).
"""

from experiments.configs import dcgan


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run."""
    if arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing")
    cfg = dcgan.get_config(None)
    cfg.data.update(name="tfds:celeb_a", image_size=64)
    cfg.model.update(channels=128, kernel=5, biases="none", proj_norm="unit", z_dim=100, noise="uniform")
    cfg.optim.update(l2=1e-5)
    cfg.train.update(num_steps=34_180, batch_size=128, log_every=500, ckpt_every=5000, sample_every=5000)
    cfg.eval.num_samples = 0
    return cfg
