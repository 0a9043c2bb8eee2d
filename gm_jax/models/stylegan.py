"""StyleGAN (Karras et al., 2019) and StyleGAN2 (Karras et al., 2020) as nets of the adversarial
family: the step, losses, schedule, R1, path-length regularisation hook and generator EMA are
`gm_jax.models.gan`'s; this module builds the nets and the sampling API. The nets follow the
authors' released code layer by layer and parameter by parameter: NVlabs `stylegan`,
`training/networks_stylegan.py` (`G_mapping`, `G_synthesis`, `D_basic`) for `style="adain"` and
`"none"`, and NVlabs `stylegan2`, `training/networks_stylegan2.py` (`G_mapping`,
`G_synthesis_stylegan2`, `D_stylegan2`; `D_stylegan` is `d_arch="orig"`) for `style="demod"`.

Feature maps: resolution r has nf(log2 r - 1) maps, nf(stage) = clip(fmap_base / 2^stage,
`fmap_min`, `fmap_max`) as in both references (StyleGAN and StyleGAN2 configs A-E: fmap_base 8192,
StyleGAN2 config F: 16384); the discriminator's 4x4 layers use nf(1) and its dense layer nf(0).

Generator: a mapping network (z normalised to unit second moment, `mapping_layers` = 8 equalised
fully connected layers with LeakyReLU(0.2) and learning-rate multiplier `mapping_lr_mul` = 0.01)
turns z into w; the synthesis network starts from a learned 4x4 constant (`input="const"`: ones at
init for StyleGAN, N(0, 1) for StyleGAN2; `"z"` is StyleGAN's traditional input, a dense layer from
the first layer's w) and doubles the resolution per block with 3x3 weights. L = 2 log2(size) - 2
style layers each take their own copy of w (the styles array [N, L, w_dim]):
- `style="adain"` (StyleGAN): every layer is conv -> noise -> bias -> LeakyReLU -> instance norm
  -> per-channel scale (1 + y_s) and bias y_b from the learned affine "A" of w (layer 0 is the
  constant itself); the up-sampling layer is nearest-neighbour upsampling and a 3x3 convolution
  (one fused 4x4 transposed convolution, `gm_jax.nn.resample.upscale_conv2d`) followed by the
  [1, 2, 1] blur (`resample_filter`); per-layer noise with learned per-channel strengths;
- `style="demod"` (StyleGAN2): the convolution's weights are modulated by the affine's style s
  (bias initialised to 1) and demodulated, w'_ijk = s_i w_ijk / sqrt(sum_ik (s_i w_ijk)^2 + 1e-8),
  computed as input scaling, a shared convolution and output scaling; the up-sampling layer is the
  stride-2 transposed convolution of the 3x3 weights followed by the [1, 3, 3, 1] FIR filter
  (`upsample_conv2d`); noise (one learned strength per layer) and bias come after it, the
  activation has gain sqrt(2); toRGB is modulated without demodulation. `g_arch`: "orig" (one toRGB
  at the end, configs B-D), "skip" (a toRGB at every resolution, the image up-sampled with the
  filter and summed: configs E-F), "resnet" (a 1x1 up-sampled shortcut per block, (x + t)/sqrt 2);
- `style="none"`: pixel norm instead (the progressive GAN baseline, ablation configs A/B).
Every weight is equalised: stored N(0, 1/lr_mul^2) and scaled at run time by gain * lr_mul /
sqrt(fan_in), fan_in = k k Cin of the stored (3x3) kernel; StyleGAN's layers have gain sqrt(2)
before LeakyReLU, StyleGAN2's gain 1 and an activation gain of sqrt(2), as in each reference.

Style mixing (training): with probability `mixing_prob` (0.9) per minibatch, as in the papers' code,
a second z2 gives w2 and layers from a crossover drawn uniformly in 1..L-1 take w2. The generator
tracks the average w (`w_avg_beta` = 0.995 per generator forward pass in training; non-gradient
state, checkpointed, `model_state["g_batch_stats"]`). Truncation at sampling: w' = w_avg +
psi (w - w_avg) on the layers before `truncation_cutoff`.

Path-length regularisation (StyleGAN2 config D on, `pl_weight` = 2): on every `pl_every`-th (4)
generator update a minibatch of N / `pl_batch_shrink` (2) latents is generated, y ~ N(0, I) / sqrt(HW),
a = |grad_w (g(w) . y)| averaged as sqrt(mean over layers of the squared norm), its running mean
updated by `pl_decay` (0.01; `g_batch_stats["pl_mean"]`), and pl_weight * pl_every * E (a - mean)^2
added to that update's generator loss (`G_logistic_ns_pathreg` in the reference's `training/loss.py`).

Discriminator: StyleGAN's `D_basic` (1x1 fromRGB, per resolution a 3x3 convolution, the blur and
a 3x3 convolution fused with 2x2 average pooling) or StyleGAN2's `D_stylegan2` (the filter then a
stride-2 3x3 convolution; `d_arch` "orig", "skip" (fromRGB of the filtered-down image at every
resolution) or "resnet" (a 1x1 filtered-down shortcut per block)); both end with the minibatch
standard deviation (`mbstd_group` = 4) at 4x4, a 3x3 convolution and two dense layers.

Loss: the non-saturating logistic loss with R1 (`r1_gamma`), lazily every `r1_every` D updates as
an option (StyleGAN2: 16, the penalty weighted by 16), or the Wasserstein loss with the gradient
penalty and the progressive GAN's drift term `drift` E D(x)^2 (StyleGAN on CelebA-HQ); Adam lr 0.001
(StyleGAN2 0.002), beta = (0, 0.99); EMA of the generator (half-life 10k images) for evaluation and
sampling.

Departures from the reference code, stated: no progressive growing (StyleGAN2 configs E-F drop it
too; for configs A-D and StyleGAN the nets train at full resolution from the start, without the
growing schedule's learning rates and minibatch sizes); the lazy regularisers are added to that
update's loss rather than run as a separate optimizer step with the reference's Adam adjustment
(lr c, beta^c with c = k/(k+1)), so Adam's moments need no re-scaling; the reference's non-
trainable per-layer noise images (used only by its `randomize_noise=False`) are not kept.

Sampling section (`cfg.sample`, may change at --mode=sample): `truncation_psi` in [0, 1] (1: none),
`truncation_cutoff` (layers truncated; 0: all), `mixing_layer` of the style-mixing figure (0: L // 2),
`figure_rows`, `figure_cols`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.core.config import positive_int
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.models import gan
from gm_jax.nn import resample
from gm_jax.nn.conv import conv2d
from gm_jax.nn.precision import compute_dtype, mixed_apply

SQRT2 = math.sqrt(2.0)
ARCHS = ("orig", "skip", "resnet")

# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class StyleGANConfig(gan.AdversarialConfig):
    """The `model` section of the StyleGAN configs (the adversarial step's keys, then the nets')."""

    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8  # 0: w is the normalised z (needs w_dim = z_dim)
    mapping_lr_mul: float = 0.01
    input: str = "const"  # "const" (learned 4x4) | "z" (a dense layer from w, the traditional input)
    style: str = "adain"  # "adain" | "demod" | "none"
    noise_inputs: bool = True
    mixing_prob: float = 0.9
    w_avg_beta: float = 0.995
    fmap_base: int = 8192  # feature maps of stage s (resolution 2^(s+1)): clip(fmap_base / 2^s, fmap_min, fmap_max)
    fmap_min: int = 1
    fmap_max: int = 512
    mbstd_group: int = 4  # 0: no minibatch standard deviation
    g_arch: str = "orig"  # StyleGAN2's generator: "orig" | "skip" | "resnet"
    d_arch: str = "orig"  # StyleGAN2's discriminator: "orig" | "skip" | "resnet"
    resample_filter: tuple = (1, 2, 1)  # StyleGAN's blur; StyleGAN2's FIR filter is (1, 3, 3, 1)
    # Every convolution as a matrix product ("matmul"; the form that stays fast inside the lazy-R1
    # lax.cond on XLA:CPU) or through lax.conv ("subpixel"); gm_jax.nn.conv.
    conv_method: str = "matmul"

    def normalized(self) -> StyleGANConfig:
        return dataclasses.replace(self, resample_filter=tuple(self.resample_filter))

    def check(self) -> None:
        super().check()
        self.one_of("input", ("const", "z"))
        self.one_of("style", ("adain", "demod", "none"))
        self.one_of("conv_method", ("subpixel", "matmul"))
        self.one_of("g_arch", ARCHS)
        self.one_of("d_arch", ARCHS)
        for key in ("z_dim", "w_dim", "fmap_base", "fmap_max", "fmap_min"):
            if not positive_int(getattr(self, key)):
                raise UserError(f"model.{key} must be a positive integer, got {getattr(self, key)!r}")
        for key in ("mapping_layers", "mbstd_group"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UserError(f"model.{key} must be a non-negative integer, got {v!r}")
        if self.mapping_layers == 0 and self.w_dim != self.z_dim:
            raise UserError("model.mapping_layers=0 makes w the normalised z: set model.w_dim equal to model.z_dim")
        if not (isinstance(self.mapping_lr_mul, (int, float)) and self.mapping_lr_mul > 0):
            raise UserError(f"model.mapping_lr_mul must be positive, got {self.mapping_lr_mul!r}")
        if not 0.0 <= self.mixing_prob <= 1.0:
            raise UserError(f"model.mixing_prob must be in [0, 1], got {self.mixing_prob!r}")
        if not 0.0 <= self.w_avg_beta < 1.0:
            raise UserError(f"model.w_avg_beta must be in [0, 1), got {self.w_avg_beta!r}")
        if self.loss != "gan" and self.r1_gamma > 0:
            raise UserError("model.r1_gamma is the logistic loss's penalty; with loss=wasserstein use gp_weight")
        f = self.resample_filter
        if not f or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in f) or sum(f) <= 0:
            raise UserError(f"model.resample_filter must be a list of numbers with a positive sum, got {f!r}")
        if self.style != "demod":
            for key in ("g_arch", "d_arch"):
                if getattr(self, key) != "orig":
                    raise UserError(
                        f"model.{key}={getattr(self, key)} is StyleGAN2's architecture (model.style=demod); "
                        f"model.style={self.style} builds StyleGAN's nets (use {key}=orig)"
                    )
            if len(f) % 2 == 0:
                raise UserError(f"StyleGAN's blur (model.style={self.style}) takes an odd filter, got {f!r}")
        elif self.input != "const":
            raise UserError(
                "StyleGAN2's synthesis (model.style=demod) starts from the learned constant: model.input=const"
            )
        if self.pl_weight > 0 and self.mapping_layers == 0:
            raise UserError("model.pl_weight > 0 regularises the map from w: it needs model.mapping_layers > 0")

    @property
    def v2(self) -> bool:
        """StyleGAN2's nets (networks_stylegan2.py) rather than StyleGAN's (networks_stylegan.py)."""
        return self.style == "demod"

    def nf(self, stage: int) -> int:
        """Feature maps of stage `stage` (resolution 2^(stage + 1)), as both references' nf()."""
        return int(min(max(int(self.fmap_base / 2.0**stage), self.fmap_min), self.fmap_max))

    def fmaps(self, res: int) -> int:
        """Feature maps at resolution `res`: nf(log2 res - 1)."""
        return self.nf(int(round(math.log2(res))) - 1)


