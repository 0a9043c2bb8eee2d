"""Variational autoencoder (Kingma & Welling, 2014): SGVB with the reparameterisation trick, and
its disentangling variants β-VAE (Higgins et al., 2017; Burgess et al., 2018) and β-TCVAE (Chen et
al., 2018), one family for the three registry names `vae`, `beta_vae`, `beta_tcvae`.

Encoder q(z|x) = N(mu(x), diag sigma^2(x)), standard-normal prior p(z), Bernoulli decoder p(x|z)
(or Gaussian with fixed `decoder_std`, means in [0, 1] through a sigmoid), one z sample per example
in training (L=1), Adam. Networks: MLPs (`architecture="mlp"`, the VAE paper's), or Burgess et al.'s
convolutional pair (`"conv"`: 4x4 stride-2 convolutions of `conv_channels`, then dense layers
`conv_dense`, mirrored in the decoder with 4x4 stride-2 transposed convolutions computed in the
fast sub-pixel form of `gm_jax.nn.conv`).

Objectives (`objective`):
- "elbo": E[log p(x|z)] - beta KL(q(z|x) || p(z)), the KL in closed form (beta=1: the VAE bound);
  with `capacity_max` > 0 Burgess et al.'s annealed capacity instead: E[log p(x|z)] -
  capacity_gamma |KL - C|, C rising linearly from 0 to capacity_max over `capacity_steps` steps.
- "tcvae": E[log p(x|z)] - tc_alpha I(x; z) - beta TC(z) - tc_gamma sum_d KL(q(z_d) || p(z_d)),
  the three terms of the KL's decomposition estimated on the minibatch with minibatch-stratified
  sampling (`tc_estimator="mss"`, default) or minibatch-weighted sampling ("mws"), both with the
  data set's size N from `cfg.data.train_size`.
The three terms (`mi`, `tc`, `dwkl`; they sum to the minibatch estimate of the KL) are logged every
step under every objective, and reported by `evaluate`, so a run shows which part of its KL moves.

Evaluation reports, per test example: the ELBO (nats), its negation in bits/dim, and the IWAE
(Burda et al., 2016) NLL estimate with `eval.iwae_k` importance samples (5000 by default), computed
in chunks of `eval.iwae_chunk` with a running log-sum-exp.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.core.config import model_section, positive_int
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.core.steps import init_state, make_train_step
from gm_jax.metrics.likelihood import bits_per_dim, chunked_logmeanexp
from gm_jax.nn.mlp import MLP, activation
from gm_jax.nn.precision import compute_dtype, mixed_apply

LOG_2PI = math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Model section of a VAE config (a typo in a key fails here, at init)."""

    latent_dim: int = 10
    hidden: tuple = (200,)
    activation: str = "tanh"
    decoder_activation: str = ""  # "" = `activation`; Higgins et al.'s dSprites MLP: relu encoder, tanh decoder
    decoder_hidden: tuple = ()  # () = `hidden` reversed
    beta: float = 1.0
    architecture: str = "mlp"  # "mlp" | "conv"
    conv_channels: tuple = (32, 32, 32, 32)
    conv_dense: tuple = (256, 256)
    conv_method: str = "matmul"  # transposed convolutions: see gm_jax.nn.conv
    decoder: str = "bernoulli"  # "bernoulli" | "gaussian"
    decoder_std: float = 0.1
    objective: str = "elbo"  # "elbo" | "tcvae"
    capacity_max: float = 0.0  # nats; 0: no capacity annealing
    capacity_steps: int = 100_000
    capacity_gamma: float = 1000.0
    tc_alpha: float = 1.0
    tc_gamma: float = 1.0
    tc_estimator: str = "mss"  # "mss" | "mws"
    dtype: str = "float32"  # compute dtype: "float32" | "bfloat16" (parameters, losses, metrics stay float32)

    @classmethod
    def from_cfg(cls, cfg: Any) -> VAEConfig:
        """Build from `cfg.model` (a ConfigDict or dict)."""
        out = model_section(cls, cfg, "vae")
        out = dataclasses.replace(
            out,
            hidden=tuple(out.hidden),
            decoder_hidden=tuple(out.decoder_hidden),
            conv_channels=tuple(out.conv_channels),
            conv_dense=tuple(out.conv_dense),
        )
        if not positive_int(out.latent_dim):
            raise UserError(f"model.latent_dim must be a positive integer, got {out.latent_dim!r}")
        if not all(positive_int(h) for h in out.hidden):
            raise UserError(f"model.hidden must be positive integers, got {out.hidden!r}")
        if not all(positive_int(h) for h in out.decoder_hidden):
            raise UserError(f"model.decoder_hidden must be positive integers, got {out.decoder_hidden!r}")
        try:
            activation(out.activation)
            activation(out.decoder_activation or out.activation)
        except ValueError as e:
            raise UserError(f"model.activation: {e}") from None
        if not out.beta >= 0:
            raise UserError(f"model.beta must be non-negative, got {out.beta!r}")
        choices = {
            "architecture": ("mlp", "conv"),
            "decoder": ("bernoulli", "gaussian"),
            "objective": ("elbo", "tcvae"),
            "tc_estimator": ("mss", "mws"),
            "conv_method": ("subpixel", "matmul", "xla"),
            "dtype": ("float32", "bfloat16"),
        }
        for key, allowed in choices.items():
            if getattr(out, key) not in allowed:
                raise UserError(f"model.{key} must be one of {allowed}, got {getattr(out, key)!r}")
        if out.architecture == "conv" and not (out.conv_channels and all(positive_int(c) for c in out.conv_channels)):
            raise UserError(f"model.conv_channels must be positive integers, got {out.conv_channels!r}")
        if not all(positive_int(h) for h in out.conv_dense):
            raise UserError(f"model.conv_dense must be positive integers, got {out.conv_dense!r}")
        for key in ("capacity_max", "capacity_gamma", "tc_alpha", "tc_gamma"):
            if not getattr(out, key) >= 0:
                raise UserError(f"model.{key} must be non-negative, got {getattr(out, key)!r}")
        if not out.decoder_std > 0:
            raise UserError(f"model.decoder_std must be positive, got {out.decoder_std!r}")
        if out.capacity_max > 0 and not positive_int(out.capacity_steps):
            raise UserError(f"model.capacity_steps must be a positive integer, got {out.capacity_steps!r}")
        return out


