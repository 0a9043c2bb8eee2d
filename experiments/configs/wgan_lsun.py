"""WGAN at paper scale (Arjovsky et al., 2017, Figure 5 and the authors' main.py): LSUN bedrooms at
64x64 through TFDS (`lsun/bedroom`).

Launch (LSUN bedrooms prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/wgan_lsun.py --config.data.data_dir=DIR

The authors' network and settings (`martinarjovsky/WassersteinGAN`, `main.py` and `models/dcgan.py`
with `ngf = ndf = 64`, no extra layers): G a 4x4 projection of z (100, N(0, I)) to 4x4x512 with
BatchNorm per channel, 4x4 stride-2 transposed convolutions to 8x8x256, 16x16x128, 32x32x64 and
64x64x3, BatchNorm and ReLU between, tanh output; the critic 4x4 stride-2 convolutions of 64, 128,
256, 512 maps with BatchNorm after all but the first, LeakyReLU(0.2), and a final 4x4 convolution to
one value; no biases anywhere (`bias=False` on every layer); weights N(0, 0.02), BatchNorm gains
N(1, 0.02). Critic weights clipped to [-0.01, 0.01], RMSProp 5e-5 (PyTorch: smoothing 0.99, eps
1e-8 outside the square root), minibatch 64, n_critic 5 with 100 critic updates for the first 25
generator updates and every 500th; 100 000 generator updates (about 5.3 million critic updates:
`train.num_steps` counts critic updates). Parameters: G 3,576,704, critic 2,765,568, equal to the
code's (`tests/models/test_paper_params.py` derives them).

Difference from the code: samples are drawn with BatchNorm's running statistics (PyTorch's `eval`
mode; `main.py` samples in training mode, with the batch's statistics).

Paper's number: no score, curves of the Wasserstein estimate (logged every step as `wasserstein`)
against sample quality (Figures 3-4). Not measured in this repository (no LSUN offline).
"""

from experiments.configs import wgan


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run."""
    if arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing")
    cfg = wgan.get_config(None)
    cfg.data.update(name="tfds:lsun/bedroom", image_size=64)
    cfg.model.update(channels=64, kernel=4, biases="none", proj_norm="channel", z_dim=100)
    cfg.optim.update(eps_in_sqrt=False)
    cfg.train.update(num_steps=5_300_000, log_every=1000, ckpt_every=20_000, sample_every=20_000)
    cfg.eval.num_samples = 0
    return cfg