def resolution(cfg: Any) -> int:
    """The data's side, refused unless the images are square with a power-of-two side >= 4."""
    if cfg.data.get("kind", "image") != "image":
        raise UserError(f"StyleGAN makes images; {cfg.data.name} holds {cfg.data.get('kind')}")
    h, w = tuple(cfg.data.shape)[:2]
    if h != w or h < 4 or h & (h - 1):
        raise UserError(
            f"StyleGAN's resolution must be a power of two >= 4 (square images from a 4x4 constant); the data is "
            f"{h}x{w} (set data.image_size, e.g. 16 or 32)"
        )
    return int(h)


def num_layers(res: int) -> int:
    """Style layers (copies of w) of a generator of side `res`: two per resolution from 4x4."""
    return 2 * int(round(math.log2(res))) - 2


# ----------------------------------------------------------------------------- layers


def _lrelu(x):
    return nn.leaky_relu(x, 0.2)


class EqDense(nn.Module):
    """A dense layer with equalised learning rate: y = x (W g lr_mul / sqrt(fan_in)) + b lr_mul,
    W ~ N(0, 1 / lr_mul^2) stored, b stored as bias_init / lr_mul."""

    features: int
    gain: float = SQRT2
    lr_mul: float = 1.0
    bias_init: float = 0.0
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0 / self.lr_mul), (fan_in, self.features))
        y = x @ (w * (self.gain * self.lr_mul / math.sqrt(fan_in)))
        if self.use_bias:
            b = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_mul), (self.features,))
            y = y + b * self.lr_mul
        return y


