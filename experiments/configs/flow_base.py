"""What the flow configs share: sections, training intervals, evaluation, the smoke variant.

Not a model of its own: `nice.py` and `realnvp.py` call `base` and set their paper's settings. Point
data (`--config.data.name=moons`, `swissroll` or the other 2-D sets of `gm_jax.data.points`) needs
no other flag: the flows switch to MLP couplings on the coordinates (`model.point_couplings`,
`model.point_hidden`), report the test NLL in nats per point, mode coverage where the set has
modes, and draw the learned density beside the data (samples/density_step_N.png).
"""

import ml_collections

from experiments.configs.platform import add_platform_keys


def base(name: str) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model_name = name
    cfg.seed = 0
    cfg.model = ml_collections.ConfigDict({})
    cfg.optim = ml_collections.ConfigDict(dict(name="adam", lr=1e-3, b1=0.9, b2=0.999, ema_decay=0.0, grad_clip=0.0))
    cfg.data = ml_collections.ConfigDict(dict(name="digits", data_dir="", binarize="none", image_size=0))
    cfg.train = ml_collections.ConfigDict(
        dict(
            num_steps=5000,
            batch_size=100,
            log_every=250,
            eval_every=2500,
            ckpt_every=2500,
            sample_every=2500,
            num_samples=64,
            max_to_keep=3,
            init_from="",
        )
    )
    # num_samples > 0 adds the sample-quality metrics of that many samples (digits-FID etc. on the
    # digits; mode coverage of 2500 samples on point sets with modes).
    cfg.eval = ml_collections.ConfigDict(
        dict(
            batch_size=300,
            num_examples=-1,
            num_samples=1000,
            sample_batch=500,
            features="auto",
            feature_cache="",
            kid_subset=100,
            mode_samples=2500,
            mode_min_count=1,
        )
    )
    cfg.eval_periodic = ml_collections.ConfigDict(dict(num_samples=0, mode_samples=0))
    # Sampling options (may change at --mode=sample): prior temperature (1 = the model).
    cfg.sample = ml_collections.ConfigDict(dict(temperature=1.0))
    return add_platform_keys(cfg)


def smoke(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A few steps of tiny couplings for tests."""
    cfg.model.update(hidden=(16, 16), channels=8, num_blocks=1, point_hidden=(16,), point_couplings=4)
    cfg.train.update(
        num_steps=3, batch_size=16, log_every=1, eval_every=0, ckpt_every=2, sample_every=0, num_samples=16
    )
    cfg.eval.update(batch_size=16, num_examples=32, num_samples=64, sample_batch=32, mode_samples=64)
    return cfg
