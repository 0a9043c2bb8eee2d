"""RealNVP on CIFAR-10 at the paper's scale (Dinh et al., 2016, section 4.1).

Launch (needs CIFAR-10 prepared for TFDS under data_dir):
    python -m experiments.run --config=experiments/configs/realnvp_cifar10.py --config.data.data_dir=<tfds dir>

The paper's CIFAR-10 model, "8 residual blocks, 64 feature maps, and downscale only once", built as
the authors' released code builds it (tensorflow/models `research/real_nvp/real_nvp_multiscale_dataset.py`
and `real_nvp_utils.py`, default hyperparameters, `model.architecture=authors`): two scales; at
the first, three checkerboard affine couplings (coupling nets of width 64), a squeeze, three
channel-wise couplings (width 128), and half the dimensions factored out; at the second, four
checkerboard couplings of width 128; every coupling net a weight-normalised residual net of 8 blocks
with a 1x1 skip convolution after each block, batch normalisation (offsets only) inside it, its input
[x, -x, mask] through a ReLU; batch normalisation of every coupling's output (its log-determinant
counted; running averages, decay 0.1, for evaluation and sampling); s = scale * tanh(.); the logit
transform with alpha 0.05 (the code's data_constraint 0.9); a Gaussian prior; Adam lr 1e-3 (beta
0.9, 0.999), L2 5e-5 on the weight-norm magnitudes and rescaling scales, gradients clipped at norm
100, batch 64, random horizontal flips. Parameters: 19,609,545, equal to the code's
(`tests/models/test_paper_params.py` derives them).

Differences from the code, all: the length (500k steps) is this config's (the code trains until
stopped); samples use the running batch-norm averages (the code's sampler normalises each sampled
batch by its own statistics); the code's `bn_lag` (0 by default) is not built.

Paper number: 3.49 bits/dim on the CIFAR-10 test set, dequantised over 256 levels (`nll_bpd`).
"""

from experiments.configs import realnvp


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run."""
    if arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing")
    cfg = realnvp.get_config(None)
    cfg.model.update(
        architecture="authors", num_scales=2, channels=64, num_blocks=8, norm="none", random_flip=True, l2_scales=5e-5
    )
    cfg.optim.update(name="adam", lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, grad_clip=100.0, weight_decay=0.0)
    cfg.data.update(name="tfds:cifar10")
    cfg.train.update(num_steps=500_000, batch_size=64, log_every=1000, eval_every=50_000, ckpt_every=10_000)
    cfg.train.sample_every = 50_000
    cfg.eval.update(batch_size=500, num_samples=0)
    return cfg
