"""gm_jax: generative models, classical and deep, in JAX/Flax.

Public names only; the registry maps model names to family modules and configs.
"""

from gm_jax.core import compilation_cache
from gm_jax.registry import REGISTRY, get_family, load_config, model_names

# JAX's persistent compilation cache in the user's cache directory, unless one is configured
# (see gm_jax.core.compilation_cache; GM_JAX_COMPILATION_CACHE=0 turns it off).
compilation_cache.enable_default()

__all__ = ["REGISTRY", "get_family", "load_config", "model_names"]
__version__ = "0.1.0"
