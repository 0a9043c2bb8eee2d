"""The StyleGAN papers' resampling ops against independent NumPy references.

StyleGAN2's ops (NVlabs stylegan2 `dnnlib/tflib/ops/upfirdn_2d.py`): `_upfirdn_2d_ref` ported to
NumPy (insert zeros, pad, convolve with the flipped kernel, drop samples), and
`upsample_conv_2d` / `conv_downsample_2d` built from it and from TensorFlow's `conv2d_transpose`
(the gradient of a stride-2 convolution, with the reference's flipped weights), written out as
loops. StyleGAN's (`training/networks_stylegan.py`): nearest upsampling then a "SAME" 3x3
convolution, a 3x3 convolution then 2x2 average pooling, the normalised [1, 2, 1] depthwise blur.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.nn import resample

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 8, 8, 3))


def _kernel(f):
    k = np.outer(f, f).astype(np.float64)
    return k / k.sum()


def upfirdn_ref(x, k, up, down, pad0, pad1):
    n, h, w, c = x.shape
    z = np.zeros((n, h, up, w, up, c))
    z[:, :, 0, :, 0, :] = x
    x = z.reshape(n, h * up, w * up, c)
    x = np.pad(x, ((0, 0), (max(pad0, 0), max(pad1, 0)), (max(pad0, 0), max(pad1, 0)), (0, 0)))
    x = x[:, max(-pad0, 0) : x.shape[1] - max(-pad1, 0), max(-pad0, 0) : x.shape[2] - max(-pad1, 0)]
    kf, kk = k[::-1, ::-1], k.shape[0]
    oh, ow = x.shape[1] - kk + 1, x.shape[2] - kk + 1
    y = np.zeros((n, oh, ow, c))
    for i in range(kk):
        for j in range(kk):
            y += kf[i, j] * x[:, i : i + oh, j : j + ow]
    return y[:, ::down, ::down]


def conv2d_transpose_ref(x, w_tf, out_h, out_w):
    """tf.nn.conv2d_transpose, stride 2, "VALID", filter [kh, kw, Cout, Cin]: x scattered through it."""
    n, h, w, _ = x.shape
    kh = w_tf.shape[0]
    y = np.zeros((n, out_h, out_w, w_tf.shape[2]))
    for i in range(h):
        for j in range(w):
            y[:, 2 * i : 2 * i + kh, 2 * j : 2 * j + kh] += np.einsum("nc,abdc->nabd", x[:, i, j], w_tf)
    return y


def upsample_conv_ref(x, w, f):
    k, kh = _kernel(f) * 4, w.shape[0]
    p = (k.shape[0] - 2) - (kh - 1)
    w_tf = np.transpose(w[::-1, ::-1], (0, 1, 3, 2))  # the reference flips the weights and swaps in/out
    _, h, ww, _ = x.shape
    y = conv2d_transpose_ref(x, w_tf, (h - 1) * 2 + kh, (ww - 1) * 2 + kh)
    return upfirdn_ref(y, k, 1, 1, (p + 1) // 2 + 1, p // 2 + 1)


def conv_down_ref(x, w, f):
    k, kh = _kernel(f), w.shape[0]
    p = (k.shape[0] - 2) + (kh - 1)
    y = upfirdn_ref(x, k, 1, 1, (p + 1) // 2, p // 2)
    oh = (y.shape[1] - kh) // 2 + 1
    out = np.zeros((y.shape[0], oh, oh, w.shape[3]))
    for i in range(oh):
        for j in range(oh):
            out[:, i, j] = np.einsum("nabc,abcd->nd", y[:, 2 * i : 2 * i + kh, 2 * j : 2 * j + kh], w)
    return out


def _j(a):
    return jnp.asarray(a, jnp.float32)


@pytest.mark.parametrize("kh", [3, 1])
@pytest.mark.parametrize("matmul", [False, True])
def test_stylegan2_resampling_convolutions_are_the_references(kh, matmul):
    f = (1, 3, 3, 1)
    w = RNG.normal(size=(kh, kh, 3, 4))
    up = resample.upsample_conv2d(_j(X), _j(w), f, matmul)
    np.testing.assert_allclose(up, upsample_conv_ref(X, w, f), atol=1e-5)
    assert up.shape == (2, 16, 16, 4)
    down = resample.conv_downsample2d(_j(X), _j(w), f, matmul)
    np.testing.assert_allclose(down, conv_down_ref(X, w, f), atol=1e-5)
    assert down.shape == (2, 4, 4, 4)


def test_stylegan2_image_resampling_is_the_references():
    f = (1, 3, 3, 1)
    np.testing.assert_allclose(resample.upsample2d(_j(X), f), upfirdn_ref(X, _kernel(f) * 4, 2, 1, 2, 1), atol=1e-5)
    np.testing.assert_allclose(resample.downsample2d(_j(X), f), upfirdn_ref(X, _kernel(f), 1, 2, 1, 1), atol=1e-5)
    # a constant image stays constant away from the border (gain 1 per output pixel)
    ones = jnp.ones((1, 8, 8, 1))
    np.testing.assert_allclose(resample.upsample2d(ones, f)[0, 2:-2, 2:-2], 1.0, atol=1e-6)


@pytest.mark.parametrize("matmul", [False, True])
def test_stylegan_fused_resampling_is_upsample_then_conv_and_conv_then_pool(matmul):
    w = _j(RNG.normal(size=(3, 3, 3, 4)))
    x = _j(X)
    dims = ("NHWC", "HWIO", "NHWC")
    nearest = jnp.repeat(jnp.repeat(x, 2, 1), 2, 2)
    want_up = jax.lax.conv_general_dilated(nearest, w, (1, 1), "SAME", dimension_numbers=dims)
    np.testing.assert_allclose(resample.upscale_conv2d(x, w, matmul), want_up, atol=1e-4)
    conv = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dims)
    want_down = conv.reshape(2, 4, 2, 4, 2, 4).mean((2, 4))
    np.testing.assert_allclose(resample.conv_downscale2d(x, w, matmul), want_down, atol=1e-4)


def test_stylegan_blur_is_the_normalised_depthwise_121_filter():
    x = _j(X)
    k = jnp.tile(jnp.asarray(_kernel((1, 2, 1)), jnp.float32)[:, :, None, None], (1, 1, 1, 3))
    want = jax.lax.conv_general_dilated(
        x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3
    )
    np.testing.assert_allclose(resample.blur2d(x), want, atol=1e-6)
    with pytest.raises(ValueError, match="odd filter"):
        resample.blur2d(x, (1, 1))
