"""Adversarial family: known answers for the losses, penalty, clipping and schedule; the DCGAN
layers and BatchNorm over devices; mode and Parzen metrics; resume; bad input."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax import load_config
from gm_jax import train as loop
from gm_jax.core.errors import UserError
from gm_jax.data import points, sources
from gm_jax.metrics import modes, parzen, sample_quality
from gm_jax.models import gan


def _cfg(model, **data):
    cfg = load_config(model, "smoke")
    cfg.data.update(data)
    return cfg


def _with_facts(cfg):
    """The config as the loop hands it to the family (data facts added)."""
    from gm_jax.data import load

    d = load(cfg.data, cfg.train.batch_size, 0)
    cfg = cfg.copy_and_resolve_references()
    cfg.data.update(d.facts())
    return cfg, d.train_batch(0)


# ----------------------------------------------------------------------------- losses


def test_gradient_penalty_of_a_linear_critic_is_its_closed_form():
    w = jnp.array([0.3, -1.2, 2.0])
    real = jax.random.normal(jax.random.key(0), (16, 3))
    fake = jax.random.normal(jax.random.key(1), (16, 3)) + 5.0
    gp = gan.gradient_penalty(lambda x: x @ w + 0.7, real, fake, jax.random.key(2))
    np.testing.assert_allclose(float(gp), (float(jnp.linalg.norm(w)) - 1.0) ** 2, rtol=1e-5)


def test_generator_losses_have_their_formulas_gradients():
    logits = jnp.array([-50.0, -3.0, 0.0, 2.0, 40.0])
    n = logits.shape[0]
    s = jax.nn.sigmoid(logits)
    # non-saturating: d/dl [-log sigmoid(l)] = sigmoid(l) - 1; minimax: d/dl log(1 - sigmoid(l)) = -sigmoid(l)
    np.testing.assert_allclose(jax.grad(gan.g_loss_non_saturating)(logits), (s - 1.0) / n, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(jax.grad(gan.g_loss_minimax)(logits), -s / n, rtol=1e-6, atol=1e-9)
    # values from logits stay finite where log(sigmoid) would not
    assert np.isfinite(float(gan.g_loss_non_saturating(jnp.array([-200.0]))))
    np.testing.assert_allclose(float(gan.g_loss_non_saturating(jnp.array([-200.0]))), 200.0, rtol=1e-6)
    # the discriminator's loss: -log s(r) - log(1 - s(f))
    r, f = jnp.array([1.5]), jnp.array([-0.5])
    want = -np.log(1 / (1 + np.exp(-1.5))) - np.log(1 - 1 / (1 + np.exp(0.5)))
    np.testing.assert_allclose(float(gan.d_loss_gan(r, f)), want, rtol=1e-6)


def test_wgan_schedule_matches_the_reference_code_over_600_generator_updates():
    m = gan.GANConfig(loss="wasserstein", clip=0.01, n_critic=5, critic_boost=True)
    # The authors' main.py: Diters = 100 if gen_iterations < 25 or gen_iterations % 500 == 0 else 5.
    want = [100 if j < 25 or j % 500 == 0 else 5 for j in range(600)]
    total = sum(want)

    def body(sched, _):
        sched, do_g = gan.schedule_after_d(sched, m)
        sched = {
            "g_updates": sched["g_updates"] + do_g.astype(jnp.int32),
            "d_since": jnp.where(do_g, 0, sched["d_since"]),
        }
        return sched, do_g

    init = {"g_updates": jnp.zeros((), jnp.int32), "d_since": jnp.zeros((), jnp.int32)}
    _, do_g = jax.lax.scan(body, init, None, length=total)
    g_steps = np.flatnonzero(np.asarray(do_g)) + 1  # critic updates done when each generator update happens
    got = np.diff(np.concatenate([[0], g_steps]))
    assert len(got) == 600
    np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def wgan_state():
    cfg, batch = _with_facts(_cfg("wgan"))
    state = jax.jit(lambda k: gan.init(k, cfg, batch))(jax.random.key(0))
    step = jax.jit(lambda s, b: gan.train_step(s, b, jax.random.key(1), cfg))
    after = step(state, batch)[0]
    return cfg, state, after


def test_every_critic_weight_is_within_c_after_a_critic_update(wgan_state):
    cfg, before, after = wgan_state
    c = cfg.model.clip
    leaves = jax.tree.leaves(after.params["d"])
    assert max(float(jnp.max(jnp.abs(x))) for x in leaves) <= c
    # the update moved weights (the bound is not met trivially) and some sit on the bound
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(leaves, jax.tree.leaves(before.params["d"]), strict=True)]
    assert max(moved) > 0
    assert any(float(jnp.max(jnp.abs(x))) == pytest.approx(c) for x in leaves)
    # one critic update and no generator update yet (the schedule starts with 100, here 2, of them)
    assert int(after.model_state["schedule"]["g_updates"]) == 0
    assert int(after.model_state["schedule"]["d_since"]) == 1


# ----------------------------------------------------------------------------- DCGAN nets


def test_dcgan_init_std_is_002_and_batchnorm_where_the_paper_puts_it():
    cfg, batch = _with_facts(load_config("dcgan"))  # 16x16
    state = jax.jit(lambda k: gan.init(k, cfg, batch))(jax.random.key(0))
    for net in ("g", "d"):
        flat = jax.tree_util.tree_flatten_with_path(state.params[net])[0]
        kernels = [np.asarray(v) for k, v in flat if "kernel" in jax.tree_util.keystr(k)]
        big = np.concatenate([k.ravel() for k in kernels])
        assert abs(big.std() - 0.02) < 0.001 and abs(big.mean()) < 0.001
    g, d = state.params["g"], state.params["d"]
    # G: BatchNorm after the projection and every hidden layer, none on the output layer
    assert sorted(k for k in g if k.startswith("BatchNorm")) == ["BatchNorm_0", "BatchNorm_1"]
    assert len([k for k in g if k.startswith("ConvTranspose2x")]) == 2 and "bias" in g["ConvTranspose2x_1"]
    assert "bias" not in g["ConvTranspose2x_0"]
    # D: two strided convolutions 16 -> 4, BatchNorm on all but the input layer
    assert sorted(k for k in d if k.startswith("BatchNorm")) == ["BatchNorm_0"]
    assert "bias" in d["Conv_0"] and "bias" not in d["Conv_1"]
    assert jax.eval_shape(lambda s: gan.sample(s, jax.random.key(0), 3, cfg), state).shape == (3, 16, 16, 1)


def test_batchnorm_over_eight_sharded_devices_equals_one_device():
    from gm_jax.core import parallel

    cfg, batch = _with_facts(_cfg("dcgan"))
    state = jax.jit(lambda k: gan.init(k, cfg, batch))(jax.random.key(0))

    def run(mesh):
        with jax.set_mesh(mesh):
            repl, shard = parallel.replicated(mesh), parallel.batch_sharded(mesh)
            f = jax.jit(
                lambda s, b: gan.train_step(s, b, jax.random.key(3), cfg),
                in_shardings=(repl, shard),
                out_shardings=(repl, repl),
            )
            s = jax.device_put(state, repl)
            return jax.tree.map(np.asarray, f(s, parallel.shard_batch(batch, mesh)))

    eight = run(parallel.make_mesh())
    one = run(jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",)))
    assert len(jax.devices()) == 8
    for a, b in zip(jax.tree.leaves(eight[0].model_state), jax.tree.leaves(one[0].model_state), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(eight[1]["d_loss"], one[1]["d_loss"], rtol=1e-4)


# ----------------------------------------------------------------------------- metrics


def test_mode_metrics_full_coverage_for_the_true_mixture_and_one_mode_for_a_collapse():
    for make in (points.ring8_wgangp, points.grid25_wgangp, points.ring8_pacgan, points.grid25_pacgan):
        src = make()
        x = src.test.get(np.arange(2500))
        got = modes.mode_metrics(x, src.modes, src.mode_std)
        assert got["modes_covered"] == len(src.modes)
        assert got["modes_high_quality"] > 0.98  # 3 sigma in 2-D holds 98.9%
        assert got["modes_kl"] < 0.02
        collapsed = src.modes[3] + src.mode_std * np.random.default_rng(0).standard_normal((2500, 2))
        got = modes.mode_metrics(collapsed, src.modes, src.mode_std)
        assert got["modes_covered"] == 1
        np.testing.assert_allclose(got["modes_kl"], np.log(len(src.modes)), rtol=1e-9)


def test_parzen_estimate_approaches_the_true_log_likelihood_as_n_grows():
    src = points.grid25_pacgan()
    test = src.test.get(np.arange(500))
    valid = src.train.get(np.arange(500))
    truth = float(np.mean(points.log_density(src, test)))
    errors = []
    for n in (100, 1000, 10000):
        x = src.train.get(np.arange(1000, 1000 + n))
        got = parzen.parzen(x, valid, test, sigmas=parzen.POINT_SIGMAS)
        errors.append(abs(got["parzen_ll"] - truth))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1


def test_digits_features_of_enlarged_digits_are_the_digits_features():
    src = sources.digits()
    big = sources.resized(src, 16)
    x, xb = src.test.get(np.arange(50))["x"], big.test.get(np.arange(50))["x"]
    assert xb.shape == (50, 16, 16, 1) and sample_quality.accepts("digits", (16, 16, 1))
    ex = sample_quality.digits_extractor()
    np.testing.assert_allclose(ex.fn(xb)[0], ex.fn(x)[0], atol=1e-5)


# ----------------------------------------------------------------------------- runs


def test_gan_resume_is_bit_exact_with_two_optimizers_batchnorm_and_the_schedule(tmp_path):
    def cfg(steps):
        c = _cfg("wgan")
        c.train.update(num_steps=steps, ckpt_every=3)
        c.eval.num_samples = 0  # the state is what is compared
        return c

    full = loop.train("wgan", cfg(6), str(tmp_path / "full"))
    loop.train("wgan", cfg(3), str(tmp_path / "split"))
    resumed = loop.train("wgan", cfg(6), str(tmp_path / "split"))
    assert resumed.step == 6 and resumed.step_compilations == 1
    assert int(full.state.model_state["schedule"]["g_updates"]) >= 1  # the cond took both branches
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_gan_on_a_2d_set_picks_mlp_nets_and_reports_mode_coverage(tmp_path):
    cfg = _cfg("wgan_gp", name="ring8_wgangp")
    cfg.eval.parzen_samples = 200
    r = loop.train("wgan_gp", cfg, str(tmp_path))
    assert {"modes_covered", "modes_high_quality", "modes_kl", "parzen_ll"} <= set(r.eval)
    assert 0 <= r.eval["modes_covered"] <= 8
    assert "Dense_0" in r.state.params["g"] and r.state.params["g"]["Dense_0"]["kernel"].shape[0] == 2
    assert os.path.exists(tmp_path / "samples" / "step_4.png")
    with open(tmp_path / "eval.json") as f:
        assert "modes_kl" in json.load(f)


@pytest.mark.parametrize(
    "name,override,match",
    [
        ("dcgan", {"data.name": "ring8_wgangp", "model.arch": "dcgan"}, "convolutional net"),
        ("dcgan", {"data.image_size": 12}, "square images of 8, 16, 32"),
        ("wgan", {"model.n_critic": 0}, "n_critic"),
        ("wgan", {"model.clip": -0.01}, "clip"),
        ("wgan", {"model.clip": 0.0}, "Lipschitz"),
        ("wgan_gp", {"model.gp_weight": -1.0}, "gp_weight"),
        ("gan", {"model.n_critic": 0}, "k"),
        ("wgan_gp", {"model.d_norm": "batch"}, "without BatchNorm"),
        ("gan", {"data.name": "ring9"}, "ring8_wgangp"),
    ],
)
def test_bad_gan_configs_are_refused_before_anything_is_written(name, override, match, tmp_path):
    cfg = _cfg(name)
    for k, v in override.items():
        section, key = k.split(".")
        cfg[section][key] = v
    with pytest.raises(UserError, match=match):
        loop.train(name, cfg, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w")
