"""StyleGAN / StyleGAN2: known answers for AdaIN, demodulation, equalised lr, noise, truncation,
style mixing and R1; smoke runs on 8 devices, resume with the tracked w average, bad input."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax import load_config
from gm_jax import train as loop
from gm_jax.core.errors import UserError
from gm_jax.models import gan, stylegan
from gm_jax.nn import resample


def _cfg(name):
    from gm_jax.data import load

    cfg = load_config(name, "smoke")
    d = load(cfg.data, cfg.train.batch_size, 0)
    cfg.data.update(d.facts())
    return cfg, d.train_batch(0)


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def built(request):
    """A freshly initialised state of each smoke config, its config and nets."""
    cfg, batch = _cfg(request.param)
    state = jax.jit(lambda k: stylegan.init(k, cfg, batch))(jax.random.key(0))
    return request.param, cfg, state, stylegan.StyleNets(cfg)


# ----------------------------------------------------------------------------- layers


def test_adain_output_has_the_styles_per_channel_mean_and_std():
    x = 3.0 * jax.random.normal(jax.random.key(0), (4, 16, 16, 5)) + 7.0
    scale = jax.random.uniform(jax.random.key(1), (4, 5), minval=0.5, maxval=2.0)
    bias = jax.random.normal(jax.random.key(2), (4, 5))
    y = stylegan.adain(x, scale, bias)
    np.testing.assert_allclose(jnp.mean(y, (1, 2)), bias, atol=1e-5)
    np.testing.assert_allclose(jnp.std(y, (1, 2)), scale, rtol=1e-4)


def test_demodulated_convolution_has_unit_output_std_for_unit_input_under_any_style():
    ci, co = 32, 24
    x = jax.random.normal(jax.random.key(0), (6, 24, 24, ci))
    w = jax.random.normal(jax.random.key(1), (3, 3, ci, co))
    # styles of very different scales per example and channel
    s = jnp.exp(2.0 * jax.random.normal(jax.random.key(2), (6, ci)))
    y = stylegan.modulated_conv(x, w, s, demod=True)
    inner = y[:, 2:-2, 2:-2]  # away from the zero padding
    # per example and output channel: E y^2 = sum_ik (s_i w_ijk)^2 / (the same + eps) = 1
    np.testing.assert_allclose(jnp.mean(inner**2), 1.0, rtol=0.05)
    per_example = jnp.mean(inner**2, axis=(1, 2, 3))
    assert float(jnp.max(jnp.abs(per_example - 1.0))) < 0.15
    # without demodulation the scale follows the style
    y0 = stylegan.modulated_conv(x, w, s, demod=False)
    assert float(jnp.mean(y0**2)) > 10.0


@pytest.mark.parametrize("demod", [False, True])
def test_modulated_up_convolution_is_the_reference_op_with_per_example_modulated_weights(demod):
    """StyleGAN2's modulated_conv2d_layer(up=True): each example's weights s_i w (demodulated per
    output channel over the 3x3 taps and input channels), then upsample_conv_2d with the FIR filter."""
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 3))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    s = jax.random.uniform(jax.random.key(2), (2, 3), minval=0.5, maxval=2.0)
    f = (1, 3, 3, 1)
    op = lambda v, k, mm: resample.upsample_conv2d(v, k, f, mm)  # noqa: E731
    got = stylegan.modulated_conv(x, w, s, demod=demod, resample_op=op)
    want = []
    for i in range(2):
        wi = w * s[i][None, None, :, None]
        if demod:
            wi = wi / jnp.sqrt(jnp.sum(wi**2, axis=(0, 1, 2)) + 1e-8)
        want.append(resample.upsample_conv2d(x[i : i + 1], wi, f)[0])
    np.testing.assert_allclose(got, jnp.stack(want), rtol=1e-4, atol=1e-5)


def test_equalised_layers_apply_he_scaled_weights():
    x = jax.random.normal(jax.random.key(0), (3, 20))
    layer = stylegan.EqDense(7, gain=math.sqrt(2.0), lr_mul=0.01)
    v = layer.init(jax.random.key(1), x)
    w, b = v["params"]["kernel"], v["params"]["bias"] + 0.3
    assert abs(float(jnp.std(w)) - 100.0) < 10.0  # stored N(0, 1/lr_mul^2)
    y = layer.apply({"params": {"kernel": w, "bias": b}}, x)
    np.testing.assert_allclose(y, x @ (w * math.sqrt(2.0) * 0.01 / math.sqrt(20)) + 0.01 * b, rtol=1e-5, atol=1e-6)
    conv = stylegan.EqConv(5, 3, gain=1.0)
    xi = jax.random.normal(jax.random.key(2), (2, 6, 6, 4))
    cv = conv.init(jax.random.key(3), xi)
    k = cv["params"]["kernel"]
    want = jax.lax.conv_general_dilated(
        xi, k / math.sqrt(9 * 4), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(conv.apply(cv, xi), want, rtol=1e-5, atol=1e-6)


def test_r1_of_a_quadratic_discriminator_is_its_closed_form():
    a = jax.random.normal(jax.random.key(0), (3, 3))
    a = a @ a.T
    b = jnp.array([0.5, -1.0, 2.0])
    x = jax.random.normal(jax.random.key(1), (32, 3))
    r1 = gan.r1_penalty(lambda v: 0.5 * jnp.einsum("bi,ij,bj->b", v, a, v) + v @ b, x)
    np.testing.assert_allclose(float(r1), float(jnp.mean(jnp.sum((x @ a + b) ** 2, 1))), rtol=1e-5)


def test_minibatch_stddev_appends_the_group_std():
    x = jax.random.normal(jax.random.key(0), (8, 4, 4, 3))
    y = stylegan.minibatch_stddev(x, 4)
    assert y.shape == (8, 4, 4, 4)
    groups = np.asarray(x).reshape(4, 2, 4, 4, 3)  # example i and i + 2 share a group
    want = np.sqrt(groups.var(0) + 1e-8).mean((1, 2, 3))
    np.testing.assert_allclose(y[:, 0, 0, 3], np.tile(want, 4), rtol=1e-5)


# ----------------------------------------------------------------------------- generator


def _w(nets, params, n=3, seed=5):
    z = jax.random.normal(jax.random.key(seed), (n, nets.z_dim))
    return z, stylegan.broadcast_styles(nets.map(params, z), nets.layers)


def test_with_noise_scales_at_zero_the_generator_is_deterministic_in_w(built):
    _, _, state, nets = built
    params = state.params["g"]
    _, styles = _w(nets, params)
    a = nets.synthesize(params, styles, jax.random.key(1))
    b = nets.synthesize(params, styles, jax.random.key(2))
    np.testing.assert_array_equal(a, b)  # the noise scales start at zero
    noisy = jax.tree_util.tree_map_with_path(lambda p, v: v + 0.5 if "noise" in jax.tree_util.keystr(p) else v, params)
    c = nets.synthesize(noisy, styles, jax.random.key(1))
    d = nets.synthesize(noisy, styles, jax.random.key(2))
    assert float(jnp.max(jnp.abs(c - d))) > 1e-3


def test_truncation_psi_0_gives_the_average_w_image_and_psi_1_the_untruncated(built):
    _, cfg, state, nets = built
    w_avg = jax.random.normal(jax.random.key(9), (nets.m.w_dim,))
    state = state.replace(model_state={**state.model_state, "g_batch_stats": {"w_avg": w_avg}})
    key = jax.random.key(3)
    got0 = stylegan.generate(state, key, 3, cfg, psi=0.0)
    avg = stylegan.synthesize(state, jnp.broadcast_to(w_avg, (3, nets.m.w_dim)), jax.random.split(key)[1], cfg)
    np.testing.assert_allclose(got0, avg, atol=1e-5)
    got1 = stylegan.generate(state, key, 3, cfg, psi=1.0)
    z = jax.random.normal(jax.random.split(key)[0], (3, nets.z_dim))
    plain = stylegan.synthesize(state, stylegan.mapping(state, z, cfg), jax.random.split(key)[1], cfg)
    np.testing.assert_allclose(got1, plain, atol=1e-6)
    assert float(jnp.max(jnp.abs(got0 - got1))) > 1e-4


def test_style_mixing_at_layer_l_uses_a_before_l_and_b_from_l(built):
    _, cfg, state, nets = built
    params = state.eval_params()["g"]
    za, sa = _w(nets, params, seed=1)
    zb, sb = _w(nets, params, seed=2)
    for layer in (1, nets.layers // 2, nets.layers - 1):
        mixed = stylegan.mix_styles(sa, sb, layer)
        np.testing.assert_array_equal(mixed[:, :layer], sa[:, :layer])
        np.testing.assert_array_equal(mixed[:, layer:], sb[:, layer:])
        img = stylegan.style_mix(state, za, zb, layer, jax.random.key(4), cfg)
        want = nets.from_net(nets.synthesize(params, mixed, jax.random.key(4)))
        np.testing.assert_allclose(img, want, atol=1e-6)
    # every layer's style reaches the image: changing only layer l's w changes the output
    base = nets.synthesize(params, sa, jax.random.key(4))
    for layer in range(nets.layers):
        one = sa.at[:, layer].set(sb[:, layer])
        assert float(jnp.max(jnp.abs(nets.synthesize(params, one, jax.random.key(4)) - base))) > 1e-6, layer


def test_training_latents_mix_with_the_papers_probability():
    cfg, _ = _cfg("stylegan")
    nets = stylegan.StyleNets(cfg)
    cross = np.array([int(nets.noise(jax.random.key(i), 2)["cross"]) for i in range(400)])
    mixed = cross < nets.layers
    assert abs(mixed.mean() - 0.9) < 0.05
    assert set(cross[mixed]) == set(range(1, nets.layers))


# ----------------------------------------------------------------------------- runs


def test_stylegan_resume_is_bit_exact_with_the_tracked_w_average_and_lazy_r1(tmp_path):
    def cfg(steps):
        c = load_config("stylegan2", "smoke")
        c.train.update(num_steps=steps, ckpt_every=3)
        c.eval.num_samples = 0
        return c

    full = loop.train("stylegan2", cfg(5), str(tmp_path / "full"))
    loop.train("stylegan2", cfg(3), str(tmp_path / "split"))
    resumed = loop.train("stylegan2", cfg(5), str(tmp_path / "split"))
    assert resumed.step == 5 and resumed.step_compilations == 1
    w_avg = np.asarray(full.state.model_state["g_batch_stats"]["w_avg"])
    assert np.abs(w_avg).max() > 0  # tracked
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert os.path.exists(tmp_path / "full" / "samples" / "style_mixing_step_5.png")


@pytest.mark.parametrize(
    "override,match",
    [
        ({"data.image_size": 12}, "power of two"),
        ({"sample.truncation_psi": 1.5}, "truncation_psi"),
        ({"sample.truncation_psi": -0.1}, "truncation_psi"),
        ({"sample.mixing_layer": 99}, "mixing_layer"),
        ({"model.mixing_prob": 2.0}, "mixing_prob"),
        ({"model.style": "batch"}, "model.style"),
        ({"model.mapping_layers": 0}, "w_dim"),
    ],
)
def test_bad_stylegan_configs_are_refused_before_anything_is_written(override, match, tmp_path):
    cfg = load_config("stylegan", "smoke")
    for k, v in override.items():
        section, key = k.split(".")
        cfg[section][key] = v
    if override.get("model.mapping_layers") == 0:
        cfg.model.w_dim = cfg.model.z_dim + 1
    with pytest.raises(UserError, match=match):
        loop.train("stylegan", cfg, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w")


def test_ablation_configs_build_and_differ_in_one_switch_each():
    from experiments.configs import stylegan as sg

    keys = ("input", "mapping_layers", "style", "noise_inputs", "mixing_prob")
    rows = {a: tuple(sg.get_config(a).model[k] for k in keys) for a in "ACDEF"}
    assert rows["F"] == tuple(sg.get_config().model[k] for k in keys)
    for prev, nxt in zip("CDE", "DEF", strict=True):
        assert sum(a != b for a, b in zip(rows[prev], rows[nxt], strict=True)) == 1
    for a in "ACDEF":
        cfg = sg.get_config(a)
        cfg.data.update(shape=(16, 16, 1), kind="image", name="digits")
        stylegan.StyleNets(cfg)


def test_a_tfds_set_with_only_a_train_split_of_varying_image_sizes_gets_a_held_out_test_split(monkeypatch):
    """CelebA-HQ has only a train split and LSUN's images vary in size: a fixed tenth is held out
    and every image is centre-cropped to a square of the first image's shorter side."""
    import types

    import tensorflow_datasets as tfds

    from gm_jax.data import sources

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (10 + i % 3, 12 - i % 2, 3), dtype=np.uint8) for i in range(30)]

    class Fake(list):
        dataset_info = types.SimpleNamespace(features={"image": types.SimpleNamespace(shape=(None, None, 3))})

    def data_source(name, split, data_dir, download):
        if split != "train":
            raise ValueError(f"no split {split}")
        return Fake({"image": x} for x in images)

    monkeypatch.setattr(tfds, "data_source", data_source)
    src = sources.tfds_source("lsun/church_outdoor", None)
    assert (src.train.size, src.test.size, src.train.shape) == (27, 3, (10, 10, 3))
    x = np.concatenate([src.train.get(np.arange(27)), src.test.get(np.arange(3))])
    assert x.shape == (30, 10, 10, 3)
    # the split is a partition of the set, each image its centre square
    want = {sources._square(im, 10).tobytes() for im in images}
    got = {np.round(im * 255).astype(np.uint8).tobytes() for im in x}
    assert got == want
    first = images[0]  # 10 x 12: columns 1..10
    np.testing.assert_array_equal(sources._square(first, 10), first[:, 1:11])
