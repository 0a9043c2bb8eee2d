"""Resampling with FIR low-pass filters, as the StyleGAN papers' code does it, on NHWC arrays.

Two generations of the same idea:

- StyleGAN (NVlabs `stylegan`, `training/networks_stylegan.py`): a 3x3 convolution after nearest-
  neighbour upsampling (`upscale_conv2d`), or before 2x2 average pooling (`conv_downscale2d`),
  computed fused as one 4x4 (transposed) convolution whose kernel is the 3x3 weights summed over
  the four 2x2 shifts (the reference's `fused_scale` form; `upscale2d_conv2d` / `conv2d_downscale2d`
  compute the same function at every resolution), with a separate [1, 2, 1] blur (`blur2d`)
  after the upsampling and before the downsampling convolution.
- StyleGAN2 (NVlabs `stylegan2`, `dnnlib/tflib/ops/upfirdn_2d.py`): `upfirdn2d` (pad, insert
  zeros, convolve with the FIR filter, drop samples) with the [1, 3, 3, 1] filter;
  `upsample_conv2d` is the stride-2 "VALID" transposed convolution of the 3x3 weights followed by
  the filter (gain 4), `conv_downsample2d` the filter followed by the stride-2 "VALID" convolution,
  `upsample2d` / `downsample2d` the filter alone (the skip generator's and discriminator's images,
  the residual networks' 1x1 shortcuts).

Every filter is separable: the 2-D kernel is the outer product of the 1-D filter with itself,
normalised to sum 1 (times the gain), applied as two 1-D passes of shifted slices (no convolution
op, so it fuses and stays fast inside `lax.cond` on XLA:CPU). The transposed convolutions go
through the sub-pixel form of `gm_jax.nn.conv`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.nn.conv import conv2d, conv_transpose_2x


def _filter(f: Sequence[float]) -> np.ndarray:
    f = np.asarray(f, np.float64)
    if f.ndim != 1 or len(f) < 1 or not np.all(np.isfinite(f)) or f.sum() == 0:
        raise ValueError(f"a resampling filter is a 1-D sequence of finite taps with a non-zero sum, got {f!r}")
    return f / f.sum()


def _upfirdn_axis(x: jax.Array, f: np.ndarray, axis: int, up: int, down: int, pad0: int, pad1: int) -> jax.Array:
    """One axis of `upfirdn2d`: insert up - 1 zeros after every sample, pad (crop if negative),
    convolve with f (the true convolution: f flipped, then correlated), keep every down-th sample."""
    n = x.shape[axis]
    if up > 1:
        z = jnp.expand_dims(x, axis + 1)
        z = jnp.concatenate([z] + [jnp.zeros_like(z)] * (up - 1), axis + 1)
        x = z.reshape(x.shape[:axis] + (n * up,) + x.shape[axis + 1 :])
    pads = [(0, 0)] * x.ndim
    pads[axis] = (max(pad0, 0), max(pad1, 0))
    x = jnp.pad(x, pads)
    length = x.shape[axis]
    x = jax.lax.slice_in_dim(x, max(-pad0, 0), length - max(-pad1, 0), axis=axis)
    k = len(f)
    out = x.shape[axis] - k + 1
    taps = f[::-1]
    y = None
    for j in range(k):
        if taps[j] == 0:
            continue
        term = float(taps[j]) * jax.lax.slice_in_dim(x, j, j + out, axis=axis)
        y = term if y is None else y + term
    if y is None:
        y = jnp.zeros(x.shape[:axis] + (out,) + x.shape[axis + 1 :], x.dtype)
    if down > 1:
        y = jax.lax.slice_in_dim(y, 0, out, stride=down, axis=axis)
    return y


def upfirdn2d(
    x: jax.Array, f: Sequence[float], up: int = 1, down: int = 1, pad: tuple = (0, 0), gain: float = 1.0
) -> jax.Array:
    """The reference's `upfirdn_2d` on x [N, H, W, C] with the separable filter outer(f, f) / sum^2
    times `gain`, the same padding (pad0, pad1) on both spatial axes."""
    f1 = _filter(f) * np.sqrt(gain)
    x = _upfirdn_axis(x, f1, 1, up, down, *pad)
    return _upfirdn_axis(x, f1, 2, up, down, *pad)


def filter2d(x: jax.Array, f: Sequence[float]) -> jax.Array:
    """Low-pass filter, same size out (`filter_2d`: padding ((K - 1 + 1) // 2, (K - 1) // 2))."""
    p = len(f) - 1
    return upfirdn2d(x, f, pad=((p + 1) // 2, p // 2))


def upsample2d(x: jax.Array, f: Sequence[float], factor: int = 2) -> jax.Array:
    """[N, H, W, C] -> [N, 2H, 2W, C]: zeros inserted, then the filter with gain factor^2."""
    p = len(f) - factor
    return upfirdn2d(x, f, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2), gain=factor**2)


def downsample2d(x: jax.Array, f: Sequence[float], factor: int = 2) -> jax.Array:
    """[N, H, W, C] -> [N, H/2, W/2, C]: the filter, then every second sample."""
    p = len(f) - factor
    return upfirdn2d(x, f, down=factor, pad=((p + 1) // 2, p // 2))


def upsample_conv2d(x: jax.Array, w: jax.Array, f: Sequence[float], matmul: bool = False) -> jax.Array:
    """StyleGAN2's `upsample_conv_2d`: the stride-2 "VALID" transposed convolution of x [N, H, W, Ci]
    with w [k, k, Ci, Co] (odd k), then the filter (gain 4) cropped to [N, 2H, 2W, Co]."""
    k = w.shape[0]
    y = conv_transpose_2x(x, w, "VALID", matmul=matmul) if k > 1 else _stride2_scatter(x @ w[0, 0])
    p = (len(f) - 2) - (k - 1)
    return upfirdn2d(y, f, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)


def _stride2_scatter(y: jax.Array) -> jax.Array:
    """A 1x1 stride-2 "VALID" transposed convolution's placement: [N, H, W, C] -> [N, 2H-1, 2W-1, C]."""
    n, h, w, c = y.shape
    z = jnp.zeros((n, h, 2, w, 2, c), y.dtype).at[:, :, 0, :, 0].set(y).reshape(n, 2 * h, 2 * w, c)
    return z[:, : 2 * h - 1, : 2 * w - 1]


def conv_downsample2d(x: jax.Array, w: jax.Array, f: Sequence[float], matmul: bool = False) -> jax.Array:
    """StyleGAN2's `conv_downsample_2d`: the filter, then the stride-2 "VALID" convolution with w
    [k, k, Ci, Co]: [N, H, W, Ci] -> [N, H/2, W/2, Co]."""
    k = w.shape[0]
    p = (len(f) - 2) + (k - 1)
    y = upfirdn2d(x, f, pad=((p + 1) // 2, p // 2))
    return conv2d(y, w, 2, "VALID", matmul=matmul)


def box4(w: jax.Array) -> jax.Array:
    """3x3 weights [3, 3, Ci, Co] -> the 4x4 kernel summing them over the four 2x2 shifts."""
    p = jnp.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return p[1:, 1:] + p[:-1, 1:] + p[1:, :-1] + p[:-1, :-1]


def upscale_conv2d(x: jax.Array, w: jax.Array, matmul: bool = False) -> jax.Array:
    """StyleGAN's `upscale2d_conv2d`: nearest-neighbour 2x upsampling then the "SAME" convolution with
    w [3, 3, Ci, Co], computed as one 4x4 stride-2 transposed convolution."""
    return conv_transpose_2x(x, box4(w), "SAME", matmul=matmul)


def conv_downscale2d(x: jax.Array, w: jax.Array, matmul: bool = False) -> jax.Array:
    """StyleGAN's `conv2d_downscale2d`: the "SAME" convolution with w [3, 3, Ci, Co] then 2x2 average
    pooling, computed as one 4x4 stride-2 convolution."""
    return conv2d(x, box4(w) * 0.25, 2, ((1, 1), (1, 1)), matmul=matmul)


def blur2d(x: jax.Array, f: Sequence[float] = (1, 2, 1)) -> jax.Array:
    """StyleGAN's `blur2d`: the normalised filter, "SAME" (odd, symmetric filters)."""
    if len(f) % 2 == 0:
        raise ValueError(f"blur2d takes an odd filter, got {tuple(f)}")
    return filter2d(x, f)
