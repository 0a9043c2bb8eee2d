"""VQ-VAE at paper scale (van den Oord et al., 2017, section 4.1): CIFAR-10 through TFDS.

Launch (needs CIFAR-10 prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/vqvae_cifar10.py --config.data.data_dir=DIR
    python -m experiments.run --config=experiments/configs/vqvae_cifar10.py --config.data.data_dir=DIR \
        --config.train.init_from=<first stage's workdir>        (the prior stage)

The paper's network (section 4.1, `model.layout=paper`): an encoder of 2 strided 4x4 stride-2
convolutions and 2 residual 3x3 blocks (ReLU, 3x3 conv, ReLU, 1x1 conv), "all having 256 hidden
units", the decoder 2 residual blocks then 2 transposed 4x4 stride-2 convolutions; 32x32x3 images
-> an 8x8 grid of codes, K = 512; commitment 0.25; codebook learned by its loss (no EMA, no
restarts); Adam lr 2e-4, batch 128, 250k steps. Parameters: encoder 2,373,120, decoder 2,372,867,
codebook 131,072 (`tests/models/test_paper_params.py` derives them from the text).

Differences from the paper, all: it names no code dimension and no layer between the residual
blocks and the codes; the codes here are the last residual block's 256 features (no projection);
its section 4.2 describes CIFAR-10's latents as an 8 x 8 x 10 field, of which this builds one code
per position; the activations between layers (ReLU after each strided convolution, before the
first transposed one and between the two) follow DeepMind's released example; the prior is the
causal transformer of `gm_jax.models.vqvae` (4 layers of width 256), not the paper's gated
PixelCNN.

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
            num_codes=512,
            code_dim=256,
            hidden=256,
            res_blocks=2,
            res_hidden=256,
            downsample=2,
            decoder="gaussian",
            layout="paper",
        )
        cfg.model.update(ema=False, restart_every=0)
        cfg.prior.update(layers=4, width=256, heads=8)
        cfg.train.update(
            num_steps=250_000, batch_size=128, log_every=1000, eval_every=50_000, ckpt_every=10_000, sample_every=50_000
        )
        cfg.eval.update(batch_size=128, num_samples=0)
    return cfg
