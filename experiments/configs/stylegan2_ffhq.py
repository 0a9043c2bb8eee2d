"""StyleGAN2 at paper scale (Karras et al., 2020): FFHQ 1024 (Table 1, configs A-F) or LSUN Church 256.

Launch (the data prepared for TFDS in array_record format in DIR):

    python -m experiments.run --config=experiments/configs/stylegan2_ffhq.py --config.data.data_dir=DIR
    python -m experiments.run --config=experiments/configs/stylegan2_ffhq.py:D --config.data.data_dir=DIR
    python -m experiments.run --config=experiments/configs/stylegan2_ffhq.py:church --config.data.data_dir=DIR

FFHQ is not in the TFDS catalog: `tfds:ffhq/1024` is read from files a user prepared under that name;
LSUN Church is `tfds:lsun/church_outdoor` (its validation split is the test split), centre-cropped and
resized to 256x256.

The authors' networks and settings (NVlabs `stylegan2`: `run_training.py`,
`training/networks_stylegan2.py`, `training/loss.py`), config F: the mapping network as StyleGAN's,
the skip generator (`G_synthesis_stylegan2`, architecture "skip") from a learned 4x4x512 constant,
modulated and demodulated 3x3 convolutions (eps 1e-8), noise with one strength per layer and bias
outside the style block, up/down-sampling with the [1, 3, 3, 1] FIR filter, the residual
discriminator (`D_stylegan2`, "resnet"), feature maps min(512, 16384 / 2^stage) (512 up to 64x64,
then 256, 128, 64, 32 at 1024); non-saturating logistic loss, R1 gamma 10 every 16 minibatches
(weighted by 16), path-length regularisation (weight 2, every 4 minibatches, on half a minibatch,
decay 0.01), Adam lr 0.002, beta = (0, 0.99), eps 1e-8, minibatch 32, style mixing 0.9, EMA of G
with a half-life of 10k images, mirror augmentation, 25M images. Parameters: G 30,370,060 and D
29,012,513, equal to the reference's (`tests/models/test_paper_params.py` derives them from its
code). Church (`:church`): config F at 256, gamma 100, 88M images, no mirroring (the reference's
README). Table 1 (`:A` .. `:F`): A StyleGAN (`stylegan_ffhq.py`'s nets), B weight demodulation with
the orig generator and `D_stylegan`, C lazy R1, D path-length regularisation, E the skip / resnet
nets with lr 0.002 and gamma 100, F the doubled feature maps (A-E: fmap_base 8192).

Differences from the reference, all: configs A-D train without progressive growing (the reference
grows from 8x8 with per-resolution learning rates and minibatch sizes; here lr 0.001 at 1024 from
the start, one toRGB / fromRGB); the lazy regularisers are added to that minibatch's loss rather
than run as a separate optimizer step with Adam's lr and betas adjusted by c = k / (k + 1); the
non-trainable noise images (for `randomize_noise=False` only) are not kept.

Paper's numbers and protocol: FID 2.84 +- 0.03 on FFHQ 1024 (config F, mean of 10 runs; Table 1:
A 4.40, B 4.39, C 4.38, D 4.34, E 3.31) and 3.86 on LSUN Church 256 (config F), from 50k generated
images, untruncated (psi 1), against the training images with the Inception-v3 pool features. No
Inception extractor is registered in `gm_jax.metrics.sample_quality.EXTRACTORS` and no such data is
here: not measured in this repository.
"""

from experiments.configs.stylegan import style_base
from experiments.configs.stylegan2 import TABLE1, apply_table1
from experiments.configs.stylegan_ffhq import paper_scale


def get_config(arg: str | None = None):
    """Args: arg: None (config F, FFHQ 1024), "A".."F" (Table 1 at FFHQ 1024), "church" (LSUN Church 256)."""
    if arg not in (None, "church", *TABLE1):
        raise ValueError(f"unknown config arg {arg!r}; use nothing, A..F or 'church'")
    letter = arg if arg in TABLE1 else "F"
    if arg == "church":
        cfg = paper_scale(style_base("stylegan2", "demod", None), 256, "tfds:lsun/church_outdoor", 88_000_000, 100.0)
        cfg.model.random_flip = False
    else:
        cfg = paper_scale(
            style_base("stylegan2", "demod", None), 1024, "tfds:ffhq/1024", gamma=100.0 if letter == "E" else 10.0
        )
    return apply_table1(cfg, letter)