def effective_kernel(w: jax.Array, gain: float) -> jax.Array:
    """The He-scaled weights an equalised convolution applies: w g / sqrt(fan_in), fan_in = k k Cin
    of the stored kernel (3 x 3 x Cin for the resampling convolutions too, as in the references)."""
    k, ci = w.shape[0], w.shape[2]
    return w * (gain / math.sqrt(k * k * ci))


def modulated_conv(x, w, s=None, demod=False, resample_op=None, method="matmul", eps=1e-8):
    """Convolution of x [N, H, W, Ci] with effective weights w [k, k, Ci, Co], optionally modulated
    by per-example styles s [N, Ci] (w'_ijk = s_i w_ijk) and demodulated (each output channel of each
    example divided by sqrt(sum_ik w'^2 + eps)), computed without per-example weights: scale the
    input by s, convolve, scale the output (the reference's `fused_modconv=False` form). `resample_op`
    (x, w, matmul) -> y replaces the plain "SAME" convolution (up- or down-sampling layers); both
    are linear in x, so the output scaling commutes with them."""
    if s is not None:
        x = x * s[:, None, None, :]
    matmul = method == "matmul"
    y = conv2d(x, w, 1, "SAME", matmul=matmul) if resample_op is None else resample_op(x, w, matmul)
    if demod:
        y = y * jax.lax.rsqrt((s**2) @ jnp.sum(w**2, axis=(0, 1)) + eps)[:, None, None, :]
    return y


