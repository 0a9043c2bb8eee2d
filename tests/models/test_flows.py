"""Flows: every layer and whole flow inverts exactly with the brute-force log-determinant; identity
flows give the prior; the uniform model's bits/dim; ActNorm's init; 2-D runs; bad input."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gm_jax import load_config
from gm_jax import train as loop
from gm_jax.core.errors import UserError
from gm_jax.data import sources
from gm_jax.models import flows


def _cfg(kind, shape, levels=17, data_kind="image", **model):
    c = ml_collections.ConfigDict()
    c.model = dict(kind=kind, hidden=(16, 16), channels=8, num_blocks=1, point_hidden=(16,), point_couplings=4, **model)
    c.data = dict(shape=shape, levels=levels, kind=data_kind, name="test")
    c.optim = dict(name="adam", lr=1e-3)
    return c


def _perturbed(params, scale=0.1):
    """Parameters moved off their (identity-making) zero init so every coupling acts."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    return jax.tree.unflatten(
        tree, [p + scale * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys, strict=True)]
    )


def _brute_logdet(fn, xs):
    """log|det J| of fn at each example of xs [N, ...], from the full Jacobian (float64, compiled)."""
    jac = jax.jit(jax.vmap(jax.jacfwd(fn)))(xs)
    n = int(np.prod(xs.shape[1:]))
    return np.linalg.slogdet(np.asarray(jac, np.float64).reshape(len(xs), n, n))[1]


