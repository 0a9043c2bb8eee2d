"""Parameter counts of the papers' networks, derived from the authors' released code (or, where none
was released, the paper's text) layer by layer, written from those sources and not from gm_jax's
modules. Each function cites the file it follows; `tests/models/test_paper_params.py` compares them
with gm_jax's abstract init and with the totals worked out by hand in its comments.
"""

from __future__ import annotations

import math


def dense(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


# --------------------------------------------------------------------------------- GAN (2014)


def gan_mnist() -> dict:
    """goodfeli/adversarial mnist.yaml: G RectifiedLinear h0 1200, h1 1200, Sigmoid y 784 from nvis
    100; D Maxout h0, h1 of 240 units x 5 pieces (pylearn2 Maxout: W [n_in, 240*5], b [240*5]),
    Sigmoid y of 1."""
    g = dense(100, 1200) + dense(1200, 1200) + dense(1200, 784)
    d = dense(784, 240 * 5) + dense(240, 240 * 5) + dense(240, 1)
    return {"g": g, "d": d}


# ------------------------------------------------------------------------------- DCGAN family


def dcgan_faces() -> dict:
    """Newmu/dcgan_code faces/train_uncond_dcgan.py (nz 100, ngf = ndf = 128, nc 3, 64x64): G gw
    (nz, ngf*8*4*4), gains and biases per unit gg, gb (ngf*8*4*4), then gw2..gw4 5x5 deconvs with
    per-channel gains/biases, gwx (ngf, nc, 5, 5); no conv biases. D dw (ndf, nc, 5, 5), dw2..dw4
    with per-channel gains/biases, dwy (ndf*8*4*4, 1)."""
    nz, ngf, ndf, nc = 100, 128, 128, 3
    g = nz * ngf * 8 * 16 + 2 * ngf * 8 * 16
    chans = [ngf * 8, ngf * 4, ngf * 2, ngf]
    for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
        g += conv(5, c_in, c_out, bias=False) + 2 * c_out
    g += conv(5, ngf, nc, bias=False)
    d = conv(5, nc, ndf, bias=False)
    dch = [ndf, ndf * 2, ndf * 4, ndf * 8]
    for c_in, c_out in zip(dch[:-1], dch[1:], strict=True):
        d += conv(5, c_in, c_out, bias=False) + 2 * c_out
    d += ndf * 8 * 16
    return {"g": g, "d": d}


def wgan_dcgan64() -> dict:
    """martinarjovsky/WassersteinGAN models/dcgan.py, DCGAN_G / DCGAN_D with isize 64, nz 100,
    nc 3, ngf = ndf = 64, n_extra_layers 0, every Conv/ConvTranspose bias=False, BatchNorm2d affine.
    G: cngf = ngf // 2 doubled while tisize != isize (4 -> 64: cngf 512); initial ConvTranspose
    nz -> 512 (4x4) + BN; pyramid 512 -> 256 -> 128 -> 64 (4x4) + BN; final 64 -> nc (4x4).
    D: initial conv nc -> 64 (4x4); pyramid 64 -> 128 -> 256 -> 512 + BN; final conv 512 -> 1 (4x4)."""
    g = conv(4, 100, 512, False) + 2 * 512
    for c_in, c_out in ((512, 256), (256, 128), (128, 64)):
        g += conv(4, c_in, c_out, False) + 2 * c_out
    g += conv(4, 64, 3, False)
    d = conv(4, 3, 64, False)
    for c_in, c_out in ((64, 128), (128, 256), (256, 512)):
        d += conv(4, c_in, c_out, False) + 2 * c_out
    d += conv(4, 512, 1, False)
    return {"g": g, "d": d}


def wgan_gp_cifar() -> dict:
    """igul222/improved_wgan_training gan_cifar.py (DIM 128, MODE wgan-gp) with tflib's layers, every
    one with a bias: G Linear 128 -> 4*4*4*DIM, Batchnorm over axis [0] (offset and scale per unit),
    Deconv2D 5x5 4DIM -> 2DIM -> DIM (+ per-channel Batchnorm) -> 3; D Conv2D 5x5 3 -> DIM -> 2DIM ->
    4DIM (no normalisation), Linear 4*4*4*DIM -> 1."""
    dim = 128
    g = dense(128, 4 * 4 * 4 * dim) + 2 * 4 * 4 * 4 * dim
    g += conv(5, 4 * dim, 2 * dim) + 2 * 2 * dim + conv(5, 2 * dim, dim) + 2 * dim + conv(5, dim, 3)
    d = conv(5, 3, dim) + conv(5, dim, 2 * dim) + conv(5, 2 * dim, 4 * dim) + dense(4 * 4 * 4 * dim, 1)
    return {"g": g, "d": d}


# ---------------------------------------------------------------------------- StyleGAN family


def _mapping(layers: int = 8, z: int = 512, w: int = 512) -> int:
    """G_mapping (both repos): `layers` dense layers of 512 (mapping_fmaps) with biases."""
    return sum(dense(z if i == 0 else 512, w if i == layers - 1 else 512) for i in range(layers))


def stylegan(res: int = 1024, fmap_base: int = 8192) -> dict:
    """NVlabs/stylegan training/networks_stylegan.py, G_style (G_mapping + G_synthesis, const input,
    styles, noise) and D_basic, with one toRGB / fromRGB (the final resolution's). nf(stage) =
    min(fmap_base / 2^stage, 512). A layer epilogue of C maps: noise weight C + bias C + style_mod
    dense 512 -> 2C with bias. Up/down-sampling convolutions have 3x3 weights."""

    def nf(s):
        return min(int(fmap_base / 2.0**s), 512)

    def epilogue(c):
        return c + c + dense(512, 2 * c)

    r_log2 = int(math.log2(res))
    syn = 16 * nf(1) + epilogue(nf(1)) + conv(3, nf(1), nf(1), False) + epilogue(nf(1))
    for r in range(3, r_log2 + 1):
        syn += conv(3, nf(r - 2), nf(r - 1), False) + epilogue(nf(r - 1))
        syn += conv(3, nf(r - 1), nf(r - 1), False) + epilogue(nf(r - 1))
    syn += conv(1, nf(r_log2 - 1), 3)  # ToRGB: conv + apply_bias
    d = conv(1, 3, nf(r_log2 - 1))  # FromRGB
    for r in range(r_log2, 2, -1):
        d += conv(3, nf(r - 1), nf(r - 1)) + conv(3, nf(r - 1), nf(r - 2))
    d += conv(3, nf(1) + 1, nf(1)) + dense(16 * nf(1), nf(0)) + dense(nf(0), 1)  # mbstd adds one map
    return {"g": _mapping() + syn, "g/mapping": _mapping(), "g/synthesis": syn, "d": d}


def stylegan2(res: int = 1024, fmap_base: int = 16384, g_arch: str = "skip", d_arch: str = "resnet") -> dict:
    """NVlabs/stylegan2 training/networks_stylegan2.py, G_main (G_mapping + G_synthesis_stylegan2)
    and D_stylegan2 (D_stylegan = architecture "orig"). nf(stage) = clip(fmap_base / 2^stage, 1, 512).
    A `layer`: modulation dense 512 -> C_in with bias (mod_weight, mod_bias), a k x k weight (no
    bias inside), a scalar noise_strength and a bias. ToRGB: the modulation dense, a 1x1 weight to 3,
    a bias. Resnet shortcuts: 1x1 conv2d_layer without bias."""

    def nf(s):
        return int(min(max(int(fmap_base / 2.0**s), 1), 512))

    def layer(c_in, c_out, k):
        return dense(512, c_in) + conv(k, c_in, c_out, False) + 1 + c_out

    def torgb(c_in):
        return dense(512, c_in) + conv(1, c_in, 3)

    r_log2 = int(math.log2(res))
    syn = 16 * nf(1) + layer(nf(1), nf(1), 3) + (torgb(nf(1)) if g_arch == "skip" else 0)
    for r in range(3, r_log2 + 1):
        syn += layer(nf(r - 2), nf(r - 1), 3) + layer(nf(r - 1), nf(r - 1), 3)
        if g_arch == "resnet":
            syn += conv(1, nf(r - 2), nf(r - 1), False)
        if g_arch == "skip" or r == r_log2:
            syn += torgb(nf(r - 1))
    d = 0
    for r in range(r_log2, 2, -1):
        if d_arch == "skip" or r == r_log2:
            d += conv(1, 3, nf(r - 1))
        d += conv(3, nf(r - 1), nf(r - 1)) + conv(3, nf(r - 1), nf(r - 2))
        if d_arch == "resnet":
            d += conv(1, nf(r - 1), nf(r - 2), False)
    if d_arch == "skip":
        d += conv(1, 3, nf(1))
    d += conv(3, nf(1) + 1, nf(1)) + dense(16 * nf(1), nf(0)) + dense(nf(0), 1)
    return {"g": _mapping() + syn, "g/mapping": _mapping(), "g/synthesis": syn, "d": d}


# ------------------------------------------------------------------------ likelihood models


def vae_mnist() -> dict:
    """Kingma & Welling 2014, appendix: MNIST, one hidden layer of 500 tanh units in the encoder and
    the decoder, a 20-d latent (mean and log-variance heads), Bernoulli outputs (no code released)."""
    return {"encoder": dense(784, 500) + 2 * dense(500, 20), "decoder": dense(20, 500) + dense(500, 784)}


def beta_vae_dsprites() -> dict:
    """Higgins et al. 2017, Table 1 (dSprites, no code released): encoder 4096 -> FC 1200 -> FC 1200
    -> 2 x 10; decoder 10 -> FC 1200 -> FC 1200 -> FC 1200 -> 4096."""
    enc = dense(4096, 1200) + dense(1200, 1200) + dense(1200, 2 * 10)
    dec = dense(10, 1200) + dense(1200, 1200) + dense(1200, 1200) + dense(1200, 4096)
    return {"encoder": enc, "decoder": dec}


def nice_mnist() -> dict:
    """Dinh et al. 2014, section 5.1: 4 additive coupling layers on 784 = 2 x 392 dimensions, each
    coupling function a ReLU MLP of 5 hidden layers of 1000 units, then the diagonal scaling (784)."""
    coupling = dense(392, 1000) + 4 * dense(1000, 1000) + dense(1000, 392)
    return {"net": 4 * coupling + 784}


def realnvp_cifar10() -> dict:
    """tensorflow/models research/real_nvp/real_nvp_multiscale_dataset.py with the paper's CIFAR-10
    setting (n_scale 2, base_dim 64, residual_blocks 8; use_batch_norm 1, skip 1, weight norm,
    recursion_type 2, bottleneck 0). conv_layer: weights, a magnitude per output channel when
    scale=True, biases when bias=True; batch_norm(scale=False): beta only; batch_norm_log_diff: no
    trainable variables."""

    def resnet(dim_in, dim, dim_out, blocks=8):
        n = conv(3, dim_in, dim) + (conv(1, dim, dim) + dim)  # h_in (no magnitude); skip_in
        block = dim + conv(3, dim, dim, False) + dim + (conv(3, dim, dim) + dim)  # bn_in, h_0, bn_0, out
        n += blocks * (block + conv(1, dim, dim) + dim)  # each block and its skip_<b>
        return n + dim + conv(1, dim, dim_out) + dim_out  # bn_pre_out, out

    def masked(c, dim):  # masked_conv_aff_coupling: bn_in (c), resnet(2c+1 -> 2c), rescaling_scale
        return c + resnet(2 * c + 1, dim, 2 * c) + 1

    def channel(c_half, dim):  # conv_ch_aff_coupling: bn_in, resnet(2 c_half -> 2 c_half), scale
        return c_half + resnet(2 * c_half, dim, 2 * c_half) + 1

    n = 3 * masked(3, 64) + 3 * channel(6, 128)  # scale 0: 32x32x3; channel couplings on 16x16x12
    n += 4 * masked(6, 128)  # scale 1 (last): 16x16x6, dim 64 * 2
    return {"net": n}


def ddpm_cifar10() -> int:
    """hojonathanho/diffusion diffusion_tf/models/unet.py, `model` with ch 128, ch_mult (1, 2, 2, 2),
    num_res_blocks 2, attn_resolutions (16,), resamp_with_conv, 32x32x3: the total over the net."""
    temb = 4 * 128

    def resblock(c_in, c_out):  # norm1, conv1, temb_proj, norm2, conv2, nin_shortcut when c_in != c_out
        n = 2 * c_in + conv(3, c_in, c_out) + dense(temb, c_out) + 2 * c_out + conv(3, c_out, c_out)
        return n + (dense(c_in, c_out) if c_in != c_out else 0)

    def attn(c):  # norm, q, k, v, proj_out (NIN = dense over channels)
        return 2 * c + 4 * dense(c, c)

    n = dense(128, temb) + dense(temb, temb) + conv(3, 3, 128)
    mult, res = (1, 2, 2, 2), 32
    hs, c = [128], 128
    for level, m in enumerate(mult):
        for _ in range(2):
            n += resblock(c, 128 * m)
            c = 128 * m
            n += attn(c) if res == 16 else 0
            hs.append(c)
        if level != len(mult) - 1:
            n += conv(3, c, c)
            hs.append(c)
            res //= 2
    n += resblock(c, c) + attn(c) + resblock(c, c)
    for level in reversed(range(len(mult))):
        for _ in range(3):
            n += resblock(c + hs.pop(), 128 * mult[level])
            c = 128 * mult[level]
            n += attn(c) if res == 16 else 0
        if level != 0:
            n += conv(3, c, c)
            res *= 2
    return n + 2 * c + conv(3, c, 3)


def vqvae_cifar10() -> dict:
    """van den Oord et al. 2017, section 4.1 (no code released with the paper): encoder 2 strided
    4x4 convolutions and 2 residual blocks (ReLU, 3x3 conv, ReLU, 1x1 conv), "all having 256 hidden
    units"; decoder 2 residual blocks and 2 transposed 4x4 convolutions; K = 512 codes of 256."""
    block = conv(3, 256, 256) + conv(1, 256, 256)
    enc = conv(4, 3, 256) + conv(4, 256, 256) + 2 * block
    dec = 2 * block + conv(4, 256, 256) + conv(4, 256, 3)
    return {"encoder": enc, "decoder": dec, "codebook": 512 * 256}
