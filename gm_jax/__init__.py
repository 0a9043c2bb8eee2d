"""gm_jax: generative models, classical and deep, in JAX/Flax.

Public names only; the registry maps model names to family modules and configs.
"""

from gm_jax.registry import REGISTRY, get_family, load_config, model_names

__all__ = ["REGISTRY", "get_family", "load_config", "model_names"]
__version__ = "0.1.0"
