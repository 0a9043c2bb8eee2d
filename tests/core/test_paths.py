"""Workdirs on an object store (gs://...): the writer and the workdir checks go through etils.epath.

The bucket is mocked onto a local folder (`epath.testing.mock_epath`); Orbax writes checkpoints to
such URIs itself (tensorstore), which needs the network and is not tested here."""

import builtins
import json
import os
import shutil

import numpy as np
import pytest
from etils import epath

from gm_jax.core import paths
from gm_jax.core.writer import Writer

BUCKET = "gs://bucket"


@pytest.fixture
def bucket(tmp_path):
    root = str(tmp_path / "bucket")
    os.makedirs(root)

    def local(path):  # the bucket's objects in the folder; other paths (JAX's compilation cache) as they are
        path = os.fspath(path)
        return root + path[len(BUCKET) :] if path.startswith(BUCKET) else path

    def listdir(_, p):
        return os.listdir(local(p))

    def makedirs(_, p, exist_ok=False, **kw):
        os.makedirs(local(p), exist_ok=exist_ok)

    mocks = dict(
        open=lambda _, p, mode="r", **kw: builtins.open(local(p), mode, **kw),
        exists=lambda _, p: os.path.exists(local(p)),
        isdir=lambda _, p: os.path.isdir(local(p)),
        listdir=listdir,
        makedirs=makedirs,
        mkdir=lambda _, p, **kw: os.mkdir(local(p)),
        remove=lambda _, p: os.remove(local(p)),
        rename=lambda _, p, dst, **kw: os.rename(local(p), local(dst)),
        replace=lambda _, p, dst, **kw: os.replace(local(p), local(dst)),
        rmtree=lambda _, p: shutil.rmtree(local(p)),
        stat=lambda _, p: os.stat(local(p)),
    )
    with epath.testing.mock_epath(**mocks):
        yield root


def test_uris_stay_uris_and_local_paths_become_absolute():
    assert paths.resolve("gs://b/run/") == "gs://b/run" and paths.is_remote("gs://b/run")
    assert paths.join("gs://b/run", "samples", "x.png") == "gs://b/run/samples/x.png"
    assert paths.resolve("runs/vae") == os.path.abspath("runs/vae") and not paths.is_remote("runs/vae")


def test_writer_writes_a_bucket_workdir(bucket):
    w = Writer(f"{BUCKET}/run")
    w.scalars(1, {"loss": 1.0})
    w.scalars(2, {"loss": 0.5})
    w.truncate_after(1)  # a resumed run drops the rows after its checkpoint
    w.scalars(2, {"loss": 0.25})
    assert w.json("eval.json", {"nll": 1.5, "bad": float("nan")}) == ["bad"]
    w.image_grid("samples/step_2", np.random.default_rng(0).random((4, 8, 8, 1)))
    w.close()
    run = os.path.join(bucket, "run")
    with open(os.path.join(run, "metrics.jsonl")) as f:
        assert [json.loads(r) for r in f] == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.25}]
    with open(os.path.join(run, "eval.json")) as f:
        assert json.load(f) == {"nll": 1.5, "bad": None}
    assert os.path.getsize(os.path.join(run, "samples", "step_2.png")) > 0
    assert sorted(os.listdir(run)) == ["eval.json", "metrics.jsonl", "samples"]  # no TensorBoard events, no .tmp


def test_a_bucket_workdir_of_another_model_is_refused_untouched(bucket):
    from experiments.configs import vae as vae_config
    from gm_jax.core.errors import UserError
    from gm_jax.train import train

    run = os.path.join(bucket, "run")
    os.makedirs(run)
    record = {"model": "gmm", "config": {"model_name": "gmm"}}
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(record, f)
    with pytest.raises(UserError, match="holds a run of model 'gmm'"):
        train("vae", vae_config.get_config("smoke"), f"{BUCKET}/run")
    assert os.listdir(run) == ["config.json"]
