"""HMM known answers: brute-force enumeration, sequential = associative scan, hmmlearn from the same
parameters, monotone Baum-Welch, recovery, structural zeros, sharding, long sequences, bad input."""

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from gm_jax.classical import hmm
from gm_jax.core import parallel
from gm_jax.core.errors import UserError
from tests.helpers import imprecise_products, random_covariances


def _rand_model(k, t, seed=0, zero=False):
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(k))
    trans = rng.dirichlet(np.ones(k), k)
    if zero:
        trans[0, 1] = 0.0
        trans /= trans.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(start), np.log(trans), rng.normal(0, 2, (t, k))


def _brute(ls, lt, ll, length):
    k = ls.shape[0]
    tot, best, best_z = -np.inf, -np.inf, None
    g = np.zeros((length, k))
    xi = np.zeros((k, k))
    paths = []
    for z in itertools.product(range(k), repeat=length):
        lp = ls[z[0]] + ll[0, z[0]] + sum(lt[z[t - 1], z[t]] + ll[t, z[t]] for t in range(1, length))
        paths.append((z, lp))
        tot = np.logaddexp(tot, lp)
        if lp > best:
            best, best_z = lp, z
    for z, lp in paths:
        p = np.exp(lp - tot)
        for t in range(length):
            g[t, z[t]] += p
        for t in range(1, length):
            xi[z[t - 1], z[t]] += p
    return tot, g, xi, np.array(best_z), best


@pytest.mark.parametrize("t_len,length", [(5, 5), (5, 3), (6, 6), (6, 2)])
@pytest.mark.parametrize("zero", [False, True])
def test_forward_backward_and_viterbi_match_brute_force(t_len, length, zero):
    # Odd and even T, each with and without padding at the end.
    with jax.enable_x64(True):
        ls, lt, ll = _rand_model(3, t_len, seed=length, zero=zero)
        mask = np.arange(t_len) < length
        tot, g, xi, z, best = _brute(ls, lt, ll, length)
        post = hmm.smooth(ls, lt, ll, mask)
        assert float(post.log_likelihood) == pytest.approx(tot, rel=1e-12)
        np.testing.assert_allclose(post.smoothed[:length], g, atol=1e-12)
        np.testing.assert_array_equal(post.smoothed[length:], 0.0)
        np.testing.assert_allclose(post.trans_counts, xi, atol=1e-12)
        path, lp = hmm.viterbi(ls, lt, ll, mask)
        np.testing.assert_array_equal(path[:length], z)
        assert np.all(np.asarray(path[length:]) == -1)
        assert float(lp) == pytest.approx(best, rel=1e-12)
        pl, pf = hmm.parallel_filter(ls, lt, ll, mask)
        ps_ll, ps = hmm.parallel_smooth(ls, lt, ll, mask)
        assert float(pl) == pytest.approx(tot, rel=1e-12) and float(ps_ll) == pytest.approx(tot, rel=1e-12)
        np.testing.assert_allclose(ps, post.smoothed, atol=1e-12)
        np.testing.assert_allclose(pf[:length], post.filtered[:length], atol=1e-12)
        fl, ff, scale = hmm.forward_filter(ls, lt, ll, mask)
        assert float(fl) == pytest.approx(tot, rel=1e-12)
        np.testing.assert_allclose(ff[:length], pf[:length], atol=1e-12)
        assert float(np.sum(np.log(scale[:length]) + ll[:length].max(1))) == pytest.approx(tot, rel=1e-12)