LAYERS = [
    ("additive", lambda: flows.AdditiveCoupling(1, (8,)), (6,)),
    ("scaling", lambda: flows.Scaling(), (6,)),
    ("vector affine", lambda: flows.VectorAffineCoupling(0, (8,)), (5,)),
    ("checkerboard", lambda: flows.ImageAffineCoupling("checker1", 8, 1), (4, 4, 2)),
    ("channel", lambda: flows.ImageAffineCoupling("channel0", 8, 1), (2, 2, 4)),
    ("actnorm", lambda: flows.ActNorm(), (3, 3, 2)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[n for n, _, _ in LAYERS])
def test_every_layer_inverts_and_its_logdet_is_the_jacobians(name, make, shape):
    with jax.enable_x64():
        layer = make()
        x = jax.random.normal(jax.random.key(0), (3,) + shape, jnp.float64)
        params = _perturbed(jax.jit(layer.init)(jax.random.key(1), x)["params"])
        fwd = jax.jit(lambda p, v: layer.apply({"params": p}, v))
        y, ld = fwd(params, x)
        back, ld_back = jax.jit(lambda p, v: layer.apply({"params": p}, v, reverse=True))(params, y)
        np.testing.assert_allclose(np.asarray(back), np.asarray(x), atol=1e-10)
        np.testing.assert_allclose(np.asarray(ld_back), np.asarray(ld), atol=1e-10)
        want = _brute_logdet(lambda v: fwd(params, v[None])[0][0], x[:2])
        np.testing.assert_allclose(np.asarray(ld[:2]), want, atol=1e-8)
        assert np.max(np.abs(np.asarray(y - x))) > 1e-3  # the layer did something


def test_squeeze_is_a_permutation_and_unsqueeze_its_inverse():
    x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
    s = flows.squeeze(x)
    assert s.shape == (2, 2, 3, 12)
    np.testing.assert_array_equal(np.sort(np.asarray(s).ravel()), np.asarray(x).ravel())
    np.testing.assert_array_equal(np.asarray(flows.unsqueeze(s)), np.asarray(x))
    # one 2x2 block of one channel lands in four channels of one pixel
    np.testing.assert_array_equal(np.asarray(s[0, 0, 0, 0::3]), np.asarray(x[0, :2, :2, 0]).ravel())


FLOWS = [
    ("nice", (8, 8, 1), "image", {}),
    ("realnvp", (4, 4, 2), "image", {"norm": "actnorm"}),  # checkerboard, squeeze, channel, factor-out
    ("nice", (2,), "points", {}),
    ("realnvp", (2,), "points", {"norm": "actnorm"}),
]


@pytest.mark.parametrize("kind,shape,data_kind,model", FLOWS)
def test_whole_flows_invert_and_score_with_the_jacobians_logdet(kind, shape, data_kind, model):
    with jax.enable_x64():
        cfg = _cfg(kind, shape, 17 if data_kind == "image" else 0, data_kind, **model)
        m = flows._model(cfg)
        y = 0.1 + 0.8 * jax.random.uniform(jax.random.key(0), (3,) + shape, jnp.float64)
        params = _perturbed(jax.jit(m.init)(jax.random.key(1), y)["params"])
        fwd = jax.jit(lambda p, v: m.apply({"params": p}, v))
        z, ld = fwd(params, y)
        back = jax.jit(lambda p, v: m.apply({"params": p}, v, method=flows.Flow.inverse))(params, z)
        np.testing.assert_allclose(np.asarray(back), np.asarray(y), atol=1e-9)
        want = _brute_logdet(lambda v: fwd(params, v[None])[0][0], y[:2])
        np.testing.assert_allclose(np.asarray(ld[:2]), want, rtol=1e-9, atol=1e-8)
        # log p = prior(z) + logdet, the prior checked against its closed form
        logp = jax.jit(lambda p, v: m.apply({"params": p}, v, method=flows.Flow.log_prob))(params, y)
        zz = np.asarray(z, np.float64)
        if m.cfg.prior == "logistic":
            prior = np.sum(-zz - 2 * np.log1p(np.exp(-zz)), -1)
        else:
            prior = np.sum(-0.5 * zz**2 - 0.5 * np.log(2 * np.pi), -1)
        np.testing.assert_allclose(np.asarray(logp), prior + np.asarray(ld), rtol=1e-9)


def test_a_flow_of_identity_layers_gives_the_priors_density():
    # At init every coupling outputs zero (zero-initialised last layers) and the scaling is 1, so
    # the flow is the identity and log p(y) is the prior's log-density of y itself.
    cfg = _cfg("nice", (2,), 0, "points", prior="logistic")
    m = flows._model(cfg)
    x = jax.random.normal(jax.random.key(0), (5, 2))
    params = jax.jit(m.init)(jax.random.key(1), x)["params"]
    logp = np.asarray(jax.jit(lambda p, v: m.apply({"params": p}, v, method=flows.Flow.log_prob))(params, x))
    xx = np.asarray(x, np.float64)
    np.testing.assert_allclose(logp, np.sum(-xx - 2 * np.log1p(np.exp(-xx)), -1), rtol=1e-5)
    cfg = _cfg("realnvp", (8, 8, 1), 17, prior="gaussian", logit_alpha=0.0)
    m = flows._model(cfg)
    y = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
    params = jax.jit(m.init)(jax.random.key(1), y)["params"]
    logp = np.asarray(jax.jit(lambda p, v: m.apply({"params": p}, v, method=flows.Flow.log_prob))(params, y))
    yy = np.asarray(y, np.float64).reshape(4, -1)
    np.testing.assert_allclose(logp, np.sum(-0.5 * yy**2 - 0.5 * np.log(2 * np.pi), -1), rtol=1e-5)


@pytest.mark.parametrize("levels,want", [(17, np.log2(17)), (256, 8.0)])
def test_a_model_uniform_over_the_levels_scores_log2_levels_bits_per_dim(levels, want, monkeypatch):
    # A density of 1 on [0, 1]^D (log p = 0 for every dequantised input) is uniform over the levels.
    cfg = _cfg("nice", (4, 4, 1), levels)
    monkeypatch.setattr(flows.Flow, "log_prob", lambda self, y: jnp.zeros(y.shape[:1]))
    state = flows.init(jax.random.key(0), cfg, {"x": jnp.zeros((2, 4, 4, 1))})
    x = jnp.round(jax.random.uniform(jax.random.key(1), (8, 4, 4, 1)) * (levels - 1)) / (levels - 1)
    out = flows.evaluate(state, {"x": x}, jax.random.key(2), cfg)
    np.testing.assert_allclose(np.asarray(out["nll_bpd"]), want, rtol=1e-6)


def test_dequantisation_stays_in_each_levels_bin_and_quantize_undoes_it():
    levels = 17
    k = jnp.arange(levels, dtype=jnp.float32)
    x = jnp.tile(k / (levels - 1), (50, 1))
    y = flows.dequantize(x, jax.random.key(0), levels)
    assert np.all(np.asarray(y) >= np.asarray(k / levels)) and np.all(np.asarray(y) < np.asarray((k + 1) / levels))
    np.testing.assert_allclose(np.asarray(flows.quantize(y, levels)), np.asarray(x), atol=1e-6)


def test_actnorm_after_its_init_gives_zero_mean_unit_variance_on_the_init_batch():
    x = 3.0 + 2.5 * jax.random.normal(jax.random.key(0), (64, 4, 4, 3)) * jnp.array([1.0, 0.1, 7.0])
    layer = flows.ActNorm()
    params = layer.init(jax.random.key(1), x)["params"]
    y, _ = layer.apply({"params": params}, x)
    np.testing.assert_allclose(np.asarray(jnp.mean(y, (0, 1, 2))), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jnp.std(y, (0, 1, 2))), 1.0, rtol=1e-4)


