"""Every paper-scale config builds its paper's network to the parameter, and runs.

Counts: gm_jax's abstract init (`--mode=describe`'s `summarize`) against `reference_counts`, which
derives each network layer by layer from the authors' code (file named in each function), and those
derivations against the totals worked out by hand below. Runs: each paper-scale config, at a
reduced resolution and width with every architecture switch it sets kept, takes one train step and
draws samples under `tfds.testing.mock_data` (`stylegan2_ffhq.py:church` is config F at another
resolution and gamma: at the small size it would repeat the F run).
"""

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gm_jax import describe, registry
from gm_jax.data import load
from tests.models import reference_counts as ref


def _cfg(name, arg=None):
    import importlib

    return importlib.import_module(f"experiments.configs.{name}").get_config(arg)


def _ours(name, arg=None) -> dict:
    cfg = _cfg(name, arg)
    s = describe.summarize(registry.get_family(cfg.model_name), cfg)
    out = dict(s["networks"])
    for net, subs in s["modules"].items():
        out.update({f"{net}/{k}": v for k, v in subs.items()})
    out["total"] = s["total_params"]
    return out


def test_the_derivations_give_the_hand_worked_totals():
    # DCGAN faces: G 100*16384 + 2*16384 (per-unit BN) + 1024*512*25 + 1024 + 512*256*25 + 512
    #   + 256*128*25 + 256 + 128*3*25 = 18,885,760; D 128*3*25 + 128*256*25 + 512 + 256*512*25 + 1024
    #   + 512*1024*25 + 2048 + 16384 = 17,232,768.
    assert ref.dcgan_faces() == {"g": 18_885_760, "d": 17_232_768}
    # WGAN: G 100*512*16 + 1024 + 512*256*16 + 512 + 256*128*16 + 256 + 128*64*16 + 128 + 64*3*16
    #   = 3,576,704; D 3*64*16 + 64*128*16 + 256 + 128*256*16 + 512 + 256*512*16 + 1024 + 512*16 = 2,765,568.
    assert ref.wgan_dcgan64() == {"g": 3_576_704, "d": 2_765_568}
    # WGAN-GP CIFAR: G (128*8192 + 8192) + 2*8192 + (512*256*25 + 256) + 512 + (256*128*25 + 128) + 256
    #   + (128*3*25 + 3) = 5,179,907; D (3*128*25 + 128) + (128*256*25 + 256) + (256*512*25 + 512)
    #   + (8192 + 1) = 4,114,689.
    assert ref.wgan_gp_cifar() == {"g": 5_179_907, "d": 4_114_689}
    # StyleGAN config F at 1024: mapping 8*(512*512 + 512) = 2,101,248; synthesis: const 8192, the
    # 4x4 layers 3,420,160, 8..32: 3 * 5,771,264, 64: 2,295,808, 128: 705,536, 256: 242,176,
    # 512: 93,440, 1024: 39,808, toRGB 51 -> 24,110,771; D 23,077,137 (fromRGB 64, blocks
    # 6,960 + 27,744 + 110,784 + 442,752 + 1,770,240 + 3 * 4,719,616, 4x4 2,364,416 + 4,194,816 + 513).
    sg = ref.stylegan(1024, 8192)
    assert (sg["g/mapping"], sg["g/synthesis"], sg["g"], sg["d"]) == (2_101_248, 24_110_771, 26_212_019, 23_077_137)
    # StyleGAN2 config F at 1024: synthesis 8192 + 2,622,465 + 264,195 (toRGB 4) + 4 * 5,509,125
    # (8..64) + 2,296,069 + 705,669 + 242,245 + 93,477 = 28,268,812, G 30,370,060; D 128 + 29,792 +
    # 118,976 + 475,520 + 1,901,312 + 4 * 4,981,760 + 2,364,416 + 4,194,816 + 513 = 29,012,513.
    s2 = ref.stylegan2(1024, 16384, "skip", "resnet")
    assert (s2["g/synthesis"], s2["g"], s2["d"]) == (28_268_812, 30_370_060, 29_012_513)
    # RealNVP CIFAR-10: 3 * 634,448 + 3 * 2,528,799 + 4 * 2,529,951 = 19,609,545.
    assert ref.realnvp_cifar10() == {"net": 19_609_545}
    # DDPM CIFAR-10: the 35.7M the paper reports, 35,746,307 exactly.
    assert ref.ddpm_cifar10() == 35_746_307
    # VQ-VAE: encoder 12,544 + 1,048,832 + 2 * 655,872; decoder 2 * 655,872 + 1,048,832 + 12,291.
    assert ref.vqvae_cifar10() == {"encoder": 2_373_120, "decoder": 2_372_867, "codebook": 131_072}
    # GAN: G 121,200 + 1,441,200 + 941,584; D 942,000 + 289,200 + 241.
    assert ref.gan_mnist() == {"g": 2_503_984, "d": 1_231_441}
    assert ref.nice_mnist() == {"net": 19_158_352}  # 4 * (393,000 + 4 * 1,001,000 + 392,392) + 784


def _sub(ours: dict, want: dict) -> dict:
    return {k: ours.get(k) for k in want}


