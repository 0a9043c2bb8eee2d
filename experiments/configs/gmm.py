"""Gaussian mixture fitted by EM (`--model=gmm`): one loop step is one EM iteration over the full data.

Launch:  python -m experiments.run --model=gmm
         python -m experiments.run --config=experiments/configs/gmm.py:smoke

Default data: 3000 points from a known 3-component 2-D mixture (`gm_jax.data.sources.GMM2D_TRUE`),
2400 to fit (the batch is the whole training set, so each step is exact EM), 600 held out.
Full covariances, k-means initialisation, reg_covar 1e-6.

Expected (measured with the launch command above, seed 0, 50 EM iterations, a few seconds on 2 CPU
cores): held-out log-likelihood -3.473 nats per point; the generating parameters score -3.474 on
the same 600 points (tests/classical/test_runs.py checks the two agree within 0.02).
"""

import ml_collections

from experiments.configs.em_base import em_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: arg: None for the default run, "smoke" for a 3-iteration run."""
    model = dict(n_components=3, covariance_type="full", reg_covar=1e-6, init_params="kmeans", chunk_size=0)
    return em_config(arg, "gmm", model, "gmm2d", n_train=2400, n_test=600, num_steps=50, num_samples=500)
