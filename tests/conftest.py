"""Test setup: 8 fake CPU devices, set before jax is imported anywhere."""

import os
import sys
import tempfile

# The test configs are tiny, so compiling dominates their time: XLA's backend optimisation level 0
# compiles about 3x faster (and runs tiny programs about as fast). CLI subprocesses inherit both flags.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent XLA compilation cache for the whole test run: the many runs of the same tiny configs
# (resume pairs, CLI subprocesses, which inherit it) compile each program once.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="gm_jax_xla_cache_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
# One cache of the sample-quality feature classifier for the whole test run (CLI subprocesses inherit it).
os.environ.setdefault("GM_JAX_CACHE", tempfile.mkdtemp(prefix="gm_jax_cache_"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
