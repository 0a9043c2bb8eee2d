"""Gaussian mixture model fitted by EM, in jnp/lax.

Covariance types full, diag, spherical and tied, parameterised as in scikit-learn (covariances plus
their precision Cholesky factors), so results can be compared with `sklearn.mixture.GaussianMixture`
started from the same parameters.

The E-step runs over chunks of the data inside `lax.scan` (a `dynamic_slice` per chunk, so the data
is never copied or padded): memory is O(chunk * K * D), not O(N * K * D). It returns sufficient
statistics summed over the data axis; under `jit` with the data sharded over devices (and hosts)
those sums are all-reduced by XLA, so a sharded EM step equals a one-device step. Covariance
statistics are accumulated around each component's current mean, and densities are computed from
the differences x - mu_k (never from expanded quadratic forms): float32 then keeps its digits on
data far from the origin or with components much tighter than the data (score within 1e-4 nats/point
of a float64 evaluation on sklearn's iris, wine, breast cancer and digits, every covariance type).

A component that loses all its points is re-seeded at one of the data points the model explains
worst (with the mixture's average covariance) instead of turning into NaN; `n_reseeded` says how often.

Notebook use: `fit(x, n_components, ...)` runs EM to `tol` in one `lax.while_loop`, with `n_init`
restarts vmapped; `sample_from(key, params, n)` draws from fitted parameters. The module is also a
family of the training loop (`gm_jax.family`): the CLI (`--model=gmm`) runs one EM iteration per loop
step through `init`, `train_step`, `evaluate`, `sample` at the bottom of this file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from gm_jax.classical import params_pytree
from gm_jax.classical.mesh import auto_axes_if_explicit
from gm_jax.classical.precision import warn_if_float64_dropped
from gm_jax.core import parallel
from gm_jax.core.errors import UserError
from gm_jax.core.state import TrainState

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
LOG_2PI = math.log(2.0 * math.pi)

# Every matrix product here runs in full float32 (or float64): JAX's default for float32 on GPUs
# (TF32) and TPUs (bfloat16 passes) keeps 10 or 8 mantissa bits, and the expanded quadratic forms
# of the E-step cancel.
PRECISION = jax.lax.Precision.HIGHEST


def mm(a: jax.Array, b: jax.Array) -> jax.Array:
    """a @ b at full precision."""
    return jnp.matmul(a, b, precision=PRECISION)


def einsum(spec: str, *operands: jax.Array) -> jax.Array:
    """jnp.einsum at full precision."""
    return jnp.einsum(spec, *operands, precision=PRECISION)


@params_pytree("weights", "means", "covariances", meta="covariance_type")
class GMMParams:
    """Mixture parameters, carrying their covariance type.

    A pytree whose leaves are the three arrays; `covariance_type` is static (part of the tree
    structure), so `score`, `predict_proba`, `bic`, `sample`, ... read it from the parameters and a
    compiled function specialises on it.

    Attributes:
      weights: [K] mixing proportions.
      means: [K, D].
      covariances: full [K, D, D] | diag [K, D] | spherical [K] | tied [D, D].
      covariance_type: one of COVARIANCE_TYPES.
    """

    weights: Any
    means: Any
    covariances: Any
    covariance_type: str

    def __post_init__(self):
        if self.covariance_type not in COVARIANCE_TYPES:
            raise UserError(
                f"GMMParams covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}"
            )

    def arrays(self) -> dict:
        """The three arrays by name (what a checkpoint stores)."""
        return {"weights": self.weights, "means": self.means, "covariances": self.covariances}

    def replace(self, **changes) -> GMMParams:
        return dataclasses.replace(self, **changes)


def _cov_shape(covariance_type: str, k: int, d: int) -> tuple:
    return {"full": (k, d, d), "diag": (k, d), "spherical": (k,), "tied": (d, d)}[covariance_type]


def resolve_covariance_type(params: Any, covariance_type: str | None = None, where: str = "gmm") -> str:
    """The covariance type of `params`, checked against an explicitly passed one and against the
    covariances' shape (static shapes: also under `jit`). Raises UserError naming the argument."""
    own = getattr(params, "covariance_type", None)
    if own is None:
        raise UserError(
            f"{where}: params must be a GMMParams (it carries its covariance type), got {type(params).__name__}"
        )
    if covariance_type is not None and covariance_type != own:
        raise UserError(
            f"{where}: covariance_type={covariance_type!r} does not match the parameters' {own!r} "
            "(leave it out: GMMParams carry their covariance type)"
        )
    k, d = np.shape(params.means)[-2:]
    want = _cov_shape(own, k, d)
    got = tuple(np.shape(params.covariances))
    if got[len(got) - len(want) :] != want or len(got) < len(want):
        raise UserError(f"{where}: covariances of shape {got} do not fit covariance_type {own!r} (expected {want})")
    return own


class Stats(NamedTuple):
    """Sufficient statistics of one E-step, summed over the data (weights w_n applied), moments taken
    about a centre c_k per component (the means the E-step ran with).

    Attributes:
      n: total weight (number of points).
      nk: [K] responsibilities summed.
      sz: [K, D] sum of r_nk (x_n - c_k).
      s2: sum of r_nk (x_n - c_k)(x_n - c_k)^T: full [K, D, D], diag/spherical [K, D] (its diagonal),
        tied [D, D] (summed over components).
      loglik: sum of w_n log p(x_n).
      worst_ll: [K] the K lowest log p(x_n) seen; worst_x: [K, D] those points (for re-seeding).
      centre: [K, D] the centres c_k (set by `e_step_stats`; None inside the sums).
    """

    n: jax.Array
    nk: jax.Array
    sz: jax.Array
    s2: jax.Array
    loglik: jax.Array
    worst_ll: jax.Array
    worst_x: jax.Array
    centre: Any = None


class FitResult(NamedTuple):
    """What `fit` returns (sklearn's attribute names where one exists).

    Attributes:
      params: fitted GMMParams.
      lower_bound: mean log-likelihood at the last E-step.
      history: [max_iter] lower bound per iteration (NaN after n_iter).
      n_iter: EM iterations run.
      converged: change of the bound fell below tol.
      n_reseeded: components re-seeded because they lost all their points.
    """

    params: GMMParams
    lower_bound: jax.Array
    history: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    n_reseeded: jax.Array


# ----------------------------------------------------------------------------- densities


def precision_cholesky(covariances: jax.Array, covariance_type: str) -> jax.Array:
    """Cholesky factors of the precisions (sklearn's `precisions_cholesky_`), same layout as covariances."""
    if covariance_type in ("full", "tied"):
        d = covariances.shape[-1]
        chol = jnp.linalg.cholesky(covariances)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=covariances.dtype), covariances.shape)
        return jnp.swapaxes(jax.scipy.linalg.solve_triangular(chol, eye, lower=True), -1, -2)
    return jax.lax.rsqrt(covariances)


