"""Gaussian Parzen-window log-likelihood (Goodfellow et al., 2014, after Breuleux et al., 2011).

log p(x) = logsumexp_i(-|x - s_i|^2 / (2 sigma^2)) - log n - (d/2) log(2 pi sigma^2) for samples s_i
from the model, in float64 with a max-shifted log-sum-exp. Protocol: n = 10 000 samples; sigma is
the grid value with the best mean log-likelihood on a validation split; the number reported is the
mean over the test split, in nats.

Known weaknesses (stated by the paper itself, and by Theis et al., 2016): the estimate has high
variance, it is poor in more than a few dimensions, it converges very slowly in n, and it does not
rank models by likelihood; a model that memorises the training set can score well. It is reported
here as the legacy number of the GAN paper's table, not as a likelihood.
"""

from __future__ import annotations

import numpy as np

# Goodfellow's grid for [0, 1] images (`parzen_ll.py`: logspace(-1, 0, 10)), and a wider one for
# point data, whose scales vary from set to set.
IMAGE_SIGMAS = tuple(np.logspace(-1.0, 0.0, 10))
POINT_SIGMAS = tuple(np.logspace(-3.0, 0.0, 16))


def log_likelihood(samples: np.ndarray, x: np.ndarray, sigma: float, chunk: int = 256) -> np.ndarray:
    """Parzen log-density of each row of x [M, ...] under samples [N, ...] with bandwidth sigma: [M]."""
    s = np.asarray(samples, np.float64).reshape(len(samples), -1)
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    n, d = s.shape
    s2 = (s**2).sum(1)
    out = np.empty(len(x))
    const = -np.log(n) - 0.5 * d * np.log(2 * np.pi * sigma**2)
    for i in range(0, len(x), chunk):
        xb = x[i : i + chunk]
        d2 = np.maximum((xb**2).sum(1)[:, None] + s2[None] - 2.0 * xb @ s.T, 0.0)
        a = -0.5 * d2 / sigma**2
        m = a.max(1, keepdims=True)
        out[i : i + chunk] = m[:, 0] + np.log(np.exp(a - m).sum(1)) + const
    return out


def parzen(samples: np.ndarray, valid: np.ndarray, test: np.ndarray, sigmas=IMAGE_SIGMAS) -> dict:
    """sigma chosen on `valid`, mean and standard error of the log-likelihood on `test`.

    Returns:
      {"parzen_ll": mean test log-likelihood (nats), "parzen_ll_se": its standard error,
       "parzen_sigma": the chosen sigma, "parzen_num_samples": n}.
    """
    scores = [float(np.mean(log_likelihood(samples, valid, s))) for s in sigmas]
    best = float(sigmas[int(np.argmax(scores))])
    ll = log_likelihood(samples, test, best)
    return {
        "parzen_ll": float(ll.mean()),
        "parzen_ll_se": float(ll.std(ddof=1) / np.sqrt(len(ll))) if len(ll) > 1 else 0.0,
        "parzen_sigma": best,
        "parzen_num_samples": float(len(samples)),
    }
