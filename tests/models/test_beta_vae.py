"""β-VAE / β-TCVAE known answers: the KL decomposition, capacity, the Gaussian decoder, the
procedural dSprites and the disentanglement metrics on true factors and on noise."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax import load_config
from gm_jax.core.errors import UserError
from gm_jax.data import dsprites
from gm_jax.metrics import disentanglement as dm
from gm_jax.models import vae
from gm_jax.train import train


def _posterior(m, zdim, seed, correlated=False, spread=1.0, noise=0.05):
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, spread, (m, zdim))
    if correlated:
        mu[:, 1] = mu[:, 0]
    logvar = np.full((m, zdim), 2 * math.log(noise))
    z = mu + noise * rng.normal(size=(m, zdim))
    return (jnp.asarray(a, jnp.float32) for a in (z, mu, logvar))


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_kl_terms_sum_to_the_minibatch_kl_estimate(estimator):
    z, mu, logvar = _posterior(64, 4, seed=0)
    d = vae.kl_decomposition(z, mu, logvar, n=1000, estimator=estimator)
    one_sample_kl = vae.diag_gaussian_log_prob(z, mu, logvar) + 0.5 * jnp.sum(math.log(2 * math.pi) + z**2, -1)
    np.testing.assert_allclose(np.asarray(d.mi + d.tc + d.dwkl), np.asarray(one_sample_kl), rtol=1e-5, atol=1e-4)


def test_stratified_weights_are_a_distribution_over_the_batch():
    for m, n in ((4, 10), (64, 46080)):
        w = np.exp(np.asarray(vae._log_importance_weights(m, n, "mss", jnp.float32)))
        np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(np.diag(w), 1.0 / n, rtol=1e-6)
    w = np.exp(np.asarray(vae._log_importance_weights(8, 100, "mws", jnp.float32)))
    np.testing.assert_allclose(w, 1.0 / 800, rtol=1e-6)


def test_total_correlation_is_zero_for_independent_latents_and_positive_for_correlated():
    # A batch that covers the data set (M = N): the aggregate posterior is the batch's own mixture.
    # Means ~ N(0, 1) per latent, posterior std 0.3: independent latents have TC 0; with mu_2 = mu_1,
    # z_1 and z_2 are Gaussian with correlation rho = 1 / 1.09, so TC = I(z_1; z_2) = -log(1 - rho^2) / 2.
    indep = vae.kl_decomposition(*_posterior(1500, 2, seed=1, noise=0.3), n=1500, estimator="mss")
    corr = vae.kl_decomposition(*_posterior(1500, 2, seed=1, correlated=True, noise=0.3), n=1500, estimator="mss")
    tc_indep, tc_corr = float(jnp.mean(indep.tc)), float(jnp.mean(corr.tc))
    assert abs(tc_indep) < 0.05, tc_indep
    assert tc_corr == pytest.approx(-0.5 * math.log(1 - (1 / 1.09) ** 2), abs=0.1)


def test_capacity_rises_linearly_then_holds():
    m = vae.VAEConfig(capacity_max=25.0, capacity_steps=1000)
    got = [float(vae.capacity(m, jnp.asarray(s, jnp.float32))) for s in (0, 250, 1000, 5000)]
    np.testing.assert_allclose(got, [0.0, 6.25, 25.0, 25.0])


def test_gaussian_decoder_log_prob_matches_scipy():
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    x, logits = rng.uniform(0, 1, (3, 5)), rng.normal(0, 2, (3, 5))
    got = vae.gaussian_image_log_prob(jnp.asarray(x), jnp.asarray(logits), 0.1)
    want = norm(1 / (1 + np.exp(-logits)), 0.1).logpdf(x).sum(1)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


def test_dsprites_factor_grid_indexes_every_combination_once():
    fs = dsprites.FULL
    assert fs.n == 737_280 == 3 * 6 * 40 * 32 * 32
    idx = np.arange(fs.n)
    f = fs.factors(idx)
    np.testing.assert_array_equal(fs.index(f), idx)
    assert len(np.unique(f, axis=0)) == fs.n and (f.max(0) + 1 == np.asarray(fs.sizes)).all()
    assert dsprites.SMALL.n == 46_080


def test_each_dsprites_factor_changes_the_image_and_images_are_binary():
    base = np.array([[2, 3, 5, 10, 20]])  # a heart: no rotational symmetry
    img = dsprites.FULL.render(base)
    assert img.shape == (1, 64, 64, 1) and set(np.unique(img)) <= {0.0, 1.0} and img.sum() > 20
    for k in range(5):
        other = base.copy()
        other[0, k] = (other[0, k] + 1) % dsprites.FULL_SIZES[k]
        assert np.any(dsprites.FULL.render(other) != img), dsprites.FACTOR_NAMES[k]
    # scale grows the shape; position moves its centre of mass by the factor's step (0.6 / 31 of the side)
    big = base.copy()
    big[0, 1] = 5
    assert dsprites.FULL.render(big).sum() > img.sum()
    right = base.copy()
    right[0, 3] += 10
    cols = np.arange(64)
    shift = (dsprites.FULL.render(right)[0, ..., 0].sum(0) @ cols) / dsprites.FULL.render(right).sum()
    shift -= (img[0, ..., 0].sum(0) @ cols) / img.sum()
    assert shift == pytest.approx(10 * 0.6 / 31 * 64, abs=0.5)
    # the small set renders its subsampled grid at 32x32; batches carry the factors
    src = dsprites.dsprites32()
    got = src.test.get(np.arange(3))
    assert got["x"].shape == (3, 32, 32, 1) and got["factors"].shape == (3, 5)
    np.testing.assert_array_equal(got["x"], dsprites.SMALL.render(got["factors"]))


class _Identity:
    """A factor set whose "images" are the factor classes themselves, so an encoder can return them."""

    sizes = dsprites.SMALL.sizes
    sample_factors = dsprites.SMALL.sample_factors

    @staticmethod
    def render(f):
        return f


def test_metrics_score_one_for_the_true_factors_and_chance_for_noise():
    sizes = dict(beta_vae_train=300, beta_vae_eval=200, factor_vae_train=300, factor_vae_eval=200, mig_samples=5000)
    true = dm.all_scores(lambda f: f.astype(np.float64), _Identity(), seed=0, **sizes)
    assert true["beta_vae_score"] == 1.0 and true["factor_vae_score"] == 1.0
    assert true["mig"] > 0.98  # every factor has <= 16 values, each in its own of the 20 bins
    rng = np.random.default_rng(1)
    noise = dm.all_scores(lambda f: rng.normal(size=(len(f), 5)), _Identity(), seed=0, **sizes)
    assert noise["beta_vae_score"] < 0.35 and noise["factor_vae_score"] < 0.35  # chance: 0.2
    assert noise["mig"] < 0.02


def test_mig_of_a_permuted_and_rescaled_code_is_unchanged():
    f = dsprites.SMALL.sample_factors(np.random.default_rng(0), 4000)
    a = dm.mig(f.astype(float), f)["mig"]
    b = dm.mig(3.0 * f[:, ::-1].astype(float) - 7.0, f)["mig"]
    assert a == pytest.approx(b)


def test_conv_networks_build_for_64_and_32_pixel_images_and_refuse_other_sizes():
    for side in (64, 32):
        cfg = load_config("beta_vae", "smoke")
        cfg.model.update(architecture="conv", conv_channels=(4, 4, 4, 4), conv_dense=(8,))
        cfg.data.shape = (side, side, 1)
        model = vae._model(cfg)
        params = model.init(jax.random.key(0), jnp.zeros((2, side, side, 1)))["params"]
        mu, _ = model.apply({"params": params}, jnp.zeros((2, side, side, 1)), method=vae.VAE.encode)
        out = model.apply({"params": params}, jnp.zeros((3, 2, 3)), method=vae.VAE.decode)
        assert mu.shape == (2, 3) and out.shape == (3, 2, side * side)
    cfg.data.shape = (24, 24, 1)
    with pytest.raises(UserError, match="multiples of 16"):
        vae._model(cfg)


def test_beta_tcvae_run_logs_the_three_terms_and_draws_traversals(tmp_path):
    r = train("beta_tcvae", load_config("beta_tcvae", "smoke"), str(tmp_path))
    for key in ("mi_nats", "tc_nats", "dwkl_nats", "beta_vae_score", "factor_vae_score", "mig"):
        assert np.isfinite(r.eval[key]), key
    rows = [line for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"tc"' in line]
    assert len(rows) == 3
    from PIL import Image

    grid = np.asarray(Image.open(tmp_path / "samples" / "traversal_step_3.png"))
    assert grid.shape[0] < grid.shape[1]  # 3 latents x 9 values: wider than tall


def test_disentanglement_metrics_on_data_without_factors_are_refused(tmp_path):
    cfg = load_config("beta_vae", "smoke")
    cfg.data.name = "digits"
    with pytest.raises(UserError, match="disentanglement needs data generated from known factors"):
        train("beta_vae", cfg, str(tmp_path / "wd"))
    assert not (tmp_path / "wd").exists()


def test_paper_scale_config_keeps_higgins_settings_and_runs_at_64_pixels(tmp_path):
    from experiments.configs import beta_vae_dsprites

    full = beta_vae_dsprites.get_config()
    m = full.model
    assert (m.beta, m.latent_dim, tuple(m.hidden), tuple(m.decoder_hidden)) == (4.0, 10, (1200, 1200), (1200,) * 3)
    assert (m.activation, m.decoder_activation, m.get("decoder", "bernoulli")) == ("relu", "tanh", "bernoulli")
    assert (full.optim.name, full.optim.lr, full.train.batch_size, full.data.name) == ("adagrad", 1e-2, 64, "dsprites")
    r = train("beta_vae", beta_vae_dsprites.get_config("smoke"), str(tmp_path))
    assert tuple(r.cfg.data.shape) == (64, 64, 1) and r.cfg.data.train_size == 737_280
    assert 0.0 <= r.eval["beta_vae_score"] <= 1.0


def test_tfds_dsprites_reads_binary_images_and_their_factors(tmp_path):
    import tensorflow_datasets as tfds

    from gm_jax.data.sources import get_source

    with tfds.testing.mock_data(num_examples=40):
        src = get_source("tfds:dsprites")
        got = src.train.get(np.arange(5))
        assert got["x"].shape == (5, 64, 64, 1) and set(np.unique(got["x"])) <= {0.0, 1.0}
        assert got["factors"].shape == (5, 5) and (got["factors"] < np.asarray(dsprites.FULL_SIZES)).all()
        assert src.levels == 2 and src.train.size + src.test.size == 40
        assert src.factors is None  # a partial set: chosen factors cannot be looked up
        cfg = load_config("beta_vae", "smoke")
        cfg.data.name = "tfds:dsprites"
        with pytest.raises(UserError, match="disentanglement needs data generated from known factors"):
            train("beta_vae", cfg, str(tmp_path / "wd"))
        cfg.eval.disentanglement = False
        r = train("beta_vae", cfg, str(tmp_path / "wd"))
        assert tuple(r.cfg.data.shape) == (64, 64, 1) and np.isfinite(r.eval["elbo_nats"])
