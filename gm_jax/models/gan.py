"""Adversarial family: GAN (Goodfellow et al., 2014), DCGAN (Radford et al., 2015), WGAN (Arjovsky
et al., 2017) and WGAN-GP (Gulrajani et al., 2017) as one family step with swappable nets and losses
(StyleGAN's nets plug into the same step: `gm_jax.models.stylegan`).

One loop step is one discriminator (critic) update on a fresh real batch; the generator is updated
at the end of the step when the schedule says so (`critic_iters`): every `n_critic`-th step (the
GAN paper's k), or with WGAN's reference schedule, 100 critic updates per generator update for the
first 25 generator updates and at every 500th. The schedule's counters live in the state
(`model_state["schedule"]`), so a resumed run continues it exactly; the generator update runs under
`lax.cond` inside the one compiled step (no branch when every step updates G). `train.num_steps`
therefore counts discriminator updates; the metrics log `g_updates`. With `simultaneous` (the GAN
paper's pylearn2 code, n_critic 1) the generator's gradient comes from the discriminator's own
forward pass (the same samples, dropout masks and pre-update D) and both updates apply together.

Losses (all from logits / critic values):
- "gan": D minimises -log sigmoid(D(x)) - log sigmoid(-D(G(z))) (times `d_loss_scale`: the GAN
  paper's code averages the two terms, 0.5); G minimises -log sigmoid(D(G(z))) ("non_saturating",
  the paper's practical choice) or log sigmoid(-D(G(z))) = log(1 - D(G(z))) ("minimax", the game's
  value; it saturates when D wins);
- "wasserstein": the critic minimises E f(G(z)) - E f(x); G minimises -E f(G(z)). The logged
  `wasserstein` is -critic loss = E f(x) - E f(G(z)), the estimate of W(P_r, P_g) up to the
  Lipschitz constant (clipping) or penalty (GP); it goes down as samples improve.
- weight clipping to [-c, c] of every critic parameter after each critic update (`clip`), the
  gradient penalty lambda E (|grad f(x_hat)|_2 - 1)^2 on x_hat = eps x + (1 - eps) G(z),
  eps ~ U[0, 1] per example (`gp_weight`), the drift penalty `drift` E f(x)^2 (the progressive GAN's),
  R1 (`r1_gamma`, lazily every `r1_every`), and a style generator's path-length penalty
  (`pl_weight`, every `pl_every` generator updates; `nets.path_length`).

Nets (`arch`): "mlp" (generator ReLU MLP, sigmoid output for images and linear for points;
discriminator MLP, optionally maxout with dropout as in the GAN paper; `mlp_init=pylearn2` gives
the paper code's uniform initialisation and output bias) and "dcgan" (the DCGAN guidelines: a
projection of z reshaped to 4x4, fractionally-strided stride-2 convolutions in G computed in
sub-pixel form (`gm_jax.nn.conv`), strided convolutions in D, BatchNorm in both except G's output
and D's input, ReLU in G with a tanh output, LeakyReLU(0.2) in D, weights N(0, 0.02)), with the
authors' variants as switches: `kernel` 4 (PyTorch's example) or 5 (the DCGAN and WGAN-GP
authors' code), `biases` ("unnormalized": on the layers no BatchNorm follows; "none": the DCGAN and
WGAN code; "all": WGAN-GP's tflib layers) and `proj_norm` (BatchNorm after the projection per
channel of the 4x4 map, or per "unit" as the DCGAN and WGAN-GP code). "auto" takes `image_arch` for
images and, for point data, WGAN-GP's toy nets (`gan_toy.py`: ReLU MLPs of `point_hidden` = 3 x 512
units in both nets with tflib's initialisation, noise of `point_z_dim` = 2, linear output) for every
GAN, so the 2-D comparisons differ in losses and optimizers only. Conv nets see images in [-1, 1].
The critic may use "batch", "layer" or no normalisation (`d_norm`); the gradient penalty refuses
BatchNorm, as the paper does. BatchNorm statistics are those of the global batch (the step is
compiled over the sharded batch, so the mean and variance are reduced over every device), D sees
the real and the fake batch separately (DCGAN's reference practice), and sampling uses the running
statistics. `random_flip` mirrors the real images (StyleGAN's mirror augmentation).

Two optimizers from `optim` (both nets; `optim_d` overrides keys for the discriminator), optional
EMA of the generator (`optim.ema_decay`) used for evaluation and sampling.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gm_jax.core.config import model_section, positive_int
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState, ema_update
from gm_jax.core.steps import check_optimizer, make_optimizer
from gm_jax.nn.conv import SUBPIXEL_KERNELS, ConvTranspose2x
from gm_jax.nn.mlp import activation
from gm_jax.nn.precision import compute_dtype, mixed_apply

# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
    """What the shared adversarial step reads: losses, critic schedule and D's regularisers. Each
    family's `model` section is a subclass with its nets' keys (GANConfig here, StyleGANConfig in
    `gm_jax.models.stylegan`)."""

    loss: str = "gan"  # "gan" | "wasserstein"
    g_loss: str = "non_saturating"  # "non_saturating" | "minimax" (loss "gan" only)
    n_critic: int = 1  # discriminator updates per generator update (the GAN paper's k)
    critic_boost: bool = False  # WGAN's reference schedule (boost_iters for the first boost_first, every boost_every)
    boost_iters: int = 100
    boost_first: int = 25
    boost_every: int = 500
    clip: float = 0.0  # weight clipping c of the critic; 0 = off
    gp_weight: float = 0.0  # gradient penalty lambda; 0 = off
    r1_gamma: float = 0.0  # R1 penalty gamma/2 E|grad D(x_real)|^2 (Mescheder et al. 2018); 0 = off
    r1_every: int = 1  # lazy R1: on every r1_every-th D update only, weighted by r1_every (StyleGAN2: 16)
    drift: float = 0.0  # drift penalty epsilon E D(x)^2 on the reals (the progressive GAN's WGAN-GP: 0.001)
    pl_weight: float = 0.0  # path-length regularisation of a style-based generator (StyleGAN2: 2); 0 = off
    pl_every: int = 1  # lazy path-length regularisation: every pl_every-th G update, weighted by it (StyleGAN2: 4)
    pl_decay: float = 0.01  # the running mean of the path lengths moves by this fraction per regularised update
    pl_batch_shrink: int = 2  # the penalty's minibatch is the batch divided by this
    random_flip: bool = False  # mirror each real image left-right with probability 1/2 (StyleGAN's mirror_augment)
    # Simultaneous updates (the GAN paper's pylearn2 code): G's gradient from the same forward pass as D's,
    # against D before its update, on the same samples and dropout masks; else G follows D's update.
    simultaneous: bool = False
    d_loss_scale: float = 1.0  # the discriminator's loss times this (the GAN paper's code: 0.5, the mean of two terms)
    dtype: str = "float32"  # compute dtype: "float32" | "bfloat16" (parameters, losses, metrics stay float32)

    @classmethod
    def from_cfg(cls, cfg: Any):
        m = model_section(cls, cfg).normalized()
        m.check()
        return m

    def normalized(self):
        """Lists from the config file as tuples (the config is hashable and compares equal)."""
        return self

    def one_of(self, key: str, options: tuple) -> None:
        if getattr(self, key) not in options:
            raise UserError(f"model.{key} must be one of {', '.join(options)}, got {getattr(self, key)!r}")

    def check(self) -> None:
        self.one_of("loss", ("gan", "wasserstein"))
        self.one_of("g_loss", ("non_saturating", "minimax"))
        self.one_of("dtype", ("float32", "bfloat16"))
        for key in ("boost_iters", "boost_every", "r1_every", "pl_every", "pl_batch_shrink"):
            if not positive_int(getattr(self, key)):
                raise UserError(f"model.{key} must be a positive integer, got {getattr(self, key)!r}")
        if not positive_int(self.n_critic):
            raise UserError(
                f"model.n_critic (discriminator updates per generator update, k) must be >= 1, got {self.n_critic!r}"
            )
        if not isinstance(self.boost_first, int) or self.boost_first < 0:
            raise UserError(f"model.boost_first must be a non-negative integer, got {self.boost_first!r}")
        if not (isinstance(self.clip, (int, float)) and self.clip >= 0 and math.isfinite(self.clip)):
            raise UserError(f"model.clip (weight clipping c) must be > 0, or 0 for none; got {self.clip!r}")
        for key, name in (("gp_weight", "lambda"), ("r1_gamma", "gamma"), ("drift", "epsilon"), ("pl_weight", "w_pl")):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise UserError(f"model.{key} ({name}) must be >= 0, got {v!r}")
        if not (
            isinstance(self.d_loss_scale, (int, float)) and self.d_loss_scale > 0 and math.isfinite(self.d_loss_scale)
        ):
            raise UserError(f"model.d_loss_scale must be a positive number, got {self.d_loss_scale!r}")
        if self.simultaneous and (self.n_critic != 1 or self.critic_boost):
            raise UserError(
                "model.simultaneous updates D and G from one forward pass: it needs n_critic=1, no critic_boost"
            )
        if not (isinstance(self.pl_decay, (int, float)) and 0.0 < self.pl_decay <= 1.0):
            raise UserError(f"model.pl_decay must be in (0, 1], got {self.pl_decay!r}")
        if self.drift > 0 and self.loss != "wasserstein":
            raise UserError(
                "model.drift is the Wasserstein critic's penalty on E D(x)^2: it needs model.loss=wasserstein"
            )
        if self.loss == "wasserstein" and not (self.clip > 0 or self.gp_weight > 0):
            raise UserError(
                "model.loss=wasserstein needs a Lipschitz constraint: model.clip > 0 or model.gp_weight > 0"
            )


@dataclasses.dataclass(frozen=True)
class GANConfig(AdversarialConfig):
    """The `model` section of the GAN, DCGAN and WGAN configs (a typo in a key fails here)."""

    arch: str = "auto"  # "auto" | "mlp" | "dcgan"
    image_arch: str = "dcgan"  # what "auto" picks for images
    z_dim: int = 100
    noise: str = "gaussian"  # "gaussian" | "uniform" (U[-1, 1]) | "uniform_sqrt3" (U[-sqrt 3, sqrt 3], pylearn2's)
    # MLP nets (images)
    g_hidden: tuple = (1200, 1200)
    d_hidden: tuple = (240, 240)
    mlp_act: str = "relu"
    d_maxout: int = 0  # pieces per maxout unit (GAN paper: 5); 0 = plain units with mlp_act
    d_dropout: float = 0.0  # dropout on D's hidden layers (GAN paper: 0.5)
    d_input_dropout: float = 0.0  # dropout on D's input (GAN paper: 0.2)
    # Initialisation of the image MLPs: Flax's default, or pylearn2's (the GAN paper's mnist.yaml):
    # U[-g_irange, g_irange] in G, U[-d_irange, d_irange] in D, G's output bias the logits of the
    # pixel means of the first training batch
    mlp_init: str = "default"
    g_irange: float = 0.05
    d_irange: float = 0.005
    # MLP nets for point data (arch auto on a 2-D set): both nets, and the noise size
    point_hidden: tuple = (512, 512, 512)
    point_z_dim: int = 2
    # conv nets
    channels: int = 64  # G's last hidden / D's first layer; doubled at every resolution step
    kernel: int = 4  # conv kernel size: 4 (PyTorch's DCGAN example), 5 (the DCGAN and WGAN-GP authors' code), or 3
    # Which conv / dense layers have biases: "unnormalized" (those no BatchNorm follows), "none" (the DCGAN
    # and WGAN authors' code), "all" (the WGAN-GP authors' tflib layers, even before BatchNorm)
    biases: str = "unnormalized"
    proj_norm: str = "channel"  # BatchNorm after G's projection of z: per channel of the 4x4 map, or per "unit"
    g_norm: str = "batch"  # "batch" | "none"
    d_norm: str = "batch"  # "batch" | "layer" | "none"
    init_std: float = 0.02
    # How G's transposed convolutions are computed (gm_jax.nn.conv): "matmul", the sub-pixel form as one
    # matrix product, is the fastest on XLA:CPU and the only one that stays fast inside lax.cond there.
    conv_method: str = "matmul"

    def normalized(self) -> GANConfig:
        return dataclasses.replace(
            self, g_hidden=tuple(self.g_hidden), d_hidden=tuple(self.d_hidden), point_hidden=tuple(self.point_hidden)
        )

    def check(self) -> None:
        super().check()
        one_of = self.one_of
        one_of("arch", ("auto", "mlp", "dcgan"))
        one_of("image_arch", ("mlp", "dcgan"))
        one_of("noise", ("gaussian", "uniform", "uniform_sqrt3"))
        one_of("mlp_init", ("default", "pylearn2"))
        for key in ("g_irange", "d_irange"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise UserError(f"model.{key} must be a positive number, got {v!r}")
        one_of("g_norm", ("batch", "none"))
        one_of("d_norm", ("batch", "layer", "none"))
        one_of("conv_method", ("subpixel", "matmul", "xla"))
        one_of("biases", ("unnormalized", "none", "all"))
        one_of("proj_norm", ("channel", "unit"))
        if self.kernel not in SUBPIXEL_KERNELS:
            raise UserError(
                f"model.kernel must be one of {', '.join(map(str, SUBPIXEL_KERNELS))} (the kernel sizes the fast "
                f"transposed convolution computes), got {self.kernel!r}"
            )
        if self.pl_weight > 0:
            raise UserError("model.pl_weight (path-length regularisation) needs a style-based generator (stylegan)")
        for key in ("z_dim", "point_z_dim", "channels"):
            if not positive_int(getattr(self, key)):
                raise UserError(f"model.{key} must be a positive integer, got {getattr(self, key)!r}")
        for key in ("g_hidden", "d_hidden", "point_hidden"):
            if not all(positive_int(h) for h in getattr(self, key)):
                raise UserError(f"model.{key} must be positive integers, got {getattr(self, key)!r}")
        if not isinstance(self.d_maxout, int) or self.d_maxout < 0:
            raise UserError(f"model.d_maxout must be a non-negative integer, got {self.d_maxout!r}")
        for key in ("d_dropout", "d_input_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise UserError(f"model.{key} must be in [0, 1), got {getattr(self, key)!r}")
        try:
            activation(self.mlp_act)
        except ValueError as e:
            raise UserError(f"model.mlp_act: {e}") from None
        if not self.init_std > 0:
            raise UserError(f"model.init_std must be positive, got {self.init_std!r}")
        if self.gp_weight > 0 and self.d_norm == "batch":
            raise UserError("model.gp_weight > 0 needs a critic without BatchNorm (model.d_norm=layer or none)")
        if self.r1_gamma > 0 and self.d_norm == "batch":
            raise UserError("model.r1_gamma > 0 needs a discriminator without BatchNorm (model.d_norm=layer or none)")


def _arch(m: GANConfig, cfg: Any) -> str:
    """The net family for this data: "mlp" or "dcgan" (refuses a conv net on points)."""
    kind = cfg.data.get("kind", "image")
    if m.random_flip and kind != "image":
        raise UserError(f"model.random_flip mirrors images; {cfg.data.name} holds {kind}")
    arch = m.arch if m.arch != "auto" else ("mlp" if kind == "points" else m.image_arch)
    if arch == "dcgan":
        if kind != "image":
            raise UserError(
                f"model.arch=dcgan is a convolutional net; {cfg.data.name} holds {kind} (use model.arch=mlp)"
            )
        h, w = tuple(cfg.data.shape)[:2]
        if h != w or h < 8 or h & (h - 1):
            raise UserError(
                f"model.arch=dcgan makes square images of 8, 16, 32, 64, ... pixels from 4x4; the data is {h}x{w} "
                "(set data.image_size, e.g. 32)"
            )
    return arch


# ----------------------------------------------------------------------------- nets


def _normal(std):
    return nn.initializers.normal(std)


def _mlp_inits(init: str, irange: float = 0.0) -> tuple:
    """(hidden kernel init, output kernel init) of an MLP: Flax's LeCun normal ("default"), the
    WGAN-GP authors' tflib `Linear` ("tflib": He-uniform hidden, Glorot-uniform output), or
    pylearn2's U[-irange, irange] ("pylearn2", the GAN paper's mnist.yaml)."""
    if init == "tflib":
        return nn.initializers.variance_scaling(2.0, "fan_in", "uniform"), nn.initializers.glorot_uniform()
    if init == "pylearn2":
        u = nn.initializers.uniform(2.0 * irange)
        return (lambda k, s, d=jnp.float32: u(k, s, d) - irange,) * 2
    return nn.initializers.lecun_normal(), nn.initializers.lecun_normal()


class MLPGenerator(nn.Module):
    hidden: tuple
    out_dim: int
    act: str
    out: str  # "sigmoid" | "linear"
    init_scheme: str = "default"  # see _mlp_inits
    irange: float = 0.05

    @nn.compact
    def __call__(self, z, train: bool = True):
        h = z
        f = activation(self.act)
        k_hidden, k_out = _mlp_inits(self.init_scheme, self.irange)
        for width in self.hidden:
            h = f(nn.Dense(width, kernel_init=k_hidden)(h))
        h = nn.Dense(self.out_dim, kernel_init=k_out)(h)  # "Dense_<len(hidden)>"
        return jax.nn.sigmoid(h) if self.out == "sigmoid" else h


class MLPDiscriminator(nn.Module):
    """Logits [B]; maxout units (`maxout` pieces) and dropout as in the GAN paper, optionally."""

    hidden: tuple
    act: str
    maxout: int = 0
    dropout: float = 0.0
    input_dropout: float = 0.0
    init_scheme: str = "default"  # see _mlp_inits
    irange: float = 0.005

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = x.reshape(x.shape[0], -1)
        f = activation(self.act)
        k_hidden, k_out = _mlp_inits(self.init_scheme, self.irange)
        if self.input_dropout:
            h = nn.Dropout(self.input_dropout, deterministic=not train)(h)
        for width in self.hidden:
            if self.maxout:
                h = nn.Dense(width * self.maxout, kernel_init=k_hidden)(h).reshape(h.shape[0], width, self.maxout)
                h = h.max(-1)
            else:
                h = f(nn.Dense(width, kernel_init=k_hidden)(h))
            if self.dropout:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(1, kernel_init=k_out)(h)[:, 0]


def _bn(train: bool, std: float):
    # PyTorch BatchNorm2d defaults (momentum 0.1 = flax 0.9, eps 1e-5); scale ~ N(1, std) as DCGAN's code.
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=lambda k, s, d=jnp.float32: 1.0 + std * jax.random.normal(k, s, d),
    )


class DCGANGenerator(nn.Module):
    """z -> 4x4x(C 2^(L-1)) -> ... -> [S, S, out_channels] in [-1, 1], S = 4 * 2^L."""

    size: int
    out_channels: int
    channels: int
    norm: str = "batch"
    std: float = 0.02
    method: str = "subpixel"
    kernel: int = 4
    biases: str = "unnormalized"
    proj_norm: str = "channel"

    def _bias(self, normalized: bool) -> bool:
        return self.biases == "all" or (self.biases == "unnormalized" and not normalized)

    @nn.compact
    def __call__(self, z, train: bool = True):
        steps = int(round(math.log2(self.size // 4)))
        width = self.channels * 2 ** (steps - 1)
        bn = self.norm == "batch"
        h = nn.Dense(4 * 4 * width, kernel_init=_normal(self.std), use_bias=self._bias(bn))(z)
        if bn and self.proj_norm == "unit":
            h = _bn(train, self.std)(h)  # one mean and variance per unit of the projection (the authors' code)
        h = h.reshape(z.shape[0], 4, 4, width)
        if bn and self.proj_norm == "channel":
            h = _bn(train, self.std)(h)
        h = nn.relu(h)
        for _ in range(steps - 1):
            width //= 2
            h = ConvTranspose2x(
                width, self.kernel, use_bias=self._bias(bn), kernel_init=_normal(self.std), method=self.method
            )(h)
            if bn:
                h = _bn(train, self.std)(h)
            h = nn.relu(h)
        h = ConvTranspose2x(
            self.out_channels,
            self.kernel,
            use_bias=self._bias(False),
            kernel_init=_normal(self.std),
            method=self.method,
        )(h)
        return jnp.tanh(h)


class DCGANDiscriminator(nn.Module):
    """[S, S, C] -> strided k x k convs to 4x4 -> one logit/critic value [B]."""

    channels: int
    norm: str = "batch"  # after every conv but the first
    std: float = 0.02
    kernel: int = 4
    biases: str = "unnormalized"

    @nn.compact
    def __call__(self, x, train: bool = True):
        steps = int(round(math.log2(x.shape[1] // 4)))
        h = x
        for i in range(steps):
            use_norm = i > 0 and self.norm != "none"
            batch = use_norm and self.norm == "batch"
            h = nn.Conv(
                self.channels * 2**i,
                (self.kernel, self.kernel),
                strides=(2, 2),
                padding="SAME",
                kernel_init=_normal(self.std),
                use_bias=self.biases == "all" or (self.biases == "unnormalized" and not batch),
            )(h)
            if batch:
                h = _bn(train, self.std)(h)
            elif use_norm:
                h = nn.LayerNorm(reduction_axes=(-3, -2, -1), feature_axes=(-3, -2, -1))(h)
            h = nn.leaky_relu(h, 0.2)
        # The last 4x4 map to one value: DCGAN's final 4x4 valid convolution, i.e. a dense layer.
        out = nn.Dense(1, kernel_init=_normal(self.std), use_bias=self.biases != "none")
        return out(h.reshape(h.shape[0], -1))[:, 0]


class Nets:
    """The generator and discriminator a config builds, and the map between data and net space."""

    def __init__(self, cfg: Any):
        self.m = m = GANConfig.from_cfg(cfg)
        self.arch = _arch(m, cfg)
        self.shape = tuple(cfg.data.shape)
        self.points = cfg.data.get("kind", "image") == "points"
        dim = int(np.prod(self.shape))
        self.z_dim = m.point_z_dim if (self.points and m.arch == "auto") else m.z_dim
        if self.arch == "dcgan":
            self.g = DCGANGenerator(
                self.shape[0],
                self.shape[2],
                m.channels,
                m.g_norm,
                m.init_std,
                m.conv_method,
                m.kernel,
                m.biases,
                m.proj_norm,
            )
            self.d = DCGANDiscriminator(m.channels, m.d_norm, m.init_std, m.kernel, m.biases)
        elif self.points and m.arch == "auto":
            # WGAN-GP's toy nets (gan_toy.py) for every GAN on point data: ReLU MLPs, linear output,
            # tflib's initialisation.
            self.g = MLPGenerator(m.point_hidden, dim, "relu", "linear", init_scheme="tflib")
            self.d = MLPDiscriminator(m.point_hidden, "relu", init_scheme="tflib")
        elif self.points:
            self.g = MLPGenerator(m.g_hidden, dim, m.mlp_act, "linear")
            self.d = MLPDiscriminator(m.d_hidden, m.mlp_act, m.d_maxout, m.d_dropout, m.d_input_dropout)
        else:
            self.g = MLPGenerator(m.g_hidden, dim, m.mlp_act, "sigmoid", m.mlp_init, m.g_irange)
            self.d = MLPDiscriminator(
                m.d_hidden, m.mlp_act, m.d_maxout, m.d_dropout, m.d_input_dropout, m.mlp_init, m.d_irange
            )
        # Both nets compute in model.dtype; parameters, batch stats and losses stay float32.
        self.g_apply = mixed_apply(self.g.apply, compute_dtype(m.dtype))
        self.d_apply = mixed_apply(self.d.apply, compute_dtype(m.dtype))

    def init_vars(self, key, x, data_mean=None):
        """(G's variables, D's variables) for net-space data x [2, ...]; `data_mean` (the data's
        per-dimension mean) sets a pylearn2 sigmoid generator's output bias to its logits."""
        kg, kd = jax.random.split(key)
        gv = self.g.init(kg, jnp.zeros((2, self.z_dim)), train=False)
        dv = self.d.init({"params": kd, "dropout": kd}, x, train=False)
        if self.m.mlp_init == "pylearn2" and isinstance(self.g, MLPGenerator) and self.g.out == "sigmoid":
            p = jnp.clip(jnp.asarray(data_mean, jnp.float32).reshape(-1), 1e-7, 1.0 - 1e-7)
            out = f"Dense_{len(self.g.hidden)}"
            params = {**gv["params"], out: {**gv["params"][out], "bias": jnp.log(p) - jnp.log1p(-p)}}
            gv = {**gv, "params": params}
        return gv, dv

    def to_net(self, x):
        """Data -> what D sees: [-1, 1] images for conv nets, [0, 1] images or raw points for MLPs."""
        return 2.0 * x - 1.0 if self.arch == "dcgan" else x.reshape(x.shape[0], -1)

    def from_net(self, g):
        """G's output -> data space and shape."""
        x = (g + 1.0) / 2.0 if self.arch == "dcgan" else g
        return x.reshape((g.shape[0],) + self.shape)

    def noise(self, key, n):
        if self.m.noise == "uniform_sqrt3":
            return jax.random.uniform(key, (n, self.z_dim), minval=-math.sqrt(3.0), maxval=math.sqrt(3.0))
        if self.m.noise == "uniform":
            return jax.random.uniform(key, (n, self.z_dim), minval=-1.0, maxval=1.0)
        return jax.random.normal(key, (n, self.z_dim))

    def generate(self, params, stats, z, train):
        """(G(z) in net space, G's updated batch stats or None)."""
        if stats is None:
            return self.g_apply({"params": params}, z, train=train), None
        if not train:
            return self.g_apply({"params": params, "batch_stats": stats}, z, train=False), stats
        out, upd = self.g_apply({"params": params, "batch_stats": stats}, z, train=True, mutable=["batch_stats"])
        return out, upd["batch_stats"]

    def discriminate(self, params, stats, x, train, key=None):
        """(D(x) logits/critic values [B], D's updated batch stats or None)."""
        rngs = {"dropout": key} if key is not None else {}
        if stats is None:
            return self.d_apply({"params": params}, x, train=train, rngs=rngs), None
        if not train:
            return self.d_apply({"params": params, "batch_stats": stats}, x, train=False, rngs=rngs), stats
        out, upd = self.d_apply(
            {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"], rngs=rngs
        )
        return out, upd["batch_stats"]


# ----------------------------------------------------------------------------- losses


def d_loss_gan(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-E log D(x) - E log(1 - D(G(z))) with D = sigmoid(logits), from logits (log_sigmoid)."""
    return -jnp.mean(jax.nn.log_sigmoid(real_logits)) - jnp.mean(jax.nn.log_sigmoid(-fake_logits))


def g_loss_non_saturating(fake_logits: jax.Array) -> jax.Array:
    """-E log D(G(z)); gradient sigmoid(l) - 1 per logit l (strong when D rejects the sample)."""
    return -jnp.mean(jax.nn.log_sigmoid(fake_logits))


def g_loss_minimax(fake_logits: jax.Array) -> jax.Array:
    """E log(1 - D(G(z))) = E log sigmoid(-l); gradient -sigmoid(l) per logit (vanishes when D rejects)."""
    return jnp.mean(jax.nn.log_sigmoid(-fake_logits))


def d_loss_wasserstein(real: jax.Array, fake: jax.Array) -> jax.Array:
    """E f(G(z)) - E f(x): the critic maximises E f(x) - E f(G(z))."""
    return jnp.mean(fake) - jnp.mean(real)


def g_loss_wasserstein(fake: jax.Array) -> jax.Array:
    """-E f(G(z))."""
    return -jnp.mean(fake)


def gradient_penalty(critic, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
    """E (|grad_x f(x_hat)|_2 - 1)^2, x_hat = eps real + (1 - eps) fake, eps ~ U[0, 1] per example.

    Args:
      critic: x [B, ...] -> f(x) [B] (each output depends on its own row only).
    """
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def r1_penalty(critic, real: jax.Array) -> jax.Array:
    """E |grad_x D(x)|_2^2 over the real batch (R1, Mescheder et al. 2018; D as logits).

    Args:
      critic: x [B, ...] -> D(x) [B] (each output depends on its own row only).
    """
    return logits_and_r1(lambda x: (critic(x), None), real)[2]


def logits_and_r1(critic, real: jax.Array) -> tuple[jax.Array, Any, jax.Array]:
    """(D(real) [B], critic's aux, R1 penalty) from one forward pass: the logits and their input
    gradient share it (the loss and the penalty of a discriminator update need both).

    Args:
      critic: x [B, ...] -> (D(x) [B], aux) (each output depends on its own row only).
    """
    logits, vjp, aux = jax.vjp(critic, real, has_aux=True)
    (grads,) = vjp(jnp.ones_like(logits))
    return logits, aux, jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))


def clip_weights(params: Any, c: float) -> Any:
    """Every parameter clipped to [-c, c] (WGAN)."""
    return jax.tree.map(lambda p: jnp.clip(p, -c, c), params)


# ----------------------------------------------------------------------------- schedule


def critic_iters(g_updates: jax.Array, m: GANConfig) -> jax.Array:
    """Discriminator updates before generator update number `g_updates` (0-based)."""
    if not m.critic_boost:
        return jnp.asarray(m.n_critic, jnp.int32)
    boost = (g_updates < m.boost_first) | (g_updates % m.boost_every == 0)
    return jnp.where(boost, m.boost_iters, m.n_critic).astype(jnp.int32)


def schedule_after_d(sched: dict, m: GANConfig) -> tuple[dict, jax.Array]:
    """Count one discriminator update; (counters, whether the generator updates now)."""
    d_since = sched["d_since"] + 1
    do_g = d_since >= critic_iters(sched["g_updates"], m)
    return {**sched, "d_since": d_since}, do_g


def _static_every_step(m: GANConfig) -> bool:
    return m.n_critic == 1 and not m.critic_boost


# ----------------------------------------------------------------------------- family


def _optim_d(cfg: Any) -> ml_collections.ConfigDict:
    o = ml_collections.ConfigDict(cfg.optim.to_dict() if hasattr(cfg.optim, "to_dict") else dict(cfg.optim))
    over = cfg.get("optim_d", None)
    if over:
        o.update(dict(over))
    return o


def init(key: jax.Array, cfg: Any, example_batch: dict, nets: Any = None) -> TrainState:
    """Both nets' parameters and non-gradient state (BatchNorm statistics, StyleGAN's tracked w
    average), both optimizers, and the schedule counters.

    `nets` (default `Nets(cfg)`) is what the step is built from; another family passes its own
    object with the same methods (`init_vars`, `generate`, `discriminate`, `noise`, `to_net`, `m`).
    """
    nets = Nets(cfg) if nets is None else nets
    check_optimizer(_optim_d(cfg))
    batch = jnp.asarray(example_batch["x"], jnp.float32)
    x = nets.to_net(batch[:2])
    gv, dv = nets.init_vars(key, x, data_mean=jnp.mean(batch, axis=0))
    params = {"g": gv["params"], "d": dv["params"]}
    if nets.m.clip > 0:
        params["d"] = clip_weights(params["d"], nets.m.clip)
    model_state: dict = {
        "schedule": {
            "g_updates": jnp.zeros((), jnp.int32),
            "d_since": jnp.zeros((), jnp.int32),
            "g_loss": jnp.zeros((), jnp.float32),
        }
    }
    if "batch_stats" in gv:
        model_state["g_batch_stats"] = gv["batch_stats"]
    if "batch_stats" in dv:
        model_state["d_batch_stats"] = dv["batch_stats"]
    opt_state = {"g": make_optimizer(cfg.optim).init(params["g"]), "d": make_optimizer(_optim_d(cfg)).init(params["d"])}
    ema = {"g": params["g"]} if cfg.optim.get("ema_decay", 0.0) else None
    return TrainState.create(params=params, opt_state=opt_state, model_state=model_state, ema_params=ema)


class _Batch(NamedTuple):
    """One step's inputs to both updates: the real and generated batches and the step's keys."""

    real: jax.Array
    fake: jax.Array
    z_key: jax.Array  # the noise of `fake`
    drop_real: jax.Array
    drop_fake: jax.Array
    gp_key: jax.Array
    g_z_key: jax.Array
    g_drop: jax.Array
    pl_key: jax.Array


class _DOut(NamedTuple):
    total: jax.Array
    loss: jax.Array
    gp: jax.Array
    r1: jax.Array
    real_logits: jax.Array
    fake_logits: jax.Array
    stats: Any
    grads: Any


def train_step(state: TrainState, batch: dict, key: jax.Array, cfg: Any, nets: Any = None) -> tuple[TrainState, dict]:
    """One discriminator update on `batch`, then the generator update if the schedule says so.

    With `model.r1_gamma` > 0 the discriminator's loss adds gamma/2 E|grad D(x)|^2 on the real batch;
    with `model.r1_every` = k > 1 only on the updates whose number (`state.step`) is a multiple of
    k, weighted by k (lazy regularisation; the other updates run without the second backward
    pass, under `lax.cond`). With `model.drift` > 0 (Wasserstein loss) it adds drift E D(x)^2. With
    `model.pl_weight` > 0 the generator's loss adds the nets' path-length penalty
    (`nets.path_length`) times pl_weight * pl_every on every pl_every-th generator update.
    """
    nets = Nets(cfg) if nets is None else nets
    m, ms = nets.m, state.model_state
    rng = jax.random.fold_in(key, state.step)
    k_zd, k_drop, k_gp, k_zg, k_dropg, k_pl = jax.random.split(rng, 6)
    x = batch["x"]
    if m.random_flip:
        flip = jax.random.bernoulli(jax.random.fold_in(rng, 1), 0.5, x.shape[:1])
        x = jnp.where(flip.reshape((-1,) + (1,) * (x.ndim - 1)), x[:, :, ::-1], x)
    real = nets.to_net(x)
    fake, g_stats = nets.generate(state.params["g"], ms.get("g_batch_stats"), nets.noise(k_zd, real.shape[0]), True)
    kr, kf = jax.random.split(k_drop)
    b = _Batch(real, jax.lax.stop_gradient(fake), k_zd, kr, kf, k_gp, k_zg, k_dropg, k_pl)

    d = _d_grads(state, nets, b)
    upd, d_opt = make_optimizer(_optim_d(cfg)).update(d.grads, state.opt_state["d"], state.params["d"])
    d_params = optax.apply_updates(state.params["d"], upd)
    if m.clip > 0:
        d_params = clip_weights(d_params, m.clip)

    sched, do_g = schedule_after_d(ms["schedule"], m)
    args = (state.params["g"], state.opt_state["g"], g_stats, d.stats, state.ema_params)
    g_update = functools.partial(_g_update, state=state, nets=nets, cfg=cfg, b=b, d_params=d_params, sched=sched)
    if _static_every_step(m):
        out, g_loss, g_norm, pl = g_update(args)
        do_g = jnp.asarray(True)
    else:
        zero = jnp.zeros((), jnp.float32)
        out, g_loss, g_norm, pl = jax.lax.cond(do_g, g_update, lambda a: (a, sched["g_loss"], zero, (zero, zero)), args)
    g_params, g_opt, g_stats, d_stats, ema = out
    sched = {
        "g_updates": sched["g_updates"] + do_g.astype(jnp.int32),
        "d_since": jnp.where(do_g, 0, sched["d_since"]).astype(jnp.int32),
        "g_loss": g_loss,
    }
    model_state = {"schedule": sched}
    if g_stats is not None:
        model_state["g_batch_stats"] = g_stats
    if d_stats is not None:
        model_state["d_batch_stats"] = d_stats
    new = state.replace(
        step=state.step + 1,
        params={"g": g_params, "d": d_params},
        opt_state={"g": g_opt, "d": d_opt},
        model_state=model_state,
        ema_params=ema,
    )
    return new, _metrics(m, d, sched, g_loss, g_norm, pl)


def _d_grads(state: TrainState, nets: Any, b: _Batch) -> _DOut:
    """The discriminator's loss (with its penalties) and gradients at this step's batches."""
    m, d_stats = nets.m, state.model_state.get("d_batch_stats")
    wasserstein = m.loss == "wasserstein"

    def objective(dp, r1_weight):
        r1 = jnp.zeros(())
        if r1_weight:  # the penalty's input gradient from the loss's own forward pass on the reals
            r, st, r1 = logits_and_r1(lambda x: nets.discriminate(dp, d_stats, x, True, b.drop_real), b.real)
        else:
            r, st = nets.discriminate(dp, d_stats, b.real, True, b.drop_real)
        f, st = nets.discriminate(dp, st, b.fake, True, b.drop_fake)
        loss = d_loss_wasserstein(r, f) if wasserstein else d_loss_gan(r, f)
        gp = jnp.zeros(())
        if m.gp_weight > 0:
            critic = lambda x: nets.discriminate(dp, None, x, True, b.drop_real)[0]  # noqa: E731
            gp = gradient_penalty(critic, b.real, b.fake, b.gp_key)
        total = m.d_loss_scale * loss + m.gp_weight * gp + r1_weight * (m.r1_gamma / 2.0) * r1
        if m.drift > 0:
            total = total + m.drift * jnp.mean(r**2)
        return total, (loss, gp, r1, r, f, st)

    def grads(r1_weight):
        (total, aux), g = jax.value_and_grad(lambda dp: objective(dp, r1_weight), has_aux=True)(state.params["d"])
        return _DOut(total, *aux, g)

    if m.r1_gamma > 0 and m.r1_every > 1:
        return jax.lax.cond(state.step % m.r1_every == 0, lambda: grads(float(m.r1_every)), lambda: grads(0.0))
    return grads(1.0 if m.r1_gamma > 0 else 0.0)


def _g_update(args, *, state, nets, cfg, b: _Batch, d_params, sched):
    """The generator's update: (its params, optimizer state, batch stats, D's batch stats, EMA),
    its adversarial loss, gradient norm, and the path-length (penalty, mean length) or zeros."""
    g_params, g_opt, g_st, d_st, ema = args
    m, n = nets.m, b.real.shape[0]

    def path_length(gp_, st):
        def off(gp_, st):
            return jnp.zeros(()), st, jnp.zeros(())

        def on(gp_, st):
            return nets.path_length(gp_, st, b.pl_key, n)

        if m.pl_every == 1:
            return on(gp_, st)
        return jax.lax.cond(sched["g_updates"] % m.pl_every == 0, on, off, gp_, st)

    def objective(gp_):
        # simultaneous: the samples, dropout masks and discriminator of D's own update
        out, st = nets.generate(gp_, g_st, nets.noise(b.z_key if m.simultaneous else b.g_z_key, n), train=True)
        d_for_g = state.params["d"] if m.simultaneous else d_params
        logits, dst = nets.discriminate(d_for_g, d_st, out, True, b.drop_fake if m.simultaneous else b.g_drop)
        if m.loss == "wasserstein":
            loss = g_loss_wasserstein(logits)
        elif m.g_loss == "minimax":
            loss = g_loss_minimax(logits)
        else:
            loss = g_loss_non_saturating(logits)
        pl, total = (jnp.zeros(()), jnp.zeros(())), loss
        if m.pl_weight > 0:
            penalty, st, length = path_length(gp_, st)
            total, pl = loss + m.pl_weight * m.pl_every * penalty, (penalty, length)
        return total, (loss, st, dst, pl)

    (_, (g_loss, g_st, d_st, pl)), g_grads = jax.value_and_grad(objective, has_aux=True)(g_params)
    u, g_opt = make_optimizer(cfg.optim).update(g_grads, g_opt, g_params)
    g_params = optax.apply_updates(g_params, u)
    if ema is not None:
        ema = {"g": ema_update(ema["g"], g_params, cfg.optim.ema_decay)}
    return (g_params, g_opt, g_st, d_st, ema), g_loss.astype(jnp.float32), optax.tree.norm(g_grads), pl


def _metrics(m: AdversarialConfig, d: _DOut, sched: dict, g_loss, g_norm, pl) -> dict:
    r, f = d.real_logits, d.fake_logits
    metrics = {
        "loss": d.total,
        "d_loss": d.loss,
        "g_loss": g_loss,
        "g_updates": sched["g_updates"].astype(jnp.float32),
        "d_grad_norm": optax.tree.norm(d.grads),
    }
    if _static_every_step(m):
        metrics["g_grad_norm"] = g_norm
    if m.loss == "wasserstein":
        metrics["wasserstein"] = -d.loss
        metrics["critic_real"], metrics["critic_fake"] = jnp.mean(r), jnp.mean(f)
    else:
        metrics["d_real"], metrics["d_fake"] = jnp.mean(jax.nn.sigmoid(r)), jnp.mean(jax.nn.sigmoid(f))
    if m.gp_weight > 0:
        metrics["gradient_penalty"] = d.gp
    if m.r1_gamma > 0:
        metrics["r1_penalty"] = d.r1  # E|grad D(x)|^2 on the updates that compute it, 0 on the others
    if m.drift > 0:
        metrics["drift"] = jnp.mean(r**2)
    if m.pl_weight > 0:  # on the generator updates that compute them, 0 on the others
        metrics["pl_penalty"], metrics["pl_length"] = pl
    return metrics


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any, nets: Any = None) -> dict:
    """Per-example test metrics [B] of D/critic in inference mode against one generated example each.

    loss "gan": d_real (D(x) probability of the test example), d_fake (of a sample), d_loss (the
    discriminator's cross-entropy on the pair). loss "wasserstein": critic_real, critic_fake and
    wasserstein (their difference; its mean is the test-set estimate).
    """
    nets = Nets(cfg) if nets is None else nets
    params = state.eval_params()
    ms = state.model_state
    x = nets.to_net(batch["x"])
    fake, _ = nets.generate(params["g"], ms.get("g_batch_stats"), nets.noise(key, x.shape[0]), train=False)
    r, _ = nets.discriminate(params["d"], ms.get("d_batch_stats"), x, False)
    f, _ = nets.discriminate(params["d"], ms.get("d_batch_stats"), fake, False)
    if nets.m.loss == "wasserstein":
        return {"critic_real": r, "critic_fake": f, "wasserstein": r - f}
    return {
        "d_real": jax.nn.sigmoid(r),
        "d_fake": jax.nn.sigmoid(f),
        "d_loss": -jax.nn.log_sigmoid(r) - jax.nn.log_sigmoid(-f),
    }


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any, nets: Any = None) -> jax.Array:
    """n samples in data space (images [n, H, W, C] in [0, 1], or points [n, D]); BatchNorm uses its
    running statistics; the generator's EMA when kept."""
    nets = Nets(cfg) if nets is None else nets
    out, _ = nets.generate(state.eval_params()["g"], state.model_state.get("g_batch_stats"), nets.noise(key, n), False)
    return nets.from_net(out)
