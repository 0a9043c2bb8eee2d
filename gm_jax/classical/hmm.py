"""Hidden Markov models: forward-backward, Viterbi, posterior sampling and Baum-Welch, in jnp/lax.

Every kernel takes per-state log-likelihoods `log_lik` [T, K], so one forward-backward serves every
emission model (categorical, Gaussian with any covariance type, Gaussian mixture). Sequences of
different lengths are padded to a common T with a boolean `mask` [T] (True on real steps).

Numerics: the forward pass propagates normalised filtered probabilities and shifts each step's
emission log-likelihoods by their maximum before exponentiating, so nothing underflows at any T;
the log marginal likelihood is the sum of the log normalisers. The parallel-in-time variants
(`parallel_filter`, `parallel_smooth`) use `lax.associative_scan` over log-space transition
matrices (Särkkä & García-Fernández, 2021) and agree with the sequential ones.

Every public kernel is compiled (`jax.jit`) when called from Python.

Notebook use: `init_params(key, emission, x, lengths, n_states)` gives starting parameters,
`fit(params, x, lengths, n_iter=..., tol=...)` runs Baum-Welch to `tol` in one
`lax.while_loop` (its `log_likelihood` is the last E-step's, i.e. of the parameters before the last
M-step), `decode(params, x, lengths)` the Viterbi paths of a batch, `sample_from(key, params, t, n)`
draws sequences. The module is also a family of the training loop (`gm_jax.family`): the CLI
(`--model=hmm`) runs one Baum-Welch iteration per loop step through `init`, `train_step`,
`evaluate`, `sample` at the bottom of this file.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.classical import gmm, params_pytree
from gm_jax.classical.mesh import auto_axes_if_explicit
from gm_jax.classical.precision import warn_if_float64_dropped
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState

# ----------------------------------------------------------------------------- kernels


class Posterior(NamedTuple):
    """Forward-backward results for one sequence (from `posteriors`: with a leading sequence axis).

    Attributes:
      log_likelihood: log p(x_{1:T}).
      filtered: [T, K] p(z_t | x_{1:t}).
      smoothed: [T, K] p(z_t | x_{1:T}) (zero on padded steps).
      trans_counts: [K, K] sum_t p(z_t = i, z_{t+1} = j | x_{1:T}) (None when not requested).
    """

    log_likelihood: jax.Array
    filtered: jax.Array
    smoothed: jax.Array
    trans_counts: jax.Array


def _mask(log_lik, mask):
    return jnp.ones(log_lik.shape[:1], bool) if mask is None else jnp.asarray(mask, bool)


@jax.jit
def forward_filter(log_start, log_trans, log_lik, mask=None):
    """Normalised forward pass for one sequence (the batched kernel's forward half).

    Args:
      log_start: [K] log initial probabilities.
      log_trans: [K, K] log transition probabilities (rows: from).
      log_lik: [T, K] log p(x_t | z_t = k).
      mask: [T] bool, True on real steps (padding at the end); step 0 must be real.
    Returns:
      (log_likelihood, filtered [T, K], scale [T]) where scale_t is the step's normaliser with the
      emission log-likelihoods shifted to a maximum of 0. On padded steps `filtered` holds predictions.
    """
    mask = _mask(log_lik, mask)
    fw = _forward_batch(log_start, log_trans, log_lik[None], mask[None])
    return fw.log_likelihood[0], (fw.u / fw.c[:, None])[:, :, 0], fw.c[:, 0]


@jax.jit
def smooth(log_start, log_trans, log_lik, mask=None) -> Posterior:
    """Forward-backward for one sequence: smoothed marginals and expected transition counts (see
    `Posterior`); the batched kernel `_forward_backward_batch` with a batch of one."""
    mask = _mask(log_lik, mask)
    out = _forward_backward_batch(log_start, log_trans, log_lik[None], mask[None], counts="per_sequence")
    return Posterior(*(v[0] for v in out))


def _forward_backward_batch(log_start, log_trans, log_lik, mask, counts=None):
    """Forward-backward for a batch of padded sequences (internally time-major, states first).

    Args:
      log_lik: [S, T, K] per-sequence, per-step state log-likelihoods.
      mask: [S, T] bool (padding at the end of each sequence; step 0 real).
      counts: None, "total" ([K, K] summed over sequences) or "per_sequence" ([S, K, K]) expected
        transition counts.
    Returns:
      (log_likelihood [S], filtered [S, T, K], smoothed [S, T, K], trans_counts or None).

    Layout and cost: each scan step is one small GEMM on [K, S] messages plus one or two
    elementwise kernels. The matrix is augmented with a row of ones, so the GEMM that propagates
    a message also yields its normaliser. The forward pass carries R_t = [A^T alpha_{t-1}; c_{t-1}]
    (alpha normalised, c the step normalisers) and stores u_t = R_t[:K] b_t / R_t[K] = alpha_t c_t,
    where b_t are the emission likelihoods scaled to a maximum of 1 per step. The backward pass
    carries r_t = [A (b_{t+1} beta_{t+1}); sum(b_{t+1} beta_{t+1})], i.e. beta_t up to scale, and
    overwrites the stored u_t with the smoothed marginals in place (without counts), so the whole
    pass holds two [T, K, S] arrays (on CPU, temporaries above the allocator's reuse threshold, 32 MB with glibc,
    are freshly mapped on every call, and touching that memory cost more than the arithmetic).
    Per-step normalisation makes every scale cancel; nothing underflows at any T.
    """
    k = log_lik.shape[-1]
    t_len = log_lik.shape[1]
    fw = _forward_batch(log_start, log_trans, log_lik, mask)
    b, us = fw.b, fw.u
    mask = mask.T
    a_mat = jnp.exp(log_trans)
    bwd_mat = jnp.concatenate([a_mat, jnp.ones((1, k), a_mat.dtype)])  # [K + 1, K]
    filtered = jnp.transpose(us / fw.c[:, None], (2, 0, 1))

    # Without counts the smoothed marginals overwrite the forward messages in place. With them,
    # the messages are read by the counts' update too, and overwriting them in place makes XLA copy
    # the whole [T, K, S] array on every step (em_step 487 ms instead of 38 at S=100, T=1000,
    # K=16), so the marginals go to a buffer of their own.
    in_place = counts is None

    def bwd(i, carry):
        r, out, w_next, acc = carry
        t = t_len - 1 - i
        u = out[t] if in_place else us[t]
        g = u * r[:k]  # alpha_t beta_t up to scale; r[:k] = A w_{t+1}
        z = jnp.sum(g, axis=0)
        out = jax.lax.dynamic_update_index_in_dim(out, g / z, t, 0)  # smoothed marginals
        w = b[t] * (r[:k] / r[k:])  # b_t beta_t, scaled by the previous step's sum
        if counts is not None:
            # xi_t(i, j) = u_t(i) A_ij w_{t+1}(j) / (u_t . A w_{t+1}).
            p = u / z
            # Accumulated per sequence ([K, K, S]) and summed after the loop: contracting the
            # sequence axis here would make a sharded run all-reduce on every step (sharded
            # em_step: 71 -> 23 ms).
            acc = acc + p[:, None, :] * w_next[None, :, :]
            w_next = jnp.where(mask[t], w, 0.0)
        return gmm.mm(bwd_mat, w), out, w_next, acc

    _, g_buf, _, acc = jax.lax.fori_loop(0, t_len, bwd, _backward_init(b, us, counts, in_place))
    smoothed = jnp.where(mask.T[..., None], jnp.transpose(g_buf, (2, 0, 1)), 0.0)
    return fw.log_likelihood, filtered, smoothed, _transition_counts(a_mat, acc, counts)


def _backward_init(b, us, counts, in_place: bool) -> tuple:
    """The backward loop's initial carries (r, output buffer, w, counts accumulator), derived from the
    data so that, under shard_map, they vary like it."""
    k = b.shape[1]
    w0 = jnp.zeros_like(b[0])
    r_last = jnp.ones_like(b[0, :1]) * jnp.ones((k + 1, 1), b.dtype)
    zeros_s = jnp.zeros_like(b[0, 0])  # [S]
    acc0 = jnp.zeros((k, k, 1), b.dtype) + zeros_s if counts else jnp.zeros((), b.dtype)
    return r_last, (us if in_place else jnp.zeros_like(us)), w0, acc0


def _transition_counts(a_mat, acc, counts):
    """Expected transition counts from the accumulated per-sequence sums ([K, K, S]): summed over the
    sequences ("total"), per sequence, or None."""
    if counts == "total":
        return a_mat * jnp.sum(acc, axis=-1)
    if counts:
        return a_mat * jnp.transpose(acc, (2, 0, 1))
    return None


class _Forward(NamedTuple):
    b: jax.Array  # [T, K, S] emission likelihoods scaled to a maximum of 1 per step (1 on padding)
    u: jax.Array  # [T, K, S] alpha_t * c_t
    c: jax.Array  # [T, S] step normalisers in the scaled units
    log_likelihood: jax.Array  # [S]


def _forward_batch(log_start, log_trans, log_lik, mask) -> _Forward:
    """Forward half of `_forward_backward_batch` (log_lik [S, T, K], mask [S, T])."""
    k = log_lik.shape[-1]
    dtype = log_lik.dtype
    log_lik = jnp.transpose(jnp.where(mask[..., None], log_lik, 0.0), (1, 2, 0))  # [T, K, S]
    m = jnp.max(log_lik, axis=1)  # [T, S]
    b = jnp.exp(log_lik - m[:, None])
    fwd_mat = jnp.concatenate([jnp.exp(log_trans).T, jnp.ones((1, k), dtype)])  # [K + 1, K]

    def fwd(r, b_t):
        u = r[:k] * (b_t / r[k:])  # alpha_t * c_t
        return gmm.mm(fwd_mat, u), u

    r0 = jnp.concatenate([jnp.exp(log_start), jnp.ones((1,), dtype)])[:, None] * jnp.ones_like(b[0, 0])
    _, us = jax.lax.scan(fwd, r0, b)
    c = jnp.sum(us, axis=1)
    ll = jnp.sum(jnp.where(mask.T, jnp.log(c) + m, 0.0), axis=0)
    return _Forward(b, us, c, ll)


@jax.jit
def viterbi(log_start, log_trans, log_lik, mask=None):
    """Most probable state path (max-product in log space).

    The running scores are shifted by their maximum at every step, so their spacing keeps full
    precision however long the sequence; the returned log-probability is the decoded path's own
    score, log p(x, path) = log_start[z_0] + sum_t log_trans[z_{t-1}, z_t] + sum_t log_lik[t, z_t],
    summed in blocks (a float32 running max-product over T = 1e5 steps drifts by hundreds of nats).

    Returns:
      (path [T] int32 with -1 on padded steps, log p(x, path)).
    """
    mask = _mask(log_lik, mask)
    k = log_lik.shape[1]
    ident = jnp.arange(k)

    def step(delta, inp):
        ll_t, m = inp
        scores = delta[:, None] + log_trans
        new = jnp.max(scores, 0) + ll_t
        top = jnp.max(new)
        new = new - jnp.where(jnp.isfinite(top), top, 0.0)
        return jnp.where(m, new, delta), jnp.where(m, jnp.argmax(scores, 0), ident)

    delta, back = jax.lax.scan(step, log_start + log_lik[0], (log_lik[1:], mask[1:]))
    last = jnp.argmax(delta)

    def trace(z, bp):
        prev = bp[z]
        return prev, prev

    _, path = jax.lax.scan(trace, last, back, reverse=True)
    path = jnp.concatenate([path, last[None]]).astype(jnp.int32)
    return jnp.where(mask, path, -1), path_log_prob(log_start, log_trans, log_lik, path, mask)


def _block_sum(v: jax.Array, block: int = 256) -> jax.Array:
    """Sum of a 1-D array as the sum of its blocks' sums (far less float32 rounding than one running sum)."""
    n = v.shape[0]
    v = jnp.pad(v, (0, (-n) % block))
    return jnp.sum(jnp.sum(v.reshape(-1, block), 1))


@jax.jit
def path_log_prob(log_start, log_trans, log_lik, path, mask=None):
    """log p(x, z) of a given state path z [T] (steps where `mask` is False are skipped)."""
    mask = _mask(log_lik, mask)
    z = jnp.where(mask, path, 0)
    t = jnp.arange(log_lik.shape[0])
    emit = jnp.where(mask, log_lik[t, z], 0.0)
    trans = jnp.where(mask[1:], log_trans[z[:-1], z[1:]], 0.0)
    return log_start[z[0]] + _block_sum(emit) + _block_sum(trans)


@jax.jit
def sample_posterior(key, log_start, log_trans, log_lik, mask=None):
    """One draw of z_{1:T} ~ p(z | x) by forward filtering, backward sampling. -> [T] (-1 on padding)"""
    mask = _mask(log_lik, mask)
    _, filtered, _ = forward_filter(log_start, log_trans, log_lik, mask)
    a_mat = jnp.exp(log_trans)
    t = log_lik.shape[0]
    keys = jax.random.split(key, t)
    # The last real step is where sampling starts; padded steps just carry the state back.
    last_idx = jnp.sum(mask) - 1
    z_last = jax.random.categorical(keys[-1], jnp.log(filtered[last_idx]))

    def step(z_next, inp):
        f_t, key_t, idx = inp
        p = f_t * a_mat[:, z_next]
        z = jax.random.categorical(key_t, jnp.log(p / p.sum()))
        z = jnp.where(idx >= last_idx, z_last, z)
        return z, z

    _, path = jax.lax.scan(step, z_last, (filtered[:-1], keys[:-1], jnp.arange(t - 1)), reverse=True)
    path = jnp.concatenate([path, z_last[None]]).astype(jnp.int32)
    return jnp.where(mask, path, -1)


def _log_matmul(x, y):
    """Log-space matrix product, max-shifted: log(exp(x) @ exp(y)) over the last two axes."""
    return jax.nn.logsumexp(x[..., :, :, None] + y[..., None, :, :], axis=-2)


def _elements(log_start, log_trans, log_lik, mask):
    k = log_lik.shape[1]
    ident = jnp.where(jnp.eye(k, dtype=bool), 0.0, -jnp.inf).astype(log_lik.dtype)
    e = log_trans[None] + log_lik[:, None, :]  # [T, K, K]
    e = jnp.where(mask[:, None, None], e, ident)
    first = jnp.broadcast_to(log_start + log_lik[0], (k, k))
    return e.at[0].set(first)


@jax.jit
def parallel_filter(log_start, log_trans, log_lik, mask=None):
    """Parallel-in-time forward pass (associative scan). Returns (log_likelihood, filtered [T, K])."""
    mask = _mask(log_lik, mask)
    prefix = jax.lax.associative_scan(_log_matmul, _elements(log_start, log_trans, log_lik, mask))
    log_alpha = prefix[:, 0, :]  # rows of the first element are identical
    return jax.nn.logsumexp(log_alpha[-1]), jax.nn.softmax(log_alpha, axis=1)


@jax.jit
def parallel_smooth(log_start, log_trans, log_lik, mask=None):
    """Parallel-in-time smoother. Returns (log_likelihood, smoothed [T, K])."""
    mask = _mask(log_lik, mask)
    e = _elements(log_start, log_trans, log_lik, mask)
    prefix = jax.lax.associative_scan(_log_matmul, e)
    log_alpha = prefix[:, 0, :]
    # Suffix products E_{t+1} ... E_{T-1}: scan the reversed sequence with the product's order swapped.
    rev = jax.lax.associative_scan(lambda a, b: _log_matmul(b, a), e[1:][::-1])[::-1]
    log_beta = jnp.concatenate([jax.nn.logsumexp(rev, axis=-1), jnp.zeros_like(log_alpha[:1])])
    smoothed = jax.nn.softmax(log_alpha + log_beta, axis=1)
    return jax.nn.logsumexp(log_alpha[-1]), jnp.where(mask[:, None], smoothed, 0.0)


# ----------------------------------------------------------------------------- emissions


@dataclasses.dataclass(frozen=True)
class Categorical:
    """x_t in {0..M-1}; params {"log_probs": [K, M]}."""

    n_symbols: int

    def log_lik(self, params, x):  # [T] int -> [T, K]
        return params["log_probs"][:, x].T

    def stats(self, params, x, gamma):  # x [N], gamma [N, K]
        return gmm.mm(gamma.T, jax.nn.one_hot(x, self.n_symbols, dtype=gamma.dtype))

    def m_step(self, params, stats, prior=1.0):
        counts = stats + (prior - 1.0)
        tot = counts.sum(1, keepdims=True)
        probs = jnp.where(tot > 0, counts / jnp.where(tot > 0, tot, 1.0), jnp.exp(params["log_probs"]))
        return {"log_probs": jnp.log(probs)}

    def sample(self, key, params, z):
        return jax.random.categorical(key, params["log_probs"][z])


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """x_t in R^D; params {"means": [K, D], "covariances": as `gmm.GMMParams`}."""

    covariance_type: str = "full"
    reg_covar: float = 1e-6

    def log_lik(self, params, x):  # [T, D] -> [T, K]
        pc = gmm.precision_cholesky(params["covariances"], self.covariance_type)
        return gmm.log_gaussian(x, params["means"], pc, self.covariance_type)

    def stats(self, params, x, gamma):
        ll = jnp.max(self.log_lik(params, x), 1)
        shift = params["means"]  # moments about each state's current mean (see gmm._chunk_stats)
        return gmm.resp_stats(x, gamma, shift, self.covariance_type, ll), shift

    def m_step(self, params, stats_and_shift, prior=1.0):
        stats, shift = stats_and_shift
        new, _ = gmm.m_step(stats, shift, self.covariance_type, self.reg_covar)
        return {"means": new.means, "covariances": new.covariances}

    def sample(self, key, params, z):
        k = params["means"].shape[0]
        x, _ = gmm.sample_from(
            key,
            gmm.GMMParams(jnp.ones(k) / k, params["means"], params["covariances"], self.covariance_type),
            z.shape[0],
            components=z,
        )
        return x


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
    """GMM-HMM: per state a mixture of `n_mix` Gaussians (diag or full covariances).

    params {"log_weights": [K, M], "means": [K, M, D], "covariances": [K, M, D] or [K, M, D, D]}.
    """

    n_mix: int
    covariance_type: str = "diag"
    reg_covar: float = 1e-6

    def __post_init__(self):
        if self.covariance_type not in ("diag", "full", "spherical"):
            raise UserError(f"GMM-HMM covariance_type must be diag, full or spherical, got {self.covariance_type!r}")

    def _comp_log_lik(self, params, x):  # -> [T, K, M]
        def per_state(means, cov):
            pc = gmm.precision_cholesky(cov, self.covariance_type)
            return gmm.log_gaussian(x, means, pc, self.covariance_type)  # [T, M]

        lg = jax.vmap(per_state, out_axes=1)(params["means"], params["covariances"])
        return lg + params["log_weights"][None]

    def log_lik(self, params, x):
        return jax.nn.logsumexp(self._comp_log_lik(params, x), axis=2)

    def stats(self, params, x, gamma):
        lc = self._comp_log_lik(params, x)  # [N, K, M]
        r = gamma[:, :, None] * jax.nn.softmax(lc, axis=2)
        ll = jnp.max(jax.nn.logsumexp(lc, 2), 1)

        def per_state(rk, means):
            shift = means
            return gmm.resp_stats(x, rk, shift, self.covariance_type, ll), shift

        return jax.vmap(per_state, in_axes=(1, 0))(r, params["means"])

    def m_step(self, params, stats_and_shift, prior=1.0):
        stats, shift = stats_and_shift

        def per_state(st, sh):
            new, _ = gmm.m_step(st, sh, self.covariance_type, self.reg_covar)
            return new

        new = jax.vmap(per_state)(stats, shift)
        # Mixture weights within a state: its components' shares of the state's responsibility.
        nk = stats.nk
        w = jnp.where(
            nk.sum(1, keepdims=True) > 0,
            nk / jnp.maximum(nk.sum(1, keepdims=True), 1e-30),
            jnp.exp(params["log_weights"]),
        )
        return {"log_weights": jnp.log(w), "means": new.means, "covariances": new.covariances}

    def sample(self, key, params, z):
        k1, k2 = jax.random.split(key)
        comp = jax.random.categorical(k1, params["log_weights"][z])
        d = params["means"].shape[-1]
        eps = jax.random.normal(k2, (z.shape[0], d), params["means"].dtype)
        cov = params["covariances"][z, comp]
        if self.covariance_type == "full":
            noise = gmm.einsum("nde,ne->nd", jnp.linalg.cholesky(cov), eps)
        elif self.covariance_type == "diag":
            noise = eps * jnp.sqrt(cov)
        else:
            noise = eps * jnp.sqrt(cov)[:, None]
        return params["means"][z, comp] + noise


# ----------------------------------------------------------------------------- Baum-Welch


@params_pytree("log_start", "log_trans", "emission", meta="emission_model")
class HMMParams:
    """HMM parameters, carrying their emission model.

    A pytree whose leaves are the arrays; `emission_model` (a Categorical, Gaussian or
    GaussianMixture, hashable) is static, so `fit`, `posteriors`, `decode` and `sample` read it from
    the parameters and compile once per emission model.

    Attributes:
      log_start: [K] log initial probabilities.
      log_trans: [K, K] log transition probabilities (rows: from).
      emission: the emission model's arrays (a dict, see the emission classes).
      emission_model: Categorical | Gaussian | GaussianMixture.
    """

    log_start: Any
    log_trans: Any
    emission: Any
    emission_model: Any

    def __post_init__(self):
        if not isinstance(self.emission_model, EMISSIONS):
            raise UserError(
                "HMMParams emission_model must be a Categorical, Gaussian or GaussianMixture, "
                f"got {type(self.emission_model).__name__}"
            )

    def arrays(self) -> dict:
        """The arrays by name (what a checkpoint stores)."""
        return {"log_start": self.log_start, "log_trans": self.log_trans, "emission": self.emission}

    def replace(self, **changes) -> HMMParams:
        return dataclasses.replace(self, **changes)


EMISSIONS = (Categorical, Gaussian, GaussianMixture)
_EMISSION_KEYS = {
    Categorical: {"log_probs"},
    Gaussian: {"means", "covariances"},
    GaussianMixture: {"log_weights", "means", "covariances"},
}


def _check_params(params: Any, where: str) -> None:
    """Static checks (also under `jit`): an HMMParams whose emission arrays are the model's."""
    if not isinstance(params, HMMParams):
        raise UserError(
            f"{where}: params must be an HMMParams (it carries its emission model), got {type(params).__name__}"
        )
    keys = set(params.emission) if isinstance(params.emission, dict) else None
    want = _EMISSION_KEYS[type(params.emission_model)]
    if keys != want:
        raise UserError(
            f"{where}: emission arrays {sorted(keys) if keys is not None else type(params.emission).__name__} "
            f"do not fit the emission model {params.emission_model} (expected {sorted(want)})"
        )


class FitResult(NamedTuple):
    """Baum-Welch result: params, total log-likelihood at the last E-step, history [n_iter], n_iter, converged."""

    params: HMMParams
    log_likelihood: jax.Array
    history: jax.Array
    n_iter: jax.Array
    converged: jax.Array


def lengths_mask(lengths: jax.Array, t: int) -> jax.Array:
    """[S] lengths -> [S, T] bool mask."""
    return jnp.arange(t)[None, :] < jnp.asarray(lengths)[:, None]


def pad_sequences(seqs: list, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """Ragged list of [T_s, ...] arrays -> (padded [S, T_max, ...], lengths [S])."""
    lengths = np.array([len(s) for s in seqs])
    first = np.asarray(seqs[0])
    out = np.zeros((len(seqs), lengths.max()) + first.shape[1:], dtype or first.dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


def _batch_log_lik(params: HMMParams, x):
    """x [S, T, ...] -> emission log-likelihoods [S, T, K], computed on the flattened data."""
    s, t = x.shape[:2]
    flat = x.reshape((s * t,) + x.shape[2:])
    return params.emission_model.log_lik(params.emission, flat).reshape(s, t, -1)


def _not_an_emission(x, where: str) -> None:
    if isinstance(x, EMISSIONS):
        raise UserError(
            f"{where} takes (params, x, lengths): the parameters carry their emission model "
            "(params.emission_model), so leave the emission argument out"
        )


def posteriors(params: HMMParams, x, lengths, trans_counts: bool = True) -> Posterior:
    """Forward-backward over a batch of padded sequences x [S, T, ...] with lengths [S].

    Returns a Posterior with a leading sequence axis: log_likelihood [S], filtered and smoothed
    [S, T, K], trans_counts [S, K, K] (None with trans_counts=False, which saves their cost);
    smoothed is zero on padded steps.
    """
    _not_an_emission(x, "posteriors")
    _check_params(params, "posteriors")
    mask = lengths_mask(lengths, x.shape[1])
    ll = _batch_log_lik(params, x)
    counts = "per_sequence" if trans_counts else None
    return Posterior(*_forward_backward_batch(params.log_start, params.log_trans, ll, mask, counts))


@jax.jit
@auto_axes_if_explicit
def _decode_jit(params: HMMParams, x, lengths):
    mask = lengths_mask(lengths, x.shape[1])
    ll = _batch_log_lik(params, x)
    return jax.vmap(lambda lik, m: viterbi(params.log_start, params.log_trans, lik, m))(ll, mask)


def decode(params: HMMParams, x, lengths) -> tuple[jax.Array, jax.Array]:
    """Viterbi paths of a batch of padded sequences x [S, T, ...] with lengths [S], compiled.

    Returns (paths [S, T] int32 with -1 on padded steps, log p(x_s, path_s) [S]); hmmlearn's
    `decode` of the concatenated sequences gives the same states and the sum of these scores.
    """
    _not_an_emission(x, "decode")
    validate(params, x, lengths)
    return _decode_jit(params, _device(x), _device(lengths))


@auto_axes_if_explicit
def em_step(params: HMMParams, x, lengths, start_prior=1.0, trans_prior=1.0, emission_prior=1.0):
    """One Baum-Welch iteration over padded sequences; statistics are sums over sequences and steps,
    so sharding x over devices gives the same result as one device.

    Structural zeros (zero start/transition probabilities) stay zero: Dirichlet pseudo-counts are only
    added where the probability is positive, and a state never visited keeps its previous row.

    Returns:
      (new params, total log-likelihood under the old params).
    """
    _not_an_emission(x, "em_step")
    _check_params(params, "em_step")
    emission = params.emission_model
    s, t = x.shape[:2]
    ll = _batch_log_lik(params, x)
    mask = lengths_mask(lengths, t)
    log_z, _, smoothed, trans_counts = _forward_backward_batch(
        params.log_start, params.log_trans, ll, mask, counts="total"
    )
    allowed_s = jnp.isfinite(params.log_start)
    allowed_t = jnp.isfinite(params.log_trans)
    start_c = smoothed[:, 0].sum(0) + jnp.where(allowed_s, start_prior - 1.0, 0.0)
    trans_c = trans_counts + jnp.where(allowed_t, trans_prior - 1.0, 0.0)
    start = start_c / start_c.sum()
    row = trans_c.sum(1, keepdims=True)
    trans = jnp.where(row > 0, trans_c / jnp.where(row > 0, row, 1.0), jnp.exp(params.log_trans))
    flat_x = x.reshape((s * t,) + x.shape[2:])
    gamma = smoothed.reshape(s * t, -1)
    em = emission.m_step(params.emission, emission.stats(params.emission, flat_x, gamma), emission_prior)
    with np.errstate(divide="ignore"):
        new = HMMParams(jnp.log(start), jnp.log(trans), em, emission)
    return new, jnp.sum(log_z)


def validate(params: HMMParams, x: Any, lengths: Any) -> None:
    """Check the parameters' type, probabilities and shapes; raises UserError naming the argument."""
    _check_params(params, "params")
    start = np.exp(np.asarray(params.log_start, np.float64))
    trans = np.exp(np.asarray(params.log_trans, np.float64))
    k = start.shape[0]
    if trans.shape != (k, k):
        raise UserError(f"log_trans must be [{k}, {k}], got {trans.shape}")
    if abs(start.sum() - 1) > 1e-4:
        raise UserError(f"start probabilities must sum to 1, got {start.sum():.6f}")
    bad = np.abs(trans.sum(1) - 1) > 1e-4
    if bad.any():
        raise UserError(f"transition rows {np.flatnonzero(bad).tolist()} do not sum to 1")
    x = np.asarray(x)
    lengths = np.asarray(lengths)
    if x.ndim < 2:
        raise UserError(f"x must be padded sequences [S, T, ...], got shape {x.shape}")
    if lengths.shape != (x.shape[0],):
        raise UserError(f"lengths must have one entry per sequence ({x.shape[0]}), got shape {lengths.shape}")
    if np.any(lengths < 1) or np.any(lengths > x.shape[1]):
        raise UserError(f"lengths must be between 1 and the padded length {x.shape[1]}")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x[lengths_mask(lengths, x.shape[1])])):
        raise UserError("x contains NaN or infinite values")


def fit(
    params: HMMParams,
    x,
    lengths,
    *,
    n_iter: int = 100,
    tol: float = 1e-2,
    start_prior: float = 1.0,
    trans_prior: float = 1.0,
    emission_prior: float = 1.0,
    check: bool = True,
) -> FitResult:
    """Baum-Welch to `tol` on the total log-likelihood (hmmlearn's rule) in one `lax.while_loop`.

    Args:
      params: initial HMMParams (they carry the emission model, e.g. from `init_params`).
      x: padded sequences [S, T, ...]; lengths: [S].
      n_iter: iterations at most; tol: stop when the log-likelihood gains less than this.
      start_prior, trans_prior, emission_prior: Dirichlet concentrations (1 = maximum likelihood).
    """
    _not_an_emission(x, "fit")
    if check:
        validate(params, x, lengths)
    warn_if_float64_dropped("hmm.fit", params, x)
    priors = (start_prior, trans_prior, emission_prior)
    i, p, ll, hist, conv = _fit_jit(params, _device(x), _device(lengths), tol, priors, n_iter)
    return FitResult(p, ll, hist, i, conv)


@functools.partial(jax.jit, static_argnums=(5,))
@auto_axes_if_explicit
def _fit_jit(params, x, lengths, tol, priors, n_iter):
    """The Baum-Welch loop of `fit`, compiled once per emission model, iteration budget and shapes."""
    dtype = params.log_trans.dtype

    def cond(c):
        i, _, _, _, conv = c
        return (i < n_iter) & ~conv

    def body(c):
        i, p, prev, hist, _ = c
        new, ll = em_step(p, x, lengths, *priors)
        return i + 1, new, ll, hist.at[i].set(ll), (ll - prev) < tol

    init = (0, params, jnp.asarray(-jnp.inf, dtype), jnp.full((n_iter,), jnp.nan, dtype), jnp.asarray(False))
    return jax.lax.while_loop(cond, body, init)


def sample_from(key, params: HMMParams, t: int, n: int = 1):
    """n sequences of length t: (x [n, t, ...], z [n, t])."""
    if isinstance(t, EMISSIONS):
        raise UserError("sample takes (key, params, t, n): the parameters carry their emission model")
    _check_params(params, "sample")

    def one(key):
        kz, kx = jax.random.split(key)
        keys = jax.random.split(kz, t)
        z0 = jax.random.categorical(keys[0], params.log_start)

        def step(z, k):
            nz = jax.random.categorical(k, params.log_trans[z])
            return nz, nz

        _, zs = jax.lax.scan(step, z0, keys[1:])
        z = jnp.concatenate([z0[None], zs])
        return params.emission_model.sample(kx, params.emission, z), z

    return jax.vmap(one)(jax.random.split(key, n))


# ----------------------------------------------------------------------------- family interface (CLI)


def _emission(cfg):
    m = cfg.model
    if not isinstance(m.n_states, int) or m.n_states < 1:
        raise UserError(f"model.n_states must be a positive integer, got {m.n_states!r}")
    if m.emission in ("gaussian", "gmm"):
        if m.covariance_type not in gmm.COVARIANCE_TYPES:
            raise UserError(f"model.covariance_type must be one of {gmm.COVARIANCE_TYPES}, got {m.covariance_type!r}")
        if not m.reg_covar > 0:
            raise UserError(f"model.reg_covar must be positive, got {m.reg_covar}")
    if m.emission == "categorical" and (not isinstance(m.n_symbols, int) or m.n_symbols < 1):
        raise UserError(f"model.n_symbols must be a positive integer for categorical emissions, got {m.n_symbols!r}")
    if not isinstance(m.get("sample_length", 1), int) or m.get("sample_length", 1) < 1:
        raise UserError(f"model.sample_length must be a positive integer, got {m.sample_length!r}")
    if m.emission == "gmm" and (not isinstance(m.n_mix, int) or m.n_mix < 1):
        raise UserError(f"model.n_mix must be a positive integer, got {m.n_mix!r}")
    if m.emission == "gaussian":
        return Gaussian(m.covariance_type, m.reg_covar)
    if m.emission == "categorical":
        return Categorical(m.n_symbols)
    if m.emission == "gmm":
        return GaussianMixture(m.n_mix, m.covariance_type, m.reg_covar)
    raise UserError(f"model.emission must be gaussian, categorical or gmm, got {m.emission!r}")


def _split(batch):
    return batch["x"], batch["length"].astype(jnp.int32)


def init_params(key, emission, x, lengths, n_states: int, init: str = "kmeans") -> HMMParams:
    """Initial HMMParams for `fit` from padded sequences x [S, T, ...] with lengths [S].

    Start and transition probabilities: uniform start, transitions half uniform and half
    self-transition. Gaussian and GMM emissions: a GMM initialisation on the pooled real steps
    (`init`: any of `gmm.INIT_METHODS`, e.g. "kmeans" as hmmlearn, or "random_from_data"), the GMM
    emission's components spread around each state's mean; categorical emissions: Dirichlet(1)
    symbol probabilities. Every array has x's floating dtype (float32 unless x64 is on and x is
    float64; categorical: JAX's default float).

    Raises:
      UserError naming the bad argument.
    """
    if not isinstance(n_states, int) or isinstance(n_states, bool) or n_states < 1:
        raise UserError(f"n_states must be a positive integer, got {n_states!r}")
    if isinstance(emission, Categorical) and np.ndim(x) != 2:
        raise UserError(
            f"categorical emissions need sequences of symbols [S, T], got steps of shape {tuple(np.shape(x)[2:])}; "
            "use Gaussian or GaussianMixture emissions"
        )
    if not isinstance(emission, Categorical) and init not in gmm.INIT_METHODS:
        raise UserError(f"init must be one of {gmm.INIT_METHODS}, got {init!r}")
    x, lengths = _device(x), _device(lengths)
    if x.ndim < 2 or lengths.shape != x.shape[:1]:
        raise UserError(f"x must be padded sequences [S, T, ...] with lengths [S], got {x.shape} and {lengths.shape}")
    return _init_params_jit(key, emission, x, lengths, n_states, init)


def _device(a):
    """A JAX array without an eager JAX op (which would compile a program of its own)."""
    return a if isinstance(a, jax.Array) else jax.device_put(np.asarray(a))


@functools.partial(jax.jit, static_argnums=(1, 4, 5))
def _init_params_jit(key, emission, x, lengths, n_states, init):
    k = n_states
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.zeros(()).dtype
    k1, k2 = jax.random.split(key)
    trans = jnp.full((k, k), 1.0 / k, dtype) * 0.5 + 0.5 * jnp.eye(k, dtype=dtype)
    start = jnp.full((k,), 1.0 / k, dtype)
    flat = x.reshape((-1,) + x.shape[2:])
    w = lengths_mask(lengths, x.shape[1]).reshape(-1)
    if isinstance(emission, Categorical):
        probs = jax.random.dirichlet(k2, jnp.ones(emission.n_symbols, dtype), (k,))
        em_params = {"log_probs": jnp.log(probs)}
    else:
        # GMM init on the real steps (padding rows replaced by real ones so they cannot form a cluster).
        idx = jnp.where(w, jnp.arange(w.shape[0]), jnp.argmax(w))
        pts = flat[idx]
        cov_type = "full" if isinstance(emission, GaussianMixture) else emission.covariance_type
        p = gmm.initialize(k2, pts, k, cov_type, init, emission.reg_covar)
        if isinstance(emission, GaussianMixture):
            off = 0.1 * jax.random.normal(k1, (k, emission.n_mix, pts.shape[1]), dtype)
            full = emission.covariance_type == "full"
            cov = p.covariances if full else jnp.diagonal(p.covariances, axis1=1, axis2=2)
            em_params = {
                "log_weights": jnp.full((k, emission.n_mix), -math.log(emission.n_mix), dtype),
                "means": p.means[:, None] + off * jnp.sqrt(jnp.mean(cov)),
                "covariances": jnp.broadcast_to(cov[:, None], (k, emission.n_mix) + cov.shape[1:]),
            }
        else:
            em_params = {"means": p.means, "covariances": p.covariances}
    return HMMParams(jnp.log(start), jnp.log(trans), em_params, emission)


def init(key, cfg, example_batch) -> TrainState:
    """The CLI family's initial state: `init_params` on the example batch (k-means emissions)."""
    x, lengths = _split(example_batch)
    em = _emission(cfg)
    if isinstance(em, Categorical) and x.ndim != 2:
        raise UserError(
            f"model.emission=categorical needs sequences of symbols [N, T], but the data {cfg.data.name!r} "
            f"has steps of shape {tuple(x.shape[2:])}; use emission=gaussian or gmm"
        )
    params = init_params(key, em, x, lengths, cfg.model.n_states)
    return TrainState.create(params=params.arrays())


def _state_params(state, cfg) -> HMMParams:
    """The checkpointed arrays with the config's emission model."""
    return HMMParams(**state.params, emission_model=_emission(cfg))


def train_step(state, batch, key, cfg):
    """One Baum-Welch iteration over the (sharded) batch of sequences."""
    x, lengths = _split(batch)
    p = _state_params(state, cfg)
    # model.trans_prior is the Dirichlet concentration of the start row and of every transition row.
    prior = cfg.model.trans_prior
    new, ll = em_step(p, x, lengths, start_prior=prior, trans_prior=prior)
    steps = jnp.sum(lengths)
    return state.replace(step=state.step + 1, params=new.arrays()), {
        "loss": -ll / steps,
        "loglik_per_step": ll / steps,
    }


def evaluate(state, batch, key, cfg):
    """Per-sequence log-likelihood (nats) and per-step average."""
    x, lengths = _split(batch)
    lengths = jnp.maximum(lengths, 1)  # padded evaluation rows (mask 0) still need one step
    post = posteriors(_state_params(state, cfg), x, lengths, trans_counts=False)
    return {"loglik_nats": post.log_likelihood, "loglik_per_step": post.log_likelihood / lengths}


def sample(state, key, n, cfg):
    """The family's sampler: n sequences of `model.sample_length` steps from a run's state."""
    x, _ = sample_from(key, _state_params(state, cfg), cfg.model.sample_length, n)
    return x