def _maha(z: jax.Array, prec_chol: jax.Array, covariance_type: str) -> jax.Array:
    """Squared Mahalanobis distances from differences already taken per component.
    z: [K, N, D] (x_n - mu_k) -> [K, N]

    The difference comes first and the precision is applied to it, so float32 keeps its relative
    precision however far the data sit from the origin or from the other components (the expanded
    form x'Px - 2x'Pm + m'Pm cancels: 14 nats/point on breast cancer, spherical, K=8).
    """
    if covariance_type == "full":
        y = einsum("knd,kde->kne", z, prec_chol)
        return jnp.sum(y * y, -1)
    if covariance_type == "tied":
        y = einsum("knd,de->kne", z, prec_chol)
        return jnp.sum(y * y, -1)
    if covariance_type == "diag":
        return einsum("knd,kd->kn", z * z, prec_chol**2)
    return jnp.sum(z * z, -1) * (prec_chol**2)[:, None]  # spherical


def _log_det(prec_chol: jax.Array, covariance_type: str, d: int) -> jax.Array:
    """log det of the precision Cholesky factors: [K] (a scalar for tied)."""
    if covariance_type == "full":
        return jnp.sum(jnp.log(jnp.diagonal(prec_chol, axis1=-2, axis2=-1)), -1)
    if covariance_type == "tied":
        return jnp.sum(jnp.log(jnp.diagonal(prec_chol)))
    if covariance_type == "diag":
        return jnp.sum(jnp.log(prec_chol), -1)
    return d * jnp.log(prec_chol)


def _log_gaussian_kn(z: jax.Array, prec_chol: jax.Array, covariance_type: str) -> jax.Array:
    """log N(x_n | mu_k, Sigma_k) from z = x_n - mu_k. [K, N, D] -> [K, N]"""
    d = z.shape[-1]
    log_det = jnp.broadcast_to(_log_det(prec_chol, covariance_type, d), z.shape[:1])
    return -0.5 * (d * LOG_2PI + _maha(z, prec_chol, covariance_type)) + log_det[:, None]


def log_gaussian(x: jax.Array, means: jax.Array, prec_chol: jax.Array, covariance_type: str) -> jax.Array:
    """log N(x_n | mu_k, Sigma_k) for every point and component. [N, D] -> [N, K]

    Memory O(N K D): the differences x_n - mu_k are formed (see `_maha` for why).
    """
    z = x[None] - means[:, None]  # [K, N, D]
    return _log_gaussian_kn(z, prec_chol, covariance_type).T


def _weighted_log_prob(x, params: GMMParams, covariance_type: str) -> jax.Array:
    pc = precision_cholesky(params.covariances, covariance_type)
    return log_gaussian(x, params.means, pc, covariance_type) + jnp.log(params.weights)


# ----------------------------------------------------------------------------- chunked E-step


# Rows swept at a time when the caller gives no chunk, so a block is read from memory once for both
# the E-step and the M-step (per-component differences: [K, rows, D] floats, 7 MiB at K=D=16 in
# float32). Measured for the packed full-covariance path on 2 cores at N=200k, D=16, K=16: 21 ms per
# float32 iteration against 27 ms for one pass over all rows, flat from 5k to 8k rows.
_SWEEP_ROWS = 6912


def _row_shards(n: int) -> int:
    """Devices along the context mesh's data axis (`jax.set_mesh`), when the n rows split evenly
    over them; 1 otherwise."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or parallel.DATA_AXIS not in mesh.axis_names:
        return 1
    d = dict(mesh.shape)[parallel.DATA_AXIS]
    return d if d > 1 and n % d == 0 else 1


def _chunked_sum(fn, x, w: jax.Array, chunk: int | None, merge=None, consts=None):
    """sum over chunks of fn(x_chunk, w_chunk, rows, consts); `merge(parts)` reduces results stacked
    on a leading axis (default: add leafwise). `consts` (parameters, any pytree) reach `fn` as an
    argument rather than through its closure, so that they can enter `shard_map` replicated.

    `x` is an array or a pytree of arrays sharing the leading (row) axis. Full chunks are read with
    `dynamic_slice` inside `lax.scan`; a final overlapping chunk covers the remainder with the
    already-seen rows masked out, so the data is never padded or copied.

    Under a context mesh with a "data" axis (`jax.set_mesh`; the training loop sets its mesh, and
    `fit` the mesh its data is placed on) the rows are split over that axis, as batches are, and each
    device sweeps its own rows (`shard_map`); the results meet in one `psum`, or in
    `merge(all_gathered)` when a merge is given. Without one, a row-sharded input is still
    summed correctly, but slicing chunks out of its sharded axis makes every device gather every
    row. `chunk` counts rows per device.
    """
    shards = _row_shards(w.shape[0])
    if shards == 1:
        return _chunked_sum_local(lambda a, b, rows: fn(a, b, rows, consts), x, w, chunk, merge)
    axis = parallel.DATA_AXIS
    per = w.shape[0] // shards

    def local(x, w, consts):
        offset = jax.lax.axis_index(axis) * per
        out = _chunked_sum_local(lambda a, b, rows: fn(a, b, rows + offset, consts), x, w, chunk, merge)
        if merge is None:
            return jax.lax.psum(out, axis)
        return merge(jax.lax.all_gather(out, axis))

    spec, repl = PartitionSpec(axis), PartitionSpec()
    # check_vma=False: an all_gather's result is the same on every device, but is typed as varying.
    return jax.shard_map(local, in_specs=(spec, spec, repl), out_specs=repl, check_vma=False)(x, w, consts)


def _chunked_sum_local(fn, x, w: jax.Array, chunk: int | None, merge=None):
    n = w.shape[0]

    def combine(a, b):
        if merge is None:
            return jax.tree.map(jnp.add, a, b)
        return merge(jax.tree.map(lambda u, v: jnp.stack([u, v]), a, b))

    chunk = n if chunk is None else max(1, min(int(chunk), n))
    m, rem = divmod(n, chunk)

    def piece(start, mask):
        xs = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, chunk, 0), x)
        ws = jax.lax.dynamic_slice_in_dim(w, start, chunk, 0) * mask
        return fn(xs, ws, start + jnp.arange(chunk))

    ones = jnp.ones((chunk,), w.dtype)
    acc = piece(0, ones)
    if m > 1:

        def body(a, i):
            return combine(a, piece(i * chunk, ones)), None

        acc, _ = jax.lax.scan(body, acc, jnp.arange(1, m))
    if rem:
        start = n - chunk
        mask = (jnp.arange(chunk) + start >= m * chunk).astype(w.dtype)
        acc = combine(acc, piece(start, mask))
    return acc


def _lowest(ll: jax.Array, k: int) -> jax.Array:
    """Indices of the k lowest entries of ll (ties: first position first).

    Ranked by their float32 values: XLA:CPU's top_k has a fast kernel for float32 only (for float64
    it sorts; at N=1e5, 21 ms against 0.15 ms). A point re-seeds a component, so it only needs to be
    among the worst explained; the order is total (value, then position), so chunked, sharded and
    one-pass statistics pick the same points.
    """
    return jax.lax.top_k(-ll.astype(jnp.float32), k)[1]


def _merge_stats(parts: Stats) -> Stats:
    """Statistics stacked on a leading axis (chunks, devices) merged: the sums added, and the K
    worst-explained points of all of them kept."""
    k = parts.worst_ll.shape[-1]
    ll, xs = parts.worst_ll.reshape(-1), parts.worst_x.reshape((-1,) + parts.worst_x.shape[2:])
    idx = _lowest(ll, k)
    additive = (jnp.sum(a, 0) for a in (parts.n, parts.nk, parts.sz, parts.s2, parts.loglik))
    return Stats(*additive, worst_ll=ll[idx], worst_x=xs[idx])


def _chunk_stats(xs, ws, rows, resp_and_ll, centre, covariance_type: str, k: int) -> Stats:
    """Statistics of one chunk, moments taken about `centre` [K, D] (the current means).

    `resp_and_ll(xs, z, rows)` gives responsibilities [K, c] and log p(x) [c] from the chunk and its
    differences z = x - centre_k [K, c, D]. Centring every component at a point close to its mean keeps
    the second moments free of cancellation in float32: moments about one point for all components
    (the data mean) made covariances of tightly clustered data lose all their digits (digits: NaN fits).
    """
    z = xs[None] - centre[:, None]  # [K, c, D]
    r, ll = resp_and_ll(xs, z, rows)  # [K, c], [c]
    r = r * ws[None]
    nk = r.sum(1)
    sz = einsum("kc,kcd->kd", r, z)
    if covariance_type == "full":
        s2 = einsum("kcd,kce->kde", z * r[..., None], z)
    elif covariance_type == "tied":
        s2 = einsum("kcd,kce->de", z * r[..., None], z)
    else:
        s2 = einsum("kc,kcd->kd", r, z * z)
    return _finish_chunk(xs, ws, ll, k, nk, sz, s2)


def _finish_chunk(xs, ws, ll, k, nk, sz, s2) -> Stats:
    """A chunk's Stats from its moments, with its K worst-explained points."""
    # Rows with zero weight (masked remainder, padding) must not count as badly explained points.
    masked_ll = jnp.where(ws > 0, ll, jnp.inf)
    kk = min(k, xs.shape[0])
    idx = _lowest(masked_ll, kk)
    worst_ll, worst_x = masked_ll[idx], xs[idx]
    if kk < k:
        worst_ll = jnp.concatenate([worst_ll, jnp.full((k - kk,), jnp.inf, xs.dtype)])
        worst_x = jnp.concatenate([worst_x, jnp.zeros((k - kk, xs.shape[1]), xs.dtype)])
    return Stats(ws.sum(), nk, sz, s2, jnp.sum(jnp.where(ws > 0, ll, 0.0) * ws), worst_ll, worst_x)


