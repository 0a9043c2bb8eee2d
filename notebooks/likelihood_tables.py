# %% [markdown]
# # Likelihood and ELBO tables
#
# Reproduces the "Measured" tables of the README by calling the same `train(...)` that
# `python -m experiments.run --model=...` calls, with the same default configs, and scores the
# classical models' held-out data under the parameters that generated it. The notebook API
# (`gmm.fit`, `hmm.fit`) is run on the same training data and must land on the same numbers.
#
# This file is a notebook in percent format: run it from the repository root as
# `python -m notebooks.likelihood_tables`, open it cell by cell in an editor that understands
# `# %%` cells, or convert it with `jupytext --to ipynb`. The test run executes it with
# `GM_JAX_NOTEBOOK_SMOKE=1`, which shrinks the VAE run to a few steps (its numbers are then not
# checked); the EM runs are cheap and always run and checked in full.

# %%
import os
import sys
import tempfile

try:
    import gm_jax  # noqa: F401
except ImportError:  # opened from notebooks/ without the package on the path
    sys.path.insert(0, os.path.abspath(".."))

import jax.numpy as jnp
import numpy as np

from gm_jax import load_config
from gm_jax.classical import gmm, hmm
from gm_jax.core.loop import train
from gm_jax.data import sources

SMOKE = os.environ.get("GM_JAX_NOTEBOOK_SMOKE") == "1"
rows = []  # (model, metric, measured, reference, reference's meaning)


def run(name, arg=None):
    """Train a registry model with its config in a throw-away workdir; returns the RunResult."""
    with tempfile.TemporaryDirectory() as workdir:
        return train(name, load_config(name, arg), workdir)


# %% [markdown]
# ## VAE on the embedded digits (Kingma & Welling, 2014)
#
# Test ELBO and the importance-weighted bound on -log p(x) (IWAE, k=5000), in nats per digit and
# in bits per dimension (64 binary pixels). Reference: the numbers the default run printed when it
# was last measured (README), which a run with the same seed reproduces exactly on CPU.

# %%
vae = run("vae", "smoke" if SMOKE else None)
ev = vae.eval
rows += [
    ("vae", "test ELBO (nats)", ev["elbo_nats"], -22.71, "README, seed 0"),
    ("vae", f"IWAE NLL k={int(ev['iwae_k'])} (nats)", ev["iwae_nll_nats"], 22.13, "README, seed 0, k=5000"),
    ("vae", "IWAE NLL (bits/dim)", ev["iwae_nll_bpd"], 0.499, "README, seed 0, k=5000"),
]
if not SMOKE:
    assert abs(ev["elbo_nats"] - (-22.71)) < 0.05 and abs(ev["iwae_nll_nats"] - 22.13) < 0.05, ev

# %% [markdown]
# ## Gaussian mixture by EM on the generated 2-D mixture
#
# Held-out log-likelihood per point after 50 EM iterations through the run loop, the same data
# under the generating parameters `GMM2D_TRUE`, and `gmm.fit` (EM to tolerance in one
# `lax.while_loop`) on the same training points.

# %%
g = run("gmm")
src = sources.gmm2d()
x_train = jnp.asarray(src.train.get(np.arange(src.train.size)))
x_test = jnp.asarray(src.test.get(np.arange(src.test.size)))
true_params = gmm.GMMParams(*(jnp.asarray(a, jnp.float32) for a in sources.GMM2D_TRUE), "full")
fitted = gmm.fit(x_train, 3, "full", tol=1e-6, max_iter=200)
g_true = float(gmm.score(x_test, true_params))
g_fit = float(gmm.score(x_test, fitted.params))
rows += [
    ("gmm", "held-out loglik, run loop (nats/point)", g.eval["loglik_nats"], g_true, "generating parameters"),
    ("gmm", "held-out loglik, gmm.fit (nats/point)", g_fit, g_true, "generating parameters"),
]
assert abs(g.eval["loglik_nats"] - g_true) < 0.02 and abs(g_fit - g.eval["loglik_nats"]) < 0.01

# %% [markdown]
# ## Hidden Markov model by Baum-Welch on sequences of a known HMM
#
# Held-out log-likelihood per step over 48 ragged sequences after 40 Baum-Welch iterations, the
# same sequences under the generating parameters `HMM_TRUE`, and `hmm.fit` started from a GMM
# fitted to the pooled observations.

# %%
h = run("hmm")
seqs = sources.hmm_sequences()
test = seqs.test.get(np.arange(seqs.test.size))
train_b = seqs.train.get(np.arange(seqs.train.size))
start, trans, means, cov = (jnp.asarray(a, jnp.float32) for a in sources.HMM_TRUE)
emission = hmm.Gaussian("full")


def per_step(params):
    post = hmm.posteriors(params, jnp.asarray(test["x"]), jnp.asarray(test["length"]), trans_counts=False)
    return float(np.mean(np.asarray(post.log_likelihood) / test["length"]))


h_true = per_step(hmm.HMMParams(jnp.log(start), jnp.log(trans), {"means": means, "covariances": cov}, emission))
# Notebook API from scratch: emissions from a GMM fitted to the pooled observations, sticky
# uniform transitions, then Baum-Welch to tolerance.
real = np.asarray(hmm.lengths_mask(train_b["length"], train_b["x"].shape[1]))
g0 = gmm.fit(jnp.asarray(train_b["x"][real]), 3, "full")
sticky = np.full((3, 3), 0.5 / 3) + 0.5 * np.eye(3)
p0 = hmm.HMMParams(
    jnp.log(jnp.full(3, 1 / 3)),
    jnp.log(sticky),
    {"means": g0.params.means, "covariances": g0.params.covariances},
    emission,
)
fit = hmm.fit(p0, jnp.asarray(train_b["x"]), jnp.asarray(train_b["length"]), n_iter=200, tol=1e-4)
h_fit = per_step(fit.params)
rows += [
    ("hmm", "held-out loglik, run loop (nats/step)", h.eval["loglik_per_step"], h_true, "generating parameters"),
    ("hmm", "held-out loglik, hmm.fit (nats/step)", h_fit, h_true, "generating parameters"),
]
assert abs(h.eval["loglik_per_step"] - h_true) < 0.01 and abs(h_fit - h_true) < 0.01

# %% [markdown]
# ## Table

# %%
print(f"{'model':<6}{'metric':<42}{'measured':>10}{'reference':>11}  reference is")
for model, metric, got, ref, what in rows:
    print(f"{model:<6}{metric:<42}{got:>10.3f}{ref:>11.3f}  {what}")
