"""Toy families that exercise what the loop must carry for the real families to come.

- `toy_gan`: generator/discriminator pair, two optimizers, `n_critic` discriminator updates in a
  `lax.fori_loop` inside one compiled step, BatchNorm statistics in the generator, EMA of the
  generator used for evaluation and sampling.
- `toy_em`: a 1-D two-component Gaussian mixture whose step is one EM iteration (no optimizer).
- `toy_prior`: a second stage that starts from a first-stage VAE checkpoint (`parent`).
"""

from __future__ import annotations

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gm_jax.core.state import TrainState, ema_update
from gm_jax.core.steps import init_state, make_train_step
from gm_jax.models import vae

# ---------------------------------------------------------------- GAN pair


class G(nn.Module):
    out: int

    @nn.compact
    def __call__(self, z, train: bool):
        h = nn.Dense(8)(z)
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        return nn.Dense(self.out)(nn.relu(h))


class D(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))[..., 0]


def _gan_init(key, cfg, batch):
    x = batch["x"].reshape(batch["x"].shape[0], -1)
    kg, kd = jax.random.split(key)
    gv = G(x.shape[1]).init(kg, jnp.zeros((2, 4)), train=False)
    dp = D().init(kd, x[:2])["params"]
    # Plain SGD keeps 1-vs-8-device float differences at rounding level; the schedule counts updates.
    tx = optax.chain(optax.sgd(0.05), optax.scale_by_schedule(lambda count: 1.0))
    params = {"g": gv["params"], "d": dp}
    return TrainState.create(
        params=params,
        opt_state={"g": tx.init(params["g"]), "d": tx.init(dp)},
        model_state={"batch_stats": gv["batch_stats"]},
        ema_params={"g": gv["params"]},
    )


def _gan_step(state, batch, key, cfg):
    rng = jax.random.fold_in(key, state.step)
    x = batch["x"].reshape(batch["x"].shape[0], -1)
    # Plain SGD keeps 1-vs-8-device float differences at rounding level; the schedule counts updates.
    tx = optax.chain(optax.sgd(0.05), optax.scale_by_schedule(lambda count: 1.0))
    g_vars = {"params": state.params["g"], **state.model_state}

    def d_update(i, carry):
        dp, dopt = carry
        z = jax.random.normal(jax.random.fold_in(rng, i), (x.shape[0], 4))
        fake, _ = G(x.shape[1]).apply(g_vars, z, train=True, mutable=["batch_stats"])

        def loss(dp):
            return jnp.mean(nn.softplus(-D().apply({"params": dp}, x)) + nn.softplus(D().apply({"params": dp}, fake)))

        g = jax.grad(loss)(dp)
        up, dopt = tx.update(g, dopt, dp)
        return optax.apply_updates(dp, up), dopt

    dp, dopt = jax.lax.fori_loop(0, cfg.model.n_critic, d_update, (state.params["d"], state.opt_state["d"]))
    z = jax.random.normal(jax.random.fold_in(rng, 10_000), (x.shape[0], 4))

    def g_loss(gp):
        fake, upd = G(x.shape[1]).apply({"params": gp, **state.model_state}, z, train=True, mutable=["batch_stats"])
        return jnp.mean(nn.softplus(-D().apply({"params": dp}, fake))), upd

    (lg, upd), gg = jax.value_and_grad(g_loss, has_aux=True)(state.params["g"])
    up, gopt = tx.update(gg, state.opt_state["g"], state.params["g"])
    gp = optax.apply_updates(state.params["g"], up)
    new = state.replace(
        step=state.step + 1,
        params={"g": gp, "d": dp},
        opt_state={"g": gopt, "d": dopt},
        model_state={"batch_stats": upd["batch_stats"]},
        ema_params={"g": ema_update(state.ema_params["g"], gp, cfg.optim.ema_decay)},
    )
    return new, {"loss": lg}


def _gan_eval(state, batch, key, cfg):
    norm = optax.tree.norm(state.eval_params()["g"])
    return {"g_norm": jnp.full(batch["x"].shape[:1], norm)}


def _gan_sample(state, key, n, cfg):
    out = G(int(np.prod(cfg.data.shape)))
    x = out.apply(
        {"params": state.eval_params()["g"], **state.model_state}, jax.random.normal(key, (n, 4)), train=False
    )
    return jax.nn.sigmoid(x).reshape((n,) + tuple(cfg.data.shape))


toy_gan = types.SimpleNamespace(init=_gan_init, train_step=_gan_step, evaluate=_gan_eval, sample=_gan_sample)

# ---------------------------------------------------------------- EM (no optimizer)