def check_eval(ev: Any) -> None:
    """Refuse an eval section whose IWAE settings cannot run (raises UserError)."""
    k, chunk = ev.get("iwae_k", 5000), ev.get("iwae_chunk", 500)
    if not positive_int(k) or not positive_int(chunk):
        raise UserError(f"eval.iwae_k and eval.iwae_chunk must be positive integers, got {k!r} and {chunk!r}")
    if k % min(chunk, k):
        raise UserError(f"eval.iwae_k={k} must be a multiple of eval.iwae_chunk={chunk}")


class ConvEncoder(nn.Module):
    """Burgess et al.'s encoder: 4x4 stride-2 convolutions (ReLU), then dense layers (ReLU), then 2Z."""

    cfg: VAEConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # [B, H, W, C] -> [B, 2Z]
        for i, c in enumerate(self.cfg.conv_channels):
            x = nn.relu(nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME", name=f"conv_{i}")(x))
        x = x.reshape(x.shape[0], -1)
        for i, h in enumerate(self.cfg.conv_dense):
            x = nn.relu(nn.Dense(h, name=f"dense_{i}")(x))
        return nn.Dense(2 * self.cfg.latent_dim, name="out")(x)


class ConvDecoder(nn.Module):
    """The mirror of `ConvEncoder`: dense layers, then 4x4 stride-2 transposed convolutions."""

    cfg: VAEConfig
    shape: tuple  # (H, W, C) of the images

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:  # [B, Z] -> [B, H*W*C] logits
        from gm_jax.nn.conv import ConvTranspose2x

        h, w, c = self.shape
        chans = tuple(reversed(self.cfg.conv_channels))
        f = 2 ** len(chans)
        x = z
        for i, units in enumerate(reversed(self.cfg.conv_dense)):
            x = nn.relu(nn.Dense(units, name=f"dense_{i}")(x))
        x = nn.relu(nn.Dense((h // f) * (w // f) * chans[0], name="dense_to_conv")(x))
        x = x.reshape(x.shape[0], h // f, w // f, chans[0])
        outs = chans[1:] + (c,)
        for i, co in enumerate(outs):
            x = ConvTranspose2x(co, method=self.cfg.conv_method, name=f"deconv_{i}")(x)
            if i < len(outs) - 1:
                x = nn.relu(x)
        return x.reshape(x.shape[0], -1)


class VAE(nn.Module):
    """Encoder and decoder; `__call__` runs both so `init` creates every parameter.

    `encode` takes images [B, H, W, C] (or flat [B, D] for the MLP); `decode` takes z [..., Z] and
    returns the decoder's outputs flat, [..., D] (Bernoulli logits, or the Gaussian means' logits).
    """

    cfg: VAEConfig
    shape: tuple  # (H, W, C), or (D,) for flat data

    @property
    def data_dim(self) -> int:
        return int(np.prod(self.shape))

    def setup(self):
        if self.cfg.architecture == "conv":
            self.encoder = ConvEncoder(self.cfg)
            self.decoder = ConvDecoder(self.cfg, tuple(self.shape))
        else:
            self.encoder = MLP(tuple(self.cfg.hidden) + (2 * self.cfg.latent_dim,), self.cfg.activation)
            dec_hidden = self.cfg.decoder_hidden or tuple(reversed(self.cfg.hidden))
            dec_act = self.cfg.decoder_activation or self.cfg.activation
            self.decoder = MLP(tuple(dec_hidden) + (self.data_dim,), dec_act)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:  # [B, ...] -> ([B, Z], [B, Z])
        """Mean and log-variance of q(z|x)."""
        if self.cfg.architecture == "conv":
            h = self.encoder(x.reshape((x.shape[0],) + tuple(self.shape)))
        else:
            h = self.encoder(x.reshape(x.shape[0], -1))
        mu, logvar = jnp.split(h, 2, axis=-1)
        return mu, logvar

    def decode(self, z: jax.Array) -> jax.Array:  # [..., Z] -> [..., D]
        """Decoder outputs (logits) of p(x|z), flat."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        return out.reshape(lead + (self.data_dim,))

    def __call__(self, x: jax.Array) -> jax.Array:
        mu, _ = self.encode(x)
        return self.decode(mu)


class ELBOTerms(NamedTuple):
    """Per-example ELBO pieces, all [B] in nats."""

    elbo: jax.Array
    log_px_z: jax.Array
    kl: jax.Array


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
    """sum_d log Bernoulli(x_d | sigmoid(logits_d)), stable for any logits. [..., D] -> [...]"""
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over the last axis. [..., Z] -> [...]"""
    return 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


def diag_gaussian_log_prob(z: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z | mu, exp(logvar)) summed over the last axis."""
    return -0.5 * jnp.sum(LOG_2PI + logvar + (z - mu) ** 2 * jnp.exp(-logvar), axis=-1)


def gaussian_image_log_prob(x: jax.Array, logits: jax.Array, std: float) -> jax.Array:
    """sum_d log N(x_d | sigmoid(logits_d), std^2). [..., D] -> [...]"""
    mean = jax.nn.sigmoid(logits)
    return -0.5 * jnp.sum(((x - mean) / std) ** 2 + LOG_2PI + 2.0 * math.log(std), axis=-1)


def decoder_log_prob(cfg: VAEConfig, x: jax.Array, out: jax.Array) -> jax.Array:
    """log p(x|z) from the decoder's outputs, summed over the data dimensions."""
    if cfg.decoder == "gaussian":
        return gaussian_image_log_prob(x, out, cfg.decoder_std)
    return bernoulli_log_prob(x, out)


class KLTerms(NamedTuple):
    """Per-example terms of the KL's decomposition (Chen et al., 2018), [B] each, in nats:
    mi = log q(z|x) - log q(z), tc = log q(z) - sum_d log q(z_d), dwkl = sum_d log q(z_d) - log p(z),
    for one z ~ q(z|x) per example, the aggregate posterior q(z) estimated on the minibatch. They sum
    to log q(z|x) - log p(z), the one-sample estimate of KL(q(z|x) || p(z))."""

    mi: jax.Array
    tc: jax.Array
    dwkl: jax.Array


def _log_importance_weights(m: int, n: int, estimator: str, dtype) -> jax.Array:
    """[M, M] log weights of q(z_i) ~ sum_j w_ij q(z_i | x_j) for a minibatch of m from n examples.

    MWS: w = 1 / (N M) everywhere. MSS (Chen et al.'s `log_importance_weight_matrix`): the own
    example 1/N, one other (cyclically next) (N - M + 1) / (N (M - 1)), the rest 1/(M - 1).
    """
    if estimator == "mws":
        return jnp.full((m, m), -math.log(n * m), dtype)
    mm1 = m - 1
    strat = (n - mm1) / (n * mm1)
    w = np.full((m, m), 1.0 / mm1)
    idx = np.arange(m)
    w[idx, idx] = 1.0 / n
    w[idx, (idx + 1) % m] = strat
    return jnp.asarray(np.log(w), dtype)


def kl_decomposition(z: jax.Array, mu: jax.Array, logvar: jax.Array, n: int, estimator: str = "mss") -> KLTerms:
    """The index-code MI, total correlation and dimension-wise KL of a minibatch (see `KLTerms`).

    Args:
      z: samples [M, Z], z_i ~ q(z | x_i); mu, logvar: the posteriors' parameters [M, Z].
      n: the data set's size (the aggregate posterior is over n examples); estimator: "mss" | "mws".
    """
    m = z.shape[0]
    # log q(z_i,d | x_j): [M (i), M (j), Z]
    log_qzd = -0.5 * (LOG_2PI + logvar[None] + (z[:, None] - mu[None]) ** 2 * jnp.exp(-logvar[None]))
    log_w = _log_importance_weights(m, max(int(n), m), estimator, z.dtype)
    log_qz = jax.nn.logsumexp(log_w + log_qzd.sum(-1), axis=1)  # [M]
    log_qz_prod = jnp.sum(jax.nn.logsumexp(log_w[..., None] + log_qzd, axis=1), axis=-1)  # [M]
    log_qz_x = diag_gaussian_log_prob(z, mu, logvar)
    log_pz = -0.5 * jnp.sum(LOG_2PI + z**2, axis=-1)
    return KLTerms(log_qz_x - log_qz, log_qz - log_qz_prod, log_qz_prod - log_pz)


def elbo_terms(model: VAE, params: Any, x: jax.Array, eps: jax.Array, beta: float = 1.0) -> ELBOTerms:
    """The (beta-weighted) ELBO with one reparameterised sample z = mu + sigma * eps.

    Args:
      model: the VAE module.
      params: its parameters.
      x: data [B, D] in {0, 1} (or [0, 1]).
      eps: standard-normal noise [B, Z].
      beta: weight of the KL term.
    """
    terms, _ = _elbo_and_posterior(model, params, x, eps, beta)
    return terms


def _apply(model: VAE):
    """`model.apply` computing in the config's dtype (float32 outputs; gm_jax.nn.precision)."""
    return mixed_apply(model.apply, compute_dtype(model.cfg.dtype))


def _elbo_and_posterior(model, params, x, eps, beta=1.0):
    mu, logvar = _apply(model)({"params": params}, x, method=VAE.encode)
    z = mu + jnp.exp(0.5 * logvar) * eps
    log_px_z = decoder_log_prob(model.cfg, x, _apply(model)({"params": params}, z, method=VAE.decode))
    kl = gaussian_kl(mu, logvar)
    return ELBOTerms(log_px_z - beta * kl, log_px_z, kl), (z, mu, logvar)


def iwae_log_likelihood(model: VAE, params: Any, x: jax.Array, key: jax.Array, k: int, chunk: int) -> jax.Array:
    """IWAE estimate log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z|x). [B, D] -> [B]"""
    mu, logvar = _apply(model)({"params": params}, x, method=VAE.encode)

    def log_w(key):
        eps = jax.random.normal(key, (chunk,) + mu.shape, mu.dtype)  # [chunk, B, Z]
        z = mu + jnp.exp(0.5 * logvar) * eps
        logits = _apply(model)({"params": params}, z, method=VAE.decode)  # [chunk, B, D]
        log_pz = -0.5 * jnp.sum(LOG_2PI + z**2, axis=-1)
        log_qz = -0.5 * jnp.sum(LOG_2PI + logvar + eps**2, axis=-1)
        return decoder_log_prob(model.cfg, x, logits) + log_pz - log_qz

    return chunked_logmeanexp(log_w, key, k, min(chunk, k))


def _model(cfg: Any) -> VAE:
    m = VAEConfig.from_cfg(cfg)
    shape = tuple(cfg.data.shape)
    if m.architecture == "conv":
        f = 2 ** len(m.conv_channels)
        if len(shape) != 3 or shape[0] % f or shape[1] % f:
            raise UserError(
                f"model.architecture=conv with {len(m.conv_channels)} stride-2 layers needs images whose sides "
                f"are multiples of {f}; the data has shape {shape}"
            )
    return VAE(m, shape)


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def init(key: jax.Array, cfg: Any, example_batch: dict) -> TrainState:
    """Parameters and Adam state for `cfg`; `example_batch["x"]` fixes the data dimension."""
    model = _model(cfg)
    params = model.init(key, _flat(jnp.asarray(example_batch["x"][:1])))["params"]
    return init_state(params, cfg)


def capacity(m: VAEConfig, step: jax.Array) -> jax.Array:
    """Burgess et al.'s target KL at `step`: capacity_max * min(1, step / capacity_steps)."""
    return m.capacity_max * jnp.minimum(1.0, step / m.capacity_steps)


def loss_fn(params, model_state, batch, rng, cfg, step):
    """The objective of `cfg.model.objective` (see the module docstring), negated and averaged over
    the batch; see `gm_jax.core.steps`."""
    model = _model(cfg)
    m = model.cfg
    x = _flat(batch["x"])
    eps = jax.random.normal(rng, (x.shape[0], m.latent_dim), x.dtype)
    t, (z, mu, logvar) = _elbo_and_posterior(model, params, x, eps)
    metrics = {"elbo": jnp.mean(t.elbo), "kl": jnp.mean(t.kl), "recon": -jnp.mean(t.log_px_z)}
    if x.shape[0] >= 2:
        d = kl_decomposition(z, mu, logvar, cfg.data.get("train_size", x.shape[0]), m.tc_estimator)
        metrics.update(mi=jnp.mean(d.mi), tc=jnp.mean(d.tc), dwkl=jnp.mean(d.dwkl))
    if m.objective == "tcvae":
        if x.shape[0] < 2:
            raise UserError("model.objective=tcvae needs batches of at least 2 examples")
        loss = -jnp.mean(t.log_px_z - m.tc_alpha * d.mi - m.beta * d.tc - m.tc_gamma * d.dwkl)
    elif m.capacity_max > 0:
        c = capacity(m, jnp.asarray(step, x.dtype))
        metrics["capacity"] = c
        loss = -jnp.mean(t.log_px_z) + m.capacity_gamma * jnp.abs(jnp.mean(t.kl) - c)
    else:
        loss = -jnp.mean(t.log_px_z - m.beta * t.kl)
    return loss, (metrics, model_state)


train_step = make_train_step(loss_fn)


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """Per-example test metrics [B]: ELBO and IWAE NLL in nats and bits/dim.

    Keys: elbo_nats (the bound, negative), nelbo_bpd, kl_nats, recon_nats, iwae_nll_nats,
    iwae_nll_bpd, iwae_k.
    """
    model = _model(cfg)
    params = state.eval_params()
    x = _flat(batch["x"])
    d = x.shape[1]
    k1, k2 = jax.random.split(key)
    eps = jax.random.normal(k1, (x.shape[0], model.cfg.latent_dim), x.dtype)
    t, (z, mu, logvar) = _elbo_and_posterior(model, params, x, eps)
    n_test = cfg.data.get("test_size", x.shape[0])
    kd = kl_decomposition(z, mu, logvar, n_test, model.cfg.tc_estimator) if x.shape[0] >= 2 else None
    ev = cfg.get("eval", {})
    check_eval(ev)
    k = int(ev.get("iwae_k", 5000))
    iwae = iwae_log_likelihood(model, params, x, k2, k, int(ev.get("iwae_chunk", 500)))
    return {
        "elbo_nats": t.elbo,
        "nelbo_bpd": bits_per_dim(-t.elbo, d),
        "kl_nats": t.kl,
        "recon_nats": -t.log_px_z,
        "iwae_nll_nats": -iwae,
        "iwae_nll_bpd": bits_per_dim(-iwae, d),
        "iwae_k": jnp.full(x.shape[:1], float(k)),
        **({} if kd is None else {"mi_nats": kd.mi, "tc_nats": kd.tc, "dwkl_nats": kd.dwkl}),
    }


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n images [n, H, W, C]: Bernoulli means of p(x|z), z ~ N(0, T^2 I) with T = `sample.temperature`
    (1 by default: the model's prior)."""
    model = _model(cfg)
    temperature = float(cfg.get("sample", {}).get("temperature", 1.0))
    z = temperature * jax.random.normal(key, (n, model.cfg.latent_dim))
    logits = _apply(model)({"params": state.eval_params()}, z, method=VAE.decode)
    return jax.nn.sigmoid(logits).reshape((n,) + tuple(cfg.data.shape))


def reconstruct(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> jax.Array:
    """Bernoulli means of p(x | z = mu(x)) for the batch, shaped like the batch."""
    del key
    model = _model(cfg)
    x = batch["x"]
    logits = _apply(model)({"params": state.eval_params()}, _flat(x))
    return jax.nn.sigmoid(logits).reshape(x.shape)


def encode(state: TrainState, x: jax.Array, cfg: Any) -> jax.Array:
    """Posterior means mu(x) [B, Z] of images [B, H, W, C] (the representation the disentanglement
    metrics score)."""
    model = _model(cfg)
    mu, _ = _apply(model)({"params": state.eval_params()}, _flat(x), method=VAE.encode)
    return mu


def figures(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """Latent traversals of the batch's first image: row i sets z_i to 9 values from -3 to 3 with the
    other latents at the image's posterior mean. {"traversal": [Z, 9, H, W, C]}"""
    del key
    model = _model(cfg)
    params = state.eval_params()
    mu, _ = _apply(model)({"params": params}, _flat(batch["x"][:1]), method=VAE.encode)
    zdim, steps = mu.shape[1], jnp.linspace(-3.0, 3.0, 9, dtype=mu.dtype)
    z = jnp.broadcast_to(mu[0], (zdim, 9, zdim))
    z = jnp.where(jnp.eye(zdim, dtype=bool)[:, None, :], steps[None, :, None], z)
    images = jax.nn.sigmoid(_apply(model)({"params": params}, z, method=VAE.decode))
    return {"traversal": images.reshape((zdim, 9) + tuple(batch["x"].shape[1:]))}
