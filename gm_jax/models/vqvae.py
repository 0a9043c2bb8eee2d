"""VQ-VAE (van den Oord et al., 2017): encoder -> nearest of K codebook vectors -> decoder.

Networks (`layout`):
- "paper" (van den Oord et al., section 4.1): `downsample` 4x4 stride-2 convolutions of `hidden`
  units (ReLU after each), then `res_blocks` residual blocks (ReLU, 3x3 conv of `res_hidden`, ReLU,
  1x1 conv), "all having 256 hidden units"; the decoder: the residual blocks, ReLU, and `downsample`
  4x4 stride-2 transposed convolutions (ReLU between). The paper names no layer between the last
  residual block and the codes: with `code_dim` = `hidden` there is none; otherwise a 1x1
  convolution to `code_dim` (and from it in the decoder) is added. The activations the text leaves
  open follow DeepMind's released example (sonnet `examples/vqvae_example.ipynb`).
- "sonnet" (that example, and dm-haiku's): the first strided convolution has `hidden` / 2 units, a
  3x3 convolution follows the strided ones, the residual stack ends with a ReLU and a 1x1
  convolution maps to `code_dim`; the decoder starts with a 3x3 convolution from the codes.
z_e lies on a grid of (H / 2^downsample) x (W / 2^downsample). Quantiser: z_q = e_k with k the
nearest codebook vector in Euclidean distance; the decoder sees z_e + sg(z_q - z_e) (straight-
through: the decoder's gradient at z_q is passed to the encoder unchanged). The decoder's 4x4
stride-2 transposed convolutions are computed in the fast sub-pixel form (`gm_jax.nn.conv`).

Loss per example (sums over the latent grid and code dimensions, like the reconstruction's sum over
pixels): -log p(x | z_q) + ||sg[z_e] - e||^2 + commitment ||z_e - sg[e]||^2, commitment = 0.25.
With `ema=True` the codebook is not learned by gradient: it follows exponential moving averages
of the codes' counts and encoder-output sums (decay 0.99, counts Laplace-smoothed with `ema_eps`),
summed over the whole (sharded) batch, and the codebook term is dropped (van den Oord et al.,
appendix; Razavi et al., 2019). Dead-code restarts (`restart_every` > 0 steps, EMA only): every code
whose moving-average count is below `restart_threshold` is moved to an encoder output of the
current batch.

Logged every step: the batch's code perplexity exp(H(usage)) and fraction of codes used;
`evaluate` returns per-example reconstruction nats and bits/dim, the codebook and commitment
terms and the bound under the usage prior below, and each example's code frequencies, from which
the loop's evaluation reports the perplexity and the fraction of codes used over the whole test set
(`summarize`) and draws the set's code histogram (samples/code_frequency_eval.png).

`sample` draws every grid position's code independently from the codes' moving-average usage
(`model_state["usage"]`, decay 0.99): the first stage's own, factorised prior.

Second stage (`--config.train.init_from=<first stage's workdir>`): an autoregressive prior over the
code grid in raster order, a small causal transformer (`prior` section: layers, width, heads; the
paper uses a gated PixelCNN), trained on the frozen first stage's codes of the training data. Its
`sample` draws code grids position by position and decodes them; its `evaluate` reports the
two-stage bound -log p(x) <= -log p(x | z_q) - log p_prior(z_q) in nats and bits/dim, as the paper
reports its bits/dim. The first stage's network is rebuilt from the run's `model` section, which
must be the first stage's (checked at start).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.core.config import model_section, require_positive_int
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.core.steps import init_state, make_train_step
from gm_jax.metrics.likelihood import bits_per_dim
from gm_jax.models.vae import decoder_log_prob
from gm_jax.nn.conv import ConvTranspose2x
from gm_jax.nn.precision import compute_dtype, mixed_apply

PRECISION = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class VQConfig:
    """Model section of a VQ-VAE config."""

    num_codes: int = 512
    code_dim: int = 64
    hidden: int = 128
    res_blocks: int = 2
    res_hidden: int = 32
    downsample: int = 2
    commitment: float = 0.25
    ema: bool = False
    ema_decay: float = 0.99
    ema_eps: float = 1e-5
    restart_every: int = 0
    restart_threshold: float = 1.0
    decoder: str = "bernoulli"  # "bernoulli" | "gaussian"
    decoder_std: float = 0.1
    layout: str = "sonnet"  # "paper" (section 4.1) | "sonnet" (DeepMind's example; see the module docstring)
    conv_method: str = "matmul"
    dtype: str = "float32"  # compute dtype of encoder/decoder: "float32" | "bfloat16" (the quantiser stays float32)

    @classmethod
    def from_cfg(cls, cfg: Any) -> VQConfig:
        out = model_section(cls, cfg, "vqvae")
        for key in ("num_codes", "code_dim", "hidden", "res_hidden", "downsample"):
            require_positive_int(f"model.{key}", getattr(out, key))
        if out.dtype not in ("float32", "bfloat16"):
            raise UserError(f"model.dtype must be float32 or bfloat16, got {out.dtype!r}")
        if out.num_codes < 2:
            raise UserError(f"model.num_codes must be at least 2, got {out.num_codes}")
        if not isinstance(out.res_blocks, int) or out.res_blocks < 0:
            raise UserError(f"model.res_blocks must be a non-negative integer, got {out.res_blocks!r}")
        if not 0 < out.ema_decay < 1 or not out.ema_eps > 0 or not out.commitment >= 0:
            raise UserError("model.ema_decay must be in (0, 1), model.ema_eps > 0 and model.commitment >= 0")
        if out.layout not in ("paper", "sonnet"):
            raise UserError(f"model.layout must be paper or sonnet, got {out.layout!r}")
        if out.decoder not in ("bernoulli", "gaussian"):
            raise UserError(f"model.decoder must be bernoulli or gaussian, got {out.decoder!r}")
        if out.restart_every and not out.ema:
            raise UserError("model.restart_every needs model.ema=True (the restart reads the moving-average counts)")
        return out


class ResBlock(nn.Module):
    """The paper's residual block: x + 1x1 conv(ReLU(3x3 conv of `res_hidden`(ReLU(x))))."""

    hidden: int
    res_hidden: int

    @nn.compact
    def __call__(self, x):
        h = nn.Conv(self.res_hidden, (3, 3), name="conv3")(nn.relu(x))
        return x + nn.Conv(self.hidden, (1, 1), name="conv1")(nn.relu(h))


