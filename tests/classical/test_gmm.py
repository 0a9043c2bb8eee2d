"""GMM known answers: scikit-learn from the same parameters, monotone EM, recovery, sharding, chunking."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from gm_jax.classical import gmm
from gm_jax.core import parallel
from gm_jax.core.errors import UserError
from gm_jax.data.sources import GMM2D_TRUE
from tests.helpers import imprecise_products, random_covariances

COV_TYPES = gmm.COVARIANCE_TYPES


def _data(n=600, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (3, d))
    comp = rng.integers(0, 3, n)
    return centers[comp] + rng.normal(0, 1, (n, d)) * rng.uniform(0.5, 1.5, (3, d))[comp]


def _init_params(x, k, cov_type, seed=1):
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    means = x[rng.choice(len(x), k, replace=False)]
    weights = np.full(k, 1.0 / k)
    return weights, means, random_covariances(rng, k, d, cov_type, base=2.0, spread=0.3)


def _precisions(cov, cov_type):
    if cov_type in ("full", "tied"):
        return np.linalg.inv(cov)
    return 1.0 / cov


def _sklearn(x, k, cov_type, init, n_iter):
    w, m, c = init
    sk = GaussianMixture(
        k,
        covariance_type=cov_type,
        max_iter=n_iter,
        tol=0.0,
        reg_covar=1e-6,
        weights_init=w,
        means_init=m,
        precisions_init=_precisions(c, cov_type),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(x)
    return sk


@pytest.mark.parametrize("d", [4, 12])  # below and above the feature count where diag skips the GEMM
@pytest.mark.parametrize("cov_type", ["diag", "spherical"])
def test_log_gaussian_matches_scipy(cov_type, d):
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(d)
    x, means = rng.normal(0, 2, (50, d)), rng.normal(0, 2, (3, d))
    cov = rng.uniform(0.3, 2.0, (3, d) if cov_type == "diag" else (3,))
    with jax.enable_x64(True):
        got = gmm.log_gaussian(
            jnp.asarray(x), jnp.asarray(means), gmm.precision_cholesky(jnp.asarray(cov), cov_type), cov_type
        )
    full = cov if cov_type == "diag" else cov[:, None] * np.ones(d)
    want = np.stack([multivariate_normal(means[j], np.diag(full[j])).logpdf(x) for j in range(3)], 1)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("n_iter", [1, 20])
def test_matches_sklearn_from_same_parameters_float64(cov_type, n_iter, monkeypatch):
    if cov_type == "full" and n_iter == 20:
        monkeypatch.setattr(gmm, "_PACKED_MIN_ROWS", 0)  # the packed E-step (both paths: n_iter=1 is exact)
    x = _data()
    init = _init_params(x, 3, cov_type)
    sk = _sklearn(x, 3, cov_type, init, n_iter)
    with jax.enable_x64(True):
        r = gmm.fit(jnp.asarray(x), 3, cov_type, tol=0.0, max_iter=n_iter, params_init=gmm.GMMParams(*init, cov_type))
        assert r.params.means.dtype == jnp.float64
        np.testing.assert_allclose(r.params.weights, sk.weights_, rtol=1e-8)
        np.testing.assert_allclose(r.params.means, sk.means_, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(r.params.covariances, sk.covariances_, rtol=1e-7, atol=1e-10)
        assert float(r.lower_bound) == pytest.approx(sk.lower_bound_, rel=1e-10)
        assert int(r.n_iter) == sk.n_iter_ == n_iter
        np.testing.assert_allclose(
            gmm.score_samples(jnp.asarray(x), r.params, cov_type), sk.score_samples(x), rtol=1e-9
        )
        np.testing.assert_allclose(
            gmm.predict_proba(jnp.asarray(x), r.params, cov_type), sk.predict_proba(x), atol=1e-9
        )
        assert float(gmm.bic(jnp.asarray(x), r.params, cov_type)) == pytest.approx(sk.bic(x), rel=1e-9)
        assert float(gmm.aic(jnp.asarray(x), r.params, cov_type)) == pytest.approx(sk.aic(x), rel=1e-9)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_matches_sklearn_float32(cov_type):
    x = _data()
    init = _init_params(x, 3, cov_type)
    sk = _sklearn(x, 3, cov_type, init, 20)
    r = gmm.fit(x.astype(np.float32), 3, cov_type, tol=0.0, max_iter=20, params_init=gmm.GMMParams(*init, cov_type))
    assert r.params.means.dtype == jnp.float32
    np.testing.assert_allclose(r.params.means, sk.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r.params.covariances, sk.covariances_, rtol=1e-3, atol=1e-4)
    assert float(r.lower_bound) == pytest.approx(sk.lower_bound_, rel=1e-5)
    np.testing.assert_array_equal(gmm.predict(jnp.asarray(x, jnp.float32), r.params, cov_type), sk.predict(x))


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("init", gmm.INIT_METHODS)
def test_log_likelihood_never_decreases(cov_type, init):
    x = _data(n=400, seed=3)
    with jax.enable_x64(True):
        # reg_covar perturbs the M-step away from the exact maximiser, so with sklearn's 1e-6 the
        # likelihood can dip (by 3e-8 here when a component holds 3 points); EM proper cannot.
        r = gmm.fit(
            jnp.asarray(x), 4, cov_type, tol=0.0, max_iter=30, init_params=init, key=jax.random.key(2), reg_covar=1e-12
        )
        h = np.asarray(r.history)[: int(r.n_iter)]
    assert len(h) == 30 and np.all(np.isfinite(h))
    assert np.all(np.diff(h) >= -1e-9), np.diff(h).min()


def test_recovers_known_parameters_up_to_permutation():
    w, mu, cov = GMM2D_TRUE
    p = gmm.GMMParams(jnp.asarray(w, jnp.float32), jnp.asarray(mu, jnp.float32), jnp.asarray(cov, jnp.float32), "full")
    x, _ = gmm.sample_from(jax.random.key(0), p, 20000, "full")
    r = gmm.fit(x, 3, "full", n_init=3, key=jax.random.key(1))
    assert bool(r.converged)
    order = np.argsort(np.asarray(r.params.means)[:, 0])
    true_order = np.argsort(mu[:, 0])
    np.testing.assert_allclose(np.asarray(r.params.means)[order], mu[true_order], atol=0.06)
    np.testing.assert_allclose(np.asarray(r.params.weights)[order], w[true_order], atol=0.015)
    np.testing.assert_allclose(np.asarray(r.params.covariances)[order], cov[true_order], atol=0.08)


@pytest.mark.parametrize("sweep_rows", [6912, 97])  # one block, or ten blocks and an overlapping remainder
def test_chunked_e_step_equals_one_pass_and_sharded_equals_one_device(sweep_rows, monkeypatch):
    monkeypatch.setattr(gmm, "_SWEEP_ROWS", sweep_rows)
    monkeypatch.setattr(gmm, "_PACKED_MIN_ROWS", 0)  # the packed full-covariance path too
    x = jnp.asarray(_data(n=1000, d=4), jnp.float32)
    init = gmm.GMMParams(*(jnp.asarray(a, jnp.float32) for a in _init_params(np.asarray(x), 3, "full")), "full")
    one = gmm.em_step(x, init, "full", 1e-6)
    # float32 sums over 1000 rows in another order: a covariance entry is a difference of second
    # moments of size ~3, so its rounding is absolute, ~1e-5 of that scale (seen: 1.4e-5 on 0.1).
    tol = dict(rtol=2e-5, atol=5e-5)
    for chunk in (64, 333, 1000):
        got = gmm.em_step(x, init, "full", 1e-6, chunk=chunk)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(one), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **tol)
    mesh = parallel.make_mesh()
    assert mesh.devices.size == 8
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
    step = jax.jit(lambda x, p: gmm.em_step(x, p, "full", 1e-6))
    single = step(jax.device_put(x, jax.devices()[0]), jax.device_put(init, jax.devices()[0]))
    plain = step(xs, init)  # no context mesh: one program over the sharded rows
    with jax.set_mesh(mesh):  # each device sweeps its own rows
        sharded = step(xs, init)
        hlo = step.lower(xs, init).compile().as_text()
    for got in (plain, sharded):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **tol)
    # Per-device sweeps exchange only statistics: nothing as large as a device's rows is gathered.
    gathered = [
        int(np.prod([int(v) for v in m.split(",")])) for m in re.findall(r"= f32\[([\d,]+)\]\S* all-gather\(", hlo)
    ]
    assert max(gathered, default=0) < x.size // 8, gathered  # one device's rows: 500 floats


_SKLEARN_SETS = ("iris", "wine", "breast_cancer", "digits")


# Every covariance type on the three small sets; the 64-dimensional digits with full covariances,
# the type whose float32 accuracy is hardest to keep (the other types there add minutes, not cover).
_REAL_CASES = [(n, c) for n in _SKLEARN_SETS[:3] for c in COV_TYPES] + [("digits", "full")]


@pytest.mark.parametrize("name,cov_type", _REAL_CASES)
def test_float32_scores_match_a_float64_evaluation_on_real_data(name, cov_type):
    from sklearn import datasets

    x = getattr(datasets, f"load_{name}")().data
    for k in (3, 8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk = GaussianMixture(k, covariance_type=cov_type, max_iter=30, random_state=0).fit(x)
        arrays = (sk.weights_, sk.means_, sk.covariances_)
        p32 = gmm.GMMParams(*(jnp.asarray(a, jnp.float32) for a in arrays), cov_type)
        # compiled whole (one compilation per function, not one per operation)
        s32 = float(jax.jit(gmm.score)(jnp.asarray(x, jnp.float32), p32))
        _, lb32, _ = jax.jit(gmm.em_step, static_argnums=(2, 3))(jnp.asarray(x, jnp.float32), p32, None, 1e-6)
        with jax.enable_x64(True):
            p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), p32)
            s64 = float(jax.jit(gmm.score)(jnp.asarray(x, jnp.float64), p64))
        # Full covariances held near reg_covar (condition numbers up to 2e11 on breast cancer, K=8)
        # lose digits in the float32 Cholesky factor itself: with the factor computed in float64 and
        # rounded to float32, the same evaluation is within 2e-6.
        tol = 1e-3 if (cov_type == "full" and k == 8) else 1e-4
        assert abs(s32 - s64) < tol, (k, s32, s64)
        assert abs(float(lb32) - s64) < tol, (k, float(lb32), s64)


def test_float32_statistics_far_from_the_origin_match_float64(monkeypatch):
    # Tight components far from the data centre: moments about one centre cancel in float32 (the
    # packed path, forced here, is far off), moments about each component's mean do not.
    rng = np.random.default_rng(4)
    centres = np.array([[30.0, 0, 0, 0], [0, -30.0, 0, 0], [0, 0, 30.0, 30.0]])
    comp = rng.integers(0, 3, 1000)
    x = (centres[comp] + 0.01 * rng.normal(size=(1000, 4))).astype(np.float32).astype(np.float64)
    w, m, c = _init_params(x, 3, "full")
    init = (w, centres + 0.003 * rng.normal(size=(3, 4)), c * 1e-4)
    with jax.enable_x64(True):
        want = gmm.em_step(jnp.asarray(x), gmm.GMMParams(*(jnp.asarray(a) for a in init), "full"), "full", 1e-6)
        want = jax.tree.map(np.asarray, want)
    p32 = gmm.GMMParams(*(jnp.asarray(a, jnp.float32) for a in init), "full")
    x32 = jnp.asarray(x, jnp.float32)
    got = gmm.em_step(x32, p32, "full", 1e-6)
    np.testing.assert_allclose(np.asarray(got[0].covariances), want[0].covariances, rtol=2e-4, atol=1e-9)
    np.testing.assert_allclose(np.asarray(got[0].means), want[0].means, rtol=1e-6, atol=1e-6)
    assert float(got[1]) == pytest.approx(float(want[1]), abs=1e-4)
    monkeypatch.setattr(gmm, "_PACKED_MAX_CANCELLATION", np.inf)
    monkeypatch.setattr(gmm, "_PACKED_MIN_ROWS", 0)
    packed = gmm.em_step(x32, p32, "full", 1e-6)
    err = np.abs(np.asarray(packed[0].covariances) - want[0].covariances).max() / np.abs(want[0].covariances).max()
    assert err > 1e-2  # what the guard avoids


def test_empty_component_is_reseeded_not_nan():
    x = _data(n=300, d=2)
    w, m, c = _init_params(x, 3, "full")
    m = m.copy()
    m[2] = [1e4, 1e4]  # no point is anywhere near this component
    r = gmm.fit(x.astype(np.float32), 3, "full", tol=0.0, max_iter=10, params_init=gmm.GMMParams(w, m, c, "full"))
    assert int(r.n_reseeded) >= 1
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(r.params))
    assert np.abs(np.asarray(r.params.means)).max() < 100


def test_fit_on_row_sharded_data_equals_one_device(monkeypatch):
    # fit() runs the chunked sums per device on the mesh of row-sharded input (shard_map inside the
    # vmap over restarts); the result matches the single-device fit.
    shards = []
    row_shards = gmm._row_shards
    monkeypatch.setattr(gmm, "_row_shards", lambda n: shards.append(row_shards(n)) or shards[-1])
    x = jnp.asarray(_data(n=800, d=3, seed=9), jnp.float32)
    mesh = parallel.make_mesh()
    kw = dict(n_init=2, max_iter=15, tol=0.0, chunk_size=37, key=jax.random.key(3))
    one = gmm.fit(jax.device_put(x, jax.devices()[0]), 3, "full", **kw)
    assert set(shards) == {1}
    sharded = gmm.fit(jax.device_put(x, NamedSharding(mesh, PartitionSpec("data"))), 3, "full", **kw)
    assert 8 in shards  # the E-step and the initialisation split the rows over the 8 devices

    # Both restarts reach the same optimum up to a relabelling, so which one is kept may differ at
    # rounding level: compare the fits with their components in a canonical order.
    def canonical(r):
        order = np.argsort(np.asarray(r.params.means)[:, 0])
        return [np.asarray(a)[order] for a in jax.tree.leaves(r.params)] + [np.asarray(r.lower_bound)]

    for a, b in zip(canonical(sharded), canonical(one), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("axis", ["data", "batch"])
def test_explicit_mesh_em_step_and_fit_equal_one_device(axis):
    # jax.make_mesh makes explicit axes: contractions over the sharded rows would need their output
    # sharding spelled out, so the classical steps run with the axes automatic.
    x = jnp.asarray(_data(n=800, d=3, seed=4), jnp.float32)
    init = gmm.GMMParams(*(jnp.asarray(a, jnp.float32) for a in _init_params(np.asarray(x), 3, "full")), "full")
    mesh = jax.make_mesh((8,), (axis,))
    assert jax.sharding.AxisType.Explicit in mesh.axis_types
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec(axis)))
    step = jax.jit(lambda x, p: gmm.em_step(x, p, "full", 1e-6))
    with jax.set_mesh(mesh):
        got = step(xs, init)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(step(x, init)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-5)
    kw = dict(max_iter=10, tol=0.0, params_init=init)
    a, b = gmm.fit(xs, 3, "full", **kw), gmm.fit(x, 3, "full", **kw)
    np.testing.assert_allclose(np.asarray(a.history), np.asarray(b.history), rtol=1e-5)


def test_n_init_keeps_the_best_restart():
    x = _data(n=500, seed=5)
    x = jnp.asarray(x, jnp.float32)
    kw = dict(
        tol=1e-3,
        reg_covar=1e-6,
        n_components=5,
        covariance_type="diag",
        max_iter=100,
        init_params="random_from_data",
        chunk=None,
    )
    # fit() runs restart i from split(key, n_init)[i]; run each restart alone.
    singles = [float(gmm._fit_jit(x, k, None, **kw).lower_bound) for k in jax.random.split(jax.random.key(7), 4)]
    assert max(singles) - min(singles) > 1e-3  # the restarts really differ
    best = gmm.fit(x, 5, "diag", init_params="random_from_data", n_init=4, key=jax.random.key(7))
    assert float(best.lower_bound) == pytest.approx(max(singles), rel=1e-6)


def test_sample_moments():
    w, mu, cov = (jnp.asarray(a, jnp.float32) for a in GMM2D_TRUE)
    x, comp = gmm.sample_from(jax.random.key(3), gmm.GMMParams(w, mu, cov, "full"), 200_000)
    np.testing.assert_allclose(np.bincount(np.asarray(comp)) / 200_000, w, atol=0.005)
    sel = np.asarray(x)[np.asarray(comp) == 1]
    np.testing.assert_allclose(np.cov(sel.T), cov[1], atol=0.02)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x=np.zeros(10)), "2-D"),
        (dict(n_components=50), "larger than the number of samples"),
        (dict(reg_covar=0.0), "reg_covar must be positive"),
        (dict(reg_covar=-1.0), "reg_covar must be positive"),
        (dict(covariance_type="banana"), "covariance_type"),
        (dict(init_params="magic"), "init_params"),
        (dict(x=np.array([[0.0, np.nan]] * 20)), "NaN"),
        (
            dict(params_init=gmm.GMMParams(np.array([0.7, 0.7]), np.zeros((2, 2)), np.ones(2), "full")),
            "covariances for 'full'",
        ),
        (
            dict(params_init=gmm.GMMParams(np.array([0.7, 0.7]), np.zeros((2, 2)), np.stack([np.eye(2)] * 2), "full")),
            "sum to 1",
        ),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(x=_data(n=40, d=2), n_components=2, covariance_type="full")
    args.update(kwargs)
    with pytest.raises(UserError, match=match):
        gmm.fit(args.pop("x"), args.pop("n_components"), args.pop("covariance_type"), **args)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_every_matrix_product_asks_for_full_precision(cov_type):
    x = jnp.asarray(_data(n=64), jnp.float32)
    params = gmm.GMMParams(*(jnp.asarray(a, jnp.float32) for a in _init_params(np.asarray(x), 3, cov_type)), cov_type)
    key = jax.random.key(0)

    def fit(x, key):  # k-means initialisation, then EM in chunks (the remainder chunk included)
        return gmm._fit_jit(
            x,
            key,
            None,
            tol=1e-3,
            reg_covar=1e-6,
            n_components=3,
            covariance_type=cov_type,
            max_iter=3,
            init_params="kmeans",
            chunk=24,
        )

    for fn, args in [
        (fit, (x, key)),
        (lambda x, p: gmm.em_step(x, p, cov_type, 1e-6), (x, params)),
        (lambda x, p: gmm.predict_proba(x, p, cov_type), (x, params)),
        (lambda k, p: gmm.sample_from(k, p, 8, cov_type), (key, params)),
    ]:
        assert imprecise_products(fn, *args) == []


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_components_padded_to_a_bucket_fit_exactly_as_unpadded(cov_type, monkeypatch):
    """Absent components (weight 0) change nothing: for every init the padded program gives the
    parameters and iteration count of a fit compiled for K itself, and one program serves a whole
    K sweep, scores and BIC included."""
    x = jnp.asarray(_data(n=150, d=3, seed=4), jnp.float32)
    assert gmm.components_bucket(150, 3, 3, cov_type, 200) == gmm._BUCKET
    # each init method under some covariance type
    inits = {
        "full": ("kmeans", "k-means++"),
        "diag": ("random",),
        "spherical": ("random_from_data",),
        "tied": ("kmeans",),
    }
    for init in inits[cov_type]:
        kw = dict(init_params=init, n_init=2, max_iter=100, key=jax.random.key(5))
        padded = gmm.fit(x, 3, cov_type, **kw)
        with monkeypatch.context() as m:
            m.setattr(gmm, "_BUCKET_MAX_EXTRA", 0)
            exact = gmm.fit(x, 3, cov_type, **kw)
        assert padded.params.weights.shape == (3,) and int(padded.n_iter) == int(exact.n_iter), init
        for a, b in zip(jax.tree.leaves(padded.params), jax.tree.leaves(exact.params), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-5, err_msg=init)
        np.testing.assert_allclose(float(padded.lower_bound), float(exact.lower_bound), rtol=1e-6)
    fits, scores = gmm._FIT._cache_size(), gmm._score._cache_size()
    for k in range(1, 7):
        p = gmm.fit(x, k, cov_type, init_params="random_from_data", max_iter=100, key=jax.random.key(5)).params
        assert p.weights.shape == (k,)
        # BIC against a direct float64 evaluation (NumPy) of the K-component mixture
        bic = float(gmm.bic(x, p))
        with jax.enable_x64(True):
            p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), p)
            direct = float(gmm._score_samples(jnp.asarray(np.asarray(x), jnp.float64), p64).mean())
        want = -2 * direct * 150 + gmm.n_parameters(k, 3, cov_type) * np.log(150)
        assert bic == pytest.approx(want, rel=1e-5)
        assert gmm.predict_proba(x, p).shape == (150, k) and int(gmm.predict(x, p).max()) < k
    assert gmm._FIT._cache_size() - fits <= 1 and gmm._score._cache_size() - scores <= 1


def test_fitted_params_carry_their_covariance_type():
    """After a diag fit every function reads the type from the parameters (no einsum errors); a
    mismatched covariance_type gets one line naming the argument."""
    x = jnp.asarray(_data(n=120), jnp.float32)
    for ct in COV_TYPES:
        p = gmm.fit(x, 3, ct, max_iter=5).params
        assert p.covariance_type == ct
        ll = gmm.score_samples(x, p)
        np.testing.assert_allclose(gmm.score_samples(x, p, ct), ll)
        assert float(gmm.score(x, p)) == pytest.approx(float(jnp.mean(ll)), rel=1e-6)
        assert gmm.predict_proba(x, p).shape == (120, 3) and gmm.predict(x, p).shape == (120,)
        assert np.isfinite(float(gmm.bic(x, p))) and np.isfinite(float(gmm.aic(x, p)))
        assert gmm.sample_from(jax.random.key(0), p, 7)[0].shape == (7, 3)
        jitted = jax.jit(gmm.score_samples)(x, p)  # static field: a jit argument like any pytree
        np.testing.assert_allclose(jitted, ll, rtol=1e-6)
        other = "full" if ct != "full" else "diag"
        for fn in (gmm.score_samples, gmm.score, gmm.predict_proba, gmm.predict, gmm.bic, gmm.aic):
            with pytest.raises(UserError, match=rf"covariance_type='{other}' does not match the parameters' '{ct}'"):
                fn(x, p, other)
        with pytest.raises(UserError, match="does not match"):
            gmm.sample_from(jax.random.key(0), p, 7, other)
        # Starting from fitted parameters keeps their type; another type for them is refused.
        assert gmm.fit(x, 3, params_init=p, max_iter=2).params.covariance_type == ct
        with pytest.raises(UserError, match="does not match"):
            gmm.fit(x, 3, other, params_init=p)
    with pytest.raises(UserError, match="do not fit covariance_type 'full'"):
        gmm.score(x, p.replace(covariance_type="full"))
    with pytest.raises(UserError, match="must be a GMMParams"):
        gmm.score(x, tuple(p.arrays().values()))
    with pytest.raises(UserError, match="covariance_type must be one of"):
        gmm.GMMParams(p.weights, p.means, p.covariances, "diagonal")


def test_float64_input_without_x64_warns_once_saying_how_to_keep_it(monkeypatch):
    from gm_jax.classical import precision

    monkeypatch.setattr(precision, "_warned", False)
    x = np.random.default_rng(0).normal(size=(40, 2))  # float64
    with pytest.warns(UserWarning, match=r"gmm\.fit: float64 input is computed in float32.*enable_x64"):
        r = gmm.fit(x, n_components=2, max_iter=3)
    assert r.params.means.dtype == jnp.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gmm.fit(x, n_components=2, max_iter=3)  # once per process
        monkeypatch.setattr(precision, "_warned", False)
        gmm.fit(x.astype(np.float32), n_components=2, max_iter=3)  # float32 input: nothing to say
        with jax.enable_x64(True):
            assert gmm.fit(x, n_components=2, max_iter=3).params.means.dtype == jnp.float64
    assert precision._warned is False
