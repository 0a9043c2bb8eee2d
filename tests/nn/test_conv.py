"""The fast convolution forms against XLA's own: the sub-pixel transposed convolution (3x3, 4x4 and
5x5 kernels, "SAME" and "VALID", as a convolution or one matrix product) and the im2col matrix-product
convolution, with their gradients and inside `lax.cond`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.nn.conv import ConvTranspose2x, conv2d, conv_transpose_2x


@pytest.mark.parametrize("k", [3, 4, 5])
def test_subpixel_transposed_convolution_is_nn_conv_transpose(k):
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 5))
    ref = nn.ConvTranspose(6, (k, k), strides=(2, 2), padding="SAME")
    p = ref.init(jax.random.key(1), x)
    want = ref.apply(p, x)
    for method in ("subpixel", "matmul", "xla"):
        got = ConvTranspose2x(6, k, method=method).apply(p, x)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # and its gradients
    gw = jax.grad(lambda p: jnp.sum(ref.apply(p, x) ** 2))(p)
    gs = jax.grad(lambda p: jnp.sum(ConvTranspose2x(6, k, method="matmul").apply(p, x) ** 2))(p)
    np.testing.assert_allclose(gs["params"]["kernel"], gw["params"]["kernel"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,padding", [(3, "SAME"), (4, "VALID"), (5, "VALID"), (3, "VALID")])
@pytest.mark.parametrize("shape", [(5, 3), (1, 1), (6, 4)])
def test_transposed_convolution_matches_lax_on_odd_sizes(k, padding, shape):
    x = jax.random.normal(jax.random.key(2), (2, *shape, 3))
    w = jax.random.normal(jax.random.key(3), (k, k, 3, 4))
    want = jax.lax.conv_transpose(x, w, (2, 2), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    for matmul in (False, True):
        got = conv_transpose_2x(x, w, padding, matmul=matmul)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_unsupported_kernel_sizes_are_refused():
    with pytest.raises(ValueError, match="kernels of"):
        conv_transpose_2x(jnp.zeros((1, 4, 4, 2)), jnp.zeros((7, 7, 2, 3)))


@pytest.mark.parametrize("k,stride,pad", [(3, 1, "SAME"), (1, 1, "SAME"), (4, 2, ((1, 1), (1, 1))), (3, 2, "VALID")])
def test_matmul_convolution_is_lax_conv_with_its_gradients_and_inside_cond(k, stride, pad):
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    w = jax.random.normal(jax.random.key(1), (k, k, 3, 5))
    want = conv2d(x, w, stride, pad)
    np.testing.assert_allclose(conv2d(x, w, stride, pad, matmul=True), want, atol=1e-4)

    def loss(x, w, matmul):
        return jnp.sum(jnp.sin(conv2d(x, w, stride, pad, matmul=matmul)))

    for a, b in zip(jax.grad(loss, (0, 1))(x, w, True), jax.grad(loss, (0, 1))(x, w, False), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    in_cond = jax.jit(lambda p: jax.lax.cond(p, lambda: conv2d(x, w, stride, pad, True), lambda: 0.0 * want))
    np.testing.assert_allclose(in_cond(True), want, atol=1e-4)
