"""Hidden Markov model fitted by Baum-Welch (`--model=hmm`): one loop step is one EM iteration.

Launch:  python -m experiments.run --model=hmm
         python -m experiments.run --config=experiments/configs/hmm.py:smoke

Default data: 240 sequences of ragged length 50..150 sampled from a known 3-state 2-D Gaussian HMM
(`gm_jax.data.sources.HMM_TRUE`); 192 to fit (the batch is the whole training set, so each step is
exact Baum-Welch over padded, masked sequences), 48 held out. Full covariances, k-means
initialisation of the emissions, sticky uniform transitions.

Expected (measured with the launch command above, seed 0, 40 Baum-Welch iterations, a few seconds
on 2 CPU cores): held-out log-likelihood -2.918 nats per step (-292.15 per sequence); the generating
parameters score -2.917 per step (tests/classical/test_runs.py checks agreement within 0.01).
"""

import ml_collections

from experiments.configs.em_base import em_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: arg: None for the default run, "smoke" for a 3-iteration run."""
    model = dict(
        n_states=3,
        emission="gaussian",
        covariance_type="full",
        reg_covar=1e-6,
        n_symbols=0,
        n_mix=1,
        trans_prior=1.0,
        sample_length=150,
    )
    return em_config(arg, "hmm", model, "hmm_seq", n_train=192, n_test=48, num_steps=40, num_samples=8)
