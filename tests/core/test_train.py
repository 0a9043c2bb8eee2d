"""The run loop on 8 fake devices: smoke runs, compile-once, resume bit-exactness, device-count
invariance, and the shapes of family the loop must carry (GAN pair, BatchNorm, EMA, EM, stage 2).
"""

import json
import os
import shutil
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
from gm_jax import train as loop
from gm_jax.core.checkpoint import Checkpointer
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.data import load as load_data
from gm_jax.data import sources
from gm_jax.data.source import Source, in_memory
from tests.core import toy_families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0",
        JAX_PLATFORMS="cpu",
    )
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
    from gm_jax.evaluators import RunKeys

    return load_data(cfg.data, cfg.train.batch_size, RunKeys.from_seed(cfg.seed).data_seed)


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
    src = Source(in_memory(x), in_memory(x[:64]), "points", "toy1d")
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


def _prior_cfg(init_from):
    # The first stage's architecture is not repeated: the toy prior reads it from the parent.
    cfg = _toy_cfg("toy_prior", hidden=(16,))
    cfg.optim.ema_decay = 0.0
    cfg.train.update(init_from=str(init_from), log_every=1)
    return cfg


def test_second_stage_starts_from_first_stage_checkpoint(tmp_path):
    stage1 = loop.train("vae", _smoke(3), str(tmp_path / "stage1"))
    r = loop.train(toy_families.toy_prior, _prior_cfg(tmp_path / "stage1"), str(tmp_path / "stage2"))
    _assert_trees_equal(r.state.model_state["vae"], stage1.state.params)
    assert np.isfinite(r.eval["prior_mu0"])
    # The step number reaches the loss (a schedule needs it; it is not copied into model_state).
    rows = [row for row in _rows(tmp_path / "stage2") if "step_seen" in row]
    assert [row["step_seen"] for row in rows] == [row["step"] - 1 for row in rows] == [0, 1, 2]


def _stage_worker(*args):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "core", "stage_worker.py"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_stage_on_another_device_count(tmp_path):
    # First stage on 8 devices, second on 1: the parent is restored into its own abstract state on
    # the second stage's mesh (a raw restore keeps the saved 8-device sharding and fails).
    stage1 = loop.train("vae", _smoke(3), str(tmp_path / "eight"))
    got = _stage_worker("second", tmp_path / "one_from_eight", tmp_path / "eight")
    assert got["devices"] == 1
    for a, b in zip(got["leaves"], jax.tree.leaves(stage1.state.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b))
    # And the reverse: first stage on 1 device, second on 8.
    first = _stage_worker("first", tmp_path / "one")
    r = loop.train(toy_families.toy_prior, _prior_cfg(tmp_path / "one"), str(tmp_path / "eight_from_one"))
    for a, b in zip(jax.tree.leaves(r.state.model_state["vae"]), first["leaves"], strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b, np.float32))


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


def test_eval_params_has_the_params_shape_with_or_without_ema():
    params = {"g": {"w": jnp.ones(2)}, "d": {"w": jnp.zeros(3)}}
    with_ema = TrainState.create(params=params, ema_params={"g": {"w": jnp.full(2, 0.5)}})
    without = TrainState.create(params=params)
    assert jax.tree.structure(with_ema.eval_params()) == jax.tree.structure(without.eval_params())
    assert float(with_ema.eval_params()["g"]["w"][0]) == 0.5 and float(without.eval_params()["g"]["w"][0]) == 1.0


def test_data_facts_are_in_the_config(tmp_path):
    cfg = _smoke(1)
    cfg.eval.num_samples = 0
    r = loop.train("vae", cfg, str(tmp_path))
    d = r.cfg.data
    assert (d.train_size, d.test_size, d.levels, d.kind, tuple(d.features)) == (1500, 297, 2, "image", ("y",))
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["config"]["data"]["train_size"] == 1500
    levels = load_data(vae_config.get_config().data, 10, 0).facts()["levels"]
    cfg_grey = vae_config.get_config().data
    cfg_grey.binarize = "none"
    assert (levels, load_data(cfg_grey, 10, 0).facts()["levels"]) == (2, 17)


def test_resume_after_a_crash_keeps_one_metrics_row_per_step_and_records_changes(tmp_path):
    cfg = _smoke(7, log_every=1)
    cfg.eval.num_samples = 0
    loop.train("vae", cfg, str(tmp_path))
    # A crash after step 7 was logged but before checkpoints 6 and 7 reached the disk:
    for s in ("6", "7"):
        shutil.rmtree(tmp_path / "checkpoints" / s)
    cfg.train.num_steps = 9  # and the run is extended as it resumes
    loop.train("vae", cfg, str(tmp_path))
    steps = [r["step"] for r in _rows(tmp_path) if "loss" in r]
    assert steps == list(range(1, 10))
    with open(tmp_path / "config.json") as f:
        rec = json.load(f)
    assert rec["config"]["train"]["num_steps"] == 9
    assert rec["history"] == [{"resumed_at_step": 3, "changed": {"train.num_steps": [7, 9]}}]