@pytest.mark.parametrize(
    "name,arg,want",
    [
        ("gan_mnist", None, ref.gan_mnist()),
        ("dcgan_celeba", None, ref.dcgan_faces()),
        ("wgan_lsun", None, ref.wgan_dcgan64()),
        ("wgan_gp_cifar10", None, ref.wgan_gp_cifar()),
        ("stylegan_ffhq", None, ref.stylegan(1024, 8192)),
        ("stylegan_ffhq", "celebahq", ref.stylegan(1024, 8192)),
        ("stylegan2_ffhq", None, ref.stylegan2(1024, 16384, "skip", "resnet")),
        ("stylegan2_ffhq", "A", ref.stylegan(1024, 8192)),
        ("stylegan2_ffhq", "B", ref.stylegan2(1024, 8192, "orig", "orig")),
        ("stylegan2_ffhq", "D", ref.stylegan2(1024, 8192, "orig", "orig")),
        ("stylegan2_ffhq", "E", ref.stylegan2(1024, 8192, "skip", "resnet")),
        ("stylegan2_ffhq", "church", ref.stylegan2(256, 16384, "skip", "resnet")),
        ("vae_mnist", None, ref.vae_mnist()),
        ("beta_vae_dsprites", None, ref.beta_vae_dsprites()),
        ("nice_mnist", None, ref.nice_mnist()),
        ("realnvp_cifar10", None, ref.realnvp_cifar10()),
        ("ddpm_cifar10", None, {"total": ref.ddpm_cifar10()}),
        ("vqvae_cifar10", None, ref.vqvae_cifar10()),
    ],
)
def test_paper_scale_configs_build_the_authors_networks_to_the_parameter(name, arg, want):
    assert _sub(_ours(name, arg), want) == want


# ------------------------------------------------------------------------- runs at a small size

# Only sizes change (resolution, widths, batch); every switch a config sets is kept. FFHQ is not in
# TFDS's catalog, so its configs read the mocked CelebA-HQ (same kind of images).
SMALL = {
    "gan_mnist": {"model": dict(g_hidden=(16, 16), d_hidden=(8, 8))},
    "vae_mnist": {"model": dict(hidden=(16,), latent_dim=4)},
    "beta_vae_dsprites": {"model": dict(hidden=(16, 16), decoder_hidden=(16, 16, 16), latent_dim=4)},
    "nice_mnist": {"model": dict(hidden=(16,) * 5)},
    "realnvp_cifar10": {"model": dict(channels=4, num_blocks=1)},
    "ddpm_cifar10": {"model": dict(ch=8, timesteps=20)},
    "dcgan_celeba": {"model": dict(channels=4), "data": dict(image_size=16)},
    "wgan_lsun": {"model": dict(channels=4), "data": dict(image_size=16)},
    "wgan_gp_cifar10": {"model": dict(channels=4)},
    "stylegan_ffhq": {
        "model": dict(z_dim=8, w_dim=8, fmap_max=8),
        "data": dict(name="tfds:celeb_a_hq/128", image_size=16),
    },
    "stylegan2_ffhq": {
        "model": dict(z_dim=8, w_dim=8, fmap_max=8),
        "data": dict(name="tfds:celeb_a_hq/128", image_size=16),
    },
    "vqvae_cifar10": {"model": dict(hidden=8, res_hidden=8, code_dim=8, num_codes=16)},
}


def _small(name, arg):
    cfg = _cfg(name, arg)
    before = dict(cfg.model)
    for section, keys in SMALL[name].items():
        cfg[section].update(keys)
    assert {k for k in before if before[k] != cfg.model[k]} <= set(SMALL[name].get("model", {}))  # sizes only
    cfg.train.batch_size = 8
    return cfg


@pytest.mark.parametrize(
    "name,arg",
    [
        ("gan_mnist", None),
        ("vae_mnist", None),
        ("beta_vae_dsprites", None),
        ("nice_mnist", None),
        ("realnvp_cifar10", None),
        ("ddpm_cifar10", None),
        ("dcgan_celeba", None),
        ("wgan_lsun", None),
        ("wgan_gp_cifar10", None),
        ("stylegan_ffhq", None),
        ("stylegan_ffhq", "celebahq"),
        ("stylegan2_ffhq", None),
        ("vqvae_cifar10", None),
    ],
)
def test_paper_scale_configs_take_a_step_and_sample_at_a_small_size(name, arg):
    cfg = _small(name, arg)
    fam = registry.get_family(cfg.model_name)
    with tfds.testing.mock_data(num_examples=16):
        data = load(cfg.data, cfg.train.batch_size, 0)
        cfg.data.update(data.facts())
        batch = data.train_batch(0)
    key = jax.random.key(0)
    state = jax.jit(lambda k: fam.init(k, cfg, batch))(key)
    state, metrics = jax.jit(lambda s, b: fam.train_step(s, b, key, cfg))(state, batch)
    samples = jax.jit(lambda s: fam.sample(s, key, 4, cfg))(state)
    assert int(state.step) == 1 and np.isfinite(float(metrics["loss"]))
    assert samples.shape[0] == 4 and np.all(np.isfinite(np.asarray(samples)))