def _packed_outer(x: jax.Array) -> jax.Array:
    """Upper triangle of x_n x_n^T per row, packed, followed by x_n itself.
    [N, D] -> [N, D(D+1)/2 + D]

    One GEMM against these features gives a full-covariance Mahalanobis term (E-step), and one
    GEMM of the responsibilities against them gives both first and second moments (M-step).
    """
    d = x.shape[-1]
    # Static slices in np.triu_indices order (row i: columns i..D-1); inside the EM loop this measured
    # faster than the equivalent gather.
    return jnp.concatenate([x[:, i : i + 1] * x[:, i:] for i in range(d)] + [x], axis=1)


def _unpack(packed: jax.Array, d: int) -> jax.Array:
    """Inverse of the packing for symmetric matrices. [..., D(D+1)/2] -> [..., D, D]"""
    i, j = np.triu_indices(d)
    out = jnp.zeros(packed.shape[:-1] + (d, d), packed.dtype).at[..., i, j].set(packed)
    return out.at[..., j, i].set(packed)


def _prec_and_weights(means_c, prec_chol):
    """GEMM operands of the packed Mahalanobis term: [K, D(D+1)/2 + D] and the constant [K]."""
    d = means_c.shape[-1]
    prec = einsum("kij,klj->kil", prec_chol, prec_chol)  # [K, D, D]
    i, j = np.triu_indices(d)
    w = prec[:, i, j] * jnp.where(i == j, 1.0, 2.0).astype(prec.dtype)  # [K, D(D+1)/2]
    pm = einsum("kij,kj->ki", prec, means_c)  # [K, D]
    return jnp.concatenate([w, -2.0 * pm], 1), jnp.sum(pm * means_c, -1), prec


# The packed full-covariance E-step is taken while eps * kappa stays below this, kappa estimating
# |x - g|^T |P_k| |x - g| for the points of component k (see `_packed_is_exact_enough`). Measured in
# float32 on sklearn's sets, the packed E-step's mean log-likelihood is off by about 0.005-0.01 *
# eps * kappa (breast cancer K=3: eps * kappa = 0.068, error 3.4e-4 nats; iris K=8: 5.4e-3, 3.7e-5),
# so this bound keeps it near 1e-5. The benchmark's mixture (N=200k, D=K=16) stays at 2e-4.
_PACKED_MAX_CANCELLATION = 1e-3


