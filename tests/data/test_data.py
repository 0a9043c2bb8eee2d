"""Data: step-indexed order, binarisation protocol, eval padding, TFDS through mock_data."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import vae as vae_config
from gm_jax.core.errors import UserError
from gm_jax.data import pipeline, sources
from gm_jax.data.source import Source, in_memory
from gm_jax.train import train


def _pipe(n=10, batch=4, binarize="none", seed=3):
    x = np.linspace(0, 1, n * 4, dtype=np.float32).reshape(n, 2, 2, 1)
    src = Source(in_memory(x), in_memory(x[:5]), "image", "toy")
    return pipeline.DataPipeline(src, batch, seed, binarize)


def test_each_epoch_is_a_permutation_even_when_batches_straddle_epochs():
    p = _pipe(n=10, batch=4)
    seq = np.concatenate([p.train_indices(s) for s in range(5)])  # 20 positions = 2 epochs
    assert sorted(seq[:10]) == list(range(10)) and sorted(seq[10:]) == list(range(10))
    assert not np.array_equal(seq[:10], seq[10:])
    fresh = _pipe(n=10, batch=4)
    np.testing.assert_array_equal(fresh.train_indices(3), p.train_indices(3))  # a pure function of the step
    assert not np.array_equal(_pipe(seed=4).train_indices(0), p.train_indices(0))


def test_dynamic_binarisation_redraws_each_step_with_the_grey_level_as_probability():
    p = _pipe(n=1, batch=20000, binarize="dynamic")
    a, b = p.train_batch(0)["x"], p.train_batch(1)["x"]
    assert set(np.unique(a)) <= {0.0, 1.0}
    grey = np.linspace(0, 1, 4, dtype=np.float32)
    np.testing.assert_allclose(a.mean(0).ravel(), grey, atol=0.02)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, p.train_batch(0)["x"])


def test_eval_batches_padded_with_mask_and_fixed_binarisation():
    p = _pipe(n=10, binarize="dynamic")
    first = list(p.eval_batches(4))
    second = list(p.eval_batches(4))
    assert [b["mask"].tolist() for b in first] == [[1, 1, 1, 1], [1, 0, 0, 0]]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["x"], b["x"])
    assert set(np.unique(first[0]["x"])) <= {0.0, 1.0}


def test_unknown_binarisation_is_refused():
    with pytest.raises(UserError, match="binarize"):
        _pipe(binarize="sometimes")


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("binarized_mnist", (28, 28, 1))])
def test_tfds_source_through_mock_data(name, shape, tmp_path):
    labelled = name == "mnist"  # binarized_mnist has no label feature
    with tfds.testing.mock_data(num_examples=32):
        src = sources.get_source(f"tfds:{name}")
        assert src.train.shape == shape and src.train.size == 32
        got = src.train.get(np.arange(5))
        x = got["x"] if labelled else got
        if labelled:
            assert got["y"].shape == (5,) and got["y"].dtype.kind in "iu"  # the labels come along as "y"
        assert x.dtype == np.float32 and x.shape == (5, *shape) and 0 <= x.min() and x.max() <= 1
        cfg = vae_config.get_config("smoke")
        cfg.data.name = f"tfds:{name}"
        r = train("vae", cfg, str(tmp_path))
    assert r.cfg.data.shape == shape
    assert all(np.isfinite(v) for v in r.eval.values())
    assert r.eval["iwae_nll_bpd"] == pytest.approx(r.eval["iwae_nll_nats"] / (784 * np.log(2)), rel=1e-5)


def test_paper_scale_config_runs_under_mock_mnist(tmp_path):
    from experiments.configs import vae_mnist

    full = vae_mnist.get_config()
    assert (full.model.latent_dim, full.model.hidden, full.train.batch_size) == (20, (500,), 100)
    assert full.data.name == "tfds:mnist" and full.eval.iwae_k == 5000
    with tfds.testing.mock_data(num_examples=32):
        r = train("vae", vae_mnist.get_config("smoke"), str(tmp_path))
    assert r.step_compilations == 1 and all(np.isfinite(v) for v in r.eval.values())


def _fake_tfds(monkeypatch, splits: dict, features: dict):
    """tfds.data_source replaced by in-memory splits {name: [records]}; records the splits asked for."""
    import types

    asked = []

    class Fake(list):
        dataset_info = types.SimpleNamespace(features=features)

    def data_source(name, split, data_dir, download):
        asked.append(split)
        if split not in splits:
            raise ValueError(f"no split {split}")
        return Fake(splits[split])

    monkeypatch.setattr(tfds, "data_source", data_source)
    return asked


def test_tfds_splits_come_from_the_config_and_a_missing_one_is_named(monkeypatch, tmp_path):
    import types

    rng = np.random.default_rng(0)
    rec = [{"image": rng.integers(0, 256, (4, 4, 1), dtype=np.uint8), "label": np.int64(i % 3)} for i in range(20)]
    feats = {
        "image": types.SimpleNamespace(shape=(4, 4, 1), np_dtype=np.uint8),
        "label": types.SimpleNamespace(shape=(), np_dtype=np.int64),
    }
    asked = _fake_tfds(monkeypatch, {"train[:90%]": rec[:18], "train[90%:]": rec[18:]}, feats)
    src = sources.get_source("tfds:toy", train_split="train[:90%]", test_split="train[90%:]")
    assert (src.train.size, src.test.size, src.levels) == (18, 2, 256)
    assert asked[:2] == ["train[:90%]", "train[90%:]"]
    got = src.test.get(np.arange(2))
    np.testing.assert_array_equal(got["y"], [0, 1])  # labels carried, as "y"
    np.testing.assert_array_equal(got["x"], np.stack([r["image"] for r in rec[18:]]) / np.float32(255))
    with pytest.raises(UserError, match="split 'test' not found"):
        sources.get_source("tfds:toy", train_split="train[:90%]", test_split="test")
    with pytest.raises(UserError, match="name TFDS splits"):
        sources.get_source("digits", train_split="train")


def test_tfds_binary_images_are_recognised_from_the_data_not_the_name(monkeypatch):
    import types

    rng = np.random.default_rng(1)
    bits = [{"image": rng.integers(0, 2, (4, 4, 1), dtype=np.uint8)} for _ in range(12)]
    _fake_tfds(monkeypatch, {"train": bits, "test": bits[:4]}, {"image": types.SimpleNamespace(shape=(4, 4, 1))})
    src = sources.get_source("tfds:my_bits")
    assert src.levels == 2
    x = src.train.get(np.arange(12))
    np.testing.assert_array_equal(x, np.stack([b["image"] for b in bits]).astype(np.float32))  # 0/1, not /255
    p = pipeline.DataPipeline(src, 4, 0)
    element = next(p.train_iter(0, 1))
    assert element["x"].dtype == np.uint8 and set(np.unique(element["x"])) <= {0, 1}  # crosses as uint8
