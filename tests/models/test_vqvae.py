"""VQ-VAE known answers: the quantiser against brute force, the straight-through gradient, the EMA
update in closed form and over 8 sharded devices, and a run of the registered config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from gm_jax import load_config
from gm_jax.core import parallel
from gm_jax.core.errors import UserError
from gm_jax.models import vqvae
from gm_jax.train import train


def test_quantiser_returns_the_true_nearest_code():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3, 3, 4)).astype(np.float32)
    book = rng.normal(size=(16, 4)).astype(np.float32)
    idx, zq = vqvae.quantize(jnp.asarray(z), jnp.asarray(book))
    brute = np.argmin(((z[..., None, :] - book) ** 2).sum(-1), -1)
    np.testing.assert_array_equal(np.asarray(idx), brute)
    np.testing.assert_array_equal(np.asarray(zq), book[brute])


def test_straight_through_passes_the_decoders_gradient_at_z_q_to_the_encoder():
    rng = np.random.default_rng(1)
    z_e = jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)
    book = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3)), jnp.float32)

    def decoder_loss(z):
        return jnp.sum(jnp.tanh(z @ w) ** 2)

    _, z_q = vqvae.quantize(z_e, book)
    through = jax.grad(lambda z: decoder_loss(vqvae.straight_through(z, vqvae.quantize(z, book)[1])))(z_e)
    at_zq = jax.grad(decoder_loss)(z_q)
    np.testing.assert_allclose(np.asarray(through), np.asarray(at_zq), rtol=1e-6)
    assert float(jnp.max(jnp.abs(vqvae.straight_through(z_e, z_q) - z_q))) < 1e-6  # forward: z_q


def test_ema_update_equals_its_closed_form_on_a_hand_case():
    count = jnp.array([2.0, 1.0, 1.0])
    total = jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    z = jnp.array([[1.0, 1.0], [3.0, 1.0], [0.0, 2.0]])
    idx = jnp.array([0, 0, 1])  # code 2 unused
    c, t, book = vqvae.ema_update(count, total, z, idx, decay=0.5, eps=0.1)
    want_c = 0.5 * np.array([2, 1, 1]) + 0.5 * np.array([2, 1, 0])
    want_t = 0.5 * np.array([[2, 0], [0, 1], [1, 1]]) + 0.5 * np.array([[4, 2], [0, 2], [0, 0]])
    n = want_c.sum()
    smoothed = (want_c + 0.1) / (n + 3 * 0.1) * n
    np.testing.assert_allclose(np.asarray(c), want_c)
    np.testing.assert_allclose(np.asarray(t), want_t)
    np.testing.assert_allclose(np.asarray(book), want_t / smoothed[:, None], rtol=1e-6)


def test_ema_statistics_over_eight_sharded_devices_equal_one_device():
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.normal(size=(64, 4)), jnp.float32)
    book = jnp.asarray(rng.normal(size=(8, 4)), jnp.float32)
    count, total = jnp.ones(8), book

    def step(z):
        idx, _ = vqvae.quantize(z, book)
        return vqvae.ema_update(count, total, z, idx, 0.99, 1e-5)

    one = jax.jit(step)(z)
    mesh = parallel.make_mesh()
    assert mesh.devices.size == 8
    sharded = jax.jit(step)(jax.device_put(z, NamedSharding(mesh, PartitionSpec("data"))))
    for a, b in zip(one, sharded, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_codebook_summary_over_a_set():
    # 4 positions on codes [0, 0, 1, 3] of K = 4: frequencies (0.5, 0.25, 0, 0.25)
    got = vqvae.summarize({"code_frequency": np.array([0.5, 0.25, 0.0, 0.25])}, None)
    assert got["codebook_used"] == 0.75
    assert got["codebook_perplexity"] == pytest.approx(np.exp(-(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))))


def test_vqvae_run_trains_restarts_dead_codes_and_resumes_bit_exactly(tmp_path):
    cfg = load_config("vqvae", "smoke")
    r = train("vqvae", cfg, str(tmp_path / "a"))
    assert np.isfinite(r.eval["recon_nats"]) and r.step_compilations == 1
    rows = (tmp_path / "a" / "metrics.jsonl").read_text()
    assert '"codes_restarted"' in rows and '"perplexity"' in rows
    # codebook health over the whole test set, and its histogram
    assert 1.0 <= r.eval["codebook_perplexity"] <= 8 and 0 < r.eval["codebook_used"] <= 1
    assert (tmp_path / "a" / "samples" / "code_frequency_eval.png").exists()
    # resumed from the step-2 checkpoint: the same final state, codebook statistics included
    cfg2 = load_config("vqvae", "smoke")
    cfg2.train.num_steps = 2
    train("vqvae", cfg2, str(tmp_path / "b"))
    b = train("vqvae", load_config("vqvae", "smoke"), str(tmp_path / "b"))
    for u, v in zip(jax.tree.leaves(r.state), jax.tree.leaves(b.state), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize(
    "override,needle",
    [
        (("num_codes", 1), "num_codes must be at least 2"),
        (("downsample", 4), "divisible by 16"),
        (("ema", False), "restart_every needs model.ema=True"),
    ],
)
def test_bad_vqvae_settings_are_refused_before_anything_is_written(tmp_path, override, needle):
    cfg = load_config("vqvae", "smoke")
    cfg.model[override[0]] = override[1]
    with pytest.raises(UserError, match=needle):
        train("vqvae", cfg, str(tmp_path / "wd"))
    assert not (tmp_path / "wd").exists()


def test_the_prior_is_causal_in_raster_order():
    from gm_jax.models.vqvae import CausalPrior, PriorConfig

    prior = CausalPrior(8, 6, PriorConfig(layers=2, width=16, heads=2))
    idx = jnp.asarray(np.random.default_rng(0).integers(0, 8, (3, 6)), jnp.int32)
    params = prior.init(jax.random.key(0), idx)["params"]
    base = prior.apply({"params": params}, idx)
    for i in range(6):
        changed = idx.at[:, i:].set((idx[:, i:] + 3) % 8)  # codes from position i on
        got = prior.apply({"params": params}, changed)
        np.testing.assert_allclose(np.asarray(got[:, : i + 1]), np.asarray(base[:, : i + 1]), rtol=1e-5, atol=1e-5)
        if i < 5:
            assert np.abs(np.asarray(got[:, i + 1 :]) - np.asarray(base[:, i + 1 :])).max() > 1e-4


def test_prior_stage_trains_on_the_frozen_first_stage_and_resumes_bit_exactly(tmp_path):
    first = train("vqvae", load_config("vqvae", "smoke"), str(tmp_path / "one"))
    cfg = load_config("vqvae", "smoke")
    cfg.train.init_from = str(tmp_path / "one")
    full = train("vqvae", cfg, str(tmp_path / "prior"))
    frozen = full.state.model_state["first"]["params"]
    for u, v in zip(jax.tree.leaves(frozen), jax.tree.leaves(first.state.params), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert full.eval["recon_nats"] == pytest.approx(first.eval["recon_nats"], rel=1e-6)  # same first stage
    assert full.eval["bound_nats"] == pytest.approx(full.eval["recon_nats"] + full.eval["prior_nats"], rel=1e-6)
    cfg2 = load_config("vqvae", "smoke")
    cfg2.train.update(init_from=str(tmp_path / "one"), num_steps=2)
    train("vqvae", cfg2, str(tmp_path / "resumed"))
    cfg2.train.num_steps = 3
    again = train("vqvae", cfg2, str(tmp_path / "resumed"))
    for u, v in zip(jax.tree.leaves(full.state), jax.tree.leaves(again.state), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_prior_stage_needs_a_vqvae_first_stage_with_the_same_model(tmp_path):
    from gm_jax.core.errors import UserError

    train("vae", load_config("vae", "smoke"), str(tmp_path / "vae"))
    cfg = load_config("vqvae", "smoke")
    cfg.train.init_from = str(tmp_path / "vae")
    with pytest.raises(UserError, match="starts from a finished VQ-VAE first stage"):
        train("vqvae", cfg, str(tmp_path / "p1"))
    train("vqvae", load_config("vqvae", "smoke"), str(tmp_path / "one"))
    cfg = load_config("vqvae", "smoke")
    cfg.train.init_from = str(tmp_path / "one")
    cfg.model.num_codes = 16
    with pytest.raises(UserError, match=r"model section must be the first stage's; differs in \['num_codes'\]"):
        train("vqvae", cfg, str(tmp_path / "p2"))
    assert not (tmp_path / "p1").exists() and not (tmp_path / "p2").exists()