def _data_centre(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A data centre g (mean of the first rows) and the rows' spread about it (per feature std)."""
    head = x[: min(x.shape[0], 4096)]
    g = jnp.mean(head, 0)
    return g, jnp.sqrt(jnp.mean((head - g) ** 2, 0))


def _packed_is_exact_enough(params: GMMParams, prec: jax.Array, g: jax.Array, spread: jax.Array) -> jax.Array:
    """Whether the packed E-step (moments about one data centre g) keeps float digits enough.

    Its quadratic forms <P_k, x'x'^T> - 2 x'^T P_k m'_k + m'^T P_k m' (x' = x - g) cancel: the
    rounding error is about eps |x'|^T |P_k| |x'|, while the result is the Mahalanobis distance. For
    components far from g relative to their own spread (tight clusters, features of very different
    scales, directions held at reg_covar) that product is large, and the exact per-component path is
    taken instead.
    """
    a = jnp.abs(prec)
    v = jnp.abs(params.means - g) + spread  # [K, D]
    kappa = jnp.where(params.weights > 0, einsum("kd,kde,ke->k", v, a, v), 0.0)  # absent components: no say
    return jnp.finfo(prec.dtype).eps * jnp.max(kappa) < _PACKED_MAX_CANCELLATION


def _packed_full_stats(x, w, params: GMMParams, pc, logw, g, feats, chunk) -> Stats:
    """Full-covariance statistics about one data centre g from packed outer products (`feats`):
    one GEMM for the E-step and one for the M-step per block."""
    k, d = params.means.shape
    wmat, const, _ = _prec_and_weights(params.means - g, pc)
    log_det = _log_det(pc, "full", d)

    def stats(xs, ws, rows, c):
        del rows
        wmat, const, log_det, logw = c
        xs, fs = xs if feats is not None else (xs, _packed_outer(xs - g))
        maha = jnp.maximum(mm(fs, wmat.T) + const, 0.0)
        lp = -0.5 * (d * LOG_2PI + maha) + log_det + logw  # [c, K]
        ll = jax.nn.logsumexp(lp, axis=1)
        r = jnp.exp(lp - ll[:, None]) * ws[:, None]
        nk = r.sum(0)
        moments = mm(r.T, fs)  # second moments about g (packed), then first moments
        return _finish_chunk(xs, ws, ll, k, nk, moments[:, -d:], _unpack(moments[:, :-d], d))

    rows = (x, feats) if feats is not None else x
    return _chunked_sum(stats, rows, w, chunk, _merge_stats, consts=(wmat, const, log_det, logw))


# Below this many rows the packed full-covariance E-step is not built: its GEMMs pay only at scale,
# and a second path for lax.cond to choose from doubles the E-step's compile time (iris, K=3:
# 0.37 s against 0.70 s), which is most of what a first fit on small data waits for.
_PACKED_MIN_ROWS = 4096


@auto_axes_if_explicit
def e_step_stats(
    x: jax.Array,
    params: GMMParams,
    covariance_type: str | None = None,
    weights: jax.Array | None = None,
    chunk: int | None = None,
    feats: jax.Array | None = None,
) -> Stats:
    """Sufficient statistics of the E-step under `params`, summed over the data in chunks.

    Moments are taken about each component's current mean. Full covariances on `_PACKED_MIN_ROWS`
    rows or more also have a faster path, taken when the error bound of `_packed_is_exact_enough`
    allows it: moments about one data centre from packed outer products of the data, two GEMMs per
    block.

    Args:
      x: data [N, D].
      params: current parameters.
      covariance_type: None (the parameters') or the same, checked.
      weights: [N] per-point weights (1 = use, 0 = padding); default all ones.
      chunk: rows per chunk (None = blocks of `_SWEEP_ROWS`); memory is O(chunk K D).
      feats: `_packed_outer(x - g)` for full covariances when computed beforehand (`fit` does, as
        they do not depend on the parameters); formed here when None.
    Returns:
      Stats, with `centre` the centres the moments were taken about.
    """
    covariance_type = resolve_covariance_type(params, covariance_type, "e_step_stats")
    w = jnp.ones(x.shape[:1], x.dtype) if weights is None else weights.astype(x.dtype)
    pc = precision_cholesky(params.covariances, covariance_type)
    logw = jnp.log(params.weights)
    # All rows at once (chunk None): the packed products of the whole data set are formed once
    # (inside `fit` they do not depend on the parameters and are computed before the EM loop); with
    # a chunk size, which bounds memory, each block forms its own.
    whole = chunk is None
    chunk = _SWEEP_ROWS if chunk is None else chunk

    def exact(_):
        return _exact_stats(x, w, params, pc, logw, covariance_type, chunk)

    if covariance_type != "full" or x.shape[0] < _PACKED_MIN_ROWS:
        return exact(None)
    g, spread = _data_centre(x)
    f = _packed_outer(x - g) if feats is None and whole else feats

    def packed(_):
        st = _packed_full_stats(x, w, params, pc, logw, g, f, chunk)
        return st._replace(centre=jnp.broadcast_to(g, params.means.shape))

    _, _, prec = _prec_and_weights(params.means - g, pc)
    return jax.lax.cond(_packed_is_exact_enough(params, prec, g, spread), packed, exact, None)


def _exact_stats(x, w, params: GMMParams, pc, logw, covariance_type: str, chunk: int) -> Stats:
    """E-step statistics with the moments about each component's current mean, in chunks of rows."""
    k = params.weights.shape[0]

    def resp_and_ll(c, z):
        pc, logw = c
        lp = _log_gaussian_kn(z, pc, covariance_type) + logw[:, None]  # [K, c]
        ll = jax.nn.logsumexp(lp, axis=0)
        return jnp.exp(lp - ll[None]), ll

    st = _chunked_sum(
        lambda xs, ws, r, c: _chunk_stats(
            xs, ws, r, lambda _, z, rows: resp_and_ll(c[:2], z), c[2], covariance_type, k
        ),
        x,
        w,
        chunk,
        _merge_stats,
        consts=(pc, logw, params.means),
    )
    return st._replace(centre=params.means)


def resp_stats(x: jax.Array, resp: jax.Array, shift: jax.Array, covariance_type: str, ll: jax.Array) -> Stats:
    """Sufficient statistics for given responsibilities (e.g. HMM state posteriors).

    Args:
      x: [N, D]; resp: [N, K] (rows of zeros for padding); shift: [K, D] centre of the moments
        (usually the current means); ll: [N] how well the model explains each point (used to pick re-seeding points).
    """
    k = resp.shape[1]
    ws = (resp.sum(1) > 0).astype(x.dtype)
    return _chunk_stats(x, ws, None, lambda *_: (resp.T, ll), shift, covariance_type, k)


def m_step(
    stats: Stats,
    shift: jax.Array | None,
    covariance_type: str,
    reg_covar: float,
    active: jax.Array | None = None,
) -> tuple[GMMParams, jax.Array]:
    """Parameters maximising the expected complete-data log-likelihood, with empty components re-seeded.

    Args:
      stats: E-step statistics with moments about `shift` [K, D].
      shift: the centres the statistics were taken about; None: `stats.centre`.
      covariance_type, reg_covar: as in `fit`.
      active: [K] bool, None = all. An inactive component is absent from the mixture: weight
        exactly 0 (so it takes no points), unit covariance, never re-seeded. `fit` pads K to a
        bucket this way, so one compiled program serves every K of a model-selection sweep.
    Returns:
      (params, number of components re-seeded).
    """
    shift = stats.centre if shift is None else shift
    dtype = stats.sz.dtype
    eps = 10 * jnp.finfo(dtype).eps
    k, d = stats.sz.shape
    act = jnp.ones((k,), bool) if active is None else active
    nk = jnp.where(act, stats.nk + eps, 0.0)  # as sklearn: keeps an empty component finite before it is re-seeded
    nk_div = jnp.where(act, nk, 1.0)
    delta = stats.sz / nk_div[:, None]  # new mean - centre: small, so the subtraction below keeps its digits
    means = shift + delta
    eye = jnp.eye(d, dtype=dtype)
    if covariance_type == "full":
        cov = stats.s2 / nk_div[:, None, None] - einsum("kd,ke->kde", delta, delta) + reg_covar * eye
        unit = eye
    elif covariance_type == "tied":
        cov = (stats.s2 - einsum("k,kd,ke->de", nk, delta, delta)) / jnp.sum(nk) + reg_covar * eye
    else:
        diag = stats.s2 / nk_div[:, None] - delta**2 + reg_covar
        cov = diag if covariance_type == "diag" else diag.mean(1)
        unit = jnp.ones(cov.shape[1:], dtype)
    weights = nk / jnp.sum(nk)

    # A component with (almost) no mass is re-seeded at a badly explained data point.
    empty = (stats.nk < 1e-6 * stats.n / jnp.sum(act) + eps) & act
    rank = jnp.cumsum(empty) - 1
    seed_x = stats.worst_x[jnp.clip(rank, 0, k - 1)]
    means = jnp.where(empty[:, None], seed_x, means)
    if covariance_type in ("full", "diag", "spherical"):
        live = (~empty & act).astype(dtype)
        avg = jnp.tensordot(live * weights, cov, 1, precision=PRECISION) / jnp.maximum(jnp.sum(live * weights), eps)
        per_comp = (k,) + (1,) * (cov.ndim - 1)
        cov = jnp.where(empty.reshape(per_comp), avg[None], cov)
        cov = jnp.where(act.reshape(per_comp), cov, unit[None])
    weights = jnp.where(empty, 1.0 / stats.n, weights)
    weights = weights / weights.sum()
    return GMMParams(weights, means, cov, covariance_type), jnp.sum(empty)


@auto_axes_if_explicit
def em_step(
    x: jax.Array,
    params: GMMParams,
    covariance_type: str | None,
    reg_covar: float,
    weights: jax.Array | None = None,
    chunk: int | None = None,
) -> tuple[GMMParams, jax.Array, jax.Array]:
    """One EM iteration (`covariance_type`: None, the parameters', or the same, checked).

    Returns:
      (new params, mean log-likelihood under the old params, number of components re-seeded).
    """
    covariance_type = resolve_covariance_type(params, covariance_type, "em_step")
    stats = e_step_stats(x, params, covariance_type, weights, chunk)
    # Components of weight exactly 0 stay absent (see `m_step`).
    new, n_re = m_step(stats, None, covariance_type, reg_covar, active=params.weights > 0)
    return new, stats.loglik / stats.n, n_re


# ----------------------------------------------------------------------------- initialisation


def _sq_dist(x, c):  # [N, D], [K, D] -> [N, K]
    return jnp.sum(x * x, 1)[:, None] - 2.0 * mm(x, c.T) + jnp.sum(c * c, 1)[None]


def _masked_sq_dist(x, c, active):
    """Squared distances [N, K], +inf to inactive centres (so no point is assigned to them)."""
    d2 = _sq_dist(x, c)
    return d2 if active is None else jnp.where(active[None], d2, jnp.inf)


def kmeans_plusplus(key: jax.Array, x: jax.Array, k: int, active: jax.Array | None = None) -> jax.Array:
    """k-means++ seeding (D^2 sampling, one candidate per step). [N, D] -> [K, D]

    The K uniforms are drawn at once and each step inverts the cumulative D^2 weights (one random
    draw to compile instead of one per step: PRNG code is a large share of a first fit's compile
    time). `active` [K] bool (a prefix): only those centres are drawn (the rest stay 0), with the
    same draws as for K = its count.
    """
    n = x.shape[0]
    u = jax.random.uniform(key, (k,), x.dtype)
    first = x[jnp.minimum((u[0] * n).astype(jnp.int32), n - 1)]
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    d2 = jnp.sum((x - first) ** 2, 1)

    def body(i, carry):
        centers, d2 = carry
        cdf = jnp.cumsum(jnp.maximum(d2, 0.0))
        j = jnp.minimum(jnp.searchsorted(cdf, u[i] * cdf[-1], side="right"), n - 1)
        c = x[j]
        new = centers.at[i].set(c), jnp.minimum(d2, jnp.sum((x - c) ** 2, 1))
        if active is None:
            return new
        return jax.tree.map(lambda a, b: jnp.where(active[i], a, b), new, carry)

    centers, _ = jax.lax.fori_loop(1, k, body, (centers, d2))
    return centers


def kmeans(
    key: jax.Array, x: jax.Array, k: int, n_iter: int = 100, tol: float = 1e-4, active: jax.Array | None = None
) -> jax.Array:
    """Lloyd's k-means from k-means++ seeds, to `tol` on the centre shift or `n_iter`. -> [K, D]

    `active`: as in `kmeans_plusplus` (inactive centres take no points).
    """
    centers = kmeans_plusplus(key, x, k, active)
    scale = jnp.mean(jnp.var(x, 0))

    def cond(c):
        i, _, shift = c
        return (i < n_iter) & (shift > tol * scale)

    def body(c):
        i, centers, _ = c
        onehot = jax.nn.one_hot(jnp.argmin(_masked_sq_dist(x, centers, active), 1), k, dtype=x.dtype)
        cnt = onehot.sum(0)
        new = jnp.where(cnt[:, None] > 0, mm(onehot.T, x) / jnp.maximum(cnt, 1)[:, None], centers)
        return i + 1, new, jnp.sum((new - centers) ** 2)

    _, centers, _ = jax.lax.while_loop(cond, body, (0, centers, jnp.asarray(jnp.inf, x.dtype)))
    return centers


def _params_from_resp(x, resp_fn, consts, covariance_type, reg_covar, k, chunk, active=None) -> GMMParams:
    """One M-step from the responsibilities resp_fn(consts, x_chunk, rows) -> ([c, K], [c]).

    Two passes: the first finds each component's mean (moments about the data mean), the second takes
    the moments about those means, as every E-step does (see `_chunk_stats`).
    """
    w = jnp.ones(x.shape[:1], x.dtype)

    def stats_about(centre):
        return _chunked_sum(
            lambda xs, ws, rows, c: _chunk_stats(
                xs, ws, rows, lambda a, z, r: _transposed(resp_fn(c[0], a, r)), c[1], covariance_type, k
            ),
            x,
            w,
            _SWEEP_ROWS if chunk is None else chunk,
            _merge_stats,
            consts=(consts, centre),
        )

    centre = jnp.broadcast_to(jnp.mean(x, 0), (k, x.shape[1]))
    first = stats_about(centre)
    centre = centre + first.sz / (first.nk + 10 * jnp.finfo(x.dtype).eps)[:, None]
    params, _ = m_step(stats_about(centre), centre, covariance_type, reg_covar, active)
    return params


def _transposed(resp_and_ll):
    resp, ll = resp_and_ll
    return resp.T, ll


def initialize(
    key: jax.Array,
    x: jax.Array,
    n_components: int,
    covariance_type: str = "full",
    init_params: str = "kmeans",
    reg_covar: float = 1e-6,
    chunk: int | None = None,
    n_active: jax.Array | None = None,
) -> GMMParams:
    """Initial parameters: responsibilities from the init method, then one M-step (as sklearn).

    kmeans / k-means++ / random_from_data: hard assignment of every point to its nearest centre
    (Lloyd's k-means centres, k-means++ seeds, or K distinct random data points); random: uniform
    random responsibilities.

    n_active: None, or the number of components actually wanted (a traced integer <= K): the rest
    are absent (weight 0, see `m_step`) and every draw is the one a fit with K = n_active makes.
    """
    k = n_components
    active = None if n_active is None else jnp.arange(k) < n_active
    mask = (lambda a: a) if active is None else (lambda a: jnp.where(active[None], a, 0.0))
    if init_params == "random":

        def resp_fn(key, xs, rows):
            # Keyed by row and component, so the draw depends neither on the chunk size nor on K.
            def row(r):
                kr = jax.random.fold_in(key, r)
                return jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(kr, j), (), xs.dtype))(jnp.arange(k))

            u = mask(jax.vmap(row)(rows))
            return u / u.sum(1, keepdims=True), jnp.zeros(xs.shape[:1], xs.dtype)

        return _params_from_resp(x, resp_fn, key, covariance_type, reg_covar, k, chunk, active)
    if init_params == "kmeans":
        centers = kmeans(key, x, k, active=active)
    elif init_params == "k-means++":
        centers = kmeans_plusplus(key, x, k, active)
    else:  # random_from_data: K distinct points (a prefix of one permutation, whatever K)
        centers = x[jax.random.permutation(key, x.shape[0])[:k]]

    def resp_fn(centers, xs, rows):
        d2 = _masked_sq_dist(xs, centers, active)
        return jax.nn.one_hot(jnp.argmin(d2, 1), k, dtype=xs.dtype), -jnp.min(d2, 1)

    return _params_from_resp(x, resp_fn, centers, covariance_type, reg_covar, k, chunk, active)


