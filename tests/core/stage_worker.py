"""One stage of a two-stage run on one CPU device (run by tests/core/test_train.py, not collected by pytest).

argv: stage ("first" | "second") workdir [init_from]. Prints one JSON line describing the result.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gm_jax import train as loop  # noqa: E402
from tests.core import test_train, toy_families  # noqa: E402

stage, workdir = sys.argv[1], sys.argv[2]
if stage == "first":
    r = loop.train("vae", test_train._smoke(3), workdir)
else:
    r = loop.train(toy_families.toy_prior, test_train._prior_cfg(sys.argv[3]), workdir)
leaves = [np.asarray(x).tolist() for x in jax.tree.leaves(r.state.params if stage == "first" else r.state.model_state)]
print(json.dumps({"devices": len(jax.devices()), "leaves": leaves}))
