"""The input path on Grain: the step-s batch, each process's rows, k steps per call, uint8 transfer,
bfloat16 compute, and the bad settings of all three."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import dcgan as dcgan_config
from experiments.configs import vae as vae_config
from gm_jax import train as loop
from gm_jax.core.errors import UserError
from gm_jax.data import load, pipeline
from gm_jax.data.source import Source, in_memory
from gm_jax.registry import get_family


class _Recording:
    """A split that records the indices it is asked for."""

    def __init__(self, split):
        self.split, self.reads = split, []
        self.size, self.shape = split.size, split.shape

    def get(self, idx):
        self.reads.append(np.asarray(idx).copy())
        return self.split.get(idx)


def _pipe(n=10, batch=4, binarize="none", seed=3, **kw):
    x = np.linspace(0, 1, n * 4, dtype=np.float32).reshape(n, 2, 2, 1)
    src = Source(in_memory(x), in_memory(x[:5]), "image", "toy")
    return pipeline.DataPipeline(src, batch, seed, binarize, **kw)


def _decoded(p, element):
    return jax.tree.map(np.asarray, p.decode(element))


@pytest.mark.parametrize("threads,workers", [(0, 0), (3, 0), (2, 1)])
def test_the_grain_batch_of_step_s_is_the_step_s_batch_from_any_start(threads, workers):
    p = _pipe(n=10, batch=4, binarize="dynamic", num_threads=threads, num_workers=workers)
    got = [_decoded(p, b)["x"] for b in p.train_iter(0, 6)]
    want = [p.train_batch(s)["x"] for s in range(6)]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    resumed = [_decoded(p, b)["x"] for b in p.train_iter(3, 6)]  # a resumed run starts at its step
    for a, b in zip(resumed, want[3:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_indices_are_unchanged_by_the_grain_path():
    # The permutation per epoch is the one the hand-written path drew: default_rng([seed, 0, epoch]).
    p = _pipe(n=10, batch=4, seed=5)
    perm0 = np.random.default_rng([5, 0, 0]).permutation(10)
    np.testing.assert_array_equal(p.train_indices(0), perm0[:4])
    np.testing.assert_array_equal(p.train_indices(1), perm0[4:8])


def test_each_process_reads_only_its_own_rows_and_together_the_global_batch():
    p = _pipe(n=40, batch=8, binarize="dynamic")  # 5 steps = 1 epoch: no example twice in the 5 batches
    parts = []
    for pid in range(2):
        rec = _Recording(p.source.train)
        q = pipeline.DataPipeline(p.source._replace(train=rec), 8, p.seed, "dynamic", num_threads=0)
        xs = [_decoded(q, b)["x"] for b in q.train_iter(0, 5, process=(pid, 2))]
        parts.append((rec.reads, xs))
    for s in range(5):
        a, b = parts[0][0][s], parts[1][0][s]
        assert len(a) == len(b) == 4 and not set(a) & set(b)
        np.testing.assert_array_equal(np.concatenate([a, b]), p.train_indices(s))
        # and the rows' binarised pixels are the one-process run's
        np.testing.assert_array_equal(np.concatenate([parts[0][1][s], parts[1][1][s]]), p.train_batch(s)["x"])


def test_k_steps_per_element_stack_k_consecutive_batches():
    p = _pipe(n=10, batch=4, binarize="dynamic")
    chunks = list(p.train_iter(2, 8, steps_per_call=3))
    assert len(chunks) == 2 and chunks[0]["x"].shape == (3, 4, 2, 2, 1)
    for c, chunk in enumerate(chunks):
        for j in range(3):
            np.testing.assert_array_equal(_decoded(p, chunk)["x"][j], p.train_batch(2 + 3 * c + j)["x"])


def test_levelled_images_cross_as_uint8_and_decode_to_the_same_floats():
    cfg = vae_config.get_config("smoke")
    cfg.data.binarize = "none"
    p = load(cfg.data, 8, 0)
    assert p.encoded_levels == 17
    elem = next(p.train_iter(0, 1))
    assert elem["x"].dtype == np.uint8 and elem["y"].dtype == np.int32  # features come along
    np.testing.assert_array_equal(np.asarray(jax.jit(p.decode)(elem)["x"]), p.train_batch(0)["x"])


@pytest.mark.parametrize("key,value", [("num_threads", -1), ("prefetch", -2), ("num_workers", -1)])
def test_negative_reader_settings_are_refused(key, value):
    with pytest.raises(UserError, match=f"data.{key} must be a non-negative integer"):
        _pipe(**{key: value})


# ---------------------------------------------------------------- k steps per call in the loop


def _vae(steps, k, **train):
    cfg = vae_config.get_config("smoke")
    cfg.train.update(num_steps=steps, ckpt_every=2, log_every=2, eval_every=0, sample_every=0, steps_per_call=k)
    cfg.train.update(**train)
    cfg.eval.update(num_samples=0)
    return cfg


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_k_steps_per_call_equal_k_single_calls_and_resume_bit_exact(tmp_path):
    single = loop.train("vae", _vae(4, 1), str(tmp_path / "k1"))
    multi = loop.train("vae", _vae(4, 2), str(tmp_path / "k2"))
    assert multi.step == 4 and multi.step_compilations == 1
    for a, b in zip(_leaves(single.state), _leaves(multi.state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    loop.train("vae", _vae(2, 2), str(tmp_path / "split"))
    resumed = loop.train("vae", _vae(4, 2), str(tmp_path / "split"))
    assert resumed.step == 4
    for a, b in zip(_leaves(multi.state), _leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(a, b)
    with open(tmp_path / "k2" / "metrics.jsonl") as f:
        assert [__import__("json").loads(r)["step"] for r in f if '"loss"' in r] == [2, 4]


def test_steps_per_call_must_divide_the_intervals(tmp_path):
    with pytest.raises(UserError, match="steps_per_call=3 must divide train.num_steps"):
        loop.train("vae", _vae(4, 3), str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


# ---------------------------------------------------------------- bfloat16 compute


@pytest.mark.parametrize("model", ["vae", "dcgan"])
def test_bfloat16_step_keeps_float32_state_and_is_close_to_float32(model):
    base = {"vae": vae_config, "dcgan": dcgan_config}[model].get_config("smoke")
    fam = get_family(model)
    data = load(base.data, base.train.batch_size, 0)
    out = {}
    for dtype in ("float32", "bfloat16"):
        cfg = base.copy_and_resolve_references()
        cfg.model.dtype = dtype
        cfg.data.update(data.facts())
        batch = data.train_batch(0)
        state = fam.init(jax.random.key(0), cfg, batch)
        new, metrics = jax.jit(lambda s, b, c=cfg: fam.train_step(s, b, jax.random.key(1), c))(state, batch)
        leaves = [x for x in jax.tree.leaves(new) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert all(x.dtype == jnp.float32 for x in leaves)  # parameters, optimizer state: float32
        assert all(np.asarray(v).dtype == np.float32 for v in metrics.values())
        out[dtype] = {k: float(v) for k, v in metrics.items()}
    for key in ("loss",) if model == "vae" else ("d_loss", "g_loss"):
        # bfloat16 keeps 8 bits of mantissa: the losses agree to about 1%.
        assert out["bfloat16"][key] == pytest.approx(out["float32"][key], rel=0.02, abs=0.02), key


def test_flows_refuse_bfloat16(tmp_path):
    from experiments.configs import nice

    cfg = nice.get_config("smoke")
    cfg.model.dtype = "bfloat16"
    with pytest.raises(UserError, match="flows compute in float32 only"):
        loop.train("nice", cfg, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()