# ----------------------------------------------------------------------------- fit and friends


def _validate(x, n_components, covariance_type, reg_covar, init_params, max_iter, n_init, tol):
    if not hasattr(x, "ndim") or x.ndim != 2:
        raise UserError(f"x must be a 2-D array [n_samples, n_features], got shape {getattr(x, 'shape', None)}")
    if covariance_type not in COVARIANCE_TYPES:
        raise UserError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
    if init_params not in INIT_METHODS:
        raise UserError(f"init_params must be one of {INIT_METHODS}, got {init_params!r}")
    if not isinstance(n_components, int) or n_components < 1:
        raise UserError(f"n_components must be a positive integer, got {n_components!r}")
    if n_components > x.shape[0]:
        raise UserError(f"n_components={n_components} is larger than the number of samples {x.shape[0]}")
    if not reg_covar > 0:
        raise UserError(f"reg_covar must be positive, got {reg_covar!r}")
    if max_iter < 1 or n_init < 1 or not tol >= 0:
        raise UserError(f"max_iter and n_init must be >= 1 and tol >= 0 (got {max_iter}, {n_init}, {tol})")
    if not isinstance(x, jax.core.Tracer) and not bool(np.all(np.isfinite(np.asarray(x)))):
        raise UserError("x contains NaN or infinite values")


