"""DCGAN (Radford et al., 2015) on the embedded digits enlarged to 16x16: the CPU default run.

Launch:  python -m experiments.run --model=dcgan

The paper's guidelines, all kept: a projection of z (100, uniform) reshaped to 4x4, then
fractionally-strided stride-2 convolutions in G and strided ones in D, no pooling and no
fully-connected hidden layers; BatchNorm in both nets except G's output and D's input; ReLU in G with
a tanh output; LeakyReLU(0.2) in D with a sigmoid-probability output (trained from logits); weights
N(0, 0.02); Adam lr 2e-4, beta1 0.5; minibatch 128. At 16x16 the nets are G 4x4x128 -> 8x8x64 ->
16x16x1 and D 16x16 -> 8x8x64 -> 4x4x128 -> logit (`model.channels`=64). The digits are enlarged 2x
by pixel repetition (`data.image_size=16`); the digits features pool the samples back to 8x8.
Where this CPU default differs from the authors' code (`Newmu/dcgan_code`, which `dcgan_celeba.py`
builds): 4x4 kernels (PyTorch's DCGAN example; theirs are 5x5, `model.kernel=5`), biases on G's
output and D's first and last layers (theirs have none, `model.biases=none`), BatchNorm per channel
after the projection (theirs per unit, `model.proj_norm=unit`), no L2 weight decay (theirs 1e-5).

The paper reports no likelihood or FID (its metric is a CIFAR-10 classifier on D's features, 82.8%);
the paper-scale config is `dcgan_celeba.py`.

Expected (measured with the launch command, seed 0, 2000 steps of batch 128, 114 s on 2 CPU cores),
1000 samples on the in-repo digits features: digits-FID 1.54, KID 0.01 +- 0.45, precision 0.54,
recall 0.90, classifier score 6.17 (held-out real digits, 297: FID 1.77, precision 0.89, recall
0.91, score 7.49). With --config.model.dtype=bfloat16: FID 1.43, precision 0.55, recall 0.87.
"""

from experiments.configs.gan_base import base, smoke


def get_config(arg: str | None = None):
    """Args: arg: None for the default run, "smoke" for a 4-step tiny run."""
    cfg = base("dcgan", arg)
    cfg.model.update(
        dict(
            loss="gan",
            g_loss="non_saturating",
            arch="auto",
            image_arch="dcgan",
            z_dim=100,
            noise="uniform",
            n_critic=1,
            channels=64,
            kernel=4,
            biases="unnormalized",
            proj_norm="channel",
            g_norm="batch",
            d_norm="batch",
            init_std=0.02,
            point_hidden=(512, 512, 512),
            point_z_dim=2,
        )
    )
    cfg.optim.update(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
    cfg.data.image_size = 16
    cfg.train.update(num_steps=2000, batch_size=128)
    if arg == "smoke":
        smoke(cfg)
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
