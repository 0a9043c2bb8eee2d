"""Mode coverage of samples from a mixture with known modes (VEEGAN / PacGAN protocol).

Each sample is assigned to its nearest mode; it is "high quality" when it lies within `threshold`
(3 by default) standard deviations of that mode, Euclidean distance against `threshold * std`. The
protocol draws 2500 samples. Reported:

- `modes_covered`: the number of modes with at least `min_count` high-quality samples (1 by default;
  pass 20 to read PacGAN's stricter tables);
- `modes_high_quality`: the fraction of samples that are high quality;
- `modes_kl`: KL(h || uniform) = log K - H(h) in nats, where h is the histogram of the high-quality
  samples over the K modes (0 when they are spread evenly; log K when every one sits on one mode;
  log K as well when no sample is high quality).
"""

from __future__ import annotations

import numpy as np


def assign(samples: np.ndarray, modes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest mode index [N], distance to it [N]) in float64."""
    x = np.asarray(samples, np.float64).reshape(len(samples), -1)
    m = np.asarray(modes, np.float64)
    d2 = ((x[:, None, :] - m[None]) ** 2).sum(-1)
    idx = np.argmin(d2, 1)
    return idx, np.sqrt(d2[np.arange(len(x)), idx])


def mode_metrics(
    samples: np.ndarray, modes: np.ndarray, std: float, threshold: float = 3.0, min_count: int = 1
) -> dict:
    """The mode-coverage metrics (see the module docstring) of samples [N, D]."""
    k = len(modes)
    finite = np.all(np.isfinite(np.asarray(samples).reshape(len(samples), -1)), 1)
    idx, dist = assign(np.where(finite[:, None], np.asarray(samples).reshape(len(samples), -1), 0.0), modes)
    good = finite & (dist <= threshold * std)
    counts = np.bincount(idx[good], minlength=k)
    total = counts.sum()
    if total:
        h = counts / total
        kl = float(np.log(k) + np.sum(h[h > 0] * np.log(h[h > 0])))
    else:
        kl = float(np.log(k))
    return {
        "modes_covered": float(np.sum(counts >= min_count)),
        "modes_total": float(k),
        "modes_high_quality": float(good.mean()) if len(good) else 0.0,
        "modes_kl": kl,
    }
