"""StyleGAN at paper scale (Karras et al., 2019): config F at 1024x1024, FFHQ or CelebA-HQ through TFDS.

Launch (the data prepared for TFDS in array_record format in DIR):

    python -m experiments.run --config=experiments/configs/stylegan_ffhq.py --config.data.data_dir=DIR
    python -m experiments.run --config=experiments/configs/stylegan_ffhq.py:celebahq --config.data.data_dir=DIR

FFHQ is not in the TFDS catalog: `tfds:ffhq/1024` is read from files a user prepared under that name
(TFDS opens an unregistered set from its prepared directory); CelebA-HQ is `tfds:celeb_a_hq/1024`
(manual download), with 10k of its 30k images held out as the test split.

The authors' networks and settings (NVlabs `stylegan`: `train.py`, `training/networks_stylegan.py`,
`training/loss.py`), config F: z = w = 512, mapping network of 8 layers of 512 with lr multiplier
0.01, learned 4x4x512 constant, feature maps min(512, 8192 / 2^stage) (512 up to 32x32, then 256,
128, 64, 32, 16 at 1024), AdaIN, per-layer noise with per-channel strengths, 3x3 up/down-sampling
weights with the [1, 2, 1] blur, style mixing 0.9, tracked w average (beta 0.995), minibatch
standard deviation (group 4); non-saturating logistic loss with R1 gamma 10 on FFHQ; on CelebA-HQ
the paper trained with WGAN-GP (`G_wgan` / `D_wgan_gp`: lambda 10, drift epsilon 0.001); Adam lr
0.001, beta = (0, 0.99), eps 1e-8; minibatch 32; EMA of G with a half-life of 10k images; mirror
augmentation on both sets; 25M images shown to D. Parameters: G (mapping 2,101,248 + synthesis with
one toRGB 24,110,771) 26,212,019, D (one fromRGB) 23,077,137, equal to the reference's
(`tests/models/test_paper_params.py` derives both from its code).

Differences from the reference, all: no progressive growing (the nets train at 1024 from the start,
with one toRGB and one fromRGB, and without the growing schedule's per-resolution learning rates
0.0015-0.003 and minibatch sizes; the lr stays 0.001); the reference's non-trainable per-layer
noise images (used only with `randomize_noise=False`) are not kept.

Paper's numbers and protocol: FID 4.40 on FFHQ (config F), 5.17 on CelebA-HQ (config F), each
computed from 50k generated images, untruncated (psi 1), against the training images with the
Inception-v3 pool features. No Inception extractor is registered in
`gm_jax.metrics.sample_quality.EXTRACTORS` and no face data is here: not measured in this repository.
"""

from experiments.configs.stylegan import style_base

IMAGES = 25_000_000


def paper_scale(cfg, res: int, data: str, images: int = IMAGES, gamma: float = 10.0, flip: bool = True):
    """The paper-scale sizes, length and intervals on top of a `style_base` config."""
    batch = 32
    cfg.model.update(z_dim=512, w_dim=512, fmap_base=8192, fmap_max=512, r1_gamma=gamma, random_flip=flip)
    cfg.data.update(name=data, image_size=res)
    cfg.optim.ema_decay = 0.5 ** (batch / 10_000)
    cfg.train.update(
        num_steps=images // batch, batch_size=batch, log_every=500, eval_every=0, ckpt_every=5000, sample_every=5000
    )
    cfg.eval.num_samples = 0  # FID needs an Inception extractor (see the docstring)
    return cfg


def get_config(arg: str | None = None):
    """Args: arg: None (FFHQ 1024), "celebahq" (CelebA-HQ 1024, WGAN-GP)."""
    if arg not in (None, "celebahq"):
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'celebahq'")
    cfg = paper_scale(style_base("stylegan", "adain", None), 1024, "tfds:ffhq/1024")
    if arg == "celebahq":
        cfg.data.name = "tfds:celeb_a_hq/1024"
        cfg.model.update(loss="wasserstein", gp_weight=10.0, drift=0.001, r1_gamma=0.0)
    return cfg
