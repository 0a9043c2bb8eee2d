"""DDPM and DDIM: known answers for the forward process, the posterior, the bound and the samplers
on a Gaussian toy whose optimal noise predictor is known; the U-Net; resume with EMA; bad input."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax import load_config
from gm_jax import train as loop
from gm_jax.core.errors import UserError
from gm_jax.models import ddpm
from gm_jax.nn.unet import UNet

T_TOY = 100
BETAS = ddpm.betas_for("linear", T_TOY, 1e-3, 0.2)
SCHED = ddpm.make_schedule(BETAS)
MU, S = 0.3, 0.5  # the toy data: x_0 ~ N(MU, S^2)


def optimal_eps(sched, mu=MU, s=S):
    """E[eps | x_t] for Gaussian data: sqrt(1 - a) (x_t - sqrt(a) mu) / (a s^2 + 1 - a)."""

    def fn(x, t):
        a = sched.alphas_cumprod[t].reshape((-1,) + (1,) * (x.ndim - 1))
        return jnp.sqrt(1 - a) * (x - jnp.sqrt(a) * mu) / (a * s * s + 1 - a)

    return fn


def test_the_schedules_are_the_papers():
    b = ddpm.betas_for("linear", 1000)
    assert b[0] == 1e-4 and b[-1] == 0.02 and np.all(np.diff(b) > 0)
    c = ddpm.betas_for("cosine", 1000)
    ac = np.cumprod(1 - c)
    f = lambda t: np.cos((t / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    np.testing.assert_allclose(ac[:900], f(np.arange(1, 901)) / f(0), rtol=1e-9)
    assert c.max() <= 0.999


def test_q_xt_given_x0_closed_form_matches_iterating_the_forward_chain():
    n, x0 = 200_000, 0.7
    x = jnp.full((n,), x0)
    key = jax.random.key(0)
    checks = {9, 49, 99}
    for t in range(T_TOY):
        x = jnp.sqrt(1 - BETAS[t]) * x + jnp.sqrt(BETAS[t]) * jax.random.normal(jax.random.fold_in(key, t), (n,))
        if t in checks:
            a = float(SCHED.alphas_cumprod[t])
            closed = ddpm.q_sample(
                SCHED, jnp.full((n,), x0), jnp.full((n,), t), jax.random.normal(jax.random.key(t + 1000), (n,))
            )
            for sample in (x, closed):
                assert abs(float(jnp.mean(sample)) - math.sqrt(a) * x0) < 0.01
                assert abs(float(jnp.var(sample)) - (1 - a)) < 0.01


@pytest.mark.parametrize("t", [1, 10, 60, 99])
def test_posterior_mean_and_variance_are_gaussian_conditioning(t):
    # x_{t-1} | x_0 ~ N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}); x_t | x_{t-1} ~ N(sqrt(alpha_t) x_{t-1}, beta_t).
    ac = np.cumprod(1 - BETAS)
    ap, b = ac[t - 1], BETAS[t]
    x0, xt = np.array([0.4, -1.0]), np.array([1.3, 0.2])
    prec = 1 / (1 - ap) + (1 - b) / b
    var = 1 / prec
    mean = var * (math.sqrt(ap) * x0 / (1 - ap) + math.sqrt(1 - b) * xt / b)
    got_mean, got_var = ddpm.q_posterior(SCHED, jnp.asarray(x0), jnp.asarray(xt), jnp.array([t, t]))
    np.testing.assert_allclose(np.asarray(got_mean), mean, rtol=2e-5)
    np.testing.assert_allclose(np.asarray(got_var), var, rtol=2e-5)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_the_bound_of_a_model_predicting_the_true_noise_is_the_analytic_bound(variance):
    # With the true eps (the model knows x_0), mu_theta is the true posterior mean: each L_{t-1} is the
    # KL of two Gaussians with the same mean, L_T a closed form, L_0 a normal-CDF bin mass.
    levels = 17
    x0 = jnp.asarray(np.random.default_rng(0).integers(0, levels, (4, 3, 3, 1)) / (levels - 1) * 2 - 1, jnp.float32)

    def true_eps(x, t):
        a = SCHED.alphas_cumprod[t].reshape(-1, 1, 1, 1)
        return (x - jnp.sqrt(a) * x0) / jnp.sqrt(1 - a)

    out = ddpm.vlb_terms(SCHED, true_eps, x0, jax.random.key(0), levels, variance, clip=False, chunk=7)
    ac = np.cumprod(1 - BETAS)
    acp = np.append(1, ac[:-1])
    bt = BETAS * (1 - acp) / (1 - ac)
    sig2 = (BETAS if variance == "beta" else bt).copy()
    sig2[0] = bt[1]
    x = np.asarray(x0, np.float64).reshape(4, -1)
    d = x.shape[1]
    prior = 0.5 * np.sum(ac[-1] * x**2 + (1 - ac[-1]) - 1 - np.log(1 - ac[-1]), 1)
    diffusion = d * sum(0.5 * (bt[i] / sig2[i] - 1 - math.log(bt[i] / sig2[i])) for i in range(1, T_TOY))

    def phi(z):
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    h, s1 = 1 / (levels - 1), math.sqrt(sig2[0])
    decoder = -np.array(
        [sum(math.log(phi(h / s1)) if abs(v) > 0.999 else math.log(phi(h / s1) - phi(-h / s1)) for v in r) for r in x]
    )
    np.testing.assert_allclose(np.asarray(out["prior"]), prior, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(np.asarray(out["diffusion"]), diffusion, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(np.asarray(out["quarters"]).sum(0), np.asarray(out["diffusion"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["decoder"]), decoder, rtol=1e-5)
    if variance == "beta":
        # the stratified estimate from 10 timesteps is unbiased: its mean over draws is the full sum
        est = jax.jit(
            jax.vmap(
                lambda k: ddpm.vlb_terms(SCHED, true_eps, x0, k, levels, variance, False, num_terms=10)["diffusion"]
            )
        )(jax.random.split(jax.random.key(1), 2000))
        est = np.asarray(est[:, 0], np.float64)
        assert abs(est.mean() - diffusion) < 4 * est.std() / np.sqrt(len(est)), (est.mean(), diffusion)
        assert est.std() > 1e-3  # the draws differ: an estimate, not the full sum


@pytest.mark.parametrize("T,k", [(1000, 50), (100, 10), (20, 19), (20, 5), (2, 1), (50, 49)])
def test_vlb_strata_partition_the_timesteps_finest_where_the_terms_are_largest(T, k):
    lo, width = ddpm.vlb_strata(T, k)
    assert len(lo) == min(k, T - 1) and lo[0] == 1 and lo[-1] + width[-1] == T
    np.testing.assert_array_equal(lo[1:], lo[:-1] + width[:-1])  # contiguous, no overlap
    assert np.all(width >= 1) and np.all(np.diff(width) >= 0)  # single timesteps first, then wider


def test_discretised_gaussian_bins_sum_to_one_over_the_levels():
    levels = 17
    grid = jnp.linspace(-1, 1, levels)
    for mean, var in [(0.1, 0.04), (-0.93, 1e-4), (0.999, 0.5), (0.0, 1e-6)]:
        lp = ddpm.discretized_gaussian_log_likelihood(grid, jnp.float32(mean), jnp.float32(var), levels)
        assert np.all(np.isfinite(np.asarray(lp)))
        np.testing.assert_allclose(float(jax.nn.logsumexp(lp)), 0.0, atol=1e-5)


@pytest.fixture(scope="module")
def toy_samples():
    n, key = 100_000, jax.random.key(0)
    eps = optimal_eps(SCHED)
    anc = jax.jit(lambda k: ddpm.ancestral_sample(SCHED, eps, k, (n, 1), "beta_tilde", clip=False))(key)
    ddim1 = jax.jit(lambda k: ddpm.ddim_sample(SCHED, eps, k, (n, 1), T_TOY, eta=1.0))(key)
    return anc, ddim1


def test_ddim_with_eta_1_and_all_steps_is_the_ancestral_sampler_with_beta_tilde(toy_samples):
    anc, ddim1 = toy_samples
    # The same noise draws give the same chain (the updates are algebraically equal) ...
    np.testing.assert_allclose(np.asarray(ddim1), np.asarray(anc), atol=2e-5)
    # ... and so the same moments: the data's mean, and the spread the beta-tilde chain is known to
    # give (between the two variance choices: below the data's S with beta-tilde).
    for x in (anc, ddim1):
        assert abs(float(jnp.mean(x)) - MU) < 0.01
        assert 0.44 < float(jnp.std(x)) < S


def test_ancestral_sampling_with_the_optimal_model_recovers_the_data_at_the_papers_T():
    sched = ddpm.make_schedule(ddpm.betas_for("linear", 1000))
    eps = optimal_eps(sched)
    n = 20_000
    for variance in ("beta", "beta_tilde"):
        x = jax.jit(lambda k, v=variance: ddpm.ancestral_sample(sched, eps, k, (n, 1), v, clip=False))(
            jax.random.key(3)
        )
        assert abs(float(jnp.mean(x)) - MU) < 0.01
        assert abs(float(jnp.std(x)) - S) < 0.01


def test_ddim_eta_0_is_deterministic_given_x_T_and_eta_positive_adds_noise():
    eps = optimal_eps(SCHED)
    x_T = jax.random.normal(jax.random.key(0), (512, 1))
    a = ddpm.ddim_sample(SCHED, eps, jax.random.key(1), (512, 1), 20, 0.0, "quadratic", x_T=x_T)
    b = ddpm.ddim_sample(SCHED, eps, jax.random.key(2), (512, 1), 20, 0.0, "quadratic", x_T=x_T)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = ddpm.ddim_sample(SCHED, eps, jax.random.key(1), (512, 1), 20, 0.5, "quadratic", x_T=x_T)
    d = ddpm.ddim_sample(SCHED, eps, jax.random.key(2), (512, 1), 20, 0.5, "quadratic", x_T=x_T)
    assert float(jnp.mean(jnp.abs(c - d))) > 0.01
    # and eta = 0 maps x_T monotonically to x_0 (the probability-flow ODE of a 1-D Gaussian)
    order = np.argsort(np.asarray(x_T[:, 0]))
    assert np.all(np.diff(np.asarray(a[order, 0])) >= -1e-6)


def test_ddim_timesteps_uniform_and_quadratic():
    np.testing.assert_array_equal(ddpm.ddim_timesteps(1000, 50, "uniform"), np.arange(0, 1000, 20))
    q = ddpm.ddim_timesteps(1000, 50, "quadratic")
    assert q[0] == 0 and q[-1] == 800 and np.all(np.diff(q) > 0)
    np.testing.assert_array_equal(ddpm.ddim_timesteps(100, 100, "uniform"), np.arange(100))


def test_unet_shapes_time_embedding_and_zero_output_at_init():
    net = UNet(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), dropout=0.0)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    params = jax.jit(net.init)(jax.random.key(1), x, jnp.array([0, 5]))["params"]
    apply = jax.jit(lambda p, t: net.apply({"params": p}, x, t))
    out = apply(params, jnp.array([0, 5]))
    assert out.shape == x.shape
    np.testing.assert_array_equal(np.asarray(out), 0.0)  # zero-initialised output conv
    assert any("AttnBlock" in k for k in params)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    params = jax.tree.unflatten(
        tree, [p + 0.2 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    )
    a, b = apply(params, jnp.array([0, 0])), apply(params, jnp.array([0, 900]))
    assert float(jnp.max(jnp.abs(a[1] - b[1]))) > 1e-3  # the output depends on t ...
    np.testing.assert_allclose(np.asarray(a[0]), np.asarray(b[0]), atol=1e-6)  # ... per example


def test_ddpm_resume_is_bit_exact_with_ema(tmp_path):
    def cfg(steps):
        c = load_config("ddpm", "smoke")
        c.train.update(num_steps=steps, ckpt_every=2)
        c.eval.num_samples = 0
        return c

    full = loop.train("ddpm", cfg(4), str(tmp_path / "full"))
    assert full.state.ema_params is not None
    loop.train("ddpm", cfg(2), str(tmp_path / "split"))
    resumed = loop.train("ddpm", cfg(4), str(tmp_path / "split"))
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # a finished workdir samples again with DDIM at --mode=sample
    c = cfg(4)
    c.sample.update(sampler="ddim", steps=4, eta=1.0)
    again = loop.train("ddpm", c, str(tmp_path / "split"), mode="sample")
    assert again.step == 4


@pytest.mark.parametrize(
    "override,match",
    [
        ({"model.timesteps": 0}, "timesteps"),
        ({"model.beta_end": 1.5}, "beta_end"),
        ({"model.beta_start": 0.0}, "beta_start"),
        ({"model.schedule": "sigmoid"}, "linear or cosine"),
        ({"sample.sampler": "ddim", "sample.steps": 21}, r"\[1, T=20\]"),
        ({"sample.eta": 1.5}, "eta"),
        ({"sample.spacing": "leading", "sample.sampler": "ddim"}, "uniform or quadratic"),
        ({"model.ch_mult": (1, 2, 2, 2, 2)}, "multiples of 16"),
        ({"data.image_size": 12}, "levels"),
    ],
)
def test_bad_ddpm_configs_are_refused_before_anything_is_written(override, match, tmp_path):
    cfg = load_config("ddpm", "smoke")
    for k, v in override.items():
        section, key = k.split(".")
        cfg[section][key] = v
    with pytest.raises(UserError, match=match):
        loop.train("ddpm", cfg, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w")
