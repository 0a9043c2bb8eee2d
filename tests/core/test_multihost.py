"""Two processes (2 fake devices each) started with jax.distributed on 127.0.0.1 train one model."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from experiments.configs import vae as vae_config
from gm_jax.train import train

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_job_agrees_with_single_process(tmp_path):
    port = str(_free_port())
    wd = str(tmp_path / "mh")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    procs = [
        subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multihost_worker.py"), str(i), port, wd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-3000:]
            line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
            assert line, out[-2000:]
            results.append(json.loads(line[-1][len("RESULT ") :]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    a, b = results
    assert a["processes"] == b["processes"] == 2 and a["devices"] == 4 and a["local_devices"] == 2
    assert a["step"] == b["step"] == 4
    assert a["checksum"] == b["checksum"]
    assert a["eval"] == b["eval"]
    # Each process read only its own rows; together, the global batch of every step.
    from gm_jax.data import load

    smoke = vae_config.get_config("smoke")
    data = load(smoke.data, smoke.train.batch_size, 0)
    half = smoke.train.batch_size // 2
    steps = [data.train_indices(s).tolist() for s in range(4)]
    # reader threads read steps in any order: compare the sets of rows read, one entry per step
    assert sorted(map(tuple, a["reads"])) == sorted(tuple(rows[:half]) for rows in steps)
    assert sorted(map(tuple, b["reads"])) == sorted(tuple(rows[half:]) for rows in steps)
    with open(os.path.join(wd, "metrics.jsonl")) as f:
        mh = {r["step"]: r["loss"] for r in map(json.loads, f) if "loss" in r}
    # The same global batch on the 8 local fake devices of this process gives the same curve.
    cfg = vae_config.get_config("smoke")
    cfg.train.update(num_steps=4, ckpt_every=2, log_every=1)
    train("vae", cfg, str(tmp_path / "single"))
    with open(tmp_path / "single" / "metrics.jsonl") as f:
        single = {r["step"]: r["loss"] for r in map(json.loads, f) if "loss" in r}
    assert sorted(mh) == sorted(single) == [1, 2, 3, 4]
    np.testing.assert_allclose([mh[s] for s in mh], [single[s] for s in mh], rtol=2e-5)
    assert sorted(os.listdir(os.path.join(wd, "checkpoints")))[-1] == "4"
