"""One process of a 2-process job on 127.0.0.1 (run by test_multihost.py, not collected by pytest).

argv: process_id port workdir. Prints one JSON line with this process's view of the result.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from experiments.configs import vae as vae_config  # noqa: E402
from gm_jax.core import parallel  # noqa: E402
from gm_jax.train import train  # noqa: E402


def _rows_read(pid: int) -> list:
    """The train rows this process's input path reads for steps 0..3 (the smoke VAE's data)."""
    from gm_jax.data import load

    cfg = vae_config.get_config("smoke")
    data = load(cfg.data, cfg.train.batch_size, 0)
    reads = []
    get = data.source.train.get
    data.source = data.source._replace(
        train=data.source.train._replace(get=lambda idx: reads.append(list(map(int, idx))) or get(idx))
    )
    for _ in data.train_iter(0, 4, process=(jax.process_index(), jax.process_count())):
        pass
    assert pid == jax.process_index()
    return reads


def main():
    pid, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    parallel.init_distributed(f"127.0.0.1:{port}", 2, pid)
    reads = _rows_read(pid)
    cfg = vae_config.get_config("smoke")
    cfg.train.update(num_steps=4, ckpt_every=2, log_every=1)
    r = train("vae", cfg, workdir)
    params = parallel.to_host(r.state.params)
    checksum = float(sum(np.sum(np.asarray(x, np.float64)) for x in jax.tree.leaves(params)))
    out = {
        "pid": pid,
        "processes": jax.process_count(),
        "devices": len(jax.devices()),
        "local_devices": len(jax.local_devices()),
        "step": r.step,
        "checksum": checksum,
        "eval": r.eval,
        "reads": reads,
    }
    print("RESULT " + json.dumps(out), flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