def validate_params(params: GMMParams, n_features: int, covariance_type: str | None = None) -> GMMParams:
    """Check the type, shapes, simplex weights and positive (definite) covariances of given parameters."""
    covariance_type = getattr(params, "covariance_type", None) if covariance_type is None else covariance_type
    if not isinstance(params, GMMParams):
        raise UserError(f"params must be a GMMParams (it carries its covariance type), got {type(params).__name__}")
    if covariance_type != params.covariance_type:
        raise UserError(
            f"covariance_type={covariance_type!r} does not match the parameters' {params.covariance_type!r} "
            "(leave it out: GMMParams carry their covariance type)"
        )
    w, m, c = (np.asarray(a) for a in (params.weights, params.means, params.covariances))
    k = w.shape[0]
    shapes = {
        "full": (k, n_features, n_features),
        "diag": (k, n_features),
        "spherical": (k,),
        "tied": (n_features, n_features),
    }
    if w.ndim != 1 or m.shape != (k, n_features):
        raise UserError(f"weights must be [K] and means [K, {n_features}], got {w.shape} and {m.shape}")
    if c.shape != shapes[covariance_type]:
        raise UserError(f"covariances for {covariance_type!r} must have shape {shapes[covariance_type]}, got {c.shape}")
    if np.any(w < 0) or abs(w.sum() - 1) > 1e-5:
        raise UserError("weights must be non-negative and sum to 1")
    if covariance_type in ("full", "tied"):
        mats = c.reshape((-1, n_features, n_features))
        if not np.allclose(mats, np.swapaxes(mats, -1, -2)) or np.any(np.linalg.eigvalsh(mats) <= 0):
            raise UserError("covariances must be symmetric positive definite")
    elif np.any(c <= 0):
        raise UserError("covariances must be positive")
    return params


def fit(
    x: Any,
    n_components: int,
    covariance_type: str | None = None,
    *,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    max_iter: int = 100,
    n_init: int = 1,
    init_params: str = "kmeans",
    params_init: GMMParams | None = None,
    key: jax.Array | None = None,
    chunk_size: int | None = None,
) -> FitResult:
    """Fit a GMM by EM to tolerance inside one `lax.while_loop` (sklearn's stopping rule).

    Args:
      x: data [N, D] (float32 by default; float64 data inside `with jax.enable_x64(True):`).
      n_components: K.
      covariance_type: full | diag | spherical | tied; default: params_init's, else "full". The
        fitted GMMParams carry it, so later calls need not repeat it.
      tol: stop when the mean log-likelihood changes by less than this.
      reg_covar: added to covariance diagonals (> 0).
      max_iter: EM iterations at most.
      n_init: restarts (run in turn); the best lower bound is kept.
      init_params: kmeans | k-means++ | random | random_from_data (ignored with params_init).
      params_init: start from these parameters.
      key: PRNG key for the initialisation (default key 0).
      chunk_size: E-step rows per chunk, which bounds memory at O(chunk * K * D). None: blocks of
        `_SWEEP_ROWS` rows.
    Returns:
      FitResult.
    Raises:
      UserError (a ValueError) naming the bad argument.
    """
    x, covariance_type, params_init = _fit_inputs(
        x, n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, params_init
    )
    # Data placed on a mesh: that mesh is the context mesh, so the chunked sums run per device along
    # its data axis (when it has one) and explicit axes are handled (`auto_axes_if_explicit`).
    sharding = getattr(x, "sharding", None)
    on_mesh = isinstance(sharding, NamedSharding) and not isinstance(x, jax.core.Tracer)
    traced = isinstance(x, jax.core.Tracer)
    kb = n_components
    if params_init is None and not traced:
        kb = components_bucket(x.shape[0], x.shape[1], n_components, covariance_type, max_iter * n_init)
    with jax.set_mesh(sharding.mesh) if on_mesh else contextlib.nullcontext():
        # Scalars go in as NumPy values and the key is made inside: an eager jnp op outside the
        # compiled fit would compile a program of its own on a first call.
        k_real = None if kb == n_components else np.int32(n_components)
        statics = dict(n_init=n_init, n_components=kb, covariance_type=covariance_type, max_iter=max_iter)
        tol_, reg = np.asarray(tol, x.dtype), np.asarray(reg_covar, x.dtype)
        r = _FIT(x, key, params_init, tol_, reg, k_real, **statics, init_params=init_params, chunk=chunk_size)
    return r if kb == n_components else _unpadded(r, n_components, covariance_type)


