"""The default persistent compilation cache: where it goes, how it is turned off, that a second
process reads what the first wrote. Subprocesses, since JAX's cache settings are process-wide."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE = """
import jax
from jax._src import monitoring
hits = []
monitoring.register_event_listener(lambda name, **kw: hits.append(name))
import gm_jax
from gm_jax.classical import gmm
print("dir", jax.config.jax_compilation_cache_dir)
if {fit}:
    import numpy as np
    x = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    gmm.fit(x, 2, "full", n_init=2)
print("hits", hits.count("/jax/compilation_cache/cache_hits"))
"""


def _probe(env_changes, fit=False):
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "GM_JAX_COMPILATION_CACHE")}
    env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    env.update(env_changes, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(fit=fit)], env=env, capture_output=True, text=True, timeout=300, check=True
    ).stdout.split("\n")
    values = dict(line.split(" ", 1) for line in out if line)
    return values["dir"], int(values["hits"])


def test_default_cache_in_the_user_cache_dir_and_reused_by_the_next_process(tmp_path):
    home = tmp_path / "cache"
    where, hits = _probe({"GM_JAX_CACHE": str(home)}, fit=True)
    assert where == str(home / "xla") and os.listdir(where)  # the fit's program was written
    assert hits == 0
    _, hits = _probe({"GM_JAX_CACHE": str(home)}, fit=True)
    assert hits >= 1  # and read back by a fresh process


def test_cache_can_be_moved_turned_off_or_left_to_the_user(tmp_path):
    assert _probe({"GM_JAX_COMPILATION_CACHE": str(tmp_path / "x")})[0] == str(tmp_path / "x")
    assert _probe({"GM_JAX_COMPILATION_CACHE": "0", "GM_JAX_CACHE": str(tmp_path)})[0] == "None"
    mine = str(tmp_path / "mine")
    assert _probe({"JAX_COMPILATION_CACHE_DIR": mine, "GM_JAX_COMPILATION_CACHE": str(tmp_path / "y")})[0] == mine
