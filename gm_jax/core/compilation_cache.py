"""JAX's persistent compilation cache, on by default in the user's cache directory.

A first `gmm.fit` or training step spends most of its time compiling; with the cache a fresh
process that runs a program compiled before (same shapes, same JAX and XLA) loads the executable
from disk instead. Importing `gm_jax` calls `enable_default()`, which does nothing when the user has
chosen a cache already (`JAX_COMPILATION_CACHE_DIR` or `jax.config.update(
"jax_compilation_cache_dir", ...)` before the import). `GM_JAX_COMPILATION_CACHE=0` turns it off; any
other value of it is the directory to use.
"""

from __future__ import annotations

import os

import jax

ENV = "GM_JAX_COMPILATION_CACHE"
MIN_COMPILE_TIME_SECS = 0.3


def user_cache_dir() -> str:
    """$GM_JAX_CACHE, else ~/.cache/gm_jax (also where derived artefacts such as feature-network weights go)."""
    return os.environ.get("GM_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gm_jax")


def default_dir() -> str | None:
    """The directory `enable_default` uses: $GM_JAX_COMPILATION_CACHE, None when it is 0, else
    <user_cache_dir>/xla."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in ("0", "off", "false", "no"):
        return None
    return value or os.path.join(user_cache_dir(), "xla")


def enable_default() -> str | None:
    """Point JAX's persistent compilation cache at `default_dir()` unless one is configured.

    Returns the cache directory in use (None: off). Programs that compile in under
    `jax_persistent_cache_min_compile_time_secs` are not written: MIN_COMPILE_TIME_SECS here, unless
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS is set.
    """
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return configured
    path = default_dir()
    if path is None:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:  # read-only home, ...: run without the cache
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        # JAX writes only programs that took 1 s or more to compile; a GMM or HMM fit on a small
        # data set compiles in about as long, and loading it takes 0.1 s.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_SECS)
    return path
