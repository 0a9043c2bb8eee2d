"""Denoising diffusion probabilistic models (Ho et al., 2020) with DDIM sampling (Song et al., 2020).

Indexing: the paper's t = 1..T is index i = t - 1 = 0..T-1 here; `betas[i]` is beta_t,
`alphas_cumprod[i]` is alpha-bar_t, and alpha-bar_0 = 1.

- Forward process: linear betas from `beta_start` 1e-4 to `beta_end` 0.02 over T = 1000 steps, or
  the cosine schedule (Nichol & Dhariwal 2021, s = 0.008, betas clipped at 0.999);
  q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) in closed form. Data k / (L - 1) is scaled to
  [-1, 1].
- Training: L_simple = E_{t, eps} |eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t)|^2 with
  t uniform; the U-Net of `gm_jax.nn.unet`; EMA of the weights (`optim.ema_decay`, 0.9999 at paper
  scale) for evaluation and sampling; random horizontal flips as an option (`model.random_flip`).
- Reverse variance (`sample.variance`): "beta" (sigma_t^2 = beta_t) or "beta_tilde" (the posterior
  variance (1 - abar_{t-1}) / (1 - abar_t) beta_t). As in the paper's code, the t = 1 decoder uses
  beta-tilde_2 under both, since beta-tilde_1 = 0.
- Sampling (`sample.sampler`): "ancestral" runs all T steps, x_{t-1} = mu_theta(x_t, t) + sigma_t z
  (no noise at the last step), with x_0-hat clipped to [-1, 1] before forming the posterior mean
  (`sample.clip_denoised`, the paper code's default); "ddim" runs `sample.steps` = S steps on the
  timesteps `sample.spacing` = "uniform" (floor(i T / S), i < S) or "quadratic" (int(c i^2) up to 0.8 T,
  duplicates dropped, as in Song et al.'s CIFAR-10 runs) with
  x_prev = sqrt(abar_prev) x0-hat + sqrt(1 - abar_prev - s^2) eps-hat + s z and
  s = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev): eta = 0 is deterministic
  given x_T, eta = 1 with S = T is the ancestral sampler with beta-tilde. Either chain runs in one
  compiled `lax.fori_loop` / `lax.scan`.
- Evaluation: the variational bound L_vlb = L_T + sum_{t>=2} L_{t-1} + L_0 per test example in
  bits/dim, L_0 = -log of the discretised Gaussian decoder over the data's levels (bins of width
  2 / (L - 1) in [-1, 1], open at the ends), each group logged: vlb_prior_bpd (L_T), vlb_decoder_bpd
  (L_0), vlb_diffusion_bpd (the sum), and its quarters vlb_q{1..4}_bpd by t. The sum runs over all
  T - 1 terms (`eval.vlb_terms` = 0), in compiled chunks of `eval.vlb_batch` timesteps, or over
  `eval.vlb_terms` = K timesteps drawn one from each of K geometric strata (`vlb_strata`: the
  first timesteps, where the terms are largest, exactly; each draw weighted by its stratum's width:
  an unbiased estimate, for periodic evaluations). x_0-hat is clipped there too
  (`eval.clip_denoised`), as in the paper's evaluation. Also `mse_eps` (L_simple at one random t per example).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr

from gm_jax.core.config import model_section, positive_int
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState
from gm_jax.core.steps import init_state, make_train_step
from gm_jax.nn.precision import compute_dtype, mixed_apply
from gm_jax.nn.unet import UNet

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x_t [B, ...], t index [B]) -> eps-hat


@dataclasses.dataclass(frozen=True)
class DDPMConfig:
    """Model section of a DDPM config (a typo in a key fails here, at init)."""

    timesteps: int = 1000
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    ch: int = 128
    ch_mult: tuple = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple = (16,)
    dropout: float = 0.1
    random_flip: bool = False
    dtype: str = "float32"  # compute dtype of the U-Net: "float32" | "bfloat16" (losses and the bound stay float32)

    @classmethod
    def from_cfg(cls, cfg: Any) -> DDPMConfig:
        out = model_section(cls, cfg, "ddpm")
        out = dataclasses.replace(out, ch_mult=tuple(out.ch_mult), attn_resolutions=tuple(out.attn_resolutions))
        if not positive_int(out.timesteps):
            raise UserError(f"model.timesteps (T) must be a positive integer, got {out.timesteps!r}")
        if out.schedule not in ("linear", "cosine"):
            raise UserError(f"model.schedule must be linear or cosine, got {out.schedule!r}")
        if out.schedule == "linear" and not (0.0 < out.beta_start <= out.beta_end < 1.0):
            raise UserError(
                f"model.beta_start and model.beta_end must satisfy 0 < beta_start <= beta_end < 1, got "
                f"{out.beta_start!r} and {out.beta_end!r}"
            )
        for key in ("ch", "num_res_blocks"):
            if not positive_int(getattr(out, key)):
                raise UserError(f"model.{key} must be a positive integer, got {getattr(out, key)!r}")
        if not out.ch_mult or not all(positive_int(m) for m in out.ch_mult):
            raise UserError(f"model.ch_mult must be positive integers, got {out.ch_mult!r}")
        if not 0.0 <= out.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {out.dropout!r}")
        if out.dtype not in ("float32", "bfloat16"):
            raise UserError(f"model.dtype must be float32 or bfloat16, got {out.dtype!r}")
        data = cfg.get("data", {})
        shape = tuple(data.get("shape", ()))
        if data.get("kind", "image") != "image" or len(shape) != 3:
            raise UserError(f"ddpm models images [H, W, C]; the data is {data.get('kind')} of shape {shape}")
        if not data.get("levels", 0):
            raise UserError(
                f"ddpm's discretised decoder needs the data's number of levels; {data.get('name', 'the data')} "
                "states none"
            )
        f = 2 ** (len(out.ch_mult) - 1)
        if shape[0] % f or shape[1] % f:
            raise UserError(
                f"the U-Net halves the image {len(out.ch_mult) - 1} time(s) (model.ch_mult={out.ch_mult}): height "
                f"and width must be multiples of {f}, got {shape[0]}x{shape[1]}"
            )
        return out


# ------------------------------------------------------------------------------------- schedule


class Schedule(NamedTuple):
    """Per-index constants [T] (float32 on device; computed in float64)."""

    betas: jax.Array
    alphas_cumprod: jax.Array
    alphas_cumprod_prev: jax.Array
    posterior_variance: jax.Array  # beta-tilde
    posterior_mean_coef1: jax.Array  # of x_0
    posterior_mean_coef2: jax.Array  # of x_t


def betas_for(schedule: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """The beta schedule [T] in float64 (raises UserError if any beta leaves (0, 1))."""
    if schedule == "linear":
        b = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    elif schedule == "cosine":
        s = 0.008
        steps = np.arange(T + 1, dtype=np.float64) / T
        f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        b = np.clip(1.0 - f[1:] / f[:-1], 0.0, 0.999)
    else:
        raise UserError(f"unknown beta schedule {schedule!r}")
    if not (np.all(b > 0) and np.all(b < 1)):
        raise UserError(f"the {schedule} beta schedule leaves (0, 1): min {b.min()}, max {b.max()}")
    return b


def make_schedule(betas: np.ndarray) -> Schedule:
    """All the schedule's constants from betas [T]."""
    betas = np.asarray(betas, np.float64)
    ac = np.cumprod(1.0 - betas)
    ac_prev = np.append(1.0, ac[:-1])
    var = betas * (1.0 - ac_prev) / (1.0 - ac)
    c1 = betas * np.sqrt(ac_prev) / (1.0 - ac)
    c2 = (1.0 - ac_prev) * np.sqrt(1.0 - betas) / (1.0 - ac)
    f = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return Schedule(f(betas), f(ac), f(ac_prev), f(var), f(c1), f(c2))


