"""The DDPM U-Net (Ho et al., 2020; the PixelCNN++-style backbone of their `diffusion` code).

Sinusoidal embedding of the timestep -> two dense layers (4 x base channels, swish); a 3x3 input
conv; per resolution `num_res_blocks` residual blocks (GroupNorm, swish, conv, + the projected time
embedding, GroupNorm, swish, dropout, conv), self-attention after each block at the resolutions in
`attn_resolutions`, and a stride-2 conv down to the next resolution; a middle block, attention,
block; the mirror path up with skip connections (one more block per resolution), nearest-neighbour
upsampling + conv; GroupNorm, swish and a zero-initialised 3x3 output conv. The last conv of every
residual block and attention projection is zero-initialised too, as in the paper's code. GroupNorm
has the paper's 32 groups, fewer in narrow layers so that a group keeps at least 4 channels.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
    """Transformer sinusoidal embedding of integer timesteps [B] -> [B, dim] (sin half, cos half)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / max(half - 1, 1))
    args = t.astype(jnp.float32)[:, None] * freqs[None]
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    return jnp.pad(emb, ((0, 0), (0, dim - 2 * half)))


def _groups(c: int, groups: int = 32) -> int:
    """32 groups (the paper's), or fewer for narrow layers so that each group keeps at least 4
    channels: with one channel per group GroupNorm would subtract the per-channel time embedding a
    residual block adds before it."""
    g = max(1, min(groups, c // 4))
    while c % g:
        g -= 1
    return g


def _norm(x):
    return nn.GroupNorm(num_groups=_groups(x.shape[-1]), epsilon=1e-6)(x)


class ResBlock(nn.Module):
    out: int
    dropout: float

    @nn.compact
    def __call__(self, x, temb, train: bool):
        h = nn.Conv(self.out, (3, 3))(nn.swish(_norm(x)))
        h = h + nn.Dense(self.out)(nn.swish(temb))[:, None, None, :]
        h = nn.swish(_norm(h))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        h = nn.Conv(self.out, (3, 3), kernel_init=nn.initializers.zeros)(h)
        if x.shape[-1] != self.out:
            x = nn.Dense(self.out)(x)  # the 1x1 "nin" shortcut
        return x + h


class AttnBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        b, h, w, c = x.shape
        y = _norm(x).reshape(b, h * w, c)
        q, k, v = nn.Dense(c)(y), nn.Dense(c)(y), nn.Dense(c)(y)
        att = jax.nn.softmax(jnp.einsum("bic,bjc->bij", q, k) / math.sqrt(c), axis=-1)
        out = nn.Dense(c, kernel_init=nn.initializers.zeros)(jnp.einsum("bij,bjc->bic", att, v))
        return x + out.reshape(b, h, w, c)


class UNet(nn.Module):
    """eps_theta(x_t, t): [B, H, W, C], [B] int -> [B, H, W, C].

    Attributes:
      ch: base channels (paper, CIFAR-10: 128).
      ch_mult: channel multiplier per resolution (paper: (1, 2, 2, 2)).
      num_res_blocks: residual blocks per resolution (paper: 2).
      attn_resolutions: feature-map sides with self-attention (paper: (16,)).
      dropout: dropout rate in the residual blocks (paper, CIFAR-10: 0.1).
    """

    ch: int = 128
    ch_mult: tuple = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple = (16,)
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x, t, train: bool = False):
        temb = timestep_embedding(t, self.ch).astype(x.dtype)  # in x's (compute) dtype, so bf16 stays bf16
        temb = nn.Dense(4 * self.ch)(temb)
        temb = nn.Dense(4 * self.ch)(nn.swish(temb))
        hs = [nn.Conv(self.ch, (3, 3))(x)]
        for i, mult in enumerate(self.ch_mult):
            for _ in range(self.num_res_blocks):
                h = ResBlock(self.ch * mult, self.dropout)(hs[-1], temb, train)
                if h.shape[1] in self.attn_resolutions:
                    h = AttnBlock()(h)
                hs.append(h)
            if i != len(self.ch_mult) - 1:
                hs.append(nn.Conv(hs[-1].shape[-1], (3, 3), strides=(2, 2))(hs[-1]))
        h = hs[-1]
        h = ResBlock(h.shape[-1], self.dropout)(h, temb, train)
        h = AttnBlock()(h)
        h = ResBlock(h.shape[-1], self.dropout)(h, temb, train)
        for i, mult in reversed(list(enumerate(self.ch_mult))):
            for _ in range(self.num_res_blocks + 1):
                h = ResBlock(self.ch * mult, self.dropout)(jnp.concatenate([h, hs.pop()], -1), temb, train)
                if h.shape[1] in self.attn_resolutions:
                    h = AttnBlock()(h)
            if i != 0:
                b, hh, ww, c = h.shape
                h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), "nearest")
                h = nn.Conv(c, (3, 3))(h)
        h = nn.swish(_norm(h))
        return nn.Conv(x.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)