def test_batched_posteriors_match_brute_force_per_sequence():
    """posteriors() runs every sequence of a ragged batch at once; each must equal its own enumeration."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        k, m, lengths = 3, 4, np.array([5, 3, 4, 1])
        ls, lt, _ = _rand_model(k, 1, seed=11, zero=True)
        log_probs = np.log(rng.dirichlet(np.ones(m), k))
        x = rng.integers(0, m, (len(lengths), 5))
        em = hmm.Categorical(m)
        params = hmm.HMMParams(jnp.asarray(ls), jnp.asarray(lt), {"log_probs": jnp.asarray(log_probs)}, em)
        post = hmm.posteriors(params, jnp.asarray(x), jnp.asarray(lengths))
        for s, n in enumerate(lengths):
            ll = log_probs[:, x[s]].T
            tot, g, xi, _, _ = _brute(ls, lt, ll, n)
            assert float(post.log_likelihood[s]) == pytest.approx(tot, rel=1e-12)
            np.testing.assert_allclose(post.smoothed[s, :n], g, atol=1e-12)
            np.testing.assert_array_equal(post.smoothed[s, n:], 0.0)
            np.testing.assert_allclose(post.trans_counts[s], xi, atol=1e-12)
            _, pf = hmm.parallel_filter(ls, lt, ll, np.arange(5) < n)
            np.testing.assert_allclose(post.filtered[s, :n], pf[:n], atol=1e-12)
        no_counts = hmm.posteriors(params, jnp.asarray(x), jnp.asarray(lengths), False)
        assert no_counts.trans_counts is None
        np.testing.assert_array_equal(no_counts.smoothed, post.smoothed)


def test_parallel_equals_sequential_float32_longer():
    ls, lt, ll = _rand_model(6, 300, seed=4)
    ll = jnp.asarray(ll, jnp.float32)
    mask = np.arange(300) < 260
    post = jax.jit(hmm.smooth)(jnp.asarray(ls, jnp.float32), jnp.asarray(lt, jnp.float32), ll, mask)
    pl, ps = jax.jit(hmm.parallel_smooth)(jnp.asarray(ls, jnp.float32), jnp.asarray(lt, jnp.float32), ll, mask)
    assert float(pl) == pytest.approx(float(post.log_likelihood), rel=1e-5)
    np.testing.assert_allclose(ps, post.smoothed, atol=2e-4)


def test_long_sequence_stays_finite():
    ls, lt, _ = _rand_model(4, 1, seed=1)
    ll = jnp.asarray(np.random.default_rng(2).normal(-50.0, 10.0, (100_000, 4)), jnp.float32)  # p(x_t) ~ e^-50
    post = jax.jit(hmm.smooth)(jnp.asarray(ls, jnp.float32), jnp.asarray(lt, jnp.float32), ll)
    assert np.isfinite(float(post.log_likelihood)) and float(post.log_likelihood) < -4e6
    assert np.all(np.isfinite(np.asarray(post.smoothed)))
    np.testing.assert_allclose(np.asarray(post.smoothed).sum(1), 1.0, atol=1e-4)
    path, lp = jax.jit(hmm.viterbi)(jnp.asarray(ls, jnp.float32), jnp.asarray(lt, jnp.float32), ll)
    assert np.isfinite(float(lp)) and int(path.min()) >= 0


@pytest.mark.parametrize("mean", [-3.0, -50.0])
def test_float32_viterbi_reports_its_paths_true_score_at_T_1e5(mean):
    ls, lt, _ = _rand_model(4, 1, seed=3)
    ll = np.random.default_rng(5).normal(mean, 2.0, (100_000, 4)).astype(np.float32)
    f32 = (jnp.asarray(ls, jnp.float32), jnp.asarray(lt, jnp.float32), jnp.asarray(ll))
    path, lp = jax.jit(hmm.viterbi)(*f32)
    z = np.asarray(path)
    # the same path scored in float64 from the same float32 inputs
    ls64, lt64, ll64 = (np.asarray(a, np.float64) for a in f32)
    true = ls64[z[0]] + lt64[z[:-1], z[1:]].sum() + ll64[np.arange(len(z)), z].sum()
    assert abs(float(lp) - true) < 2e-7 * abs(true), (float(lp), true)  # a running float32 max-product: 1.5e-4, 3e-5
    with jax.enable_x64(True):
        path64, lp64 = jax.jit(hmm.viterbi)(ls64, lt64, ll64)
    assert np.mean(np.asarray(path64) == z) > 0.999
    assert abs(float(lp64) - true) <= 1e-9 * abs(true) or np.any(np.asarray(path64) != z)
    # the float32 forward pass's log-likelihood too (normalised messages, shifted emissions)
    with jax.enable_x64(True):
        ll_true = float(hmm.forward_filter(ls64, lt64, ll64)[0])
    assert abs(float(hmm.forward_filter(*f32)[0]) - ll_true) < 2e-7 * abs(ll_true)


def test_posterior_samples_follow_smoothed_marginals():
    with jax.enable_x64(True):
        ls, lt, ll = _rand_model(3, 6, seed=7)
        mask = np.arange(6) < 5
        post = hmm.smooth(ls, lt, ll, mask)
        keys = jax.random.split(jax.random.key(0), 20000)
        z = jax.vmap(lambda k: hmm.sample_posterior(k, ls, lt, ll, mask))(keys)
        freq = np.stack([(np.asarray(z) == k).mean(0) for k in range(3)], 1)
        np.testing.assert_allclose(freq[:5], post.smoothed[:5], atol=0.015)
        assert np.all(np.asarray(z)[:, 5] == -1)


# ------------------------------------------------------------------ hmmlearn parity


def _gauss_params(k, d, cov_type, seed):
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(k) * 5)
    trans = rng.dirichlet(np.ones(k) * 3, k) + np.eye(k) * 2
    trans /= trans.sum(1, keepdims=True)
    means = rng.normal(0, 3, (k, d))
    return start, trans, means, random_covariances(rng, k, d, cov_type, base=1.0, spread=0.4)


def _ragged_gaussian(k, d, cov_type, seed, lengths=(40, 25, 33)):
    start, trans, means, cov = _gauss_params(k, d, cov_type, seed)
    em = hmm.Gaussian(cov_type, reg_covar=1e-12)
    params = hmm.HMMParams(
        jnp.log(start), jnp.log(trans), {"means": jnp.asarray(means), "covariances": jnp.asarray(cov)}, em
    )
    seqs = [np.asarray(hmm.sample_from(jax.random.key(seed + i), params, n)[0][0]) for i, n in enumerate(lengths)]
    return seqs, (start, trans, means, cov)


@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("n_iter", [1, 20])
def test_gaussian_hmm_matches_hmmlearn(cov_type, n_iter):
    from hmmlearn.hmm import GaussianHMM

    with jax.enable_x64(True):
        seqs, (start, trans, means, cov) = _ragged_gaussian(3, 2, cov_type, seed=3, lengths=(90, 60, 75))
        other = _gauss_params(3, 2, cov_type, seed=11)
        init = (other[0], other[1], means + 0.7, cov * 1.5)  # start EM away from the truth
        ref = GaussianHMM(
            3,
            covariance_type=cov_type,
            n_iter=n_iter,
            tol=-1e300,
            init_params="",
            params="stmc",
            covars_prior=0.0,
            implementation="scaling",
        )
        ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = init
        x_cat, lengths = np.concatenate(seqs), [len(s) for s in seqs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.fit(x_cat, lengths)
        em = hmm.Gaussian(cov_type, reg_covar=1e-12)
        p0 = hmm.HMMParams(
            jnp.log(init[0]), jnp.log(init[1]), {"means": jnp.asarray(init[2]), "covariances": jnp.asarray(init[3])}, em
        )
        xp, lp = hmm.pad_sequences(seqs)
        r = hmm.fit(p0, xp, lp, n_iter=n_iter, tol=-np.inf)
        assert int(r.n_iter) == n_iter
        np.testing.assert_allclose(np.exp(r.params.log_start), ref.startprob_, atol=1e-8)
        np.testing.assert_allclose(np.exp(r.params.log_trans), ref.transmat_, atol=1e-8)
        np.testing.assert_allclose(r.params.emission["means"], ref.means_, rtol=1e-7, atol=1e-8)
        ref_cov = ref._covars_[:, 0] if cov_type == "spherical" else ref._covars_  # hmmlearn keeps [K, D] there
        np.testing.assert_allclose(r.params.emission["covariances"], ref_cov, rtol=1e-6, atol=1e-8)
        # Posteriors, log-likelihood and Viterbi under the fitted parameters.
        post = hmm.posteriors(r.params, jnp.asarray(xp), jnp.asarray(lp))
        assert float(post.log_likelihood.sum()) == pytest.approx(ref.score(x_cat, lengths), rel=1e-9)
        mask = np.asarray(hmm.lengths_mask(lp, xp.shape[1]))
        np.testing.assert_allclose(np.asarray(post.smoothed)[mask], ref.predict_proba(x_cat, lengths), atol=1e-8)
        paths, path_lp = hmm.decode(r.params, xp, lp)
        ref_lp, ref_states = ref.decode(x_cat, lengths, algorithm="viterbi")
        np.testing.assert_array_equal(np.asarray(paths)[mask], ref_states)
        assert np.all(np.asarray(paths)[~mask] == -1)
        assert float(np.sum(path_lp)) == pytest.approx(ref_lp, rel=1e-10)


def test_categorical_hmm_matches_hmmlearn():
    from hmmlearn.hmm import CategoricalHMM

    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        k, m = 3, 4
        start, trans = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k) * 2, k)
        probs = rng.dirichlet(np.ones(m), k)
        em = hmm.Categorical(m)
        truth = hmm.HMMParams(jnp.log(start), jnp.log(trans), {"log_probs": jnp.log(probs)}, em)
        seqs = [np.asarray(hmm.sample_from(jax.random.key(i), truth, n)[0][0]) for i, n in enumerate([30, 50, 12])]
        i_start, i_trans, i_probs = (
            rng.dirichlet(np.ones(k)),
            rng.dirichlet(np.ones(k), k),
            rng.dirichlet(np.ones(m), k),
        )
        ref = CategoricalHMM(k, n_features=m, n_iter=10, tol=-1e300, init_params="", params="ste")
        ref.startprob_, ref.transmat_, ref.emissionprob_ = i_start, i_trans, i_probs
        x_cat, lengths = np.concatenate(seqs)[:, None], [len(s) for s in seqs]
        ref.fit(x_cat, lengths)
        xp, lp = hmm.pad_sequences(seqs)
        p0 = hmm.HMMParams(jnp.log(i_start), jnp.log(i_trans), {"log_probs": jnp.log(i_probs)}, em)
        r = hmm.fit(p0, xp, lp, n_iter=10, tol=-np.inf)
        np.testing.assert_allclose(np.exp(r.params.log_trans), ref.transmat_, atol=1e-9)
        np.testing.assert_allclose(np.exp(r.params.emission["log_probs"]), ref.emissionprob_, atol=1e-9)
        assert float(r.history[-1]) == pytest.approx(ref.monitor_.history[-1], rel=1e-9)


# ------------------------------------------------------------------ Baum-Welch properties


@pytest.mark.parametrize("emission", ["gaussian", "gmm", "categorical"])
def test_log_likelihood_never_decreases(emission):
    with jax.enable_x64(True):
        if emission == "categorical":
            em = hmm.Categorical(5)
            rng = np.random.default_rng(0)
            seqs = [rng.integers(0, 5, n) for n in (60, 45, 70)]
            p0 = hmm.HMMParams(
                jnp.log(jnp.ones(3) / 3),
                jnp.log(jnp.asarray(rng.dirichlet(np.ones(3), 3))),
                {"log_probs": jnp.log(jnp.asarray(rng.dirichlet(np.ones(5), 3)))},
                em,
            )
        else:
            seqs, _ = _ragged_gaussian(3, 2, "diag", seed=8, lengths=(80, 50, 65))
            start, trans, means, cov = _gauss_params(3, 2, "diag", seed=21)
            if emission == "gaussian":
                em = hmm.Gaussian("diag")
                emp = {"means": jnp.asarray(means), "covariances": jnp.asarray(cov)}
            else:
                em = hmm.GaussianMixture(2, "diag")
                emp = {
                    "log_weights": jnp.log(jnp.full((3, 2), 0.5)),
                    "means": jnp.asarray(means)[:, None] + jnp.asarray([[-0.5], [0.5]]),
                    "covariances": jnp.broadcast_to(jnp.asarray(cov)[:, None], (3, 2, 2)),
                }
            p0 = hmm.HMMParams(jnp.log(jnp.asarray(start)), jnp.log(jnp.asarray(trans)), emp, em)
        xp, lp = hmm.pad_sequences(seqs)
        r = hmm.fit(p0, xp, lp, n_iter=25, tol=-np.inf)
        h = np.asarray(r.history)
        assert np.all(np.isfinite(h)) and np.all(np.diff(h) >= -1e-8 * np.abs(h[1:])), np.diff(h)
        # Another tolerance or prior on the same shapes reuses the compiled loop.
        compiled = hmm._fit_jit._cache_size()
        r2 = hmm.fit(p0, xp, lp, n_iter=25, tol=1e-3, trans_prior=2.0)
        assert hmm._fit_jit._cache_size() == compiled and int(r2.n_iter) <= 25


def test_recovers_parameters_up_to_permutation():
    k = 3
    start = np.array([0.6, 0.3, 0.1])
    trans = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    means = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    cov = np.stack([np.eye(2) * 0.5] * k)
    em = hmm.Gaussian("full")
    truth = hmm.HMMParams(
        jnp.log(jnp.asarray(start, jnp.float32)),
        jnp.log(jnp.asarray(trans, jnp.float32)),
        {"means": jnp.asarray(means, jnp.float32), "covariances": jnp.asarray(cov, jnp.float32)},
        em,
    )
    x, _ = hmm.sample_from(jax.random.key(0), truth, 400, n=30)
    p0 = hmm.HMMParams(
        jnp.log(jnp.ones(k) / k),
        jnp.log(jnp.full((k, k), 1.0 / k)),
        {
            "means": jnp.asarray(means * 0.5 + 0.7, jnp.float32),
            "covariances": jnp.asarray(np.stack([np.eye(2)] * k), jnp.float32),
        },
        em,
    )
    r = hmm.fit(p0, x, np.full(30, 400), n_iter=100, tol=1e-3)
    assert bool(r.converged)
    order = np.argsort(np.asarray(r.params.emission["means"])[:, 0])
    np.testing.assert_allclose(np.asarray(r.params.emission["means"])[order], means, atol=0.08)
    np.testing.assert_allclose(np.exp(np.asarray(r.params.log_trans))[np.ix_(order, order)], trans, atol=0.03)


def test_structural_zeros_stay_zero_with_dirichlet_prior():
    seqs, _ = _ragged_gaussian(3, 2, "diag", seed=4, lengths=(50, 40))
    start, trans, means, cov = _gauss_params(3, 2, "diag", seed=5)
    trans = trans.copy()
    trans[0, 2] = trans[2, 1] = 0.0  # left-to-right-like constraints
    trans /= trans.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):
        p0 = hmm.HMMParams(
            jnp.log(jnp.asarray(start, jnp.float32)),
            jnp.log(jnp.asarray(trans, jnp.float32)),
            {"means": jnp.asarray(means, jnp.float32), "covariances": jnp.asarray(cov, jnp.float32)},
            hmm.Gaussian("diag"),
        )
    xp, lp = hmm.pad_sequences(seqs, np.float32)
    r = hmm.fit(p0, xp, lp, n_iter=10, tol=-np.inf, trans_prior=2.0)
    t = np.exp(np.asarray(r.params.log_trans))
    assert t[0, 2] == 0.0 and t[2, 1] == 0.0
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-6)
    assert np.all(np.isfinite(np.asarray(r.history)))


def _params32(start, trans, means, cov, em):
    """Gaussian-emission HMMParams in float32 from probabilities."""
    start, trans, means, cov = (jnp.asarray(v, jnp.float32) for v in (start, trans, means, cov))
    return hmm.HMMParams(jnp.log(start), jnp.log(trans), {"means": means, "covariances": cov}, em)


def test_sharded_over_eight_devices_equals_one_device():
    seqs, (start, trans, means, cov) = _ragged_gaussian(3, 2, "full", seed=6, lengths=tuple(range(20, 60, 5)))
    xp, lp = hmm.pad_sequences(seqs, np.float32)
    em = hmm.Gaussian("full")
    p = _params32(start, trans, means, cov, em)
    step = jax.jit(lambda x, n, p: hmm.em_step(p, x, n))
    mesh = parallel.make_mesh()
    sh = NamedSharding(mesh, PartitionSpec("data"))
    a = step(jax.device_put(xp, sh), jax.device_put(lp, sh), p)
    dev = jax.devices()[0]
    b = step(jax.device_put(xp, dev), jax.device_put(lp, dev), jax.device_put(p, dev))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=5e-5)  # float32 sum order


def test_posteriors_under_shard_map_equal_one_device():
    # Per-device kernels (shard_map over the sequences) must trace: every loop carry varies over
    # the mesh axis like the data it comes from.
    seqs, (start, trans, means, cov) = _ragged_gaussian(3, 2, "diag", seed=8, lengths=tuple(range(20, 60, 5)))
    xp, lp = hmm.pad_sequences(seqs, np.float32)
    em = hmm.Gaussian("diag")
    p = _params32(start, trans, means, cov, em)
    mesh = parallel.make_mesh()
    spec = PartitionSpec("data")
    fn = jax.jit(
        jax.shard_map(
            lambda p, x, n: tuple(hmm.posteriors(p, x, n)),
            mesh=mesh,
            in_specs=(PartitionSpec(), spec, spec),
            out_specs=spec,
        )
    )
    sh = NamedSharding(mesh, spec)
    a = fn(p, jax.device_put(xp, sh), jax.device_put(lp, sh))
    b = hmm.posteriors(p, jnp.asarray(xp), jnp.asarray(lp))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-5)


def test_explicit_mesh_em_step_and_fit_equal_one_device():
    seqs, (start, trans, means, cov) = _ragged_gaussian(3, 2, "diag", seed=12, lengths=tuple(range(20, 60, 5)))
    xp, lp = hmm.pad_sequences(seqs, np.float32)
    em = hmm.Gaussian("diag")
    p = _params32(start, trans, means, cov, em)
    mesh = jax.make_mesh((8,), ("data",))
    assert jax.sharding.AxisType.Explicit in mesh.axis_types
    sh = NamedSharding(mesh, PartitionSpec("data"))
    xs, ls = jax.device_put(xp, sh), jax.device_put(lp, sh)
    step = jax.jit(lambda p, x, n: hmm.em_step(p, x, n))
    with jax.set_mesh(mesh):
        got = step(p, xs, ls)
        fitted = hmm.fit(p, xs, ls, n_iter=5, tol=-np.inf, check=False)
    want = step(p, jnp.asarray(xp), jnp.asarray(lp))
    for u, v in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=5e-5)
    ref = hmm.fit(p, jnp.asarray(xp), jnp.asarray(lp), n_iter=5, tol=-np.inf, check=False)
    np.testing.assert_allclose(np.asarray(fitted.history), np.asarray(ref.history), rtol=1e-5)


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda p, x, n: (p.replace(log_trans=p.log_trans + 0.1), x, n), "transition rows"),
        (lambda p, x, n: (p.replace(log_start=p.log_start + 0.1), x, n), "start probabilities"),
        (lambda p, x, n: (p, x, n[:-1]), "one entry per sequence"),
        (lambda p, x, n: (p, x, n + 100), "between 1 and the padded length"),
        (lambda p, x, n: (p, x.at[0, 0, 0].set(jnp.nan), n), "NaN"),
        (lambda p, x, n: (p, x[0, :, 0], n), "padded sequences"),
        (lambda p, x, n: (p.replace(emission={"log_probs": p.log_trans}), x, n), "do not fit the emission model"),
        (lambda p, x, n: (p.arrays(), x, n), "must be an HMMParams"),
    ],
)
def test_bad_input_names_the_argument(change, match):
    seqs, (start, trans, means, cov) = _ragged_gaussian(2, 2, "diag", seed=1, lengths=(10, 8))
    xp, lp = hmm.pad_sequences(seqs, np.float32)
    p = hmm.HMMParams(
        jnp.log(jnp.asarray(start)),
        jnp.log(jnp.asarray(trans)),
        {"means": jnp.asarray(means), "covariances": jnp.asarray(cov)},
        hmm.Gaussian("diag"),
    )
    p, x, n = change(p, jnp.asarray(xp), np.asarray(lp))
    with pytest.raises(UserError, match=match):
        hmm.fit(p, x, n, n_iter=2)


def test_params_carry_their_emission_model():
    """fit, posteriors, decode and sample read the emission model from the parameters; the old call
    with an emission argument, or parameters whose arrays belong to another model, get one line."""
    seqs, (start, trans, means, cov) = _ragged_gaussian(2, 2, "diag", seed=1, lengths=(10, 8))
    xp, lp = hmm.pad_sequences(seqs, np.float32)
    p = hmm.init_params(jax.random.key(0), hmm.Gaussian("diag"), xp, lp, 2)
    assert p.emission_model == hmm.Gaussian("diag") and set(p.arrays()) == {"log_start", "log_trans", "emission"}
    r = hmm.fit(p, xp, lp, n_iter=3)
    assert r.params.emission_model == p.emission_model  # static: survives jit and the while_loop
    assert hmm.posteriors(r.params, xp, lp).smoothed.shape == (2, 10, 2)
    assert hmm.decode(r.params, xp, lp)[0].shape == (2, 10)
    assert hmm.sample_from(jax.random.key(1), r.params, 5, 3)[0].shape == (3, 5, 2)
    for call in (
        lambda: hmm.fit(p, hmm.Gaussian("diag"), xp, lp),
        lambda: hmm.decode(p, hmm.Gaussian("diag"), xp),
        lambda: hmm.sample_from(jax.random.key(1), p, hmm.Gaussian("diag"), 5),
    ):
        with pytest.raises((UserError, TypeError), match="emission|positional"):
            call()
    with pytest.raises(UserError, match="leave the emission argument out"):
        hmm.posteriors(p, hmm.Gaussian("diag"), xp)
    with pytest.raises(UserError, match="do not fit the emission model"):
        hmm.posteriors(p.replace(emission_model=hmm.Categorical(3)), xp, lp)
    with pytest.raises(UserError, match="emission_model must be"):
        hmm.HMMParams(p.log_start, p.log_trans, p.emission, "diag")


@pytest.mark.parametrize("emission", ["gaussian-full", "gaussian-diag", "categorical", "gmm"])
def test_every_matrix_product_asks_for_full_precision(emission):
    k, d, m = 3, 2, 4
    rng = np.random.default_rng(0)
    if emission == "categorical":
        em = hmm.Categorical(m)
        ep = {"log_probs": jnp.log(jnp.asarray(rng.dirichlet(np.ones(m), k), jnp.float32))}
        x = jnp.asarray(rng.integers(0, m, (4, 9)))
    elif emission == "gmm":
        em = hmm.GaussianMixture(2, "full")
        ep = {
            "log_weights": jnp.full((k, 2), -np.log(2.0), jnp.float32),
            "means": jnp.asarray(rng.normal(size=(k, 2, d)), jnp.float32),
            "covariances": jnp.broadcast_to(jnp.eye(d, dtype=jnp.float32), (k, 2, d, d)),
        }
        x = jnp.asarray(rng.normal(size=(4, 9, d)), jnp.float32)
    else:
        cov_type = emission.split("-")[1]
        em = hmm.Gaussian(cov_type)
        cov = random_covariances(rng, k, d, cov_type, base=1.0, spread=0.2)
        ep = {"means": jnp.asarray(rng.normal(size=(k, d)), jnp.float32), "covariances": jnp.asarray(cov, jnp.float32)}
        x = jnp.asarray(rng.normal(size=(4, 9, d)), jnp.float32)
    p = hmm.HMMParams(jnp.log(jnp.full((k,), 1.0 / k)), jnp.log(jnp.full((k, k), 1.0 / k)), ep, em)
    lengths = jnp.asarray([9, 5, 7, 2])
    for fn, args in [
        (lambda p, x, n: hmm._fit_jit(p, x, n, 1e-2, (1.0, 1.0, 1.0), 3), (p, x, lengths)),
        (lambda p, x, n: hmm.posteriors(p, x, n), (p, x, lengths)),
        (lambda p, key: hmm.sample_from(key, p, 5, 2), (p, jax.random.key(0))),
    ]:
        assert imprecise_products(fn, *args) == []


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("kind", ["gaussian", "gmm", "categorical"])
def test_init_params_has_one_dtype_and_fits(kind, x64):
    with jax.enable_x64(x64):
        want = np.float64 if x64 else np.float32
        if kind == "categorical":
            em = hmm.Categorical(4)
            xp, lp = hmm.pad_sequences([np.random.default_rng(i).integers(0, 4, n) for i, n in enumerate([30, 20])])
        else:
            em = hmm.Gaussian("diag") if kind == "gaussian" else hmm.GaussianMixture(2, "diag")
            seqs, _ = _ragged_gaussian(3, 2, "diag", seed=2, lengths=(60, 40))
            xp, lp = hmm.pad_sequences([np.asarray(s, want) for s in seqs])
        p0 = hmm.init_params(jax.random.key(0), em, xp, lp, 3)
        assert {np.dtype(a.dtype) for a in jax.tree_util.tree_leaves(p0)} == {np.dtype(want)}
        np.testing.assert_allclose(np.exp(np.asarray(p0.log_trans, np.float64)).sum(1), 1.0, rtol=1e-6)
        r = hmm.fit(p0, xp, lp, n_iter=5, tol=0.0)
        hist = np.asarray(r.history)[: int(r.n_iter)]
        assert np.all(np.diff(hist) >= -1e-3 * np.abs(hist[1:])) and np.isfinite(hist).all()
    with pytest.raises(UserError, match="n_states"):
        hmm.init_params(jax.random.key(0), em, xp, lp, 0)


def test_public_kernels_are_compiled_when_called_from_python():
    # a jitted function has .lower; a plain Python one would run op by op (parallel_filter at T=1e5: minutes)
    for name in (
        "forward_filter",
        "smooth",
        "viterbi",
        "path_log_prob",
        "sample_posterior",
        "parallel_filter",
        "parallel_smooth",
    ):
        assert hasattr(getattr(hmm, name), "lower"), name