def schedule_of(mc: DDPMConfig) -> Schedule:
    return make_schedule(betas_for(mc.schedule, mc.timesteps, mc.beta_start, mc.beta_end))


def _bc(v: jax.Array, x: jax.Array) -> jax.Array:
    """Per-example [B] -> broadcastable against x [B, ...]."""
    return v.reshape(v.shape + (1,) * (x.ndim - 1))


def q_sample(sched: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """x_t ~ q(x_t | x_0) in closed form, given the noise."""
    a = sched.alphas_cumprod[t]
    return _bc(jnp.sqrt(a), x0) * x0 + _bc(jnp.sqrt(1.0 - a), x0) * noise


def q_posterior(sched: Schedule, x0: jax.Array, xt: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and variance of q(x_{t-1} | x_t, x_0)."""
    mean = _bc(sched.posterior_mean_coef1[t], x0) * x0 + _bc(sched.posterior_mean_coef2[t], x0) * xt
    return mean, _bc(sched.posterior_variance[t], x0)


def predict_x0(sched: Schedule, xt: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    a = sched.alphas_cumprod[t]
    return (xt - _bc(jnp.sqrt(1.0 - a), xt) * eps) / _bc(jnp.sqrt(a), xt)


def reverse_variance(sched: Schedule, variance: str) -> jax.Array:
    """sigma_t^2 [T] of p(x_{t-1} | x_t): beta_t or beta-tilde_t, the first entry beta-tilde_2 in
    both (beta-tilde_1 = 0), as in the paper's code."""
    if variance not in ("beta", "beta_tilde"):
        raise UserError(f"sample.variance must be beta or beta_tilde, got {variance!r}")
    base = sched.betas if variance == "beta" else sched.posterior_variance
    if base.shape[0] < 2:
        return sched.betas
    return base.at[0].set(sched.posterior_variance[1])


def p_mean(sched: Schedule, eps_fn: EpsFn, xt: jax.Array, t: jax.Array, clip: bool) -> jax.Array:
    """The mean of p_theta(x_{t-1} | x_t): the posterior mean at x_0-hat (clipped to [-1, 1] if asked)."""
    x0 = predict_x0(sched, xt, t, eps_fn(xt, t))
    if clip:
        x0 = jnp.clip(x0, -1.0, 1.0)
    return q_posterior(sched, x0, xt, t)[0]


def normal_kl(mean1, var1, mean2, var2):
    """KL(N(mean1, var1) || N(mean2, var2)) elementwise."""
    return 0.5 * (jnp.log(var2) - jnp.log(var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


def discretized_gaussian_log_likelihood(x: jax.Array, mean: jax.Array, var: jax.Array, levels: int) -> jax.Array:
    """log P(x) elementwise for x on the L levels of [-1, 1] under N(mean, var) binned: the bin of a
    level is +-1/(L-1) around it, the first and last open to -inf and +inf. Log-space throughout."""
    half = 1.0 / (levels - 1)
    inv = jax.lax.rsqrt(var)
    hi, lo = inv * (x - mean + half), inv * (x - mean - half)
    log_cdf_hi = log_ndtr(hi)
    log_sf_lo = log_ndtr(-lo)
    # log(Phi(hi) - Phi(lo)) computed on the side of the bin away from the tail.
    mid_left = log_cdf_hi + jnp.log1p(-jnp.exp(jnp.minimum(log_ndtr(lo) - log_cdf_hi, -1e-30)))
    mid_right = log_sf_lo + jnp.log1p(-jnp.exp(jnp.minimum(log_ndtr(-hi) - log_sf_lo, -1e-30)))
    mid = jnp.where(lo > 0, mid_right, mid_left)
    edge = 1.0 - 0.5 * half
    return jnp.where(x < -edge, log_cdf_hi, jnp.where(x > edge, log_sf_lo, mid))


# ------------------------------------------------------------------------------ bound, samplers


def _sum(v):
    return jnp.sum(v.reshape(v.shape[0], -1), axis=-1)


def vlb_strata(T: int, num_terms: int) -> tuple[np.ndarray, np.ndarray]:
    """Geometric strata of the bound's timestep indices 1 .. T-1: (first index, width) of each.

    The terms L_{t-1} fall off roughly as 1/t (on the digits the first ten hold half the bound), so
    equal-width strata would almost always miss the few terms that matter. Here each stratum is as
    wide as the geometric progression from its start to T over the strata left allows, and at least
    one index: the first strata are single timesteps (computed exactly), the later ones grow. One
    uniform draw per stratum weighted by its width is an unbiased estimate of the sum.
    """
    n = min(int(num_terms), T - 1)
    edges = [1]
    for j in range(n - 1):
        e = edges[-1]
        nxt = int(round(e * (T / e) ** (1.0 / (n - j))))
        edges.append(min(max(e + 1, nxt), T - (n - 1 - j)))
    edges.append(T)
    e = np.asarray(edges, np.int64)
    return e[:-1], np.diff(e)


def vlb_terms(
    sched: Schedule,
    eps_fn: EpsFn,
    x0: jax.Array,
    key: jax.Array,
    levels: int,
    variance: str = "beta",
    clip: bool = True,
    num_terms: int = 0,
    chunk: int = 50,
) -> dict:
    """The variational bound's terms per example [B] in nats.

    Returns {"prior": L_T, "decoder": L_0, "diffusion": sum_{t>=2} L_{t-1} (all T-1 terms, or an
    unbiased estimate from `num_terms` timesteps, `vlb_strata`), "quarters": [4, B] the diffusion sum
    split by t into quarters (zeros when estimated)}.
    """
    T = sched.betas.shape[0]
    B = x0.shape[0]
    sig2 = reverse_variance(sched, variance)
    k_dec, k_terms, k_pick = jax.random.split(key, 3)
    # L_T
    aT = sched.alphas_cumprod[T - 1]
    prior = _sum(normal_kl(jnp.sqrt(aT) * x0, 1.0 - aT, 0.0, 1.0))
    # L_0: -log p(x_0 | x_1)
    t0 = jnp.zeros((B,), jnp.int32)
    x1 = q_sample(sched, x0, t0, jax.random.normal(k_dec, x0.shape, x0.dtype))
    mean0 = p_mean(sched, eps_fn, x1, t0, clip)
    decoder = -_sum(discretized_gaussian_log_likelihood(x0, mean0, sig2[0], levels))

    def term(i, k):  # L_{t-1} for index i >= 1 (paper t = i + 1 >= 2), [B]
        ti = jnp.full((B,), i, jnp.int32)
        xt = q_sample(sched, x0, ti, jax.random.normal(k, x0.shape, x0.dtype))
        true_mean, true_var = q_posterior(sched, x0, xt, ti)
        mean = p_mean(sched, eps_fn, xt, ti, clip)
        return _sum(normal_kl(true_mean, true_var, mean, sig2[i]))

    if T < 2:
        zero = jnp.zeros((B,), x0.dtype)
        return {"prior": prior, "decoder": decoder, "diffusion": zero, "quarters": jnp.zeros((4, B), x0.dtype)}
    if num_terms:
        lo, width = (jnp.asarray(v, jnp.int32) for v in vlb_strata(T, num_terms))
        pick = jax.random.uniform(k_pick, (lo.shape[0],))
        idx = jnp.minimum(lo + jnp.floor(pick * width).astype(jnp.int32), lo + width - 1)
    else:
        idx = jnp.arange(1, T, dtype=jnp.int32)
    per_t = _chunked_terms(term, idx, k_terms, chunk, T, B)  # [n, B]
    if num_terms:
        diffusion = jnp.sum(per_t * width.astype(x0.dtype)[:, None], 0)
        quarters = jnp.zeros((4, B), x0.dtype)
    else:
        n = idx.shape[0]
        diffusion = jnp.sum(per_t, 0)
        q = jnp.minimum(4 * jnp.arange(n) // n, 3)
        quarters = jax.vmap(lambda j: jnp.sum(per_t * (q == j)[:, None], 0))(jnp.arange(4))
    return {"prior": prior, "decoder": decoder, "diffusion": diffusion, "quarters": quarters}


def _chunked_terms(term, idx: jax.Array, key: jax.Array, chunk: int, T: int, B: int) -> jax.Array:
    """term(i, key_i) [B] for every timestep index in idx [n], `chunk` of them vmapped at a time
    (padded with T - 1, masked out); [n, B]."""
    n = idx.shape[0]
    chunk = max(1, min(chunk, n))
    pad = (-n) % chunk
    idx_p = jnp.concatenate([idx, jnp.full((pad,), T - 1, jnp.int32)]).reshape(-1, chunk)
    valid = (jnp.arange(n + pad) < n).reshape(-1, chunk)
    keys = jax.random.split(key, n + pad).reshape((-1, chunk) + key.shape)

    def one_chunk(args):
        ii, kk, vv = args
        return jax.vmap(term)(ii, kk) * vv[:, None]  # [chunk, B]

    return jax.lax.map(one_chunk, (idx_p, keys, valid)).reshape(n + pad, B)[:n]


def ancestral_sample(
    sched: Schedule, eps_fn: EpsFn, key: jax.Array, shape: tuple, variance: str = "beta", clip: bool = True
) -> jax.Array:
    """x_0 by the full reverse chain from x_T ~ N(0, I), in one `fori_loop`."""
    T = sched.betas.shape[0]
    sig = jnp.sqrt(reverse_variance(sched, variance))
    k0, kl = jax.random.split(key)
    x = jax.random.normal(k0, shape)

    def body(j, x):
        i = T - 1 - j
        t = jnp.full((shape[0],), i, jnp.int32)
        mean = p_mean(sched, eps_fn, x, t, clip)
        z = jax.random.normal(jax.random.fold_in(kl, i), shape)
        return mean + jnp.where(i > 0, sig[i], 0.0) * z

    return jax.lax.fori_loop(0, T, body, x)


def ddim_timesteps(T: int, steps: int, spacing: str) -> np.ndarray:
    """The S timestep indices (ascending) a DDIM chain visits."""
    if not positive_int(steps) or steps > T:
        raise UserError(f"sample.steps (DDIM S) must be an integer in [1, T={T}], got {steps!r}")
    if spacing == "uniform":
        seq = (np.arange(steps) * T) // steps  # = range(0, T, T // S) when S divides T
    elif spacing == "quadratic":
        seq = np.unique((np.linspace(0, np.sqrt(T * 0.8), steps) ** 2).astype(np.int64))
    else:
        raise UserError(f"sample.spacing must be uniform or quadratic, got {spacing!r}")
    return seq.astype(np.int32)


def ddim_sample(
    sched: Schedule,
    eps_fn: EpsFn,
    key: jax.Array,
    shape: tuple,
    steps: int,
    eta: float = 0.0,
    spacing: str = "uniform",
    x_T: jax.Array | None = None,
) -> jax.Array:
    """x_0 by the DDIM update over `ddim_timesteps` (from x_T ~ N(0, I) unless given), in one scan."""
    if not 0.0 <= eta <= 1.0:
        raise UserError(f"sample.eta must be in [0, 1], got {eta!r}")
    T = sched.betas.shape[0]
    seq = ddim_timesteps(T, steps, spacing)
    prev = np.append(-1, seq[:-1])
    k0, kl = jax.random.split(key)
    x = jax.random.normal(k0, shape) if x_T is None else x_T
    ac = sched.alphas_cumprod

    def body(x, inp):
        i, ip = inp
        a = ac[i]
        a_prev = jnp.where(ip >= 0, ac[jnp.maximum(ip, 0)], 1.0)
        t = jnp.full((shape[0],), i, jnp.int32)
        eps = eps_fn(x, t)
        x0 = (x - jnp.sqrt(1.0 - a) * eps) / jnp.sqrt(a)
        s = eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a)) * jnp.sqrt(1.0 - a / a_prev)
        z = jax.random.normal(jax.random.fold_in(kl, i), shape)  # the noise the ancestral step at i draws
        x = jnp.sqrt(a_prev) * x0 + jnp.sqrt(jnp.maximum(1.0 - a_prev - s**2, 0.0)) * eps + s * z
        return x, None

    xs = (jnp.asarray(seq[::-1]), jnp.asarray(prev[::-1]))
    x, _ = jax.lax.scan(body, x, xs)
    return x


# ------------------------------------------------------------------------------ family interface


def _unet(mc: DDPMConfig) -> UNet:
    return UNet(mc.ch, mc.ch_mult, mc.num_res_blocks, mc.attn_resolutions, mc.dropout)


def _to_model(x: jax.Array) -> jax.Array:
    return 2.0 * x - 1.0


def _eps_fn(mc: DDPMConfig, params: Any) -> EpsFn:
    net = _unet(mc)
    apply = mixed_apply(net.apply, compute_dtype(mc.dtype))
    return lambda x, t: apply({"params": params}, x, t, train=False)


def check_sample(cfg: Any) -> dict:
    """The sampling options with their defaults, checked (raises UserError)."""
    s = dict(cfg.get("sample", {}))
    out = {
        "sampler": s.get("sampler", "ancestral"),
        "variance": s.get("variance", "beta"),
        "steps": s.get("steps", 50),
        "eta": s.get("eta", 0.0),
        "spacing": s.get("spacing", "uniform"),
        "clip_denoised": bool(s.get("clip_denoised", True)),
    }
    if out["sampler"] not in ("ancestral", "ddim"):
        raise UserError(f"sample.sampler must be ancestral or ddim, got {out['sampler']!r}")
    if out["variance"] not in ("beta", "beta_tilde"):
        raise UserError(f"sample.variance must be beta or beta_tilde, got {out['variance']!r}")
    eta = out["eta"]
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise UserError(f"sample.eta must be in [0, 1], got {eta!r}")
    if out["sampler"] == "ddim":
        ddim_timesteps(DDPMConfig.from_cfg(cfg).timesteps, out["steps"], out["spacing"])
    return out


def init(key: jax.Array, cfg: Any, example_batch: dict) -> TrainState:
    mc = DDPMConfig.from_cfg(cfg)
    check_sample(cfg)
    x = jnp.asarray(example_batch["x"][:1], jnp.float32)
    params = _unet(mc).init(key, x, jnp.zeros((1,), jnp.int32))["params"]
    return init_state(params, cfg)


def loss_fn(params, model_state, batch, rng, cfg, step):
    """L_simple: the mean squared error of the predicted noise at a uniform random t."""
    del step
    mc = DDPMConfig.from_cfg(cfg)
    sched = schedule_of(mc)
    x0 = _to_model(batch["x"])
    b = x0.shape[0]
    k_t, k_eps, k_drop, k_flip = jax.random.split(rng, 4)
    if mc.random_flip:
        flip = jax.random.bernoulli(k_flip, 0.5, (b,))
        x0 = jnp.where(flip[:, None, None, None], x0[:, :, ::-1], x0)
    t = jax.random.randint(k_t, (b,), 0, mc.timesteps)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    xt = q_sample(sched, x0, t, eps)
    apply = mixed_apply(_unet(mc).apply, compute_dtype(mc.dtype))  # model.dtype: the U-Net's compute dtype
    pred = apply({"params": params}, xt, t, train=True, rngs={"dropout": k_drop})
    loss = jnp.mean((pred - eps) ** 2)
    return loss, ({"mse_eps": loss}, model_state)


train_step = make_train_step(loss_fn)


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """Per-example [B]: vlb_bpd and its term groups (module docstring), mse_eps."""
    mc = DDPMConfig.from_cfg(cfg)
    sched = schedule_of(mc)
    ev = cfg.get("eval", {})
    num_terms, chunk = ev.get("vlb_terms", 0), ev.get("vlb_batch", 50)
    for name, v, lo in (("eval.vlb_terms", num_terms, 0), ("eval.vlb_batch", chunk, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise UserError(f"{name} must be an integer >= {lo}, got {v!r}")
    s = check_sample(cfg)
    x0 = _to_model(batch["x"])
    d = int(np.prod(x0.shape[1:]))
    eps_fn = _eps_fn(mc, state.eval_params())
    k_vlb, k_t, k_eps = jax.random.split(key, 3)
    terms = vlb_terms(
        sched,
        eps_fn,
        x0,
        k_vlb,
        int(cfg.data.levels),
        s["variance"],
        bool(ev.get("clip_denoised", True)),
        min(int(num_terms), mc.timesteps - 1) if num_terms else 0,
        int(chunk),
    )
    bpd = 1.0 / (d * math.log(2.0))
    total = terms["prior"] + terms["decoder"] + terms["diffusion"]
    t = jax.random.randint(k_t, x0.shape[:1], 0, mc.timesteps)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    mse = jnp.mean(((eps_fn(q_sample(sched, x0, t, eps), t) - eps) ** 2).reshape(x0.shape[0], -1), -1)
    out = {
        "vlb_bpd": total * bpd,
        "vlb_nats": total,
        "vlb_prior_bpd": terms["prior"] * bpd,
        "vlb_decoder_bpd": terms["decoder"] * bpd,
        "vlb_diffusion_bpd": terms["diffusion"] * bpd,
        "mse_eps": mse,
    }
    if not num_terms:
        for j in range(4):
            out[f"vlb_q{j + 1}_bpd"] = terms["quarters"][j] * bpd
    return out


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """n images [n, H, W, C] in [0, 1] on the data's levels, by `sample.sampler` (module docstring)."""
    mc = DDPMConfig.from_cfg(cfg)
    s = check_sample(cfg)
    sched = schedule_of(mc)
    eps_fn = _eps_fn(mc, state.eval_params())
    shape = (n,) + tuple(cfg.data.shape)
    if s["sampler"] == "ddim":
        x = ddim_sample(sched, eps_fn, key, shape, s["steps"], float(s["eta"]), s["spacing"])
    else:
        x = ancestral_sample(sched, eps_fn, key, shape, s["variance"], s["clip_denoised"])
    levels = int(cfg.data.levels)
    y = jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)
    return jnp.round(y * (levels - 1)) / (levels - 1)
