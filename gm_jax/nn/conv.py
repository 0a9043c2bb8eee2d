"""Layers whose function is the usual one, computed in a form XLA runs fast on every backend.

`conv_transpose_2x(x, kernel, padding)` is `lax.conv_transpose(x, kernel, (2, 2), padding)` (Flax's
`nn.ConvTranspose(features, (k, k), strides=(2, 2), padding=...)` with the same parameters): "SAME"
doubles the size (the DCGAN generator's fractionally-strided convolution: PyTorch's
ConvTranspose2d(k=4, s=2, p=1), or the 5x5 form of the DCGAN and WGAN-GP authors' code), "VALID"
gives 2H + k - 2 (StyleGAN2's `upsample_conv_2d` before its FIR filter). On XLA:CPU the backward
pass of the strided transposed convolution is an order of magnitude slower than a regular
convolution's, so by default the layer is computed in sub-pixel form: output pixel 2m + a of phase
a in {0, 1} depends on the input pixels m + d for a run of consecutive offsets d, through the kernel
taps t with t = 2 d - a + pad (`phase_plan`). One L x L convolution with 4x the output channels
(the four phases (a, b), each phase's taps placed in a common window, zeros where a phase has fewer
taps) computes all four phases on a grid slightly larger than the input; each phase is a shifted
window of its result, and interleaving the phases (depth to space) gives the output. No zeros are
inserted between the input pixels. `matmul=True` computes the L x L convolution as one matrix
product over the shifted windows (im2col); `method="xla"` in `ConvTranspose2x` calls
`lax.conv_transpose`, for comparison. Kernel sizes 3, 4 and 5 (`SUBPIXEL_KERNELS`) are supported.

Multiply-adds per output pixel and input channel against the transposed convolution's own
(k^2 / 4): 4x4 "SAME" 1.27-1.56x (a 2 x 2 window on an (H + 1)^2 grid), 5x5 "SAME" 1.44x (3 x 3 on
H^2), 3x3 "VALID" 1.78x (2 x 2 on (H + 1)^2).

Measured on XLA:CPU (2 cores, `benchmarks/dcgan_step.py` and the WGAN step at 16x16, batch 64, 4x4
kernels): "matmul" is the fastest form, and the only one that stays fast inside `lax.cond`, where
the generator update of a critic schedule runs: one WGAN step with a generator update took 630 ms
with "subpixel" or "xla" inside the cond and 89 ms with "matmul" (41 ms without the update).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SUBPIXEL_KERNELS = (3, 4, 5)


class PhasePlan(NamedTuple):
    """How one axis of a stride-2 transposed convolution splits into two phases.

    Attributes:
      taps: per phase a, the kernel taps at window positions 0..window-1 (-1: none).
      shift: per phase a, where its outputs start on the common grid.
      count: per phase a, its number of outputs.
      lo: the input offset of window position 0 at grid position 0.
      window: the common window length L.
      grid: the grid length the L-window convolution is computed on.
      pad: (left, right) zero padding of the input for that grid.
      out: the output length.
    """

    taps: tuple
    shift: tuple
    count: tuple
    lo: int
    window: int
    grid: int
    pad: tuple
    out: int


@functools.cache
def phase_plan(k: int, n: int, padding: str) -> PhasePlan:
    """The sub-pixel plan of `lax.conv_transpose` with kernel size k, stride 2, input length n.

    `lax.conv_transpose` pads the 2x-dilated input by (pad_a, pad_b) and correlates it with the
    kernel: out[o] = sum_t xd[o + t - pad_a] K[t], xd[2i] = x[i]. Output o = 2m + a therefore reads
    x[m + d] through tap t = 2d - a + pad_a for the t of matching parity.
    """
    if padding == "SAME":
        pad_len = k  # k + s - 2 with s = 2
        pad_a = k - 1 if 2 > k - 1 else -(-pad_len // 2)
    elif padding == "VALID":
        pad_len = k + max(k - 2, 0)
        pad_a = k - 1
    else:
        raise ValueError(f"padding must be SAME or VALID, got {padding!r}")
    out = 2 * n - 1 + pad_len - k + 1
    taps, first, counts = [], [], []
    for a in (0, 1):
        ts = [t for t in range(k) if (a + t - pad_a) % 2 == 0]
        taps.append(ts)
        first.append((a + ts[0] - pad_a) // 2)
        counts.append(-(-(out - a) // 2))
    lo = min(first)
    window = max(len(ts) for ts in taps)
    shift = tuple(f - lo for f in first)  # phase a's output m is grid position m + shift[a]
    grid = max(c + s for c, s in zip(counts, shift, strict=True))
    table = tuple(tuple(ts) + (-1,) * (window - len(ts)) for ts in taps)
    # grid position q reads input pixels q + lo .. q + lo + window - 1
    pad_l = max(0, -lo)
    pad_r = max(0, (grid - 1) + lo + window - 1 - (n - 1))
    return PhasePlan(table, shift, tuple(counts), lo, window, grid, (pad_l, pad_r), out)


def subpixel_kernel(kernel: jax.Array, padding: str = "SAME") -> jax.Array:
    """kernel [k, k, Cin, Cout] -> the L x L kernel [L, L, Cin, 4 Cout] of the four output phases:
    column (a, b, o) holds phase (a, b)'s taps of output channel o (phase-major), zeros elsewhere."""
    k, ci, co = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    plan = phase_plan(k, 8, padding)  # the taps do not depend on the length
    idx = np.asarray(plan.taps)  # [2, L]
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    # k2[j, l, ci, a, b, co] = kernel[taps[a][j], taps[b][l], ci, co]
    g = kernel[safe[:, :, None, None], safe[None, None, :, :]]  # [2(a), L(j), 2(b), L(l), ci, co]
    mask = (valid[:, :, None, None] & valid[None, None, :, :]).astype(kernel.dtype)
    g = g * mask[..., None, None]
    return g.transpose(1, 3, 4, 0, 2, 5).reshape(plan.window, plan.window, ci, 4 * co)