class EqConv(nn.Module):
    """An equalised k x k convolution, optionally up- or down-sampling (`resample`: None, "up1" /
    "down1" for StyleGAN's fused 3x3 forms, "up2" / "down2" for StyleGAN2's FIR forms with
    `fir`), modulated by a style s [N, Cin] and demodulated; bias optional (the generator adds its
    own after the noise)."""

    features: int
    kernel: int = 3
    gain: float = SQRT2
    resample: str | None = None
    fir: tuple = (1, 3, 3, 1)
    demod: bool = False
    use_bias: bool = True
    method: str = "matmul"

    @nn.compact
    def __call__(self, x, s=None):
        k = self.kernel
        w = self.param("kernel", nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features))
        op = {
            None: None,
            "up1": lambda v, kk, mm: resample.upscale_conv2d(v, kk, mm),
            "down1": lambda v, kk, mm: resample.conv_downscale2d(v, kk, mm),
            "up2": lambda v, kk, mm: resample.upsample_conv2d(v, kk, self.fir, mm),
            "down2": lambda v, kk, mm: resample.conv_downsample2d(v, kk, self.fir, mm),
        }[self.resample]
        y = modulated_conv(x, effective_kernel(w, self.gain), s, self.demod, op, self.method)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def adain(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Instance-normalise each feature map of x [N, H, W, C], then give it the style's std `scale`
    [N, C] and mean `bias` [N, C]."""
    mu = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=(1, 2), keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * scale[:, None, None, :] + bias[:, None, None, :]


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(x**2, axis=-1, keepdims=True) + eps)


def minibatch_stddev(x: jax.Array, group: int) -> jax.Array:
    """x [N, H, W, C] with one more channel: the std over groups of examples (examples i and i + N/G
    share a group, as the reference's reshape), averaged over features and positions."""
    n = x.shape[0]
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    y = x.reshape((g, -1) + x.shape[1:])
    y = jnp.sqrt(jnp.mean((y - jnp.mean(y, 0)) ** 2, 0) + 1e-8)  # [N/G, H, W, C]
    y = jnp.tile(jnp.mean(y, axis=(1, 2, 3)), g)  # [N]
    return jnp.concatenate([x, jnp.broadcast_to(y[:, None, None, None], x.shape[:3] + (1,))], -1)


# ----------------------------------------------------------------------------- nets


class Mapping(nn.Module):
    """z -> w: pixel norm, then `mapping_layers` equalised layers (StyleGAN: gain sqrt 2 in the
    weights; StyleGAN2: gain 1 and sqrt 2 on the activation)."""

    m: StyleGANConfig

    @nn.compact
    def __call__(self, z):
        x = pixel_norm(z)
        gain, act_gain = (1.0, SQRT2) if self.m.v2 else (SQRT2, 1.0)
        for i in range(self.m.mapping_layers):
            x = _lrelu(EqDense(self.m.w_dim, gain=gain, lr_mul=self.m.mapping_lr_mul, name=f"fc{i}")(x)) * act_gain
        return x


class Synthesis(nn.Module):
    """styles [N, L, w_dim] -> image [N, res, res, channels] in [-1, 1] space. The last feature maps
    before toRGB are sown as ("intermediates", "features")."""

    m: StyleGANConfig
    res: int
    channels: int

    def _noise_bias_act(self, x, i):
        """Layer i's noise (per-channel strengths for StyleGAN, one per layer for StyleGAN2), bias and
        activation."""
        m, c = self.m, x.shape[-1]
        if m.noise_inputs:
            strength = self.param(f"noise{i}", nn.initializers.zeros, () if m.v2 else (c,))
            x = x + strength * jax.random.normal(self.make_rng("noise"), x.shape[:3] + (1,), x.dtype)
        x = x + self.param(f"bias{i}", nn.initializers.zeros, (c,))
        return _lrelu(x) * (SQRT2 if m.v2 else 1.0)

    def _epilogue(self, x, w, i):
        """StyleGAN's layer epilogue: noise, bias, activation, then the normalisation and style."""
        m, c = self.m, x.shape[-1]
        x = self._noise_bias_act(x, i)
        if i == num_layers(self.res) - 1:  # the last convolution
            self.sow("intermediates", "features", x)
        if m.style == "adain":
            ys = EqDense(2 * c, gain=1.0, name=f"style{i}")(w[:, i])
            x = adain(x, 1.0 + ys[:, :c], ys[:, c:])
        else:
            x = pixel_norm(x)
        return x

    def _v1(self, w):
        m, n = self.m, w.shape[0]
        f4, cm = m.fmaps(4), m.conv_method
        if m.input == "const":
            x = jnp.broadcast_to(self.param("const", nn.initializers.ones, (4, 4, f4)), (n, 4, 4, f4))
        else:  # the reference's dense input from the first layer's w, gain sqrt(2) / 4
            x = EqDense(16 * f4, gain=SQRT2 / 4, use_bias=False, name="input")(w[:, 0]).reshape(n, 4, 4, f4)
        x = self._epilogue(x, w, 0)
        x = self._epilogue(EqConv(f4, 3, use_bias=False, method=cm, name="conv1")(x), w, 1)
        i, r = 2, 4
        while r < self.res:
            r *= 2
            up = EqConv(m.fmaps(r), 3, resample="up1", use_bias=False, method=cm, name=f"conv{i}")(x)
            x = self._epilogue(resample.blur2d(up, m.resample_filter), w, i)
            x = self._epilogue(EqConv(m.fmaps(r), 3, use_bias=False, method=cm, name=f"conv{i + 1}")(x), w, i + 1)
            i += 2
        return EqConv(self.channels, 1, gain=1.0, method=cm, name="torgb")(x)

    def _layer(self, x, w, i, features, up=False):
        """StyleGAN2's layer i: modulated, demodulated 3x3 convolution (up-sampling with the FIR
        filter), then noise, bias and activation."""
        m = self.m
        s = EqDense(x.shape[-1], gain=1.0, bias_init=1.0, name=f"style{i}")(w[:, i])
        conv = EqConv(
            features,
            3,
            gain=1.0,
            resample="up2" if up else None,
            fir=m.resample_filter,
            demod=True,
            use_bias=False,
            method=m.conv_method,
            name=f"conv{i}",
        )
        x = self._noise_bias_act(conv(x, s), i)
        if i == num_layers(self.res) - 2:  # the last convolution
            self.sow("intermediates", "features", x)
        return x

    def _torgb(self, x, w, i, name):
        s = EqDense(x.shape[-1], gain=1.0, bias_init=1.0, name=f"{name}_style")(w[:, i])
        return EqConv(self.channels, 1, gain=1.0, method=self.m.conv_method, name=name)(x, s)

    def _v2(self, w):
        m, n = self.m, w.shape[0]
        f4 = m.fmaps(4)
        x = jnp.broadcast_to(self.param("const", nn.initializers.normal(1.0), (4, 4, f4)), (n, 4, 4, f4))
        x = self._layer(x, w, 0, f4)
        y = self._torgb(x, w, 1, "torgb4") if m.g_arch == "skip" else None
        r = 4
        while r < self.res:
            r *= 2
            i = 2 * int(round(math.log2(r))) - 5
            t = x
            x = self._layer(x, w, i, m.fmaps(r), up=True)
            x = self._layer(x, w, i + 1, m.fmaps(r))
            if m.g_arch == "resnet":
                skip = EqConv(
                    m.fmaps(r),
                    1,
                    gain=1.0,
                    resample="up2",
                    fir=m.resample_filter,
                    use_bias=False,
                    method=m.conv_method,
                    name=f"skip{r}",
                )
                x = (x + skip(t)) / SQRT2
            if m.g_arch == "skip":
                y = resample.upsample2d(y, m.resample_filter) + self._torgb(x, w, i + 2, f"torgb{r}")
        if m.g_arch != "skip":
            y = self._torgb(x, w, num_layers(self.res) - 1, "torgb")
        return y

    @nn.compact
    def __call__(self, w):
        return self._v2(w) if self.m.v2 else self._v1(w)


class Generator(nn.Module):
    m: StyleGANConfig
    res: int
    channels: int

    def setup(self):
        self.mapping = Mapping(self.m)
        self.synthesis = Synthesis(self.m, self.res, self.channels)

    def __call__(self, z):
        w = self.map(z)
        return self.synthesize(jnp.broadcast_to(w[:, None], (w.shape[0], num_layers(self.res), w.shape[-1])))

    def map(self, z):
        return self.mapping(z)

    def synthesize(self, styles):
        return self.synthesis(styles)


class Discriminator(nn.Module):
    """StyleGAN's D_basic (`style` adain / none) or StyleGAN2's D_stylegan2 (`style` demod)."""

    m: StyleGANConfig

    @nn.compact
    def __call__(self, x, train: bool = True):
        m, r = self.m, x.shape[1]
        cm, v2 = m.conv_method, m.v2
        gain, ag = (1.0, SQRT2) if v2 else (SQRT2, 1.0)  # weight gain, activation gain

        def act(h):
            return _lrelu(h) * ag

        def fromrgb(img, res):
            return act(EqConv(m.fmaps(res), 1, gain=gain, method=cm, name=f"fromrgb{res}")(img))

        img, h = x, fromrgb(x, r)
        while r > 4:
            t = h
            h = act(EqConv(m.fmaps(r), 3, gain=gain, method=cm, name=f"conv{r}")(h))
            if v2:
                down = EqConv(
                    m.fmaps(r // 2), 3, gain=gain, resample="down2", fir=m.resample_filter, method=cm, name=f"down{r}"
                )
                h = act(down(h))
            else:
                h = act(
                    EqConv(m.fmaps(r // 2), 3, gain=gain, resample="down1", method=cm, name=f"down{r}")(
                        resample.blur2d(h, m.resample_filter)
                    )
                )
            if m.d_arch == "resnet":
                skip = EqConv(
                    m.fmaps(r // 2),
                    1,
                    gain=1.0,
                    resample="down2",
                    fir=m.resample_filter,
                    use_bias=False,
                    method=cm,
                    name=f"skip{r}",
                )
                h = (h + skip(t)) / SQRT2
            r //= 2
            if m.d_arch == "skip":
                img = resample.downsample2d(img, m.resample_filter)
                h = h + fromrgb(img, r)
        if m.mbstd_group:
            h = minibatch_stddev(h, m.mbstd_group)
        h = act(EqConv(m.nf(1), 3, gain=gain, method=cm, name="conv4")(h))
        h = act(EqDense(m.nf(0), gain=gain, name="fc")(h.reshape(h.shape[0], -1)))
        return EqDense(1, gain=1.0, name="out")(h)[:, 0]


class StyleNets:
    """The nets and latents of a StyleGAN config, with the methods the adversarial step calls."""

    def __init__(self, cfg: Any):
        self.m = m = StyleGANConfig.from_cfg(cfg)
        self.res = resolution(cfg)
        self.channels = int(tuple(cfg.data.shape)[2])
        self.layers = num_layers(self.res)
        self.z_dim = m.z_dim
        self.g = Generator(m, self.res, self.channels)
        self.d = Discriminator(m)
        self.g_apply = mixed_apply(self.g.apply, compute_dtype(m.dtype))  # model.dtype: the compute dtype
        self.d_apply = mixed_apply(self.d.apply, compute_dtype(m.dtype))

    def init_vars(self, key, x, data_mean=None):
        del data_mean
        kg, kn, kd = jax.random.split(key, 3)
        gv = self.g.init({"params": kg, "noise": kn}, jnp.zeros((2, self.z_dim)))
        dv = self.d.init(kd, x)
        stats = {"w_avg": jnp.zeros((self.m.w_dim,))}
        if self.m.pl_weight > 0:
            stats["pl_mean"] = jnp.zeros(())
        return {"params": gv["params"], "batch_stats": stats}, dv

    def to_net(self, x):
        return 2.0 * x - 1.0

    def from_net(self, g):
        return jnp.clip((g + 1.0) / 2.0, 0.0, 1.0)

    def noise(self, key, n):
        """A training latent: z, a second z for style mixing, the minibatch's crossover layer (L: no
        mixing) and the per-layer noise key."""
        kz, kz2, kp, kc, kn = jax.random.split(key, 5)
        mix = jax.random.uniform(kp) < self.m.mixing_prob
        cross = jnp.where(mix, jax.random.randint(kc, (), 1, max(self.layers, 2)), self.layers)
        return {
            "z": jax.random.normal(kz, (n, self.z_dim)),
            "z2": jax.random.normal(kz2, (n, self.z_dim)),
            "cross": cross.astype(jnp.int32),
            "key": kn,
        }

    def map(self, params, z):
        return self.g_apply({"params": params}, z, method="map")

    def synthesize(self, params, styles, key, capture=False):
        """Images in [-1, 1] space from styles [N, L, w_dim]; with `capture`, also the last feature maps."""
        if not capture:
            return self.g_apply({"params": params}, styles, method="synthesize", rngs={"noise": key})
        out, inter = self.g_apply(
            {"params": params}, styles, method="synthesize", rngs={"noise": key}, mutable=["intermediates"]
        )
        return out, inter["intermediates"]["synthesis"]["features"][0]

    def styles(self, params, stats, latent, train):
        """(styles [N, L, w_dim] of a latent, the updated generator statistics): in training with
        style mixing and the w average tracked; otherwise plain (no mixing, no truncation)."""
        w = self.map(params, latent["z"])
        styles = broadcast_styles(w, self.layers)
        if train:
            mean = jnp.mean(w, 0)
            stats = {**stats, "w_avg": mean + self.m.w_avg_beta * (stats["w_avg"] - mean)}
            if self.m.mixing_prob > 0:
                other = broadcast_styles(self.map(params, latent["z2"]), self.layers)
                styles = mix_styles(styles, other, latent["cross"])
        return styles, stats

    def generate(self, params, stats, latent, train):
        """(G(latent) in net space, the updated generator statistics)."""
        styles, stats = self.styles(params, stats, latent, train)
        return self.synthesize(params, styles, latent["key"]), stats

    def path_length(self, params, stats, key, n):
        """StyleGAN2's path-length penalty on a fresh minibatch of n // pl_batch_shrink latents:
        (E (a - pl_mean')^2, the statistics with the updated running mean pl_mean', E a), a the
        per-example Jacobian-vector norm |grad_w (g(w) . y)| / sqrt(L), y ~ N(0, I) / sqrt(HW).
        The penalty's gradient reaches pl_mean' through the batch mean, as in the reference."""
        m = self.m
        kl, ky = jax.random.split(key)
        latent = self.noise(kl, max(1, n // m.pl_batch_shrink))
        styles, stats = self.styles(params, stats, latent, True)
        shape = (styles.shape[0], self.res, self.res, self.channels)
        y = jax.random.normal(ky, shape) / math.sqrt(self.res * self.res)
        grads = jax.grad(lambda s: jnp.sum(self.synthesize(params, s, latent["key"]) * y))(styles)
        lengths = jnp.sqrt(jnp.mean(jnp.sum(grads**2, axis=2), axis=1))
        pl_mean = stats["pl_mean"] + m.pl_decay * (jnp.mean(lengths) - stats["pl_mean"])
        penalty = jnp.mean((lengths - pl_mean) ** 2)
        return penalty, {**stats, "pl_mean": jax.lax.stop_gradient(pl_mean)}, jnp.mean(lengths)

    def discriminate(self, params, stats, x, train, key=None):
        return self.d_apply({"params": params}, x), None


# ----------------------------------------------------------------------------- styles


def broadcast_styles(w: jax.Array, layers: int) -> jax.Array:
    """w [N, w_dim] -> styles [N, L, w_dim], one copy per layer."""
    return jnp.broadcast_to(w[:, None], (w.shape[0], layers, w.shape[-1]))


def mix_styles(a: jax.Array, b: jax.Array, layer) -> jax.Array:
    """Styles [N, L, w_dim] taking a's before `layer` and b's from `layer` on."""
    idx = jnp.arange(a.shape[1])[None, :, None]
    return jnp.where(idx < layer, a, b)


def truncate(styles: jax.Array, w_avg: jax.Array, psi: float, cutoff: int = 0) -> jax.Array:
    """w_avg + psi (w - w_avg) on the layers before `cutoff` (0: every layer)."""
    cut = styles.shape[1] if not cutoff else cutoff
    t = w_avg + psi * (styles - w_avg)
    return jnp.where(jnp.arange(styles.shape[1])[None, :, None] < cut, t, styles)


# ----------------------------------------------------------------------------- family


def init(key: jax.Array, cfg: Any, example_batch: dict) -> TrainState:
    return gan.init(key, cfg, example_batch, nets=StyleNets(cfg))


def train_step(state: TrainState, batch: dict, key: jax.Array, cfg: Any):
    return gan.train_step(state, batch, key, cfg, nets=StyleNets(cfg))


def peak_to_mean(features: jax.Array) -> jax.Array:
    """Per example: the mean over channels of max |a| / mean |a| over each feature map's positions
    (a local spike such as AdaIN's droplet gives a high ratio)."""
    a = jnp.abs(features)
    return jnp.mean(jnp.max(a, axis=(1, 2)) / (jnp.mean(a, axis=(1, 2)) + 1e-8), axis=-1)


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """The adversarial family's per-example D metrics, and `feature_peak_to_mean` (see
    `peak_to_mean`) of the last feature maps of one untruncated sample per example."""
    nets = StyleNets(cfg)
    out = gan.evaluate(state, batch, key, cfg, nets=nets)
    params = state.eval_params()["g"]
    kz, kn = jax.random.split(jax.random.fold_in(key, 1))
    z = jax.random.normal(kz, (batch["x"].shape[0], nets.z_dim))
    _, feats = nets.synthesize(params, broadcast_styles(nets.map(params, z), nets.layers), kn, capture=True)
    out["feature_peak_to_mean"] = peak_to_mean(feats)
    return out


def sample_options(cfg: Any, layers: int) -> dict:
    """The sampling section, checked: psi, cutoff, mixing layer, figure size."""
    s = cfg.get("sample", {})
    psi = s.get("truncation_psi", 1.0)
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0.0 <= psi <= 1.0:
        raise UserError(f"sample.truncation_psi must be in [0, 1], got {psi!r}")
    opts = {"psi": float(psi)}
    for key, lo, default in (("truncation_cutoff", 0, 0), ("mixing_layer", 0, 0)):
        v = s.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > layers - (key == "mixing_layer"):
            what = "layers" if key == "truncation_cutoff" else "the layer where source B's styles start"
            raise UserError(
                f"sample.{key} ({what}) must be an integer in 0..{layers - (key == 'mixing_layer')} for this "
                f"network's {layers} style layers (0: {'all' if key == 'truncation_cutoff' else 'L // 2'}), got {v!r}"
            )
        opts[key] = v
    opts["mixing_layer"] = opts["mixing_layer"] or layers // 2
    for key, default in (("figure_rows", 4), ("figure_cols", 6)):
        v = s.get(key, default)
        if not positive_int(v):
            raise UserError(f"sample.{key} must be a positive integer, got {v!r}")
        opts[key] = v
    return opts


def generate(state: TrainState, key: jax.Array, n: int, cfg: Any, psi: float = 1.0, cutoff: int = 0) -> jax.Array:
    """n images in [0, 1] from fresh z, truncated by psi on the first `cutoff` layers (0: all)."""
    nets = StyleNets(cfg)
    params, w_avg = state.eval_params()["g"], state.model_state["g_batch_stats"]["w_avg"]
    kz, kn = jax.random.split(key)
    z = jax.random.normal(kz, (n, nets.z_dim))
    styles = truncate(broadcast_styles(nets.map(params, z), nets.layers), w_avg, psi, cutoff)
    return nets.from_net(nets.synthesize(params, styles, kn))


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n images in [0, 1] (EMA generator), truncated as `cfg.sample` says (psi 1: untruncated)."""
    nets = StyleNets(cfg)
    o = sample_options(cfg, nets.layers)
    return generate(state, key, n, cfg, o["psi"], o["truncation_cutoff"])


def mapping(state: TrainState, z: jax.Array, cfg: Any) -> jax.Array:
    """w [N, w_dim] of z [N, z_dim] under the evaluation (EMA) generator."""
    return StyleNets(cfg).map(state.eval_params()["g"], z)


def synthesize(state: TrainState, styles: jax.Array, key: jax.Array, cfg: Any):
    """Images in [0, 1] from styles [N, L, w_dim] (or w [N, w_dim], one copy per layer)."""
    nets = StyleNets(cfg)
    if styles.ndim == 2:
        styles = broadcast_styles(styles, nets.layers)
    return nets.from_net(nets.synthesize(state.eval_params()["g"], styles, key))


def style_mix(state, za, zb, layer: int, key, cfg, psi: float = 1.0):
    """Images with za's styles before `layer` and zb's from `layer` on (both truncated by psi)."""
    nets = StyleNets(cfg)
    if not 0 <= layer <= nets.layers:
        raise UserError(f"style-mixing layer must be in 0..{nets.layers}, got {layer}")
    params, w_avg = state.eval_params()["g"], state.model_state["g_batch_stats"]["w_avg"]
    sa = truncate(broadcast_styles(nets.map(params, za), nets.layers), w_avg, psi)
    sb = truncate(broadcast_styles(nets.map(params, zb), nets.layers), w_avg, psi)
    return nets.from_net(nets.synthesize(params, mix_styles(sa, sb, layer), key))


def figures(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """The style-mixing grid (rows: source A, columns: source B, the first row and column the
    sources themselves, cell (i, j) A_i's styles before the mixing layer and B_j's after) and a
    truncation sweep (rows: latents, columns: psi from 0 to 1)."""
    nets = StyleNets(cfg)
    o = sample_options(cfg, nets.layers)
    rows, cols = o["figure_rows"], o["figure_cols"]
    ka, kb, kn = jax.random.split(jax.random.fold_in(key, 7), 3)
    za, zb = jax.random.normal(ka, (rows, nets.z_dim)), jax.random.normal(kb, (cols, nets.z_dim))
    a = style_mix(state, za, za, nets.layers, kn, cfg, o["psi"])
    b = style_mix(state, zb, zb, nets.layers, kn, cfg, o["psi"])
    mixed = style_mix(state, jnp.repeat(za, cols, 0), jnp.tile(zb, (rows, 1)), o["mixing_layer"], kn, cfg, o["psi"])
    shape = a.shape[1:]
    top = jnp.concatenate([jnp.ones((1,) + shape), b], 0)[None]  # [1, cols + 1, H, W, C]
    body = jnp.concatenate([a[:, None], mixed.reshape((rows, cols) + shape)], 1)
    psis = jnp.linspace(0.0, 1.0, cols)
    params, w_avg = state.eval_params()["g"], state.model_state["g_batch_stats"]["w_avg"]
    styles = broadcast_styles(nets.map(params, za), nets.layers)
    trunc = jax.vmap(lambda p: nets.synthesize(params, truncate(styles, w_avg, p), kn))(psis)
    return {
        "style_mixing": jnp.concatenate([top, body], 0),
        "truncation": jnp.swapaxes(nets.from_net(trunc), 0, 1),
    }


__all__ = [
    "StyleGANConfig",
    "StyleNets",
    "adain",
    "broadcast_styles",
    "evaluate",
    "figures",
    "generate",
    "init",
    "mapping",
    "mix_styles",
    "modulated_conv",
    "num_layers",
    "peak_to_mean",
    "sample",
    "style_mix",
    "synthesize",
    "train_step",
    "truncate",
]
