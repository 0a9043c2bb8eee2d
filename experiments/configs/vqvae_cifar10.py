"""VQ-VAE at paper scale (van den Oord et al., 2017, section 4.1): CIFAR-10 through TFDS.

Launch (needs CIFAR-10 prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/vqvae_cifar10.py --config.data.data_dir=DIR
    python -m experiments.run --config=experiments/configs/vqvae_cifar10.py --config.data.data_dir=DIR \
        --config.train.init_from=<first stage's workdir>        (the prior stage)

Paper setup: encoder of 2 strided 4x4 stride-2 convolutions and 2 residual 3x3 blocks (ReLU, 3x3
conv, ReLU, 1x1 conv), all 256 hidden units, mirrored decoder with transposed convolutions; 32x32x3
images -> an 8x8 grid of codes, K = 512; commitment β = 0.25; Adam lr 2e-4, batch 128, 250k steps.
The code dimension is not given in the text for this experiment: 64 here. The prior: the paper's is
a gated PixelCNN; here the causal transformer of `gm_jax.models.vqvae`, 4 layers of width 256.

Paper number: 4.67 bits/dim on CIFAR-10 for the VQ-VAE with its prior (VAE 4.51, VIMCO 5.14). This
config's decoder is a Gaussian with fixed std on [0, 1] pixels, whose bits/dim is a continuous density,
not the paper's discrete 256-level likelihood: the number is not comparable until a discretised
decoder is added. Not measured here (no CIFAR-10 offline).
"""

import ml_collections

from experiments.configs import vqvae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: arg: None for the paper run, "smoke" for a tiny run of the same config."""
    cfg = vqvae.get_config(arg)
    cfg.data.update(name="tfds:cifar10", binarize="none")
    if arg != "smoke":
        cfg.model.update(
            num_codes=512, code_dim=64, hidden=256, res_blocks=2, res_hidden=256, downsample=2, decoder="gaussian"
        )
        cfg.model.update(ema=False, restart_every=0)
        cfg.prior.update(layers=4, width=256, heads=8)
        cfg.train.update(
            num_steps=250_000, batch_size=128, log_every=1000, eval_every=50_000, ckpt_every=10_000, sample_every=50_000
        )
        cfg.eval.update(batch_size=128, num_samples=0)
    return cfg
