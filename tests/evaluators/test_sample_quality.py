"""Set-level sample quality: known answers for FID, KID, precision/recall, and the loop's stage."""

import json
import os

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from experiments.configs import vae as vae_config
from gm_jax import train as loop
from gm_jax.core import parallel
from gm_jax.metrics import sample_quality as sq


def test_fid_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 16))
    assert abs(sq.fid(f, f)) < 1e-8


def test_frechet_distance_between_gaussians_is_the_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    s1 = a @ a.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    # Commuting covariances (s2 a polynomial of s1): tr((S1 S2)^1/2) = sum sqrt(l1 l2) over the shared eigenbasis.
    s2 = 0.5 * s1 + 0.3 * s1 @ s1
    w, v = np.linalg.eigh(s1)
    w2 = 0.5 * w + 0.3 * w**2
    want = np.sum((mu1 - mu2) ** 2) + np.sum(w + w2 - 2 * np.sqrt(w * w2))
    assert sq.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-10)
    # Diagonal case: |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2.
    d1, d2 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    assert sq.frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(want, rel=1e-10)


def test_kid_is_unbiased_for_two_samples_of_one_distribution():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    mean, std = sq.kid(a, b, n_subsets=100, subset_size=200)
    assert abs(mean) < 3 * std / np.sqrt(100)
    shifted, _ = sq.kid(a, b + 1.0, n_subsets=20, subset_size=200)
    assert shifted > 20 * std


def test_precision_recall_identical_and_disjoint_sets():
    f = np.random.default_rng(3).normal(size=(300, 4))
    assert sq.precision_recall(f, f) == (1.0, 1.0)
    p, r = sq.precision_recall(f, f + 100.0)
    assert p == 0.0 and r == 0.0


def test_classifier_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10] * 50.0
    assert sq.classifier_score(confident)[0] == pytest.approx(10.0, rel=1e-6)  # all classes, each certain
    assert sq.classifier_score(np.zeros((1000, 10)))[0] == pytest.approx(1.0)


def test_stats_round_trip_through_npz(tmp_path):
    f = np.random.default_rng(4).normal(size=(200, 5)).astype(np.float32)
    path = str(tmp_path / "ref.npz")
    sq.save_stats(path, f)
    mu, sigma = sq.load_stats(path)
    assert mu.dtype == np.float64 and sigma.shape == (5, 5)
    assert sq.frechet_distance(mu, sigma, *sq.gaussian_stats(f)) == pytest.approx(0.0, abs=1e-9)


def test_digits_classifier_is_accurate_and_real_digits_score_well():
    floor = sq.real_data_floor()
    assert floor["digits_classifier_test_accuracy"] > 0.9
    assert floor["digits_precision"] > 0.6 and floor["digits_recall"] > 0.6
    assert floor["digits_score"] > 7.0  # ten classes, each held-out digit classified with confidence


def test_stage_runs_with_samples_sharded_over_eight_devices(tmp_path, monkeypatch):
    seen = []
    to_host = parallel.to_host

    def spy(tree):
        for x in jax.tree.leaves(tree):
            if isinstance(x, jax.Array) and x.ndim == 4:
                seen.append((x.sharding.spec, x.addressable_shards[0].data.shape, len(x.addressable_shards)))
        return to_host(tree)

    monkeypatch.setattr(loop.parallel, "to_host", spy)
    cfg = vae_config.get_config("smoke")
    cfg.eval.update(num_samples=80, sample_batch=40)
    r = loop.train("vae", cfg, str(tmp_path))
    for k in ("digits_fid", "digits_kid", "digits_kid_std", "digits_precision", "digits_recall", "digits_score"):
        assert np.isfinite(r.eval[k]), k
    assert r.eval["digits_num_samples"] == 80
    with open(os.path.join(tmp_path, "eval.json")) as f:
        assert json.load(f)["digits_fid"] == pytest.approx(r.eval["digits_fid"])
    quality = [s for s in seen if s[1][0] == 5]  # batches of 40 samples, 5 on each of the 8 devices
    assert len(quality) == 2 and all(spec == PartitionSpec("data") and n == 8 for spec, _, n in quality)