def _em_init(key, cfg, batch):
    return TrainState.create(
        params={"logw": jnp.log(jnp.array([0.5, 0.5])), "mu": jnp.array([-1.0, 1.0]), "var": jnp.array([1.0, 1.0])}
    )


def em_loglik_terms(params, x):
    """log w_k + log N(x | mu_k, var_k): [N, K]."""
    return params["logw"] - 0.5 * (
        jnp.log(2 * jnp.pi * params["var"]) + (x[:, None] - params["mu"]) ** 2 / params["var"]
    )


def _em_step(state, batch, key, cfg):
    x = batch["x"].reshape(batch["x"].shape[0], -1)[:, 0]
    lp = em_loglik_terms(state.params, x)
    ll = jax.nn.logsumexp(lp, axis=1)
    r = jnp.exp(lp - ll[:, None])
    nk = r.sum(0)  # sums over the sharded data axis: XLA all-reduces them across devices
    mu = (r * x[:, None]).sum(0) / nk
    var = (r * (x[:, None] - mu) ** 2).sum(0) / nk + 1e-6
    params = {"logw": jnp.log(nk / x.shape[0]), "mu": mu, "var": var}
    return state.replace(step=state.step + 1, params=params), {"loss": -ll.mean()}


def _em_eval(state, batch, key, cfg):
    x = batch["x"].reshape(batch["x"].shape[0], -1)[:, 0]
    return {"loglik": jax.nn.logsumexp(em_loglik_terms(state.params, x), axis=1)}


def _em_sample(state, key, n, cfg):
    k1, k2 = jax.random.split(key)
    c = jax.random.categorical(k1, state.params["logw"], shape=(n,))
    return state.params["mu"][c] + jnp.sqrt(state.params["var"][c]) * jax.random.normal(k2, (n,))


toy_em = types.SimpleNamespace(init=_em_init, train_step=_em_step, evaluate=_em_eval, sample=_em_sample)

# ---------------------------------------------------------------- second stage


def _prior_init(key, cfg, batch, parent=None):
    """A diagonal Gaussian over the first stage's encoder means; the VAE's architecture comes from the
    first stage's own config (parent.cfg), not repeated here."""
    assert parent is not None, "toy_prior needs train.init_from"
    z = parent.cfg.model.latent_dim
    return init_state(
        {"mu": jnp.zeros(z), "logvar": jnp.zeros(z)}, cfg, model_state={"vae": parent.state.eval_params()}
    )


def _prior_loss(params, model_state, batch, rng, cfg, step):
    d = int(np.prod(cfg.data.shape))
    enc = model_state["vae"]["encoder"]
    hidden = tuple(enc[f"dense_{i}"]["kernel"].shape[1] for i in range(len(enc) - 1))  # the first stage's
    model = vae.VAE(vae.VAEConfig(latent_dim=params["mu"].shape[0], hidden=hidden), (d,))
    x = batch["x"].reshape(batch["x"].shape[0], -1)
    mu, _ = model.apply({"params": model_state["vae"]}, x, method=vae.VAE.encode)
    nll = -vae.diag_gaussian_log_prob(mu, params["mu"], params["logvar"])
    return jnp.mean(nll), ({"step_seen": step.astype(jnp.float32)}, model_state)


def _prior_eval(state, batch, key, cfg):
    return {"prior_mu0": jnp.full(batch["x"].shape[:1], state.params["mu"][0])}


def _prior_sample(state, key, n, cfg):
    return state.params["mu"] + jnp.exp(0.5 * state.params["logvar"]) * jax.random.normal(
        key, (n,) + state.params["mu"].shape
    )


toy_prior = types.SimpleNamespace(
    init=_prior_init, train_step=make_train_step(_prior_loss), evaluate=_prior_eval, sample=_prior_sample
)

# ---------------------------------------------------------------- set-level statistics of per-example vectors


def _hist_eval(state, batch, key, cfg):
    """The EM toy's evaluation plus a per-example vector: which of 4 bins the first pixel falls in."""
    out = _em_eval(state, batch, key, cfg)
    x = batch["x"].reshape(batch["x"].shape[0], -1)[:, 0]
    out["bin"] = jax.nn.one_hot(jnp.clip((x * 4).astype(jnp.int32), 0, 3), 4)
    return out


def _hist_summarize(vectors, cfg):
    p = np.asarray(vectors["bin"])
    return {"bin_total": float(p.sum()), "bin_first": float(p[0])}


toy_hist = types.SimpleNamespace(
    init=_em_init, train_step=_em_step, evaluate=_hist_eval, sample=_em_sample, summarize=_hist_summarize
)
