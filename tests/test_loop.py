"""The run loop on 8 fake devices: smoke runs, compile-once, resume bit-exactness, device-count
invariance, and the shapes of family the loop must carry (GAN pair, BatchNorm, EMA, EM, stage 2).
"""

import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import vae as vae_config
from gm_jax import load_config, model_names
from gm_jax.core import loop
from gm_jax.core.checkpoint import Checkpointer
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.data import load as load_data
from gm_jax.data import sources
from tests import toy_families

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _losses(workdir):
    return {r["step"]: r["loss"] for r in _rows(workdir) if "loss" in r}


def _host(tree):
    return jax.tree.map(np.asarray, tree)


def _assert_trees_equal(a, b):
    la, ta = jax.tree.flatten(_host(a))
    lb, tb = jax.tree.flatten(_host(b))
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(x, y)


def test_eight_devices():
    assert len(jax.devices()) == 8


@pytest.mark.parametrize("name", model_names())
def test_smoke_every_registered_model(name, tmp_path):
    cfg = load_config(name, "smoke")
    r = loop.train(name, cfg, str(tmp_path))
    assert r.step == cfg.train.num_steps
    assert r.step_compilations == 1
    assert r.eval and all(np.isfinite(v) for v in r.eval.values())
    rows = _rows(tmp_path)
    assert rows and all(np.isfinite(v) for row in rows for v in row.values())
    for f in ("config.json", "eval.json", "metrics.jsonl"):
        assert os.path.exists(tmp_path / f)
    assert os.listdir(tmp_path / "tensorboard")
    assert os.listdir(tmp_path / "samples")  # PNG grids for images, .npy for points and sequences


def _smoke(steps, **train):
    cfg = vae_config.get_config("smoke")
    cfg.train.update(num_steps=steps, ckpt_every=3, **train)
    return cfg


def test_resume_is_bit_exact_including_data_order(tmp_path):
    full = loop.train("vae", _smoke(7), str(tmp_path / "full"))
    part = loop.train("vae", _smoke(4), str(tmp_path / "split"))
    assert part.step == 4
    resumed = loop.train("vae", _smoke(7), str(tmp_path / "split"))
    assert resumed.step == 7 and resumed.step_compilations == 1
    _assert_trees_equal(full.state, resumed.state)
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "split")
    assert a == b  # same numbers at every step, hence the same batches in the same order