def conv_transpose_2x(x: jax.Array, kernel: jax.Array, padding: str = "SAME", matmul: bool = False) -> jax.Array:
    """x [N, H, W, Cin], kernel [k, k, Cin, Cout] (HWIO, as nn.ConvTranspose keeps it) ->
    `lax.conv_transpose(x, kernel, (2, 2), padding)`: [N, 2H, 2W, Cout] for "SAME", [N, 2H + k - 2,
    2W + k - 2, Cout] for "VALID".

    `matmul=True` computes the window convolution as one matrix product over the shifted windows
    (im2col), faster on XLA:CPU for wide inputs.
    """
    n, h, w, ci = x.shape
    k, co = kernel.shape[0], kernel.shape[3]
    if k not in SUBPIXEL_KERNELS or kernel.shape[1] != k:
        raise ValueError(f"the sub-pixel transposed convolution takes square kernels of {SUBPIXEL_KERNELS}, got {k}")
    ph, pw = phase_plan(k, h, padding), phase_plan(k, w, padding)
    L = ph.window
    k2 = subpixel_kernel(kernel, padding)
    xp = jnp.pad(x, ((0, 0), ph.pad, pw.pad, (0, 0)))
    # the padded input index of window position 0 at grid position 0 is lo + pad_l
    oh, ow = ph.lo + ph.pad[0], pw.lo + pw.pad[0]
    xp = xp[:, oh : oh + ph.grid + L - 1, ow : ow + pw.grid + L - 1]
    if matmul:
        patches = jnp.concatenate([xp[:, t : t + ph.grid, s : s + pw.grid] for t in range(L) for s in range(L)], -1)
        y = patches.reshape(-1, L * L * ci) @ k2.reshape(L * L * ci, 4 * co)
    else:
        y = jax.lax.conv_general_dilated(xp, k2, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(n, ph.grid, pw.grid, 2, 2, co)  # [N, grid, grid, a, b, Cout]
    mh, mw = max(ph.count), max(pw.count)
    rows = []
    for a in (0, 1):
        cols = []
        for b in (0, 1):
            p = y[:, ph.shift[a] : ph.shift[a] + ph.count[a], pw.shift[b] : pw.shift[b] + pw.count[b], a, b]
            p = jnp.pad(p, ((0, 0), (0, mh - ph.count[a]), (0, mw - pw.count[b]), (0, 0)))
            cols.append(p)
        rows.append(jnp.stack(cols, 3))  # [N, mh, mw, b, Cout]
    out = jnp.stack(rows, 2)  # [N, mh, a, mw, b, Cout]
    return out.reshape(n, 2 * mh, 2 * mw, co)[:, : ph.out, : pw.out]


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
    """A k x k, stride-2, "SAME" transposed convolution (output twice the input's size), parameters
    named and shaped as `nn.ConvTranspose`'s ("kernel" [k, k, Cin, Cout], "bias" [Cout])."""

    features: int
    kernel_size: int = 4
    use_bias: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros
    method: str = "subpixel"  # "subpixel" (window convolution), "matmul" (the same as one matrix product), "xla"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        if self.method == "xla":
            y = jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        elif self.method in ("subpixel", "matmul"):
            y = conv_transpose_2x(x, kernel, matmul=self.method == "matmul")
        else:
            raise ValueError(f"ConvTranspose2x.method must be subpixel, matmul or xla, got {self.method!r}")
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,))
        return y
