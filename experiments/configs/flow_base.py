"""What the flow configs share: sections, training intervals, evaluation, the smoke variant.

Not a model of its own: `nice.py` and `realnvp.py` call `base` and set their paper's settings. Point
data (`--config.data.name=moons`, `swissroll` or the other 2-D sets of `gm_jax.data.points`) needs
no other flag: the flows switch to MLP couplings on the coordinates (`model.point_couplings`,
`model.point_hidden`), report the test NLL in nats per point, mode coverage where the set has
modes, and draw the learned density beside the data (samples/density_step_N.png).
"""

import ml_collections

from experiments.configs import base as shared


def base(name: str) -> ml_collections.ConfigDict:
    # num_samples > 0 adds the sample-quality metrics of that many samples (digits-FID etc. on the
    # digits; mode coverage of 2500 samples on point sets with modes).
    return shared.base(
        name,
        eval=dict(batch_size=300, mode_samples=2500, mode_min_count=1),
        eval_periodic=dict(num_samples=0, mode_samples=0),
        # Sampling options (may change at --mode=sample): prior temperature (1 = the model).
        sample=dict(temperature=1.0),
    )


def smoke(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A few steps of tiny couplings for tests."""
    cfg.model.update(hidden=(16, 16), channels=8, num_blocks=1, point_hidden=(16,), point_couplings=4)
    return shared.smoke(cfg, mode_samples=64)