def test_loss_curve_same_on_one_device(tmp_path):
    cfg_args = ["--config.train.num_steps=5", "--config.train.ckpt_every=5", "--config.eval.num_examples=16"]
    loop.train("vae", _smoke(5, log_every=1), str(tmp_path / "eight"))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    cmd = [
        sys.executable,
        "-m",
        "experiments.run",
        "--config=experiments/configs/vae.py:smoke",
        f"--workdir={tmp_path / 'one'}",
        *cfg_args,
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    a, b = _losses(tmp_path / "eight"), _losses(tmp_path / "one")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([a[s] for s in a], [b[s] for s in a], rtol=2e-5)


def _toy_cfg(name, **model):
    cfg = vae_config.get_config("smoke")
    cfg.model_name = name
    cfg.model = model
    cfg.optim.ema_decay = 0.9
    cfg.train.update(num_steps=3, ckpt_every=3, batch_size=16)
    cfg.eval.num_samples = 0
    return cfg


def _data_for(cfg):
    _, data_key, _ = jax.random.split(jax.random.key(cfg.seed), 3)
    return load_data(cfg.data, cfg.train.batch_size, loop._host_seed(data_key))


def test_gan_pair_batchnorm_and_ema_across_devices(tmp_path):
    cfg = _toy_cfg("toy_gan", n_critic=3)
    r = loop.train(toy_families.toy_gan, cfg, str(tmp_path))
    assert r.step_compilations == 1
    # The same steps on one device, no sharding: parameters and BatchNorm statistics agree.
    data = _data_for(cfg)
    dev = jax.devices()[0]
    cfg1 = r.cfg
    _, _, loop_key = jax.random.split(jax.random.key(cfg.seed), 3)
    state = jax.device_put(
        toy_families._gan_init(jax.random.split(jax.random.key(cfg.seed), 3)[0], cfg1, data.train_batch(0)), dev
    )
    step = jax.jit(lambda s, b, k: toy_families._gan_step(s, b, k, cfg1))
    for i in range(3):
        state, _ = step(state, jax.device_put(data.train_batch(i), dev), loop_key)
    np.testing.assert_allclose(
        np.asarray(r.state.model_state["batch_stats"]["BatchNorm_0"]["mean"]),
        np.asarray(state.model_state["batch_stats"]["BatchNorm_0"]["mean"]),
        rtol=1e-5,
        atol=1e-6,
    )
    for a, b in zip(jax.tree.leaves(r.state.params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # The discriminator moved n_critic times per step: its update count says so.
    assert int(np.asarray(r.state.opt_state["d"][1].count)) == 9
    assert int(np.asarray(r.state.opt_state["g"][1].count)) == 3
    # Evaluation used the EMA, which differs from the raw generator.
    ema_norm = float(optax.tree.norm(r.state.ema_params))
    assert r.eval["g_norm"] == pytest.approx(ema_norm, rel=1e-5)
    assert abs(ema_norm - float(optax.tree.norm(r.state.params["g"]))) > 1e-4


def test_em_family_matches_numpy_em(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, 300), rng.normal(1.5, 1.0, 212)]).astype(np.float32)[:, None]
    src = sources.Source(sources._in_memory(x), sources._in_memory(x[:64]), "points", "toy1d")
    monkeypatch.setitem(sources.EMBEDDED, "toy1d", lambda: src)
    cfg = _toy_cfg("toy_em")
    cfg.data.update(name="toy1d", binarize="none")
    cfg.train.update(num_steps=6, batch_size=512, ckpt_every=6)
    r = loop.train(toy_families.toy_em, cfg, str(tmp_path))
    nll = [row["loss"] for row in _rows(tmp_path) if "loss" in row]
    assert all(b <= a + 1e-6 for a, b in zip(nll, nll[1:], strict=False))  # EM never lowers the likelihood
    w, mu, var = np.array([0.5, 0.5]), np.array([-1.0, 1.0]), np.array([1.0, 1.0])
    xs = x[:, 0].astype(np.float64)
    for _ in range(6):
        lp = np.log(w) - 0.5 * (np.log(2 * np.pi * var) + (xs[:, None] - mu) ** 2 / var)
        r_ = np.exp(lp - np.logaddexp.reduce(lp, axis=1, keepdims=True))
        nk = r_.sum(0)
        mu = (r_ * xs[:, None]).sum(0) / nk
        var = (r_ * (xs[:, None] - mu) ** 2).sum(0) / nk + 1e-6
        w = nk / len(xs)
    np.testing.assert_allclose(np.asarray(r.state.params["mu"]), mu, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(r.state.params["var"]), var, rtol=1e-4)
    assert r.state.opt_state is None


def test_second_stage_starts_from_first_stage_checkpoint(tmp_path):
    stage1 = loop.train("vae", _smoke(3), str(tmp_path / "stage1"))
    cfg = _toy_cfg("toy_prior", latent_dim=2, hidden=(16,))
    cfg.optim.ema_decay = 0.0
    cfg.train.init_from = str(tmp_path / "stage1")
    r = loop.train(toy_families.toy_prior, cfg, str(tmp_path / "stage2"))
    _assert_trees_equal(r.state.model_state["vae"], stage1.state.params)
    assert np.isfinite(r.eval["prior_mu0"])


def _nan_family():
    def init(key, cfg, batch):
        tx = optax.sgd(0.1)
        return TrainState.create(params={"w": jnp.zeros(())}, opt_state=tx.init({"w": jnp.zeros(())}))

    def train_step(state, batch, key, cfg):
        loss = jnp.where(state.step >= 3, jnp.nan, (state.params["w"] - 1.0) ** 2 + 0.0 * batch["x"].sum())
        return state.replace(step=state.step + 1, params={"w": state.params["w"] + 0.1}), {"loss": loss}

    return types.SimpleNamespace(
        init=init,
        train_step=train_step,
        evaluate=lambda s, b, k, c: {"w": jnp.zeros(b["x"].shape[:1])},
        sample=lambda s, k, n, c: jnp.zeros((n, 8, 8, 1)),
    )


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = _toy_cfg("toy_nan")
    cfg.train.update(num_steps=8, ckpt_every=2, log_every=0)
    with pytest.raises(UserError, match=r"non-finite loss .* at step 4.*step 2\) kept"):
        loop.train(_nan_family(), cfg, str(tmp_path))
    ck = Checkpointer(str(tmp_path / "checkpoints"))
    assert ck.latest_step() == 2
    raw = ck.restore_raw()
    assert float(np.asarray(raw["params"]["w"])) == pytest.approx(0.2)
