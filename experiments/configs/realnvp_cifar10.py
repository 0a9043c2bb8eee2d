"""RealNVP on CIFAR-10 at the paper's scale (Dinh et al., 2016, section 4).

Launch (needs CIFAR-10 prepared for TFDS under data_dir):
    python -m experiments.run --config=experiments/configs/realnvp_cifar10.py --config.data.data_dir=<tfds dir>

The paper's multi-scale architecture for 32x32: three scales (32 -> 16 -> 8), each but the last
three checkerboard couplings, a squeeze, three channel-wise couplings and a factor-out; the last
four checkerboard couplings; coupling nets of 8 residual blocks of 64 features; the logit transform
with alpha 0.05; a Gaussian prior; Adam lr 1e-3, batch 64, weight decay 5e-5, random horizontal
flips. Departures: the paper's batch normalisation in the flow and weight normalisation in the
coupling nets are not implemented (ActNorm is the option), decoupled weight decay stands in for the
L2 term, and the length (500k steps) is this config's choice.

Paper number: 3.49 bits/dim on the CIFAR-10 test set, dequantised over 256 levels (`nll_bpd`).
"""

from experiments.configs import realnvp


def get_config(arg: str | None = None):
    cfg = realnvp.get_config(None)
    cfg.model.update(num_scales=3, channels=64, num_blocks=8, random_flip=True)
    cfg.data.update(name="tfds:cifar10")
    cfg.train.update(num_steps=500_000, batch_size=64, log_every=1000, eval_every=50_000, ckpt_every=10_000)
    cfg.train.sample_every = 50_000
    cfg.eval.update(batch_size=500, num_samples=0)
    if arg:
        raise ValueError(f"unknown config arg {arg!r}")
    return cfg
