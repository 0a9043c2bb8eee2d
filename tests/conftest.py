"""Test setup: 8 fake CPU devices, set before jax is imported anywhere."""

import os
import sys
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One cache of the sample-quality feature classifier for the whole test run (CLI subprocesses inherit it).
os.environ.setdefault("GM_JAX_CACHE", tempfile.mkdtemp(prefix="gm_jax_cache_"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
