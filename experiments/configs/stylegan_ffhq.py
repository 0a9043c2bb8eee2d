"""StyleGAN at paper scale (Karras et al., 2019): config F at 1024x1024, FFHQ or CelebA-HQ through TFDS.

Launch (the data prepared for TFDS in array_record format in DIR):

    python -m experiments.run --config=experiments/configs/stylegan_ffhq.py --config.data.data_dir=DIR
    python -m experiments.run --config=experiments/configs/stylegan_ffhq.py:celebahq --config.data.data_dir=DIR

FFHQ is not in the TFDS catalog: `tfds:ffhq/1024` is read from files a user prepared under that name
(TFDS opens an unregistered set from its prepared directory); CelebA-HQ is `tfds:celeb_a_hq/1024`
(manual download), with 10k of its 30k images held out as the test split.

Paper setup (config F): z = w = 512, mapping network of 8 layers with lr multiplier 0.01, learned
4x4x512 constant, feature maps min(512, 16384 / resolution), AdaIN, per-layer noise, style mixing
0.9, tracked w average (beta 0.995), minibatch standard deviation (group 4); non-saturating logistic
loss with R1 gamma 10 on FFHQ; on CelebA-HQ the paper trained with WGAN-GP (lambda 10; the progressive
GAN's drift term 0.001 E D(x)^2 is not built); Adam lr 0.001, beta = (0, 0.99), eps 1e-8; minibatch 32;
EMA of G with a half-life of 10k images; 25M images shown to D. Not built: progressive growing (the
nets train at full resolution from the start, as StyleGAN2 does) and its lr/minibatch schedule.

Paper's numbers and protocol: FID 4.40 on FFHQ (config F), 5.17 on CelebA-HQ (config F), each
computed from 50k generated images, untruncated (psi 1), against the training images with the
Inception-v3 pool features. No Inception extractor is registered in
`gm_jax.metrics.sample_quality.EXTRACTORS` and no face data is here: not measured in this repository.
"""

from experiments.configs.stylegan import style_base

IMAGES = 25_000_000


def paper_scale(cfg, res: int, data: str):
    """The paper-scale sizes, length and intervals on top of a `style_base` config."""
    batch = 32
    cfg.model.update(z_dim=512, w_dim=512, fmap_base=16384, fmap_max=512, r1_gamma=10.0)
    cfg.data.update(name=data, image_size=res)
    cfg.optim.ema_decay = 0.5 ** (batch / 10_000)
    cfg.train.update(
        num_steps=IMAGES // batch, batch_size=batch, log_every=500, eval_every=0, ckpt_every=5000, sample_every=5000
    )
    cfg.eval.num_samples = 0  # FID needs an Inception extractor (see the docstring)
    return cfg


def get_config(arg: str | None = None):
    """Args: arg: None (FFHQ 1024), "celebahq" (CelebA-HQ 1024, WGAN-GP), "smoke" (CelebA-HQ at 8x8, 4 steps)."""
    if arg not in (None, "celebahq", "smoke"):
        raise ValueError(f"unknown config arg {arg!r}; use nothing, 'celebahq' or 'smoke'")
    cfg = style_base("stylegan", "adain", "smoke" if arg == "smoke" else None)
    if arg == "smoke":
        cfg.data.name = "tfds:celeb_a_hq/128"
        cfg.eval.num_samples = 0
        return cfg
    cfg = paper_scale(cfg, 1024, "tfds:celeb_a_hq/1024" if arg == "celebahq" else "tfds:ffhq/1024")
    if arg == "celebahq":
        cfg.model.update(loss="wasserstein", g_loss="wasserstein", gp_weight=10.0, r1_gamma=0.0)
    return cfg
