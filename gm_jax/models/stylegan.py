"""StyleGAN (Karras et al., 2019) and StyleGAN2 (Karras et al., 2020) as nets of the adversarial
family: the step, losses, schedule, R1 and generator EMA are `gm_jax.models.gan`'s; this module
builds the nets and the sampling API.

Generator: a mapping network (z normalised to unit second moment, `mapping_layers` = 8 equalised
fully connected layers with LeakyReLU(0.2) and learning-rate multiplier `mapping_lr_mul` = 0.01)
turns z into w; the synthesis network starts from a learned 4x4 constant (`input="const"`; `"z"`
projects z there instead, the traditional input) and doubles the resolution per block (a 4x4
stride-2 transposed convolution, then a 3x3 convolution) up to the data's size; a 1x1 "toRGB" gives
the image in [-1, 1] space (linear). L = 2 log2(size) - 2 layers each take their own copy of w (the
styles array [N, L, w_dim]):
- `style="adain"` (StyleGAN): conv -> noise -> bias -> LeakyReLU -> instance norm -> per-channel
  scale (1 + y_s) and bias y_b from the learned affine "A" of w (layer 0 is the constant itself);
- `style="demod"` (StyleGAN2): the convolution's weights are modulated by the affine's style s
  (bias initialised to 1) and demodulated, w'_ijk = s_i w_ijk / sqrt(sum_ik (s_i w_ijk)^2 + 1e-8),
  computed as input scaling, a shared convolution and output scaling; noise and bias come after it
  (outside the style block), the activation has gain sqrt(2); the toRGB layer is modulated without
  demodulation and takes the last style. Instance normalisation, whose per-map statistics let the
  generator hide a strong local spike ("water droplet"), is gone;
- `style="none"`: pixel norm instead (the progressive GAN baseline, ablation configs A/B).
Per-layer noise: one N(0, 1) image per layer and example, times learned per-channel scales "B"
(zero at init), `noise_inputs` on/off. Every weight is equalised: stored N(0, 1/lr_mul) and scaled
at run time by gain * lr_mul / sqrt(fan_in) (gain sqrt(2) before LeakyReLU, 1 for the affines and
toRGB; the transposed convolution's fan-in is the 2x2 taps x Cin that reach each output pixel).

Style mixing (training): with probability `mixing_prob` (0.9) per minibatch, as in the papers' code,
a second z2 gives w2 and layers from a crossover drawn uniformly in 1..L-1 take w2. The generator
tracks the average w (`w_avg_beta` = 0.995 per generator forward pass in training, both passes of a
step as in the reference code; non-gradient state, checkpointed, `model_state["g_batch_stats"]`).
Truncation at sampling: w' = w_avg + psi (w - w_avg) on the layers before `truncation_cutoff`.

Discriminator (both): the progressive GAN's without growing: 1x1 fromRGB, per resolution a 3x3
convolution and a 4x4 stride-2 convolution (the reference's fused blur + downscale conv has a 4x4
support), minibatch standard deviation (`mbstd_group` = 4) at 4x4, a 3x3 convolution, two dense
layers; equalised lr, LeakyReLU(0.2).

Loss: the non-saturating logistic loss with R1 (`r1_gamma`), lazily every `r1_every` D updates as
an option (StyleGAN2: 16, the penalty weighted by 16; here added to that update's D loss rather
than run as a separate update, so Adam's moments need no re-scaling); Adam lr 0.001 (StyleGAN2
0.002), beta = (0, 0.99); EMA of the generator (half-life 10k images) for evaluation and sampling.

Departures from the reference code, stated: no progressive growing (StyleGAN2 dropped it too), no
FIR blur filters around up/down-sampling, one toRGB at the end (StyleGAN2's skip generator and
residual discriminator, and its path-length regulariser, are not built: `stylegan2` here is the
paper's configuration D).

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

from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.models import gan
from gm_jax.nn.conv import conv2d, conv_transpose_2x, subpixel_kernel
from gm_jax.nn.precision import compute_dtype, mixed_apply

SQRT2 = math.sqrt(2.0)

# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class StyleGANConfig(gan.AdversarialConfig):
    """The `model` section of the StyleGAN configs (the adversarial step's keys, then the nets')."""

    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8  # 0: w is the normalised z (needs w_dim = z_dim)
    mapping_lr_mul: float = 0.01
    input: str = "const"  # "const" (learned 4x4) | "z" (projected z, the traditional input)
    style: str = "adain"  # "adain" | "demod" | "none"
    noise_inputs: bool = True
    mixing_prob: float = 0.9
    w_avg_beta: float = 0.995
    fmap_base: int = 16384  # feature maps at resolution r: min(fmap_max, fmap_base // r)
    fmap_max: int = 512
    mbstd_group: int = 4  # 0: no minibatch standard deviation
    # Every convolution as a matrix product ("matmul"; the form that stays fast inside the lazy-R1
    # lax.cond on XLA:CPU) or through lax.conv ("subpixel"); gm_jax.nn.conv.
    conv_method: str = "matmul"

    def check(self) -> None:
        super().check()
        self.one_of("input", ("const", "z"))
        self.one_of("style", ("adain", "demod", "none"))
        self.one_of("conv_method", ("subpixel", "matmul"))
        for key in ("z_dim", "w_dim", "fmap_base", "fmap_max"):
            if not gan._positive_int(getattr(self, key)):
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

    def fmaps(self, res: int) -> int:
        return max(1, min(self.fmap_max, self.fmap_base // res))


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


def effective_kernel(w: jax.Array, gain: float, up: bool = False) -> jax.Array:
    """The He-scaled weights an equalised convolution applies: w g / sqrt(fan_in), fan_in = k k Cin
    (2 x 2 x Cin for the 4x4 stride-2 transposed convolution, whose output pixels each see 4 taps)."""
    k, ci = w.shape[0], w.shape[2]
    fan_in = (4 if up else k * k) * ci
    return w * (gain / math.sqrt(fan_in))


def modulated_conv(x, w, s=None, demod=False, up=False, down=False, method="matmul", eps=1e-8):
    """Convolution of x [N, H, W, Ci] with effective weights w [k, k, Ci, Co], optionally modulated
    by per-example styles s [N, Ci] (w'_ijk = s_i w_ijk) and demodulated (each output channel of each
    example divided by sqrt(sum_ik w'^2 + eps)), computed without per-example weights: scale the
    input by s, convolve, scale the output. `up`: 4x4 stride-2 transposed convolution (sub-pixel
    form; demodulated per output phase, each phase having its own taps); `down`: 4x4 stride 2."""
    if s is not None:
        x = x * s[:, None, None, :]
    if up:
        scale = None
        if demod:
            sq = jnp.sum(subpixel_kernel(w) ** 2, axis=(0, 1))  # [Ci, 4 Co]
            scale = jax.lax.rsqrt((s**2) @ sq + eps)
        return conv_transpose_2x(x, w, matmul=method == "matmul", phase_scale=scale)
    pad = ((1, 1), (1, 1)) if down else "SAME"
    y = conv2d(x, w, 2 if down else 1, pad, matmul=method == "matmul")
    if demod:
        y = y * jax.lax.rsqrt((s**2) @ jnp.sum(w**2, axis=(0, 1)) + eps)[:, None, None, :]
    return y


class EqConv(nn.Module):
    """An equalised convolution (k x k, or 4x4 stride 2 with `up` / `down`), optionally modulated by
    a style s [N, Cin] and demodulated; bias optional (the generator adds its own after the noise)."""

    features: int
    kernel: int = 3
    gain: float = SQRT2
    up: bool = False
    down: bool = False
    demod: bool = False
    use_bias: bool = True
    method: str = "matmul"

    @nn.compact
    def __call__(self, x, s=None):
        k = 4 if (self.up or self.down) else self.kernel
        w = self.param("kernel", nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features))
        y = modulated_conv(x, effective_kernel(w, self.gain, self.up), s, self.demod, self.up, self.down, self.method)
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
    m: StyleGANConfig

    @nn.compact
    def __call__(self, z):
        x = pixel_norm(z)
        for i in range(self.m.mapping_layers):
            x = _lrelu(EqDense(self.m.w_dim, lr_mul=self.m.mapping_lr_mul, name=f"fc{i}")(x))
        return x


class Synthesis(nn.Module):
    """styles [N, L, w_dim] (and z for input="z") -> image [N, res, res, channels] in [-1, 1] space.
    The last feature maps before toRGB are sown as ("intermediates", "features")."""

    m: StyleGANConfig
    res: int
    channels: int

    def _epilogue(self, x, w, i):
        """Noise, bias, activation, then the layer's normalisation and style (AdaIN / pixel norm)."""
        m, c = self.m, x.shape[-1]
        if m.noise_inputs:
            strength = self.param(f"noise{i}", nn.initializers.zeros, (c,))
            x = x + strength * jax.random.normal(self.make_rng("noise"), x.shape[:3] + (1,), x.dtype)
        x = x + self.param(f"bias{i}", nn.initializers.zeros, (c,))
        x = _lrelu(x) * (SQRT2 if m.style == "demod" else 1.0)
        if i == num_layers(self.res) - (2 if m.style == "demod" else 1):  # the last convolution
            self.sow("intermediates", "features", x)
        if m.style == "adain":
            ys = EqDense(2 * c, gain=1.0, name=f"style{i}")(w[:, i])
            x = adain(x, 1.0 + ys[:, :c], ys[:, c:])
        elif m.style == "none":
            x = pixel_norm(x)
        return x

    def _conv(self, x, w, i, features, up=False):
        """Layer i's convolution, modulated by its style under `demod`."""
        demod = self.m.style == "demod"
        s = EqDense(x.shape[-1], gain=1.0, bias_init=1.0, name=f"style{i}")(w[:, i]) if demod else None
        return EqConv(features, 3, up=up, demod=demod, use_bias=False, method=self.m.conv_method, name=f"conv{i}")(x, s)

    @nn.compact
    def __call__(self, w, z=None):
        m, n = self.m, w.shape[0]
        f4 = m.fmaps(4)
        if m.input == "const":
            x = jnp.broadcast_to(self.param("const", nn.initializers.ones, (4, 4, f4)), (n, 4, 4, f4))
        else:
            x = EqDense(16 * f4, gain=SQRT2 / 4, name="input")(pixel_norm(z)).reshape(n, 4, 4, f4)
        i = 0
        if m.style != "demod":  # StyleGAN: the constant (or projected z) is layer 0
            x = self._epilogue(x, w, 0)
            i = 1
        x = self._epilogue(self._conv(x, w, i, f4), w, i)
        i += 1
        r = 4
        while r < self.res:
            r *= 2
            x = self._epilogue(self._conv(x, w, i, m.fmaps(r), up=True), w, i)
            x = self._epilogue(self._conv(x, w, i + 1, m.fmaps(r)), w, i + 1)
            i += 2
        if m.style == "demod":  # modulated, not demodulated, by the last style
            s = EqDense(x.shape[-1], gain=1.0, bias_init=1.0, name=f"style{i}")(w[:, i])
            return EqConv(self.channels, 1, gain=1.0, method=self.m.conv_method, name="torgb")(x, s)
        return EqConv(self.channels, 1, gain=1.0, method=self.m.conv_method, name="torgb")(x)


class Generator(nn.Module):
    m: StyleGANConfig
    res: int
    channels: int

    def setup(self):
        self.mapping = Mapping(self.m)
        self.synthesis = Synthesis(self.m, self.res, self.channels)

    def __call__(self, z):
        w = self.map(z)
        return self.synthesize(jnp.broadcast_to(w[:, None], (w.shape[0], num_layers(self.res), w.shape[-1])), z)

    def map(self, z):
        return self.mapping(z)

    def synthesize(self, styles, z=None):
        return self.synthesis(styles, z)


class Discriminator(nn.Module):
    m: StyleGANConfig

    @nn.compact
    def __call__(self, x, train: bool = True):
        m, r = self.m, x.shape[1]
        cm = m.conv_method
        h = _lrelu(EqConv(m.fmaps(r), 1, method=cm, name="fromrgb")(x))
        while r > 4:
            h = _lrelu(EqConv(m.fmaps(r), 3, method=cm, name=f"conv{r}")(h))
            h = _lrelu(EqConv(m.fmaps(r // 2), down=True, method=cm, name=f"down{r}")(h))
            r //= 2
        if m.mbstd_group:
            h = minibatch_stddev(h, m.mbstd_group)
        h = _lrelu(EqConv(m.fmaps(4), 3, method=cm, name="conv4")(h))
        h = _lrelu(EqDense(m.fmaps(4), name="fc")(h.reshape(h.shape[0], -1)))
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

    def init_vars(self, key, x):
        kg, kn, kd = jax.random.split(key, 3)
        gv = self.g.init({"params": kg, "noise": kn}, jnp.zeros((2, self.z_dim)))
        dv = self.d.init(kd, x)
        return {"params": gv["params"], "batch_stats": {"w_avg": jnp.zeros((self.m.w_dim,))}}, dv

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

    def synthesize(self, params, styles, key, z=None, capture=False):
        """Images in [-1, 1] space from styles [N, L, w_dim]; with `capture`, also the last feature maps."""
        if not capture:
            return self.g_apply({"params": params}, styles, z, method="synthesize", rngs={"noise": key})
        out, inter = self.g_apply(
            {"params": params}, styles, z, method="synthesize", rngs={"noise": key}, mutable=["intermediates"]
        )
        return out, inter["intermediates"]["synthesis"]["features"][0]

    def generate(self, params, stats, latent, train):
        """(G(latent) in net space, the updated w average): in training with style mixing and the w
        average tracked; otherwise plain (no mixing, no truncation)."""
        w = self.map(params, latent["z"])
        styles = broadcast_styles(w, self.layers)
        if train:
            mean = jnp.mean(w, 0)
            stats = {"w_avg": mean + self.m.w_avg_beta * (stats["w_avg"] - mean)}
            if self.m.mixing_prob > 0:
                other = broadcast_styles(self.map(params, latent["z2"]), self.layers)
                styles = mix_styles(styles, other, latent["cross"])
        return self.synthesize(params, styles, latent["key"], latent["z"]), stats

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
    _, feats = nets.synthesize(params, broadcast_styles(nets.map(params, z), nets.layers), kn, z, capture=True)
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
        if not gan._positive_int(v):
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
    return nets.from_net(nets.synthesize(params, styles, kn, z))


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n images in [0, 1] (EMA generator), truncated as `cfg.sample` says (psi 1: untruncated)."""
    nets = StyleNets(cfg)
    o = sample_options(cfg, nets.layers)
    return generate(state, key, n, cfg, o["psi"], o["truncation_cutoff"])


def mapping(state: TrainState, z: jax.Array, cfg: Any) -> jax.Array:
    """w [N, w_dim] of z [N, z_dim] under the evaluation (EMA) generator."""
    return StyleNets(cfg).map(state.eval_params()["g"], z)


def synthesize(state: TrainState, styles: jax.Array, key: jax.Array, cfg: Any, z: jax.Array | None = None):
    """Images in [0, 1] from styles [N, L, w_dim] (or w [N, w_dim], one copy per layer); z is needed
    only by model.input=z."""
    nets = StyleNets(cfg)
    if styles.ndim == 2:
        styles = broadcast_styles(styles, nets.layers)
    return nets.from_net(nets.synthesize(state.eval_params()["g"], styles, key, z))


def style_mix(state, za, zb, layer: int, key, cfg, psi: float = 1.0):
    """Images with za's styles before `layer` and zb's from `layer` on (both truncated by psi)."""
    nets = StyleNets(cfg)
    if not 0 <= layer <= nets.layers:
        raise UserError(f"style-mixing layer must be in 0..{nets.layers}, got {layer}")
    params, w_avg = state.eval_params()["g"], state.model_state["g_batch_stats"]["w_avg"]
    sa = truncate(broadcast_styles(nets.map(params, za), nets.layers), w_avg, psi)
    sb = truncate(broadcast_styles(nets.map(params, zb), nets.layers), w_avg, psi)
    return nets.from_net(nets.synthesize(params, mix_styles(sa, sb, layer), key, za))


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
    trunc = jax.vmap(lambda p: nets.synthesize(params, truncate(styles, w_avg, p), kn, za))(psis)
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
