"""GMM and HMM through the run loop on 8 devices: the fitted model scores held-out data as well as
the parameters that generated it, and resumes bit-exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax import load_config
from gm_jax.classical import gmm, hmm
from gm_jax.data import sources
from gm_jax.train import train


def test_gmm_run_reaches_true_parameter_likelihood(tmp_path):
    r = train("gmm", load_config("gmm"), str(tmp_path))
    s = sources.gmm2d()
    xt = jnp.asarray(s.test.get(np.arange(s.test.size)))
    true = float(gmm.score(xt, gmm.GMMParams(*(jnp.asarray(a, jnp.float32) for a in sources.GMM2D_TRUE), "full")))
    assert r.eval["loglik_nats"] == pytest.approx(true, abs=0.02)
    assert r.step_compilations == 1


def test_hmm_run_reaches_true_parameter_likelihood(tmp_path):
    r = train("hmm", load_config("hmm"), str(tmp_path))
    h = sources.hmm_sequences()
    b = h.test.get(np.arange(h.test.size))
    st, tr, m, c = (jnp.asarray(a, jnp.float32) for a in sources.HMM_TRUE)
    post = hmm.posteriors(
        hmm.HMMParams(jnp.log(st), jnp.log(tr), {"means": m, "covariances": c}, hmm.Gaussian("full")),
        jnp.asarray(b["x"]),
        jnp.asarray(b["length"]),
    )
    true = float(np.mean(np.asarray(post.log_likelihood) / b["length"]))
    assert r.eval["loglik_per_step"] == pytest.approx(true, abs=0.01)
    assert r.step_compilations == 1
    means = np.sort(np.asarray(r.state.params["emission"]["means"])[:, 0])
    np.testing.assert_allclose(means, np.sort(sources.HMM_TRUE[2][:, 0]), atol=0.15)


@pytest.mark.parametrize("name", ["gmm", "hmm"])
def test_em_runs_resume_bit_exactly(name, tmp_path):
    def cfg(steps):
        c = load_config(name, "smoke")
        c.train.update(num_steps=steps, ckpt_every=2)
        return c

    full = train(name, cfg(5), str(tmp_path / "full"))
    train(name, cfg(2), str(tmp_path / "split"))
    resumed = train(name, cfg(5), str(tmp_path / "split"))
    for a, b in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(resumed.state.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
