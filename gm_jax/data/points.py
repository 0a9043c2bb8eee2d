"""Generated 2-D sets of the GAN mode-coverage literature, each under a distinct name.

The literature uses "8 Gaussians" and "25 Gaussians" for sets that differ in radius, spacing, noise
and scale, so every variant here has its own name and its parameters in its docstring. Each mixture
set knows its modes (the component centres, after any rescaling) and its per-coordinate sigma, for
the mode metrics (`gm_jax.metrics.modes`). Points are drawn once with a fixed seed; every set has
50 000 train and 5 000 test points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gm_jax.data.source import Source, in_memory

N_TRAIN, N_TEST = 50_000, 5_000


def _mixture(name: str, centres: np.ndarray, std: float, scale: float = 1.0, seed: int = 0) -> Source:
    """Equal-weight isotropic Gaussians at `centres` with std `std`, all divided by `scale`."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    comp = rng.integers(0, len(centres), n)
    x = (centres[comp] + std * rng.standard_normal((n, 2))) / scale
    modes, mode_std = centres / scale, std / scale
    return Source(in_memory(x[:N_TRAIN]), in_memory(x[N_TRAIN:]), "points", name, modes=modes, mode_std=float(mode_std))


def _ring(radius: float, k: int = 8) -> np.ndarray:
    a = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(a), np.sin(a)], 1)


def ring8_wgangp() -> Source:
    """WGAN-GP's `gan_toy.py` "8gaussians": 8 centres on a circle of radius 2, sigma 0.02, the whole
    set divided by 1.414 (modes at radius 1.414, sigma 0.01414)."""
    return _mixture("ring8_wgangp", _ring(2.0), 0.02, 1.414)


def grid25_wgangp() -> Source:
    """WGAN-GP's `gan_toy.py` "25gaussians": centres 2*{-2..2}^2, sigma 0.05, divided by 2.828
    (modes 0.707 apart, sigma 0.0177)."""
    g = 2.0 * np.arange(-2, 3)
    return _mixture("grid25_wgangp", np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), 0.05, 2.828)


def ring8_pacgan() -> Source:
    """VEEGAN / PacGAN "2D-ring": 8 centres on a circle of radius 1, sigma 0.01, not rescaled."""
    return _mixture("ring8_pacgan", _ring(1.0), 0.01)


def grid25_pacgan() -> Source:
    """VEEGAN / PacGAN "2D-grid": centres {-4, -2, 0, 2, 4}^2, sigma 0.05, not rescaled."""
    g = np.arange(-4.0, 5.0, 2.0)
    return _mixture("grid25_pacgan", np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), 0.05)


def swissroll() -> Source:
    """WGAN-GP's swiss roll: sklearn `make_swiss_roll(noise=0.25)`, coordinates (x, z) divided by 7.5
    (a continuous manifold: no modes)."""
    from sklearn.datasets import make_swiss_roll

    x = make_swiss_roll(N_TRAIN + N_TEST, noise=0.25, random_state=0)[0][:, [0, 2]] / 7.5
    return Source(in_memory(x[:N_TRAIN]), in_memory(x[N_TRAIN:]), "points", "swissroll")


def moons() -> Source:
    """sklearn `make_moons(noise=0.05)`, centred: (x - 0.5, y - 0.25) (no modes)."""
    from sklearn.datasets import make_moons

    x = make_moons(N_TRAIN + N_TEST, noise=0.05, random_state=0)[0] - np.array([0.5, 0.25])
    return Source(in_memory(x[:N_TRAIN]), in_memory(x[N_TRAIN:]), "points", "moons")


POINT_SETS: dict[str, Callable[[], Source]] = {
    "ring8_wgangp": ring8_wgangp,
    "grid25_wgangp": grid25_wgangp,
    "ring8_pacgan": ring8_pacgan,
    "grid25_pacgan": grid25_pacgan,
    "swissroll": swissroll,
    "moons": moons,
}


def log_density(source: Source, x: np.ndarray) -> np.ndarray:
    """The true log-density of a mixture set at points [N, 2] (float64, log-sum-exp), or None."""
    if source.modes is None:
        return None
    x = np.asarray(x, np.float64)
    d2 = ((x[:, None, :] - source.modes[None]) ** 2).sum(-1)
    s2 = source.mode_std**2
    lp = -0.5 * d2 / s2 - np.log(2 * np.pi * s2) - np.log(len(source.modes))
    m = lp.max(1, keepdims=True)
    return (m + np.log(np.exp(lp - m).sum(1, keepdims=True)))[:, 0]