def test_a_realnvp_run_with_actnorm_inits_it_on_the_first_batch_and_resumes_bit_exactly(tmp_path):
    def cfg(steps):
        c = load_config("realnvp", "smoke")
        c.data.name = "moons"
        c.model.norm = "actnorm"
        c.train.update(num_steps=steps, ckpt_every=2)
        c.eval.mode_samples = 0
        return c

    full = loop.train("realnvp", cfg(4), str(tmp_path / "full"))
    # set from the first batch (moons: x mean about 0.5, spread about 0.87), and moved by at most
    # 4 steps of lr 1e-3 since
    first = np.asarray(sources.get_source("moons").train.get(np.arange(50_000)))
    an = full.state.params["net"]["layers_0"]
    assert abs(float(an["bias"][0]) + first[:, 0].mean()) < 0.2
    assert abs(float(an["log_scale"][0]) + np.log(first[:, 0].std())) < 0.3
    loop.train("realnvp", cfg(2), str(tmp_path / "split"))
    resumed = loop.train("realnvp", cfg(4), str(tmp_path / "split"))
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("model,data", [("realnvp", "moons"), ("nice", "ring8_wgangp")])
def test_flows_on_2d_sets_learn_the_density_and_draw_it_beside_the_data(model, data, tmp_path):
    cfg = load_config(model, "smoke")
    cfg.data.name = data
    cfg.train.update(num_steps=300, batch_size=128, log_every=100, sample_every=300, ckpt_every=300)
    cfg.model.point_hidden = (32, 32)
    cfg.eval.update(batch_size=500, num_examples=1000, mode_samples=500)
    r = loop.train(model, cfg, str(tmp_path))
    # A standard-logistic/Gaussian prior on the raw points scores far worse than 300 steps of fit.
    test = sources.get_source(data).test
    x = np.asarray(test.get(np.arange(1000)), np.float64)
    if model == "nice":
        prior_nll = float(np.mean(np.sum(x + 2 * np.log1p(np.exp(-x)), -1)))
    else:
        prior_nll = float(np.mean(np.sum(0.5 * x**2 + 0.5 * np.log(2 * np.pi), -1)))
    assert r.eval["nll_nats"] < prior_nll - 0.3, (r.eval["nll_nats"], prior_nll)
    assert os.path.exists(tmp_path / "samples" / "density_step_300.png")
    if data == "ring8_wgangp":
        assert "modes_covered" in r.eval


@pytest.mark.parametrize(
    "model,override,match",
    [
        ("realnvp", {"model.num_scales": 5}, "multiples of 16"),
        ("nice", {"data.image_size": 12}, "no stated|states none"),
        ("nice", {"model.kind": "glow"}, "nice or realnvp"),
        ("realnvp", {"model.norm": "batch"}, "actnorm"),
        ("realnvp", {"model.logit_alpha": 0.5}, "logit_alpha"),
        ("nice", {"data.name": "hmm_seq"}, "images or points"),
    ],
)
def test_bad_flow_configs_are_refused_before_anything_is_written(model, override, match, tmp_path):
    cfg = load_config(model, "smoke")
    for k, v in override.items():
        section, key = k.split(".")
        cfg[section][key] = v
    with pytest.raises(UserError, match=match):
        loop.train(model, cfg, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w")
