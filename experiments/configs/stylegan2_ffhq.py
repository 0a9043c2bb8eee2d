"""StyleGAN2 at paper scale (Karras et al., 2020): FFHQ 1024 or LSUN Church 256 through TFDS.

Launch (the data prepared for TFDS in array_record format in DIR):

    python -m experiments.run --config=experiments/configs/stylegan2_ffhq.py --config.data.data_dir=DIR
    python -m experiments.run --config=experiments/configs/stylegan2_ffhq.py:church --config.data.data_dir=DIR

FFHQ is not in the TFDS catalog: `tfds:ffhq/1024` is read from files a user prepared under that name;
LSUN Church is `tfds:lsun/church_outdoor` (its validation split is the test split), centre-cropped and
resized to 256x256.

Paper setup: the StyleGAN generator with AdaIN replaced by modulated convolutions and demodulation
(eps 1e-8), noise and bias outside the style block, lazy R1 every 16 minibatches (gamma 10 on FFHQ,
weighted by 16), non-saturating logistic loss, Adam lr 0.002, beta = (0, 0.99), eps 1e-8, minibatch
32, style mixing 0.9, EMA of G with a half-life of 10k images, 25M images. What is built is the
paper's config C (B: weight demodulation; C: lazy regularisation; FFHQ FID 4.38 in its Table 1).
Not built: path-length regularisation (config D, 4.34), the skip generator / residual discriminator
without progressive growing (config E, 3.31) and the doubled feature maps of config F.

Paper's numbers and protocol: FID 2.84 +- 0.03 on FFHQ 1024 (config F, mean of 10 runs) and 3.86 on
LSUN Church 256 (config F), from 50k generated images, untruncated (psi 1), against the training
images with the Inception-v3 pool features. No Inception extractor is registered in
`gm_jax.metrics.sample_quality.EXTRACTORS` and no such data is here: not measured in this repository.
"""

from experiments.configs.stylegan import style_base
from experiments.configs.stylegan_ffhq import paper_scale


def get_config(arg: str | None = None):
    """Args: arg: None (FFHQ 1024), "church" (LSUN Church 256), "smoke" (LSUN at 8x8, 4 steps)."""
    if arg not in (None, "church", "smoke"):
        raise ValueError(f"unknown config arg {arg!r}; use nothing, 'church' or 'smoke'")
    cfg = style_base("stylegan2", "demod", "smoke" if arg == "smoke" else None)
    cfg.optim.lr = 0.002
    cfg.model.r1_every = 2 if arg == "smoke" else 16
    if arg == "smoke":
        cfg.data.name = "tfds:lsun/church_outdoor"
        cfg.eval.num_samples = 0
        return cfg
    if arg == "church":
        return paper_scale(cfg, 256, "tfds:lsun/church_outdoor")
    return paper_scale(cfg, 1024, "tfds:ffhq/1024")
