"""Variational autoencoder (Kingma & Welling, 2014): SGVB with the reparameterisation trick.

MLP encoder q(z|x) = N(mu(x), diag sigma^2(x)), standard-normal prior p(z), MLP Bernoulli decoder
p(x|z) on binarised data, one z sample per example in training (L=1), Adam. The KL term is the
closed form for two Gaussians; `beta` scales it (beta=1 is the VAE bound).

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

from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.core.steps import init_state, make_train_step
from gm_jax.metrics.likelihood import bits_per_dim, chunked_logmeanexp
from gm_jax.nn.mlp import MLP, activation

LOG_2PI = math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Model section of a VAE config (a typo in a key fails here, at init)."""

    latent_dim: int = 10
    hidden: tuple = (200,)
    activation: str = "tanh"
    beta: float = 1.0

    @classmethod
    def from_cfg(cls, cfg: Any) -> VAEConfig:
        """Build from `cfg.model` (a ConfigDict or dict)."""
        d = dict(cfg.model)
        d.pop("name", None)
        try:
            out = cls(**d)
        except TypeError as e:
            raise UserError(f"bad model config for vae: {e}") from None
        out = dataclasses.replace(out, hidden=tuple(out.hidden))
        if not _positive_int(out.latent_dim):
            raise UserError(f"model.latent_dim must be a positive integer, got {out.latent_dim!r}")
        if not all(_positive_int(h) for h in out.hidden):
            raise UserError(f"model.hidden must be positive integers, got {out.hidden!r}")
        try:
            activation(out.activation)
        except ValueError as e:
            raise UserError(f"model.activation: {e}") from None
        if not out.beta >= 0:
            raise UserError(f"model.beta must be non-negative, got {out.beta!r}")
        return out


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def check_eval(ev: Any) -> None:
    """Refuse an eval section whose IWAE settings cannot run (raises UserError)."""
    k, chunk = ev.get("iwae_k", 5000), ev.get("iwae_chunk", 500)
    if not _positive_int(k) or not _positive_int(chunk):
        raise UserError(f"eval.iwae_k and eval.iwae_chunk must be positive integers, got {k!r} and {chunk!r}")
    if k % min(chunk, k):
        raise UserError(f"eval.iwae_k={k} must be a multiple of eval.iwae_chunk={chunk}")


class VAE(nn.Module):
    """Encoder and decoder MLPs; `__call__` runs both so `init` creates every parameter."""

    cfg: VAEConfig
    data_dim: int

    def setup(self):
        self.encoder = MLP(tuple(self.cfg.hidden) + (2 * self.cfg.latent_dim,), self.cfg.activation)
        self.decoder = MLP(tuple(reversed(self.cfg.hidden)) + (self.data_dim,), self.cfg.activation)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:  # [B, D] -> ([B, Z], [B, Z])
        """Mean and log-variance of q(z|x)."""
        h = self.encoder(x)
        mu, logvar = jnp.split(h, 2, axis=-1)
        return mu, logvar

    def decode(self, z: jax.Array) -> jax.Array:  # [..., Z] -> [..., D]
        """Bernoulli logits of p(x|z)."""
        return self.decoder(z)

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


def elbo_terms(model: VAE, params: Any, x: jax.Array, eps: jax.Array, beta: float = 1.0) -> ELBOTerms:
    """The (beta-weighted) ELBO with one reparameterised sample z = mu + sigma * eps.

    Args:
      model: the VAE module.
      params: its parameters.
      x: data [B, D] in {0, 1} (or [0, 1]).
      eps: standard-normal noise [B, Z].
      beta: weight of the KL term.
    """
    mu, logvar = model.apply({"params": params}, x, method=VAE.encode)
    z = mu + jnp.exp(0.5 * logvar) * eps
    log_px_z = bernoulli_log_prob(x, model.apply({"params": params}, z, method=VAE.decode))
    kl = gaussian_kl(mu, logvar)
    return ELBOTerms(log_px_z - beta * kl, log_px_z, kl)


def iwae_log_likelihood(model: VAE, params: Any, x: jax.Array, key: jax.Array, k: int, chunk: int) -> jax.Array:
    """IWAE estimate log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z|x). [B, D] -> [B]"""
    mu, logvar = model.apply({"params": params}, x, method=VAE.encode)

    def log_w(key):
        eps = jax.random.normal(key, (chunk,) + mu.shape, mu.dtype)  # [chunk, B, Z]
        z = mu + jnp.exp(0.5 * logvar) * eps
        logits = model.apply({"params": params}, z, method=VAE.decode)  # [chunk, B, D]
        log_pz = -0.5 * jnp.sum(LOG_2PI + z**2, axis=-1)
        log_qz = -0.5 * jnp.sum(LOG_2PI + logvar + eps**2, axis=-1)
        return bernoulli_log_prob(x, logits) + log_pz - log_qz

    return chunked_logmeanexp(log_w, key, k, min(chunk, k))


def _model(cfg: Any) -> VAE:
    return VAE(VAEConfig.from_cfg(cfg), int(np.prod(cfg.data.shape)))


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def init(key: jax.Array, cfg: Any, example_batch: dict) -> TrainState:
    """Parameters and Adam state for `cfg`; `example_batch["x"]` fixes the data dimension."""
    model = _model(cfg)
    params = model.init(key, _flat(jnp.asarray(example_batch["x"][:1])))["params"]
    return init_state(params, cfg)


def loss_fn(params, model_state, batch, rng, cfg, step):
    """Negative (beta-)ELBO averaged over the batch; see `gm_jax.core.steps`."""
    del step
    model = _model(cfg)
    x = _flat(batch["x"])
    eps = jax.random.normal(rng, (x.shape[0], model.cfg.latent_dim), x.dtype)
    t = elbo_terms(model, params, x, eps, model.cfg.beta)
    metrics = {"elbo": jnp.mean(t.log_px_z - t.kl), "kl": jnp.mean(t.kl), "recon": -jnp.mean(t.log_px_z)}
    return -jnp.mean(t.elbo), (metrics, model_state)


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
    t = elbo_terms(model, params, x, eps, 1.0)
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
    }


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n images [n, H, W, C]: Bernoulli means of p(x|z), z ~ N(0, T^2 I) with T = `sample.temperature`
    (1 by default: the model's prior)."""
    model = _model(cfg)
    temperature = float(cfg.get("sample", {}).get("temperature", 1.0))
    z = temperature * jax.random.normal(key, (n, model.cfg.latent_dim))
    logits = model.apply({"params": state.eval_params()}, z, method=VAE.decode)
    return jax.nn.sigmoid(logits).reshape((n,) + tuple(cfg.data.shape))


def reconstruct(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> jax.Array:
    """Bernoulli means of p(x | z = mu(x)) for the batch, shaped like the batch."""
    del key
    model = _model(cfg)
    x = batch["x"]
    logits = model.apply({"params": state.eval_params()}, _flat(x))
    return jax.nn.sigmoid(logits).reshape(x.shape)