def _unpadded(r: FitResult, k: int, covariance_type: str) -> FitResult:
    """A fit of K padded to a bucket with its absent components dropped, on the host (slicing on the
    device would compile a program per K)."""
    w, m, c = (np.asarray(a) for a in (r.params.weights, r.params.means, r.params.covariances))
    c = c if covariance_type == "tied" else c[:k]
    return r._replace(params=GMMParams(*jax.device_put((w[:k], m[:k], c)), covariance_type))


def _fit_inputs(x, n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, params_init):
    """`fit`'s arguments checked and placed: (x as device floats, the covariance type, params_init)."""
    x_in, x = x, _device_floats(x)
    if covariance_type is None:
        covariance_type = getattr(params_init, "covariance_type", None) or "full"
    _validate(x, n_components, covariance_type, reg_covar, init_params, max_iter, n_init, tol)
    if params_init is not None:
        validate_params(params_init, x.shape[1], covariance_type)
        params_init = jax.tree.map(lambda a: _device_floats(a, x.dtype), params_init)
    warn_if_float64_dropped("gmm.fit", x_in)
    return x, covariance_type, params_init


def _device_floats(a: Any, dtype: Any = None) -> jax.Array:
    """a as a floating JAX array (float32 for integers, or `dtype`), without an eager JAX op:
    a NumPy conversion and a transfer, which compile nothing."""
    if isinstance(a, jax.Array):
        if dtype is not None and a.dtype != dtype:
            return a.astype(dtype)
        return a if jnp.issubdtype(a.dtype, jnp.floating) else a.astype(jnp.float32)
    a = np.asarray(a)
    if dtype is not None:
        a = a.astype(dtype)
    elif not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    return jax.device_put(a)


# Padding K to this many components (absent ones with weight 0, see `m_step`) lets one compiled
# program serve every K up to it, e.g. a BIC sweep over K = 1..10. It is done only while the extra
# arithmetic stays below _BUCKET_MAX_EXTRA (2^28) multiply-adds over the whole fit, i.e. where
# compilation (seconds), not EM, is what a first fit waits for.
_BUCKET = 16
_BUCKET_MAX_EXTRA = 1 << 28


def components_bucket(n: int, d: int, k: int, covariance_type: str, max_iterations: int) -> int:
    """Components the compiled EM is built for: k, or _BUCKET when padding is cheap (see above)."""
    if k >= _BUCKET or n < _BUCKET:
        return k
    per_point = d * d if covariance_type in ("full", "tied") else d
    extra = n * (_BUCKET - k) * per_point * max_iterations
    return _BUCKET if extra <= _BUCKET_MAX_EXTRA else k


def _fit_restarts(x, key, params_init, tol, reg_covar, n_active, *, n_init, **static):
    """All restarts of `fit` in one compiled program (tol, reg_covar and the number of active
    components traced: changing them does not compile again); the restart with the best finite
    lower bound is returned. key None: key 0. Compiled as `_FIT`."""
    keys = jax.random.split(jax.random.key(0) if key is None else key, n_init)

    def one(k):
        return _fit_jit(x, k, params_init, tol=tol, reg_covar=reg_covar, n_active=n_active, **static)

    if n_init == 1:
        return one(keys[0])
    # Restarts one after another (lax.map), not vmapped: the full-covariance E-step chooses
    # between two paths with lax.cond, which under vmap would run both.
    results = jax.lax.map(one, keys)
    best = jnp.argmax(jnp.where(jnp.isfinite(results.lower_bound), results.lower_bound, -jnp.inf))
    return jax.tree.map(lambda a: a[best], results)


_FIT_STATIC = ("n_init", "n_components", "covariance_type", "max_iter", "init_params", "chunk")
_FIT = jax.jit(_fit_restarts, static_argnames=_FIT_STATIC)


@auto_axes_if_explicit
def _fit_jit(
    x, key, params_init, *, tol, reg_covar, n_components, covariance_type, max_iter, init_params, chunk, n_active=None
):
    if params_init is None:
        params = initialize(key, x, n_components, covariance_type, init_params, reg_covar, chunk, n_active)
    else:
        params = params_init
    dtype = x.dtype
    hist = jnp.full((max_iter,), jnp.nan, dtype)

    def cond(c):
        i, _, _, _, converged, _ = c
        return (i < max_iter) & ~converged

    def body(c):
        i, params, prev, hist, _, n_re = c
        new, lb, r = em_step(x, params, covariance_type, reg_covar, None, chunk)
        converged = jnp.abs(lb - prev) < tol
        return i + 1, new, lb, hist.at[i].set(lb), converged, n_re + r

    init = (0, params, jnp.asarray(-jnp.inf, dtype), hist, jnp.asarray(False), jnp.asarray(0))
    n_iter, params, lb, hist, converged, n_re = jax.lax.while_loop(cond, body, init)
    return FitResult(params, lb, hist, n_iter, converged, n_re)


def _eval_operands(x: Any, params: GMMParams) -> tuple[jax.Array, GMMParams, bool]:
    """x as a device array and params padded with absent components (weight 0) to the bucket
    `fit` uses, so that one compiled evaluation serves every K of a sweep; on the host, without
    eager JAX ops. Traced inputs (a caller's jit) pass unchanged. Returns (x, params, padded)."""
    if isinstance(x, jax.core.Tracer) or any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(params)):
        return x, params, False
    x = _device_floats(x)
    k, d = params.means.shape
    kb = components_bucket(x.shape[0], d, k, params.covariance_type, 1)
    if kb == k:
        return x, params, False
    w, m, c = (np.asarray(a) for a in (params.weights, params.means, params.covariances))
    pad = kb - k
    w = np.concatenate([w, np.zeros(pad, w.dtype)])
    m = np.concatenate([m, np.zeros((pad, d), m.dtype)])
    if params.covariance_type == "full":
        c = np.concatenate([c, np.broadcast_to(np.eye(d, dtype=c.dtype), (pad, d, d))])
    elif params.covariance_type != "tied":
        c = np.concatenate([c, np.ones((pad,) + c.shape[1:], c.dtype)])
    return x, GMMParams(*jax.device_put((w, m, c)), params.covariance_type), True


@jax.jit
def _score_samples(x, params):
    return jax.nn.logsumexp(_weighted_log_prob(x, params, params.covariance_type), axis=1)


@jax.jit
def _log_resp(x, params):
    return jax.nn.log_softmax(_weighted_log_prob(x, params, params.covariance_type), axis=1)


