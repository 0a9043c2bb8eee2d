"""Normalizing flows: NICE (Dinh et al., 2014) and RealNVP (Dinh et al., 2016).

Both are exact-likelihood models trained by maximum likelihood through the change of variables
log p(y) = log p_Z(f(y)) + log |det df/dy|.

- NICE (`model.kind="nice"`): the data flattened to a vector; additive couplings h2 = x2 + m(x1)
  with the odd/even partition alternating from layer to layer (log-det 0), a final diagonal scaling
  layer h -> exp(s) * h (log-det sum s), a logistic prior (Gaussian as an option).
- RealNVP (`model.kind="realnvp"`): affine couplings y2 = x2 * exp(s(x1)) + t(x1) with s bounded by
  a learned per-channel scale times tanh; on images the multi-scale architecture: at every scale
  but the last, three checkerboard couplings, a squeeze (2x2 pixels -> 4 channels), three
  channel-wise couplings, and half the channels factored out to the prior; at the last scale four
  checkerboard couplings. Coupling functions are residual conv nets with a zero-initialised output,
  so every coupling starts as the identity. Data first goes through the logit transform
  logit(alpha + (1 - 2 alpha) y) (alpha 0.05), whose Jacobian is counted. ActNorm (Kingma &
  Dhariwal 2018; `model.norm="actnorm"`) before every coupling, initialised from the first batch so
  its outputs have zero mean and unit variance per channel; its parameters live in the state, so a
  resumed run keeps them.
- On 2-D point sets both use MLP couplings on alternating coordinates (`model.point_hidden`,
  `model.point_couplings`) and score the points' continuous density.

Likelihood units. Images have `data.levels` L discrete values per dimension, stored as k / (L - 1).
Training and evaluation dequantise uniformly, y = (k + u) / L with u ~ U[0, 1)^D, so y has a density
on [0, 1]^D and for the discrete data log P(k) >= E_u log p(y) - D log L. Evaluation reports, per
test example and one draw of u: `nll_nats` = -log p(y) + D log L (the discrete NLL bound, nats per
example), `nll_bpd` = that / (D ln 2) (a model uniform over the levels scores log2 L: 4.09 bits/dim
for the digits, 8 for 8-bit images), and `loglik_cont_nats` = log p(y), the continuous log-density
on [0, 1]^D that NICE reports (its 1980.50 on MNIST). Point sets are continuous (`levels` 0):
`nll_nats` = -log p(x) per point, no dequantisation. A flow refuses image data with no stated levels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.core.config import model_section, positive_int
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.core.steps import init_state, make_train_step

LOG_2PI = math.log(2.0 * math.pi)
_MASKS = ("checker0", "checker1", "channel0", "channel1")


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """Model section of a flow config (a typo in a key fails here, at init).

    Attributes:
      kind: "nice" or "realnvp".
      prior: "logistic" (NICE's) or "gaussian" (RealNVP's).
      num_couplings: NICE coupling layers (paper: 4).
      hidden: NICE coupling MLP widths (paper, MNIST: 5 x 1000, ReLU).
      num_scales: RealNVP scales (the last has four checkerboard couplings, each other three
        checkerboard, a squeeze, three channel-wise and a factor-out).
      channels: RealNVP coupling conv-net width.
      num_blocks: residual blocks in each RealNVP coupling net.
      norm: "none" or "actnorm" (before every RealNVP coupling).
      logit_alpha: the logit preprocessing's alpha (RealNVP: 0.05); 0 turns the logit off (NICE).
      point_couplings: couplings on 2-D point data.
      point_hidden: the point couplings' MLP widths.
      random_flip: mirror training images left-right at random (RealNVP's CIFAR-10 augmentation).
      architecture: "simple" (the coupling nets and masks described above) or "authors" (the RealNVP
        authors' released network: weight-normalised residual coupling nets with batch norm and
        skip connections, batch norm on the flow's activations, their squeeze orders; `channels`
        is its base_dim, doubled at every scale; `AuthorsRealNVP`).
      l2_scales: L2 penalty on the weight norm magnitudes and the checkerboard couplings' rescaling
        scales (the authors' l2_coeff, 5e-5); 0 = none.
    """

    kind: str = "realnvp"
    prior: str = "gaussian"
    num_couplings: int = 4
    hidden: tuple = (1000, 1000, 1000, 1000, 1000)
    num_scales: int = 2
    channels: int = 64
    num_blocks: int = 4
    norm: str = "none"
    logit_alpha: float = 0.05
    point_couplings: int = 8
    point_hidden: tuple = (128, 128)
    random_flip: bool = False
    architecture: str = "simple"
    l2_scales: float = 0.0
    dtype: str = "float32"  # float32 only: an exact log-likelihood sums log-determinants bfloat16 cannot hold

    @classmethod
    def from_cfg(cls, cfg: Any) -> FlowConfig:
        """Build from `cfg.model` and check it against `cfg.data` (raises UserError)."""
        out = model_section(cls, cfg, "a flow")
        out = dataclasses.replace(out, hidden=tuple(out.hidden), point_hidden=tuple(out.point_hidden))
        if out.kind not in ("nice", "realnvp"):
            raise UserError(f"model.kind must be nice or realnvp, got {out.kind!r}")
        if out.dtype != "float32":
            raise UserError(
                f"model.dtype={out.dtype!r}: flows compute in float32 only (their exact log-likelihood sums "
                "log-determinants that bfloat16's 8-bit mantissa cannot hold)"
            )
        if out.prior not in ("logistic", "gaussian"):
            raise UserError(f"model.prior must be logistic or gaussian, got {out.prior!r}")
        if out.norm not in ("none", "actnorm"):
            raise UserError(f"model.norm must be none or actnorm, got {out.norm!r}")
        if out.architecture not in ("simple", "authors"):
            raise UserError(f"model.architecture must be simple or authors, got {out.architecture!r}")
        if out.architecture == "authors" and (out.kind != "realnvp" or out.norm != "none"):
            raise UserError(
                "model.architecture=authors is RealNVP's own network (kind=realnvp) with its batch norm (norm=none)"
            )
        if not (isinstance(out.l2_scales, (int, float)) and out.l2_scales >= 0 and math.isfinite(out.l2_scales)):
            raise UserError(f"model.l2_scales must be a non-negative number, got {out.l2_scales!r}")
        for key in ("num_couplings", "num_scales", "channels", "num_blocks", "point_couplings"):
            if not positive_int(getattr(out, key)):
                raise UserError(f"model.{key} must be a positive integer, got {getattr(out, key)!r}")
        if not all(positive_int(h) for h in out.hidden + out.point_hidden):
            raise UserError(f"model.hidden and model.point_hidden must be positive integers, got {out.hidden!r}")
        if not 0.0 <= out.logit_alpha < 0.5:
            raise UserError(f"model.logit_alpha must be in [0, 0.5), got {out.logit_alpha!r}")
        data = cfg.get("data", {})
        kind, shape = data.get("kind", "image"), tuple(data.get("shape", ()))
        if kind not in ("image", "points"):
            raise UserError(f"a flow models images or points; the data is {kind}")
        if kind == "image" and not data.get("levels", 0):
            raise UserError(
                f"a flow on images needs the data's number of discrete levels for its dequantisation; "
                f"{data.get('name', 'the data')} states none (continuous images have no bits/dim)"
            )
        if kind == "image" and out.kind == "realnvp":
            if len(shape) != 3:
                raise UserError(f"realnvp needs images [H, W, C]; the data has shape {shape}")
            f = 2 ** (out.num_scales - 1)
            if shape[0] % f or shape[1] % f:
                raise UserError(
                    f"realnvp with model.num_scales={out.num_scales} squeezes {out.num_scales - 1} time(s): image "
                    f"height and width must be multiples of {f}, got {shape[0]}x{shape[1]} (change model.num_scales "
                    "or data.image_size)"
                )
        if kind == "points" and int(np.prod(shape)) < 2:
            raise UserError(f"a flow's couplings need at least 2 dimensions; the data has shape {shape}")
        return out


# ---------------------------------------------------------------------------------------- layers
#
# Every layer maps (x, reverse) -> (y, log|det dy/dx| per example [B]); with reverse=True it maps y
# back to x and returns the log-det of the forward map at that x (so forward and inverse agree).


class MLPNet(nn.Module):
    """ReLU MLP with a zero-initialised linear output (a coupling function for vectors)."""

    hidden: tuple
    out: int

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(self.out, kernel_init=nn.initializers.zeros)(x)


class ConvNet(nn.Module):
    """Residual 3x3 conv net with a zero-initialised output (a coupling function for images)."""

    channels: int
    blocks: int
    out: int

    @nn.compact
    def __call__(self, x):
        h = nn.Conv(self.channels, (3, 3))(x)
        for _ in range(self.blocks):
            r = nn.Conv(self.channels, (3, 3))(nn.relu(h))
            h = h + nn.Conv(self.channels, (3, 3))(nn.relu(r))
        return nn.Conv(self.out, (3, 3), kernel_init=nn.initializers.zeros)(nn.relu(h))


class AdditiveCoupling(nn.Module):
    """NICE: x -> (x1, x2 + m(x1)) on the even/odd coordinates (`parity` picks which half moves)."""

    parity: int
    hidden: tuple

    @nn.compact
    def __call__(self, x, reverse=False):
        keep, move = x[:, 1 - self.parity :: 2], x[:, self.parity :: 2]
        m = MLPNet(self.hidden, move.shape[-1])(keep)
        move = move - m if reverse else move + m
        y = x.at[:, self.parity :: 2].set(move)
        return y, jnp.zeros(x.shape[:1], x.dtype)


class Scaling(nn.Module):
    """NICE's final diagonal scaling x -> exp(s) * x; log-det = sum s."""

    @nn.compact
    def __call__(self, x, reverse=False):
        s = self.param("log_scale", nn.initializers.zeros, (x.shape[-1],))
        y = x * jnp.exp(-s) if reverse else x * jnp.exp(s)
        return y, jnp.broadcast_to(jnp.sum(s), x.shape[:1])


class VectorAffineCoupling(nn.Module):
    """RealNVP's affine coupling on vectors: the `parity` half of the coordinates is scaled and
    shifted by functions of the other half; s = scale * tanh(raw)."""

    parity: int
    hidden: tuple

    @nn.compact
    def __call__(self, x, reverse=False):
        keep, move = x[:, 1 - self.parity :: 2], x[:, self.parity :: 2]
        raw = MLPNet(self.hidden, 2 * move.shape[-1])(keep)
        scale = self.param("scale", nn.initializers.ones, (move.shape[-1],))
        s, t = scale * jnp.tanh(raw[:, : move.shape[-1]]), raw[:, move.shape[-1] :]
        move = (move - t) * jnp.exp(-s) if reverse else move * jnp.exp(s) + t
        return x.at[:, self.parity :: 2].set(move), jnp.sum(s, axis=-1)


def checkerboard(h: int, w: int, parity: int, dtype=jnp.float32) -> jax.Array:
    """[h, w, 1] mask: 1 where (i + j + parity) is even (the pixels a checkerboard coupling keeps)."""
    ij = np.add.outer(np.arange(h), np.arange(w)) + parity
    return jnp.asarray((ij % 2 == 0)[..., None], dtype)


class ImageAffineCoupling(nn.Module):
    """RealNVP's affine coupling on images [B, H, W, C] with a checkerboard or channel-wise mask."""

    mask: str
    channels: int
    blocks: int

    @nn.compact
    def __call__(self, x, reverse=False):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        if self.mask.startswith("checker"):
            b = checkerboard(x.shape[1], x.shape[2], int(self.mask[-1]), x.dtype)
            kept = x * b
            raw = ConvNet(self.channels, self.blocks, 2 * c)(
                jnp.concatenate([kept, jnp.broadcast_to(b, kept.shape[:3] + (1,))], -1)
            )
            s = scale * jnp.tanh(raw[..., :c]) * (1.0 - b)
            t = raw[..., c:] * (1.0 - b)
            y = kept + (1.0 - b) * ((x - t) * jnp.exp(-s) if reverse else x * jnp.exp(s) + t)
            return y, jnp.sum(s, axis=(1, 2, 3))
        half = c // 2
        first = self.mask == "channel0"
        keep, move = (x[..., :half], x[..., half:]) if first else (x[..., half:], x[..., :half])
        raw = ConvNet(self.channels, self.blocks, 2 * move.shape[-1])(keep)
        s = scale[: move.shape[-1]] * jnp.tanh(raw[..., : move.shape[-1]])
        t = raw[..., move.shape[-1] :]
        move = (move - t) * jnp.exp(-s) if reverse else move * jnp.exp(s) + t
        y = jnp.concatenate([keep, move] if first else [move, keep], -1)
        return y, jnp.sum(s, axis=(1, 2, 3))


class ActNorm(nn.Module):
    """Per-channel affine y = (x + bias) * exp(log_scale), initialised from the first batch it sees
    so that y has zero mean and unit variance per channel (data-dependent init)."""

    @nn.compact
    def __call__(self, x, reverse=False):
        axes = tuple(range(x.ndim - 1))

        def bias_init(_key, shape):
            return -jnp.mean(x, axis=axes)

        def scale_init(_key, shape):
            return -jnp.log(jnp.std(x, axis=axes) + 1e-6)

        bias = self.param("bias", bias_init, x.shape[-1:])
        log_scale = self.param("log_scale", scale_init, x.shape[-1:])
        per_example = jnp.sum(log_scale) * (np.prod(x.shape[1:-1]) if x.ndim > 2 else 1)
        y = x * jnp.exp(-log_scale) - bias if reverse else (x + bias) * jnp.exp(log_scale)
        return y, jnp.broadcast_to(per_example, x.shape[:1]).astype(x.dtype)


def squeeze(x: jax.Array) -> jax.Array:
    """[B, H, W, C] -> [B, H/2, W/2, 4C]: every 2x2 block of pixels becomes 4 channels."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
    """The inverse of `squeeze`."""
    b, h, w, c = x.shape
    x = x.reshape(b, h, w, 2, 2, c // 4)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c // 4)


# ----------------------------------------------------------------------------------------- flows


def _run(layers, x, reverse):
    logdet = jnp.zeros(x.shape[:1], x.dtype)
    for layer in reversed(layers) if reverse else layers:
        x, ld = layer(x, reverse=reverse)
        logdet = logdet + ld
    return x, logdet


class NICE(nn.Module):
    """Additive couplings with alternating partitions, then the diagonal scaling; on [B, D]."""

    cfg: FlowConfig
    point: bool = False

    def setup(self):
        n = self.cfg.point_couplings if self.point else self.cfg.num_couplings
        hidden = self.cfg.point_hidden if self.point else self.cfg.hidden
        self.layers = [AdditiveCoupling(i % 2, hidden) for i in range(n)] + [Scaling()]

    def __call__(self, x, reverse=False):
        return _run(self.layers, x, reverse)


class PointRealNVP(nn.Module):
    """Affine couplings on alternating coordinates of [B, D] (with ActNorm before each if asked)."""

    cfg: FlowConfig

    def setup(self):
        layers = []
        for i in range(self.cfg.point_couplings):
            if self.cfg.norm == "actnorm":
                layers.append(ActNorm())
            layers.append(VectorAffineCoupling(i % 2, self.cfg.point_hidden))
        self.layers = layers

    def __call__(self, x, reverse=False):
        return _run(self.layers, x, reverse)


class ImageRealNVP(nn.Module):
    """The multi-scale RealNVP on [B, H, W, C] -> latent [B, H*W*C] (factored-out parts first)."""

    cfg: FlowConfig
    image_shape: tuple = ()

    def _coupling(self, mask):
        block = [ImageAffineCoupling(mask, self.cfg.channels, self.cfg.num_blocks)]
        return ([ActNorm()] if self.cfg.norm == "actnorm" else []) + block

    def setup(self):
        scales = []
        for i in range(self.cfg.num_scales):
            last = i == self.cfg.num_scales - 1
            checker = [m for j in range(4 if last else 3) for m in self._coupling(f"checker{j % 2}")]
            channel = [] if last else [m for j in range(3) for m in self._coupling(f"channel{j % 2}")]
            scales.append((checker, channel))
        self.scales = scales

    def __call__(self, x, reverse=False):
        return multiscale(self.scales, x, reverse, self.image_shape, SIMPLE_SCALES)


class ScaleOps(NamedTuple):
    """How a multi-scale flow moves between scales: `squeeze` into the channel couplings' layout (and
    `unsqueeze` back), `regroup` their output before the split (and `ungroup`), and whether the first
    half of the channels goes on to the next scale (else the second)."""

    squeeze: Callable
    unsqueeze: Callable
    regroup: Callable
    ungroup: Callable
    keep_first: bool


def _same(x):
    return x


SIMPLE_SCALES = ScaleOps(squeeze, unsqueeze, _same, _same, keep_first=False)


def multiscale(scales, x, reverse: bool, image_shape: tuple, ops: ScaleOps):
    """`multiscale_forward`, or `multiscale_inverse` with `reverse`."""
    return multiscale_inverse(scales, x, image_shape, ops) if reverse else multiscale_forward(scales, x, ops)


def multiscale_forward(scales, x, ops: ScaleOps):
    """x [B, H, W, C] -> (z [B, H W C] with the factored-out parts first, log-det [B]); `scales` is a
    list of (spatial couplings, channel couplings), the last scale's channel list empty."""
    logdet = jnp.zeros(x.shape[:1], x.dtype)
    outs = []
    for spatial, channel in scales:
        x, ld = _run(spatial, x, False)
        logdet = logdet + ld
        if channel:
            x, ld = _run(channel, ops.squeeze(x), False)
            logdet = logdet + ld
            x = ops.regroup(x)
            half = x.shape[-1] // 2
            x, out = (x[..., :half], x[..., half:]) if ops.keep_first else (x[..., half:], x[..., :half])
            outs.append(out.reshape(x.shape[0], -1))
    outs.append(x.reshape(x.shape[0], -1))
    return jnp.concatenate(outs, -1), logdet


def multiscale_inverse(scales, z, image_shape: tuple, ops: ScaleOps):
    """The inverse of `multiscale_forward`: (x, the forward log-det at x)."""
    b = z.shape[0]
    h, w, c = image_shape
    shapes = []  # every factored-out part's shape and the last scale's input's, in forward order
    for _spatial, channel in scales:
        if channel:
            h, w, c = h // 2, w // 2, 2 * c
            shapes.append((h, w, c))
    shapes.append((h, w, c))
    parts = jnp.split(z, np.cumsum([int(np.prod(sh)) for sh in shapes])[:-1], axis=-1)
    x = parts[-1].reshape((b,) + shapes[-1])
    logdet = jnp.zeros((b,), z.dtype)
    for k in range(len(scales) - 1, -1, -1):
        spatial, channel = scales[k]
        if channel:
            out = parts[k].reshape((b,) + shapes[k])
            x = ops.ungroup(jnp.concatenate([x, out] if ops.keep_first else [out, x], -1))
            x, ld = _run(channel, x, True)
            logdet = logdet + ld
            x = ops.unsqueeze(x)
        x, ld = _run(spatial, x, True)
        logdet = logdet + ld
    return x, logdet


# ------------------------------------------------------------------- the authors' RealNVP network
#
# `architecture="authors"`: the network of the RealNVP authors' released code (tensorflow/models,
# research/real_nvp/real_nvp_multiscale_dataset.py and real_nvp_utils.py, default hyperparameters
# use_batch_norm=1, skip=1, weight_norm, recursion_type 2). Every convolution is weight-normalised
# (direction w / |w| per output channel, times a learned magnitude where the code has one); the
# coupling nets are residual nets with a skip 1x1 convolution collecting every block's output; batch
# normalisation (offsets only) inside them and on the flow's own activations (the coupling's
# changed half, whose log-determinant it adds); training normalises by the batch's moments and
# keeps running averages (decay 0.1) that evaluation and sampling use.


def _uniform(std: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -std, std)

    return init


class WNConv(nn.Module):
    """`conv_layer(weight_norm=True)`: U[-std, std] weights, each output channel's normalised to unit
    norm and scaled by `magnitude` (init std sqrt(fan_in / 12), the init's expected norm) if `scale`."""

    features: int
    kernel: int
    std: float
    scale: bool = False
    bias: bool = True

    @nn.compact
    def __call__(self, x):
        k, ci = self.kernel, x.shape[-1]
        w = self.param("weights", _uniform(self.std), (k, k, ci, self.features))
        w = w / jnp.sqrt(jnp.sum(w**2, axis=(0, 1, 2)))
        if self.scale:
            mag0 = self.std * math.sqrt(ci * k * k / 12.0)
            w = w * self.param("magnitude", nn.initializers.constant(mag0), (self.features,))
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.bias:
            y = y + self.param("biases", nn.initializers.zeros, (self.features,))
        return y


class Moments(nn.Module):
    """Per-channel (mean, variance + eps) over batch and positions in training, their running averages
    (`batch_stats`: mean 0, var 1 at init; decay 0.1) otherwise (`batch_norm_log_diff`)."""

    train: bool
    eps: float = 1e-4

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        mean_v = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        var_v = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        if not self.train:
            return mean_v.value, var_v.value + self.eps
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean((x - mean) ** 2, axis=(0, 1, 2))
        if not self.is_initializing():
            mean_v.value = mean_v.value - 0.1 * (mean_v.value - jax.lax.stop_gradient(mean))
            var_v.value = var_v.value - 0.1 * (var_v.value - jax.lax.stop_gradient(var))
        return mean, var + self.eps


class OffsetBN(nn.Module):
    """`batch_norm(scale=False)`: (x - mean) / sqrt(var + eps) + beta."""

    train: bool

    @nn.compact
    def __call__(self, x):
        mean, var = Moments(self.train)(x)
        return (x - mean) * jax.lax.rsqrt(var) + self.param("beta", nn.initializers.zeros, (x.shape[-1],))


class AuthorsResNet(nn.Module):
    """The code's `resnet` (skip=True, batch norm, no bottleneck) from `dim_in` to `dim_out` channels."""

    dim: int
    dim_out: int
    blocks: int
    train: bool

    @nn.compact
    def __call__(self, x):
        d = self.dim
        sd = math.sqrt(2.0 / d)
        res = WNConv(d, 3, math.sqrt(2.0 / x.shape[-1]), scale=False, bias=True, name="h_in")(x)
        out = WNConv(d, 1, sd, scale=True, bias=True, name="skip_in")(res)
        for b in range(self.blocks):
            r = nn.relu(OffsetBN(self.train, name=f"block_{b}_bn_in")(res))
            r = WNConv(d, 3, sd, scale=False, bias=False, name=f"block_{b}_h_0")(r)
            r = nn.relu(OffsetBN(self.train, name=f"block_{b}_bn_0")(r))
            res = res + WNConv(d, 3, sd, scale=True, bias=True, name=f"block_{b}_out")(r)
            out = out + WNConv(d, 1, sd, scale=True, bias=True, name=f"skip_{b}")(res)
        res = nn.relu(OffsetBN(self.train, name="bn_pre_out")(out))
        return WNConv(self.dim_out, 1, sd, scale=True, bias=True, name="out")(res)


class AuthorsMaskedCoupling(nn.Module):
    """`masked_conv_aff_coupling`: the pixels where mask = (mask_in + i + j) mod 2 is 1 are kept; the
    others are shifted and scaled, y = (x + t) exp(s), s = rescaling_scale tanh(.), then batch-
    normalised (their log-determinant counted)."""

    mask_in: int
    dim: int
    blocks: int
    train: bool

    def _mask(self, h, w):
        return jnp.asarray(
            ((self.mask_in + np.add.outer(np.arange(h), np.arange(w))) % 2)[None, :, :, None], jnp.float32
        )

    def _shift_scale(self, x, mask):
        c = x.shape[-1]
        r = OffsetBN(self.train, name="bn_in")(x * mask) * 2.0
        r = nn.relu(jnp.concatenate([r, -r, jnp.broadcast_to(mask, r.shape[:3] + (1,))], -1))
        r = AuthorsResNet(self.dim, 2 * c, self.blocks, self.train, name="resnet")(r)
        shift, log_rescaling = r[..., :c], r[..., c:]
        scale = self.param("rescaling_scale", nn.initializers.zeros, ())
        return shift * (1.0 - mask), scale * jnp.tanh(log_rescaling) * (1.0 - mask)

    @nn.compact
    def __call__(self, x, reverse=False):
        mask = self._mask(x.shape[1], x.shape[2])
        shift, s = self._shift_scale(x, mask)
        out = Moments(self.train and not reverse, name="bn_out")
        if reverse:
            mean, var = out(x * (1.0 - mask))
            x = x * jnp.exp(0.5 * jnp.log(var) * (1.0 - mask)) + mean * (1.0 - mask)
            x = x * jnp.exp(-s) - shift
            ld = s - 0.5 * jnp.log(var) * (1.0 - mask)
            return x, jnp.sum(ld, axis=(1, 2, 3))
        y = (x + shift) * jnp.exp(s)
        mean, var = out(y * (1.0 - mask))
        y = (y - mean * (1.0 - mask)) * jnp.exp(-0.5 * jnp.log(var) * (1.0 - mask))
        ld = s - 0.5 * jnp.log(var) * (1.0 - mask)
        return y, jnp.sum(ld, axis=(1, 2, 3))


class AuthorsChannelCoupling(nn.Module):
    """`conv_ch_aff_coupling`: one half of the channels (the first when `change_bottom`) conditions the
    other's shift and scale (s = scale tanh(.), scale initialised to 1), then batch norm."""

    change_bottom: bool
    dim: int
    blocks: int
    train: bool

    @nn.compact
    def __call__(self, x, reverse=False):
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        cond, canvas = (a, b) if self.change_bottom else (b, a)
        r = OffsetBN(self.train, name="bn_in")(cond)
        r = nn.relu(jnp.concatenate([r, -r], -1))
        r = AuthorsResNet(self.dim, 2 * half, self.blocks, self.train, name="resnet")(r)
        shift, s = r[..., :half], self.param("scale", nn.initializers.ones, ()) * jnp.tanh(r[..., half:])
        out = Moments(self.train and not reverse, name="bn_out")
        if reverse:
            mean, var = out(canvas)
            canvas = (canvas * jnp.exp(0.5 * jnp.log(var)) + mean) * jnp.exp(-s) - shift
        else:
            canvas = (canvas + shift) * jnp.exp(s)
            mean, var = out(canvas)
            canvas = (canvas - mean) * jnp.exp(-0.5 * jnp.log(var))
        ld = jnp.sum(s - 0.5 * jnp.log(var), axis=(1, 2, 3))
        y = jnp.concatenate([cond, canvas] if self.change_bottom else [canvas, cond], -1)
        return y, ld


def squeeze_channel_major(x: jax.Array) -> jax.Array:
    """The code's `squeeze_2x2`: [B, H, W, C] -> [B, H/2, W/2, 4C], channel c * 4 + 2 i + j."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze_channel_major(x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    return x.reshape(b, h, w, c // 4, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(b, 2 * h, 2 * w, c // 4)


_ORDERED = ((0, 0), (1, 1), (0, 1), (1, 0))  # squeeze_2x2_ordered's sub-pixel order


def squeeze_ordered(x: jax.Array) -> jax.Array:
    """The code's `squeeze_2x2_ordered`: channel p C + c for sub-pixel p in (0,0), (1,1), (0,1), (1,0),
    so its first half (the next scale's input) is the diagonal sub-lattice."""
    b, h, w, c = x.shape
    x6 = x.reshape(b, h // 2, 2, w // 2, 2, c)
    return jnp.concatenate([x6[:, :, i, :, j] for i, j in _ORDERED], -1)


def unsqueeze_ordered(x: jax.Array) -> jax.Array:
    b, h, w, c4 = x.shape
    c = c4 // 4
    out = jnp.zeros((b, h, 2, w, 2, c), x.dtype)
    for p, (i, j) in enumerate(_ORDERED):
        out = out.at[:, :, i, :, j].set(x[..., p * c : (p + 1) * c])
    return out.reshape(b, 2 * h, 2 * w, c)


AUTHORS_SCALES = ScaleOps(
    squeeze_channel_major,
    unsqueeze_channel_major,
    lambda x: squeeze_ordered(unsqueeze_channel_major(x)),
    lambda x: squeeze_channel_major(unsqueeze_ordered(x)),
    keep_first=True,
)


class AuthorsRealNVP(nn.Module):
    """The authors' multi-scale RealNVP on [B, H, W, C] -> latent [B, H W C]: at scale s (coupling
    width base_dim 2^s), three checkerboard couplings (masks 1, 0, 1), then, at every scale but the
    last, a squeeze, three channel couplings of width 2 base_dim 2^s, the unsqueeze, the ordered
    squeeze and half the channels passed on; at the last scale a fourth checkerboard coupling."""

    cfg: FlowConfig
    image_shape: tuple = ()
    train: bool = False

    def setup(self):
        c = self.cfg
        scales = []
        for s in range(c.num_scales):
            dim, last = c.channels * 2**s, s == c.num_scales - 1
            masked = [
                AuthorsMaskedCoupling(m, dim, c.num_blocks, self.train, name=f"scale_{s}_coupling_{i}")
                for i, m in enumerate((1, 0, 1) + ((0,) if last else ()))
            ]
            channel = (
                []
                if last
                else [
                    AuthorsChannelCoupling(cb, 2 * dim, c.num_blocks, self.train, name=f"scale_{s}_coupling_{i}")
                    for i, cb in ((4, True), (5, False), (6, True))
                ]
            )
            scales.append((masked, channel))
        self.scales = scales

    def __call__(self, x, reverse=False):
        return multiscale(self.scales, x, reverse, self.image_shape, AUTHORS_SCALES)


# ------------------------------------------------------------------------------ the model, priors


def prior_log_prob(z: jax.Array, prior: str) -> jax.Array:
    """log p_Z(z) summed over the last axis, for a standard logistic or Gaussian prior. [B, D] -> [B]"""
    if prior == "logistic":
        return -jnp.sum(jax.nn.softplus(z) + jax.nn.softplus(-z), axis=-1)
    return -0.5 * jnp.sum(LOG_2PI + z**2, axis=-1)


def prior_sample(key: jax.Array, shape: tuple, prior: str) -> jax.Array:
    """Draws from the standard logistic or Gaussian prior."""
    if prior == "logistic":
        return jax.random.logistic(key, shape)
    return jax.random.normal(key, shape)


class Flow(nn.Module):
    """The data-space flow: (logit preprocessing on images), the bijection, its prior.

    `__call__(y)` -> (z [B, D], log|det dz/dy| [B]) for y in the flow's input space (dequantised
    images in [0, 1] or points); `inverse(z)` -> y.
    """

    cfg: FlowConfig
    shape: tuple
    is_image: bool
    train: bool = False  # batch statistics (and their running averages updated) in the authors' network

    def setup(self):
        c = self.cfg
        if c.kind == "nice":
            self.net = NICE(c, point=not self.is_image)
        elif self.is_image and c.architecture == "authors":
            self.net = AuthorsRealNVP(c, image_shape=tuple(self.shape), train=self.train)
        elif self.is_image:
            self.net = ImageRealNVP(c, image_shape=tuple(self.shape))
        else:
            self.net = PointRealNVP(c)

    def _alpha(self):
        return self.cfg.logit_alpha if self.is_image else 0.0

    def __call__(self, y):
        b = y.shape[0]
        logdet = jnp.zeros((b,), y.dtype)
        a = self._alpha()
        if a > 0:
            s = a + (1.0 - 2.0 * a) * y
            logdet = logdet + jnp.sum((math.log(1.0 - 2.0 * a) - jnp.log(s) - jnp.log1p(-s)).reshape(b, -1), axis=-1)
            y = jnp.log(s) - jnp.log1p(-s)
        x = self._to_net(y)
        z, ld = self.net(x)
        return z.reshape(b, -1), logdet + ld

    def _to_net(self, y):
        if self.cfg.kind == "realnvp" and self.is_image:
            return y.reshape((y.shape[0],) + tuple(self.shape))
        return y.reshape(y.shape[0], -1)

    def inverse(self, z):
        b = z.shape[0]
        x = z if (self.cfg.kind == "realnvp" and self.is_image) else z.reshape(b, -1)
        y, _ = self.net(x, reverse=True)
        y = y.reshape((b,) + tuple(self.shape))
        a = self._alpha()
        if a > 0:
            y = (jax.nn.sigmoid(y) - a) / (1.0 - 2.0 * a)
        return y

    def log_prob(self, y):
        """log p(y) [B] of inputs in the flow's space."""
        z, logdet = self(y)
        return prior_log_prob(z, self.cfg.prior) + logdet


def _model(cfg: Any, train: bool = False) -> Flow:
    fc = FlowConfig.from_cfg(cfg)
    return Flow(fc, tuple(cfg.data.shape), cfg.data.get("kind", "image") == "image", train)


def _variables(params, model_state) -> dict:
    """The flow's variables: its parameters, and the batch-norm running averages of the authors'
    network (the state's model_state) when it has them."""
    return {"params": params} if model_state is None else {"params": params, "batch_stats": model_state}


def _levels(cfg: Any) -> int:
    return int(cfg.data.get("levels", 0)) if cfg.data.get("kind", "image") == "image" else 0


def dequantize(x: jax.Array, key: jax.Array, levels: int) -> jax.Array:
    """Data k / (L - 1) -> (k + u) / L with u ~ U[0, 1): a density on [0, 1]^D; identity for L = 0."""
    if not levels:
        return x
    k = jnp.round(x * (levels - 1))
    return (k + jax.random.uniform(key, x.shape, x.dtype)) / levels


def quantize(y: jax.Array, levels: int) -> jax.Array:
    """A point of [0, 1]^D -> the level k / (L - 1) whose dequantisation bin holds it."""
    if not levels:
        return y
    return jnp.clip(jnp.floor(y * levels), 0, levels - 1) / (levels - 1)


def dims(cfg: Any) -> int:
    return int(np.prod(cfg.data.shape))


def init(key: jax.Array, cfg: Any, example_batch: dict) -> TrainState:
    """Parameters (ActNorm initialised on the dequantised first batch), the authors' network's
    batch-norm running averages as model_state (None otherwise), and optimizer state."""
    model = _model(cfg)
    k1, k2 = jax.random.split(key)
    y = dequantize(jnp.asarray(example_batch["x"], jnp.float32), k2, _levels(cfg))
    variables = model.init(k1, y)
    return init_state(variables["params"], cfg, variables.get("batch_stats"))


def _scales_l2(params) -> jax.Array:
    """Sum of squares of the weight-norm magnitudes and the rescaling scales (the authors' l2_reg)."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    names = ("magnitude", "rescaling_scale")
    return sum((jnp.sum(v**2) for p, v in leaves if any(n in jax.tree_util.keystr(p) for n in names)), jnp.zeros(()))


def loss_fn(params, model_state, batch, rng, cfg, step):
    """Mean negative log-likelihood, in bits/dim on images (nats per point on points)."""
    del step
    model = _model(cfg)
    levels, d = _levels(cfg), dims(cfg)
    k_deq, k_flip = jax.random.split(rng)
    x = batch["x"]
    if model.cfg.random_flip and model.is_image:
        flip = jax.random.bernoulli(k_flip, 0.5, x.shape[:1])
        x = jnp.where(flip[:, None, None, None], x[:, :, ::-1], x)
    y = dequantize(x, k_deq, levels)
    if model_state is None:
        logp = model.apply({"params": params}, y, method=Flow.log_prob)
    else:  # the authors' network: batch statistics, running averages updated
        train_model = _model(cfg, train=True)
        logp, upd = train_model.apply(_variables(params, model_state), y, method=Flow.log_prob, mutable=["batch_stats"])
        model_state = upd["batch_stats"]
    nll = -logp + (d * math.log(levels) if levels else 0.0)
    metrics = {"nll_nats": jnp.mean(nll)}
    penalty = model.cfg.l2_scales * _scales_l2(params) if model.cfg.l2_scales else 0.0
    if levels:
        metrics["nll_bpd"] = jnp.mean(nll) / (d * math.log(2.0))
        return metrics["nll_bpd"] + penalty, (metrics, model_state)
    return metrics["nll_nats"] + penalty, (metrics, model_state)


train_step = make_train_step(loss_fn)


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """Per-example: nll_nats, nll_bpd (images), loglik_cont_nats (images); see the module docstring."""
    model = _model(cfg)
    levels, d = _levels(cfg), dims(cfg)
    y = dequantize(batch["x"], key, levels)
    logp = model.apply(_variables(state.eval_params(), state.model_state), y, method=Flow.log_prob)
    if not levels:
        return {"nll_nats": -logp}
    nll = -logp + d * math.log(levels)
    return {"nll_nats": nll, "nll_bpd": nll / (d * math.log(2.0)), "loglik_cont_nats": logp}


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n samples: z from the prior scaled by `sample.temperature` (1 = the model), mapped back; images
    are quantised to the data's levels (the model's discrete sample)."""
    model = _model(cfg)
    t = float(cfg.get("sample", {}).get("temperature", 1.0))
    z = t * prior_sample(key, (n, dims(cfg)), model.cfg.prior)
    y = model.apply(_variables(state.eval_params(), state.model_state), z, method=Flow.inverse)
    return quantize(y, _levels(cfg)) if model.is_image else y


def log_density(state: TrainState, x: jax.Array, cfg: Any) -> jax.Array:
    """log p(x) [N] of points (the loop draws it on a grid beside the data)."""
    model = _model(cfg)
    return model.apply(_variables(state.eval_params(), state.model_state), x, method=Flow.log_prob)
