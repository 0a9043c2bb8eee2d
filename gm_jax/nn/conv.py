"""Layers whose function is the usual one, computed in a form XLA runs fast on every backend.

`ConvTranspose2x` is `nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")` (the DCGAN
generator's fractionally-strided convolution, PyTorch's ConvTranspose2d(k=4, s=2, p=1)) with the same
parameters. On XLA:CPU the backward pass of the strided transposed convolution is an order of
magnitude slower than a regular convolution's, so by default the layer is computed in sub-pixel form:
with the input padded by one pixel, output pixel (2i + a, 2j + b) depends on input pixels
{i - 1 + a, i + a} x {j - 1 + b, j + b} through kernel taps {a, a + 2} x {b, b + 2}. One 2x2
convolution with 4x the output channels (kernel w[2t + a, 2s + b] for tap (t, s) and phase (a, b))
computes all four phases; each phase is a shifted window of its result, and interleaving the phases
(depth to space) gives the output. Same multiply-adds as the transposed convolution, no zeros
inserted. `method="matmul"` computes the 2x2 convolution as one matrix product (im2col);
`method="xla"` computes the layer with `lax.conv_transpose`, for comparison.

Measured on XLA:CPU (2 cores, `benchmarks/dcgan_step.py` and the WGAN step at 16x16, batch 64):
"matmul" is the fastest form, and the only one that stays fast inside `lax.cond`, where the
generator update of a critic schedule runs: one WGAN step with a generator update took 630 ms with
"subpixel" or "xla" inside the cond and 89 ms with "matmul" (41 ms without the update).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
    """kernel [4, 4, Cin, Cout] -> the 2x2 kernel [2, 2, Cin, 4 Cout] of the four output phases:
    column (a, b, o) holds taps {a, a + 2} x {b, b + 2} of output channel o (phase-major)."""
    ci, co = kernel.shape[2], kernel.shape[3]
    return kernel.reshape(2, 2, 2, 2, ci, co).transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, ci, 4 * co)


def conv_transpose_2x(
    x: jax.Array, kernel: jax.Array, matmul: bool = False, phase_scale: jax.Array | None = None
) -> jax.Array:
    """x [N, H, W, Cin], kernel [4, 4, Cin, Cout] (HWIO, as nn.ConvTranspose keeps it) -> [N, 2H, 2W, Cout].

    `matmul=True` computes the 2x2 convolution as one matrix product over the four shifted windows
    (im2col), faster on XLA:CPU for wide inputs. `phase_scale` [N, 4 Cout] (the column order of
    `subpixel_kernel`) multiplies each example's output per phase and channel, e.g. StyleGAN2's
    demodulation, which is exact per phase because each phase has its own four taps.
    """
    n, h, w, ci = x.shape
    co = kernel.shape[3]
    k2 = subpixel_kernel(kernel)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if matmul:
        patches = jnp.concatenate([xp[:, t : t + h + 1, s : s + w + 1] for t in range(2) for s in range(2)], -1)
        y = patches.reshape(-1, 4 * ci) @ k2.reshape(4 * ci, 4 * co)
    else:
        y = jax.lax.conv_general_dilated(xp, k2, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(n, h + 1, w + 1, 4 * co)
    if phase_scale is not None:
        y = y * phase_scale[:, None, None, :]
    y = y.reshape(n, h + 1, w + 1, 2, 2, co)  # [N, H+1, W+1, a, b, Cout]
    phases = [[y[:, a : a + h, b : b + w, a, b] for b in range(2)] for a in range(2)]
    out = jnp.stack([jnp.stack(row, 3) for row in phases], 2)  # [N, H, a, W, b, Cout]
    return out.reshape(n, 2 * h, 2 * w, co)


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: Any = "SAME", matmul: bool = False) -> jax.Array:
    """x [N, H, W, Cin] convolved with kernel [k, k, Cin, Cout] (HWIO; cross-correlation, as
    `lax.conv_general_dilated`), `padding` "SAME", "VALID" or ((top, bottom), (left, right)).

    `matmul=True` computes it as one matrix product over the k x k shifted (strided) windows of the
    padded input (im2col): the same multiply-adds, k^2 times the input's memory for the patches, and
    on XLA:CPU the form that stays fast inside `lax.cond` (where a convolution is not).
    """
    if not matmul:
        return jax.lax.conv_general_dilated(
            x, kernel, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    n, h, w, ci = x.shape
    k, co = kernel.shape[0], kernel.shape[3]
    if padding == "SAME":
        out_h, out_w = -(-h // stride), -(-w // stride)
        ph, pw = max((out_h - 1) * stride + k - h, 0), max((out_w - 1) * stride + k - w, 0)
        padding = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    elif padding == "VALID":
        padding = ((0, 0), (0, 0))
    (pt, pb), (pl, pr) = padding
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out_h = (h + pt + pb - k) // stride + 1
    out_w = (w + pl + pr - k) // stride + 1
    if k == 1 and stride == 1:
        patches = xp
    else:
        patches = jnp.concatenate(
            [
                xp[:, t : t + stride * (out_h - 1) + 1 : stride, s : s + stride * (out_w - 1) + 1 : stride]
                for t in range(k)
                for s in range(k)
            ],
            -1,
        )
    y = patches.reshape(-1, k * k * ci) @ kernel.reshape(k * k * ci, co)
    return y.reshape(n, out_h, out_w, co)


class ConvTranspose2x(nn.Module):
    """A 4x4, stride-2, "SAME" transposed convolution (output twice the input's size), parameters
    named and shaped as `nn.ConvTranspose`'s ("kernel" [4, 4, Cin, Cout], "bias" [Cout])."""

    features: int
    use_bias: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros
    method: str = "subpixel"  # "subpixel" (2x2 convolution), "matmul" (the same as one matrix product), "xla"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
        if self.method == "xla":
            y = jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        elif self.method in ("subpixel", "matmul"):
            y = conv_transpose_2x(x, kernel, matmul=self.method == "matmul")
        else:
            raise ValueError(f"ConvTranspose2x.method must be subpixel, matmul or xla, got {self.method!r}")
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,))
        return y
