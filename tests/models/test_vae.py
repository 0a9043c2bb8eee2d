"""VAE known answers: KL closed form vs Monte Carlo, ELBO by hand, IWAE ordering, notebook API."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import vae as vae_config
from gm_jax.metrics.likelihood import bits_per_dim, chunked_logmeanexp
from gm_jax.models import vae
from gm_jax.train import train


def test_kl_closed_form_matches_monte_carlo():
    key = jax.random.key(0)
    mu = jnp.array([0.3, -1.2, 2.0])
    logvar = jnp.array([-0.5, 0.7, 0.0])
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, (400_000, 3))
    log_q = vae.diag_gaussian_log_prob(z, mu, logvar)
    log_p = vae.diag_gaussian_log_prob(z, jnp.zeros(3), jnp.zeros(3))
    mc = float(jnp.mean(log_q - log_p))
    closed = float(vae.gaussian_kl(mu, logvar))
    stderr = float(jnp.std(log_q - log_p)) / math.sqrt(z.shape[0])
    assert abs(mc - closed) < 4 * stderr, (mc, closed, stderr)


def test_elbo_of_fixed_tiny_model_matches_hand_computation():
    cfg = vae.VAEConfig(latent_dim=1, hidden=(2,), activation="tanh")
    model = vae.VAE(cfg, shape=(2,))
    params = model.init(jax.random.key(0), jnp.zeros((1, 2)))["params"]
    # Encoder: 2 -> 2 (tanh) -> 2 (mu, logvar); decoder: 1 -> 2 (tanh) -> 2 logits.
    w = {
        "encoder": {
            "dense_0": {"kernel": [[0.5, -0.3], [0.2, 0.8]], "bias": [0.1, -0.1]},
            "dense_1": {"kernel": [[1.0, 0.4], [-0.7, 0.2]], "bias": [0.05, -0.2]},
        },
        "decoder": {
            "dense_0": {"kernel": [[1.5, -0.5]], "bias": [0.0, 0.3]},
            "dense_1": {"kernel": [[0.9, -1.1], [0.6, 0.4]], "bias": [-0.2, 0.1]},
        },
    }
    params = jax.tree.map(lambda p, v: jnp.asarray(v, p.dtype).reshape(p.shape), params, w)
    x = np.array([[1.0, 0.0]])
    eps = np.array([[0.7]])

    h = np.tanh(x @ np.array(w["encoder"]["dense_0"]["kernel"]) + w["encoder"]["dense_0"]["bias"])
    o = h @ np.array(w["encoder"]["dense_1"]["kernel"]) + w["encoder"]["dense_1"]["bias"]
    mu, logvar = o[:, :1], o[:, 1:]
    z = mu + np.exp(0.5 * logvar) * eps
    hd = np.tanh(z @ np.array(w["decoder"]["dense_0"]["kernel"]) + w["decoder"]["dense_0"]["bias"])
    logits = hd @ np.array(w["decoder"]["dense_1"]["kernel"]) + w["decoder"]["dense_1"]["bias"]
    p = 1 / (1 + np.exp(-logits))
    log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p))
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar)

    t = vae.elbo_terms(model, params, jnp.asarray(x, jnp.float32), jnp.asarray(eps, jnp.float32))
    np.testing.assert_allclose(float(t.log_px_z[0]), log_px, rtol=1e-5)
    np.testing.assert_allclose(float(t.kl[0]), kl, rtol=1e-5)
    np.testing.assert_allclose(float(t.elbo[0]), log_px - kl, rtol=1e-5)


def test_chunked_logmeanexp_equals_direct():
    key = jax.random.key(3)

    def log_w(k):
        return 30.0 * jax.random.normal(k, (7, 5))  # large spread: unshifted exp would overflow

    got = chunked_logmeanexp(log_w, key, k=21, chunk=7)
    lw = jnp.concatenate([log_w(jax.random.fold_in(key, i)) for i in range(3)])
    want = jax.nn.logsumexp(lw, axis=0) - math.log(21)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
    assert float(bits_per_dim(jnp.float32(64 * math.log(2)), 64)) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = vae_config.get_config()
    cfg.train.update(num_steps=600, batch_size=96, log_every=500, eval_every=0, ckpt_every=600, sample_every=0)
    cfg.eval.update(iwae_k=20, iwae_chunk=20, batch_size=96, num_examples=96, num_samples=0)
    return train("vae", cfg, str(tmp_path_factory.mktemp("vae")))


def test_iwae_bound_above_elbo_and_nondecreasing_in_k(trained):
    state, cfg = trained.state, trained.cfg
    model = vae._model(cfg)
    params = state.eval_params()
    from gm_jax.data import load

    data = load(cfg.data, cfg.train.batch_size, seed=0)
    x = vae._flat(jnp.asarray(next(data.eval_batches(256))["x"]))
    fn = jax.jit(lambda k, n: vae.iwae_log_likelihood(model, params, x, k, n, n), static_argnums=1)
    bounds = {}
    for k in (1, 5, 50, 500):
        # Average many independent estimates so the expectation's ordering is what is tested.
        reps = [fn(jax.random.key(100 * k + r), k).mean() for r in range(8)]
        bounds[k] = float(np.mean(reps))
    eps = jax.random.normal(jax.random.key(9), (64, x.shape[0], cfg.model.latent_dim))
    elbo = float(jnp.mean(jax.vmap(lambda e: vae.elbo_terms(model, params, x, e).elbo)(eps)))
    assert abs(bounds[1] - elbo) < 0.1, (bounds[1], elbo)  # IWAE with k=1 is the ELBO
    ks = sorted(bounds)
    for a, b in zip(ks, ks[1:], strict=False):
        assert bounds[b] >= bounds[a] - 0.02, bounds
    assert bounds[500] > elbo + 0.1, (bounds, elbo)


def test_eval_json_and_notebook_api(trained):
    ev = trained.eval
    assert set(ev) >= {"elbo_nats", "nelbo_bpd", "iwae_nll_nats", "iwae_nll_bpd"}
    assert ev["iwae_nll_nats"] <= -ev["elbo_nats"] + 0.5
    assert ev["iwae_nll_bpd"] == pytest.approx(ev["iwae_nll_nats"] / (64 * math.log(2)), rel=1e-5)
    assert ev["elbo_nats"] > -40.0  # trained well past the untrained ~-45 nats
    imgs = vae.sample(trained.state, jax.random.key(0), 4, trained.cfg)
    assert imgs.shape == (4, 8, 8, 1) and float(imgs.min()) >= 0 and float(imgs.max()) <= 1