class Encoder(nn.Module):
    cfg: VQConfig

    @nn.compact
    def __call__(self, x):  # [B, H, W, C] -> [B, h, w, D]
        c = self.cfg
        paper = c.layout == "paper"
        for i in range(c.downsample):
            width = c.hidden if (paper or i == c.downsample - 1) else max(1, c.hidden // 2)
            x = nn.relu(nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME", name=f"down_{i}")(x))
        if not paper:
            x = nn.Conv(c.hidden, (3, 3), name="conv_in")(x)
        for i in range(c.res_blocks):
            x = ResBlock(c.hidden, c.res_hidden, name=f"res_{i}")(x)
        if paper:
            return x if c.code_dim == c.hidden else nn.Conv(c.code_dim, (1, 1), name="to_code")(x)
        return nn.Conv(c.code_dim, (1, 1), name="to_code")(nn.relu(x))


class Decoder(nn.Module):
    cfg: VQConfig
    channels: int

    @nn.compact
    def __call__(self, z):  # [B, h, w, D] -> [B, H, W, C] logits
        c = self.cfg
        paper = c.layout == "paper"
        if not paper:
            x = nn.Conv(c.hidden, (3, 3), name="conv_in")(z)
        else:
            x = z if c.code_dim == c.hidden else nn.Conv(c.hidden, (1, 1), name="from_code")(z)
        for i in range(c.res_blocks):
            x = ResBlock(c.hidden, c.res_hidden, name=f"res_{i}")(x)
        x = nn.relu(x)
        for i in range(c.downsample):
            last = i == c.downsample - 1
            width = self.channels if last else (c.hidden if paper else max(1, c.hidden // 2))
            x = ConvTranspose2x(width, method=c.conv_method, name=f"up_{i}")(x)
            if not last:
                x = nn.relu(x)
        return x


class VQVAE(nn.Module):
    cfg: VQConfig
    shape: tuple

    def setup(self):
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg, self.shape[-1])
        if not self.cfg.ema:
            init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")
            self.codebook = self.param("codebook", init, (self.cfg.num_codes, self.cfg.code_dim))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def __call__(self, x):
        return self.decode(self.encode(x))


def _apply(model: VQVAE):
    """`model.apply` computing in the config's dtype (float32 outputs; gm_jax.nn.precision)."""
    return mixed_apply(model.apply, compute_dtype(model.cfg.dtype))


def quantize(z_e: jax.Array, codebook: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Nearest codebook vector of each code: (indices [...], z_q [..., D]). Ties: the lowest index."""
    flat = z_e.reshape(-1, z_e.shape[-1])
    d2 = (
        jnp.sum(flat**2, 1, keepdims=True)
        - 2.0 * jnp.matmul(flat, codebook.T, precision=PRECISION)
        + jnp.sum(codebook**2, 1)[None]
    )
    idx = jnp.argmin(d2, 1)
    return idx.reshape(z_e.shape[:-1]), codebook[idx].reshape(z_e.shape)


def straight_through(z_e: jax.Array, z_q: jax.Array) -> jax.Array:
    """z_q in the forward pass; the identity's gradient to z_e in the backward pass."""
    return z_e + jax.lax.stop_gradient(z_q - z_e)


def ema_update(count, total, z_e, idx, decay: float, eps: float):
    """One EMA step of the codebook statistics and the codebook they give.

    count [K], total [K, D]: the moving averages; z_e [N, D] and idx [N]: this batch's encoder
    outputs and their codes (the whole global batch: under `jit` a sharded batch is summed over its
    devices by XLA). Returns (count, total, codebook [K, D]).
    """
    k = count.shape[0]
    onehot = jax.nn.one_hot(idx.reshape(-1), k, dtype=z_e.dtype)
    n_k = onehot.sum(0)
    s_k = jnp.matmul(onehot.T, z_e.reshape(-1, z_e.shape[-1]), precision=PRECISION)
    count = decay * count + (1 - decay) * n_k
    total = decay * total + (1 - decay) * s_k
    n = jnp.sum(count)
    smoothed = (count + eps) / (n + k * eps) * n
    return count, total, total / smoothed[:, None]


def _usage(idx: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    p = jnp.mean(jax.nn.one_hot(idx.reshape(-1), k), 0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(entropy), jnp.mean(p > 0)


def _model(cfg: Any) -> VQVAE:
    m = VQConfig.from_cfg(cfg)
    shape = tuple(cfg.data.shape)
    f = 2**m.downsample
    if len(shape) != 3 or shape[0] % f or shape[1] % f:
        raise UserError(f"vqvae with downsample={m.downsample} needs images with sides divisible by {f}; got {shape}")
    return VQVAE(m, shape)


class PriorConfig(NamedTuple):
    layers: int = 2
    width: int = 128
    heads: int = 4


def _prior_cfg(cfg: Any) -> PriorConfig:
    d = dict(cfg.get("prior", {}))
    try:
        p = PriorConfig(**d)
    except TypeError as e:
        raise UserError(f"bad prior config for vqvae: {e}") from None
    for key in ("layers", "width", "heads"):
        v = getattr(p, key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise UserError(f"prior.{key} must be a positive integer, got {v!r}")
    if p.width % p.heads:
        raise UserError(f"prior.width={p.width} must be a multiple of prior.heads={p.heads}")
    return p


class CausalPrior(nn.Module):
    """Logits of p(code_i | code_<i) over a flattened code grid [B, L] -> [B, L, K] (a pre-LN
    transformer; the input at position i is the code at i - 1, a start token at 0)."""

    num_codes: int
    length: int
    cfg: PriorConfig

    @nn.compact
    def __call__(self, idx: jax.Array) -> jax.Array:
        b, length = idx.shape
        prev = jnp.concatenate([jnp.full((b, 1), self.num_codes, idx.dtype), idx[:, :-1]], 1)
        h = nn.Embed(self.num_codes + 1, self.cfg.width, name="embed")(prev)
        h = h + self.param("pos", nn.initializers.normal(0.02), (self.length, self.cfg.width))[None, :length]
        mask = nn.make_causal_mask(jnp.ones((b, length)))
        for i in range(self.cfg.layers):
            a = nn.LayerNorm(name=f"ln_a{i}")(h)
            h = h + nn.MultiHeadDotProductAttention(self.cfg.heads, name=f"attn_{i}")(a, a, mask=mask)
            m = nn.LayerNorm(name=f"ln_m{i}")(h)
            h = h + nn.Dense(self.cfg.width, name=f"mlp_out{i}")(
                nn.gelu(nn.Dense(4 * self.cfg.width, name=f"mlp_in{i}")(m))
            )
        return nn.Dense(self.num_codes, name="logits")(nn.LayerNorm(name="ln_f")(h))


def _grid(cfg: Any, m: VQConfig) -> tuple[int, int]:
    h, w = tuple(cfg.data.shape)[:2]
    return h // 2**m.downsample, w // 2**m.downsample


def _is_prior(state_or_model_state) -> bool:
    ms = getattr(state_or_model_state, "model_state", state_or_model_state)
    return isinstance(ms, dict) and "first" in ms


def _first(state_or_model_state) -> TrainState:
    """The frozen first stage of a prior-stage state (or its model_state), as a TrainState its
    functions accept."""
    f = getattr(state_or_model_state, "model_state", state_or_model_state)["first"]
    return TrainState.create(params=f["params"], model_state=f["model_state"])


def _codebook(state_params, model_state):
    return model_state["codebook"] if "codebook" in (model_state or {}) else state_params["codebook"]


def init(key: jax.Array, cfg: Any, example_batch: dict, parent: Any = None) -> TrainState:
    """The first stage's parameters, or with `parent` (train.init_from) the prior stage's: the causal
    prior's parameters, the first stage frozen in `model_state["first"]`."""
    model = _model(cfg)
    if parent is not None:
        if parent.cfg.get("model_name") != "vqvae" or _is_prior(parent.state):
            raise UserError(
                f"train.init_from={parent.workdir}: the prior stage starts from a finished VQ-VAE first stage; "
                f"that run is {parent.cfg.get('model_name')!r}"
                + (" (a prior stage)" if _is_prior(parent.state) else "")
            )
        mine, theirs = dict(cfg.model), dict(parent.cfg.model)
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise UserError(f"the prior stage's model section must be the first stage's; differs in {diff}")
        h, w = _grid(cfg, model.cfg)
        prior = CausalPrior(model.cfg.num_codes, h * w, _prior_cfg(cfg))
        params = prior.init(key, jnp.zeros((1, h * w), jnp.int32))["params"]
        first = {"params": parent.state.eval_params(), "model_state": parent.state.model_state}
        return init_state(params, cfg, {"first": first})
    k1, k2 = jax.random.split(key)
    params = model.init(k1, jnp.asarray(example_batch["x"][:1]))["params"]
    m = model.cfg
    model_state = {"usage": jnp.full((m.num_codes,), 1.0 / m.num_codes, jnp.float32)}
    if m.ema:
        book = jax.random.normal(k2, (m.num_codes, m.code_dim)) * 0.1
        model_state.update(codebook=book, count=jnp.ones((m.num_codes,)), total=book)
    return init_state(params, cfg, model_state)


def forward(model: VQVAE, params, model_state, x):
    """(log p(x | z_q) [B], codebook term [B], commitment term [B], z_e, idx)."""
    book = _codebook(params, model_state)
    z_e = _apply(model)({"params": params}, x, method=VQVAE.encode)
    idx, z_q = quantize(z_e, book)
    logits = _apply(model)({"params": params}, straight_through(z_e, z_q), method=VQVAE.decode)
    sq = lambda a: jnp.sum(a.reshape(a.shape[0], -1) ** 2, 1)  # noqa: E731
    codebook_term = sq(jax.lax.stop_gradient(z_e) - z_q)
    commit = sq(z_e - jax.lax.stop_gradient(z_q))
    log_px = decoder_log_prob(model.cfg, x.reshape(x.shape[0], -1), logits.reshape(logits.shape[0], -1))
    return log_px, codebook_term, commit, z_e, idx


def _prior_nll(params, first: TrainState, x, cfg) -> jax.Array:
    """-log p_prior(codes of x) [B] under the causal prior `params`."""
    m = VQConfig.from_cfg(cfg)
    h, w = _grid(cfg, m)
    idx = jax.lax.stop_gradient(codes(first, x, cfg)).reshape(x.shape[0], h * w)
    logits = CausalPrior(m.num_codes, h * w, _prior_cfg(cfg)).apply({"params": params}, idx)
    logp = jax.nn.log_softmax(logits, -1)
    return -jnp.sum(jnp.take_along_axis(logp, idx[..., None], -1)[..., 0], 1)


def loss_fn(params, model_state, batch, rng, cfg, step):
    if _is_prior(model_state):
        nll = _prior_nll(params, _first(model_state), batch["x"], cfg)
        return jnp.mean(nll), ({"prior_nats": jnp.mean(nll)}, model_state)
    model = _model(cfg)
    m = model.cfg
    x = batch["x"]
    log_px, cb, commit, z_e, idx = forward(model, params, model_state, x)
    loss = -log_px + m.commitment * commit + (0.0 if m.ema else cb)
    perplexity, used = _usage(idx, m.num_codes)
    metrics = {"recon": -jnp.mean(log_px), "commitment": jnp.mean(commit), "perplexity": perplexity, "codes_used": used}
    freq = jnp.mean(jax.nn.one_hot(idx.reshape(-1), m.num_codes), 0)
    new_state = {"usage": 0.99 * model_state["usage"] + 0.01 * freq}
    if m.ema:
        zs = jax.lax.stop_gradient(z_e).reshape(-1, m.code_dim)
        count, total, book = ema_update(model_state["count"], model_state["total"], zs, idx, m.ema_decay, m.ema_eps)
        if m.restart_every:
            dead = count < m.restart_threshold
            pick = jax.random.randint(rng, (m.num_codes,), 0, zs.shape[0])
            do = (step + 1) % m.restart_every == 0
            restart = dead & do
            book = jnp.where(restart[:, None], zs[pick], book)
            total = jnp.where(restart[:, None], zs[pick], total)
            count = jnp.where(restart, 1.0, count)
            metrics["codes_restarted"] = jnp.sum(restart).astype(jnp.float32)
        new_state.update(codebook=book, count=count, total=total)
    return jnp.mean(loss), (metrics, new_state)


train_step = make_train_step(loss_fn)


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """Per-example: reconstruction -log p(x | z_q) in nats and bits/dim, codebook and commitment
    terms, and the two-stage bound -log p(x) <= -log p(x | z_q) - log p(z_q) under the factorised
    usage prior (`prior_nats`, `bound_nats`, `bound_bpd`)."""
    del key
    model = _model(cfg)
    x = batch["x"]
    first = _first(state) if _is_prior(state) else state
    log_px, cb, commit, _, idx = forward(model, first.eval_params(), first.model_state, x)
    d = int(np.prod(x.shape[1:]))
    if _is_prior(state):
        prior = _prior_nll(state.eval_params(), first, x, cfg)
    else:
        log_usage = jnp.log(jnp.maximum(state.model_state["usage"], 1e-12))
        prior = -jnp.sum(log_usage[idx].reshape(idx.shape[0], -1), 1)
    bound = -log_px + prior
    return {
        "recon_nats": -log_px,
        "recon_bpd": bits_per_dim(-log_px, d),
        "prior_nats": prior,
        "bound_nats": bound,
        "bound_bpd": bits_per_dim(bound, d),
        "codebook_sq": cb,
        "commitment_sq": commit,
        # per example, the share of its grid positions on each code: averaged over the test set by
        # the loop, the set's code histogram (see `summarize`)
        "code_frequency": jnp.mean(jax.nn.one_hot(idx.reshape(idx.shape[0], -1), model.cfg.num_codes), 1),
    }


def summarize(vectors: dict, cfg: Any) -> dict:
    """Codebook health over the whole evaluation set from its code histogram: perplexity exp(H) and
    the fraction of the K codes used."""
    del cfg
    p = np.asarray(vectors["code_frequency"], np.float64)
    p = p / max(p.sum(), 1e-300)
    h = -np.sum(p[p > 0] * np.log(p[p > 0]))
    return {"codebook_perplexity": float(math.exp(h)), "codebook_used": float(np.mean(p > 0))}


def codes(state: TrainState, x: jax.Array, cfg: Any) -> jax.Array:
    """Code indices [B, h, w] of images."""
    model = _model(cfg)
    params = state.eval_params()
    z_e = _apply(model)({"params": params}, x, method=VQVAE.encode)
    return quantize(z_e, _codebook(params, state.model_state))[0]


def decode_codes(state: TrainState, idx: jax.Array, cfg: Any) -> jax.Array:
    """Bernoulli (or Gaussian) means [B, H, W, C] of code grids [B, h, w]."""
    model = _model(cfg)
    params = state.eval_params()
    z_q = _codebook(params, state.model_state)[idx]
    return jax.nn.sigmoid(_apply(model)({"params": params}, z_q, method=VQVAE.decode))


def reconstruct(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> jax.Array:
    del key
    state = _first(state) if _is_prior(state) else state
    return decode_codes(state, codes(state, batch["x"], cfg), cfg)


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n images [n, H, W, C] from codes drawn independently per position from the moving-average
    code usage (see the module docstring)."""
    model = _model(cfg)
    m = model.cfg
    h, w = _grid(cfg, m)
    if not _is_prior(state):
        logits = jnp.log(jnp.maximum(state.model_state["usage"], 1e-12))
        idx = jax.random.categorical(key, logits, shape=(n, h, w))
        return decode_codes(state, idx, cfg)
    prior = CausalPrior(m.num_codes, h * w, _prior_cfg(cfg))
    params = state.eval_params()

    def body(i, idx):
        logits = prior.apply({"params": params}, idx)[:, i]
        return idx.at[:, i].set(jax.random.categorical(jax.random.fold_in(key, i), logits))

    idx = jax.lax.fori_loop(0, h * w, body, jnp.zeros((n, h * w), jnp.int32))
    return decode_codes(_first(state), idx.reshape(n, h, w), cfg)