def test_progress_eta_shows_days_and_rate_follows_recent_steps():
    from gm_jax.core.writer import Progress, format_eta

    assert format_eta(3 * 86400 + 4 * 3600 + 5 * 60 + 6) == "3d 04:05:06"
    assert format_eta(59) == "00:00:59"
    p = Progress(10**9, 0, enabled=False, window=10.0)
    p.restart_clock(0)
    t0 = p._marks[0][0]
    p.rate(100, t0 + 100.0)  # 1 step/s for a long while
    assert p.rate(1100, t0 + 110.0) == pytest.approx(100.0)  # then 100 steps/s: the window follows


def test_small_images_are_enlarged_and_points_get_a_scatter(tmp_path):
    from PIL import Image

    from gm_jax.core.writer import Writer

    w = Writer(str(tmp_path))
    path = w.image_grid("g", np.random.default_rng(0).random((4, 8, 8, 1)))
    assert min(Image.open(path).size) >= 2 * 32
    path = w.scatter("s", np.random.default_rng(0).normal(size=(50, 2)))
    assert Image.open(path).size == (384, 384)


def _faulty_family(bad_state_at=None, bad_eval=False, eval_shape=None):
    def init(key, cfg, batch):
        return TrainState.create(params={"w": jnp.zeros(())})

    def train_step(state, batch, key, cfg):
        w = state.params["w"] + 0.1
        if bad_state_at is not None:
            w = jnp.where(state.step + 1 >= bad_state_at, jnp.nan, w)
        return state.replace(step=state.step + 1, params={"w": w}), {"loss": 0.0 * batch["x"].sum()}

    def evaluate(state, batch, key, cfg):
        b = batch["x"].shape[0]
        if eval_shape is not None:
            return {"setwise": jnp.zeros(eval_shape)}
        return {"m": jnp.full((b,), jnp.nan if bad_eval else 1.0)}

    return types.SimpleNamespace(
        init=init, train_step=train_step, evaluate=evaluate, sample=lambda s, k, n, c: jnp.zeros((n, 8, 8, 1))
    )


def test_a_state_with_non_finite_values_is_never_saved(tmp_path):
    cfg = _toy_cfg("toy_faulty")
    cfg.train.update(num_steps=6, ckpt_every=1, log_every=0)
    with pytest.raises(UserError, match=r"non-finite values in the model state at step 3.*step 2\) kept"):
        loop.train(_faulty_family(bad_state_at=3), cfg, str(tmp_path))
    ck = Checkpointer(str(tmp_path / "checkpoints"))
    assert ck.latest_step() == 2
    assert float(np.asarray(ck.restore_raw()["params"]["w"])) == pytest.approx(0.2)


def test_eval_json_is_strict_json_with_null_for_non_finite(tmp_path):
    cfg = _toy_cfg("toy_faulty")
    loop.train(_faulty_family(bad_eval=True), cfg, str(tmp_path))

    def refuse(name):
        raise ValueError(f"bare {name} in eval.json")

    with open(tmp_path / "eval.json") as f:
        ev = json.loads(f.read(), parse_constant=refuse)
    assert ev["m"] is None


def test_set_level_output_of_evaluate_is_named(tmp_path):
    cfg = _toy_cfg("toy_faulty")
    with pytest.raises(UserError, match=r"metric 'setwise' has shape \(\)"):
        loop.train(_faulty_family(eval_shape=()), cfg, str(tmp_path / "wd"))
    assert not (tmp_path / "wd").exists()


def test_per_example_vectors_are_averaged_over_the_test_set_summarized_and_drawn(tmp_path):
    cfg = _toy_cfg("toy_hist")
    cfg.eval.update(batch_size=24, num_examples=-1)  # 297 digits: the last batch is padded (masked rows)
    r = loop.train(toy_families.toy_hist, cfg, str(tmp_path))
    data = _data_for(r.cfg)
    first = data.source.test.get(np.arange(data.source.test.size))
    first = np.asarray(first["x"] if isinstance(first, dict) else first).reshape(data.source.test.size, -1)[:, 0]
    want = np.bincount(np.clip((first * 4).astype(int), 0, 3), minlength=4) / len(first)
    assert r.eval["bin_total"] == pytest.approx(1.0) and r.eval["bin_first"] == pytest.approx(want[0])
    assert (tmp_path / "samples" / "bin_eval.png").exists()
    # without `summarize`, a vector metric is refused before anything is written
    fam = types.SimpleNamespace(**{k: v for k, v in vars(toy_families.toy_hist).items() if k != "summarize"})
    with pytest.raises(UserError, match=r"metric 'bin' has shape \(24, 4\)"):
        loop.train(fam, cfg, str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()