def score_samples(x: jax.Array, params: GMMParams, covariance_type: str | None = None) -> jax.Array:
    """log p(x_n) under the mixture. [N, D] -> [N]

    `covariance_type` is read from `params`; passing one that differs is an error. Compiled; K is
    padded as in `fit` (absent components contribute exactly nothing).
    """
    resolve_covariance_type(params, covariance_type, "score_samples")
    x, params, _ = _eval_operands(x, params)
    return _score_samples(x, params)


log_prob = score_samples


def score(x: jax.Array, params: GMMParams, covariance_type: str | None = None) -> jax.Array:
    """Mean log-likelihood per sample (sklearn's `score`)."""
    resolve_covariance_type(params, covariance_type, "score")
    x, params, _ = _eval_operands(x, params)
    return _score(x, params)


@jax.jit
def _score(x, params):
    return jnp.mean(_score_samples(x, params))


def _responsibilities(x, params, covariance_type, where):
    resolve_covariance_type(params, covariance_type, where)
    k = params.means.shape[0]
    x, params, padded = _eval_operands(x, params)
    lr = _log_resp(x, params)
    return (jax.device_put(np.asarray(lr)[:, :k]) if padded else lr), k


def predict_proba(x: jax.Array, params: GMMParams, covariance_type: str | None = None) -> jax.Array:
    """Responsibilities p(k | x_n). [N, D] -> [N, K]"""
    lr, _ = _responsibilities(x, params, covariance_type, "predict_proba")
    return _exp(lr)


def predict(x: jax.Array, params: GMMParams, covariance_type: str | None = None) -> jax.Array:
    """Most probable component per point. [N, D] -> [N]"""
    lr, _ = _responsibilities(x, params, covariance_type, "predict")
    return _argmax(lr)


_exp = jax.jit(jnp.exp)
_argmax = jax.jit(lambda a: jnp.argmax(a, axis=1))


def sample_from(
    key: jax.Array,
    params: GMMParams,
    n: int,
    covariance_type: str | None = None,
    components: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """n points and their components: ([n, D], [n]); `components` [n] fixes the components instead of drawing them."""
    resolve_covariance_type(params, covariance_type, "sample")
    return _sample(key, params, n, components)


@functools.partial(jax.jit, static_argnums=2)
def _sample(key, params, n, components):
    ct = params.covariance_type
    k1, k2 = jax.random.split(key)
    comp = jax.random.categorical(k1, jnp.log(params.weights), shape=(n,)) if components is None else components
    d = params.means.shape[1]
    eps = jax.random.normal(k2, (n, d), params.means.dtype)
    c = params.covariances
    if ct == "full":
        noise = einsum("nde,ne->nd", jnp.linalg.cholesky(c)[comp], eps)
    elif ct == "tied":
        noise = mm(eps, jnp.linalg.cholesky(c).T)
    elif ct == "diag":
        noise = eps * jnp.sqrt(c[comp])
    else:
        noise = eps * jnp.sqrt(c[comp])[:, None]
    return params.means[comp] + noise, comp


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters of the mixture (as sklearn counts them)."""
    k, d = n_components, n_features
    cov = {"full": k * d * (d + 1) // 2, "diag": k * d, "tied": d * (d + 1) // 2, "spherical": k}[covariance_type]
    return int(cov + k * d + k - 1)


def bic(x: jax.Array, params: GMMParams, covariance_type: str | None = None) -> jax.Array:
    """Bayesian information criterion (lower is better)."""
    ct = resolve_covariance_type(params, covariance_type, "bic")
    n, d = np.shape(x)
    return -2 * score(x, params) * n + n_parameters(params.weights.shape[0], d, ct) * math.log(n)


def aic(x: jax.Array, params: GMMParams, covariance_type: str | None = None) -> jax.Array:
    """Akaike information criterion (lower is better)."""
    ct = resolve_covariance_type(params, covariance_type, "aic")
    n, d = np.shape(x)
    return -2 * score(x, params) * n + 2 * n_parameters(params.weights.shape[0], d, ct)


# ----------------------------------------------------------------------------- family interface (CLI)


def _opts(cfg) -> dict:
    m = cfg.model
    known = {"n_components", "covariance_type", "reg_covar", "init_params", "chunk_size"}
    unknown = set(m.keys()) - known
    if unknown:
        raise UserError(f"unknown gmm model config keys: {sorted(unknown)}")
    if m.covariance_type not in COVARIANCE_TYPES:
        raise UserError(f"model.covariance_type must be one of {COVARIANCE_TYPES}")
    if m.init_params not in INIT_METHODS:
        raise UserError(f"model.init_params must be one of {INIT_METHODS}, got {m.init_params!r}")
    if not isinstance(m.n_components, int) or m.n_components < 1:
        raise UserError(f"model.n_components must be a positive integer, got {m.n_components!r}")
    if not m.reg_covar > 0:
        raise UserError(f"model.reg_covar must be positive, got {m.reg_covar}")
    return dict(m)


def _state_params(state: TrainState, o: dict) -> GMMParams:
    """The checkpointed arrays with the config's covariance type."""
    return GMMParams(**state.params, covariance_type=o["covariance_type"])


def init(key: jax.Array, cfg: Any, example_batch: dict) -> TrainState:
    """Initial parameters from the first batch (for EM the batch is the whole training set)."""
    o = _opts(cfg)
    x = example_batch["x"].reshape(example_batch["x"].shape[0], -1)
    if o["n_components"] > x.shape[0]:
        raise UserError(f"model.n_components={o['n_components']} is larger than the batch of {x.shape[0]} points")
    p = initialize(
        key,
        jnp.asarray(x),
        o["n_components"],
        o["covariance_type"],
        o["init_params"],
        o["reg_covar"],
        o.get("chunk_size") or None,
    )
    return TrainState.create(params=p.arrays())


def train_step(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> tuple[TrainState, dict]:
    """One EM iteration over the (sharded) batch; statistics are summed across devices by XLA."""
    o = _opts(cfg)
    x = batch["x"].reshape(batch["x"].shape[0], -1)
    params, lb, n_re = em_step(x, _state_params(state, o), o["covariance_type"], o["reg_covar"])
    return state.replace(step=state.step + 1, params=params.arrays()), {
        "loss": -lb,
        "loglik": lb,
        "n_reseeded": n_re.astype(lb.dtype),
    }


def evaluate(state: TrainState, batch: dict, key: jax.Array, cfg: Any) -> dict:
    """Per-point test log-likelihood in nats and NLL in bits/dim."""
    o = _opts(cfg)
    x = batch["x"].reshape(batch["x"].shape[0], -1)
    ll = score_samples(x, _state_params(state, o))
    return {"loglik_nats": ll, "nll_bpd": -ll / (x.shape[1] * math.log(2.0))}


def sample(state: TrainState, key: jax.Array, n: int, cfg: Any) -> jax.Array:
    """The family's sampler: n points from the fitted mixture of a run's state. -> [n, D]"""
    return sample_from(key, _state_params(state, _opts(cfg)), n)[0]
