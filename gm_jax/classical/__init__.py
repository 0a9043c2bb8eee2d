"""Classical latent-variable models fitted by EM: jnp/lax only, no Flax, no optimizer."""
