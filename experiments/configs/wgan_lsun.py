"""WGAN at paper scale (Arjovsky et al., 2017, Figure 5 and the authors' main.py): LSUN bedrooms at
64x64 through TFDS (`lsun/bedroom`).

Launch (LSUN bedrooms prepared for TFDS in array_record format):

    python -m experiments.run --config=experiments/configs/wgan_lsun.py --config.data.data_dir=DIR

Paper setup: DCGAN nets (G and critic with BatchNorm, `model.channels`=64 as main.py's ngf=ndf=64),
critic weights clipped to [-0.01, 0.01], RMSProp 5e-5, minibatch 64, n_critic 5 with 100 critic
updates for the first 25 generator updates and every 500th; 100 000 generator updates in the
authors' runs (about 5.3 million critic updates: `train.num_steps` counts critic updates).

Paper's number: no score, curves of the Wasserstein estimate (logged every step as `wasserstein`)
against sample quality (Figures 3-4). Not measured in this repository (no LSUN offline).
"""

from experiments.configs import wgan


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run, "smoke" for a tiny run of the same config."""
    cfg = wgan.get_config(arg)
    cfg.data.name = "tfds:lsun/bedroom"
    if arg != "smoke":
        cfg.data.image_size = 64
        cfg.train.update(num_steps=5_300_000, log_every=1000, ckpt_every=20_000, sample_every=20_000)
    else:
        cfg.data.image_size = 8
    cfg.eval.num_samples = 0
    return cfg
