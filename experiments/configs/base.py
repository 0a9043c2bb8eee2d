"""The sections every config has, with their shared defaults, and the smoke run's sizes.

A model's config calls `base(name, model=..., optim=..., ...)`, each keyword a dict of keys that
replace or add to the section's defaults, then sets its paper's values. Sections: `model` (the
family's own), `optim`, `data`, `train` (length, batch, intervals, second stage), `eval` (the final
evaluation; `eval_periodic` overrides it for the evaluations during training), `sample` (sampling
options, which may change on a finished run), and the platform keys (`platform.py`).
"""

import ml_collections

from experiments.configs.platform import add_platform_keys

OPTIM = dict(name="adam", lr=1e-3, b1=0.9, b2=0.999, ema_decay=0.0, grad_clip=0.0)
DATA = dict(name="digits", data_dir="", binarize="none", image_size=0)
TRAIN = dict(
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
EVAL = dict(
    batch_size=256,
    num_examples=-1,
    num_samples=1000,
    sample_batch=500,
    features="auto",
    feature_cache="",
    kid_subset=100,
)


def base(
    name: str,
    *,
    model: dict | None = None,
    optim: dict | None = None,
    data: dict | None = None,
    train: dict | None = None,
    eval: dict | None = None,  # noqa: A002 - the section's name
    eval_periodic: dict | None = None,
    sample: dict | None = None,
    neural: bool = True,
) -> ml_collections.ConfigDict:
    """A config for model `name`: the shared sections with these keys replaced or added. A family
    without an optimizer (EM) passes `neural=False`: `optim.name` "none", no `model.dtype`."""
    cfg = ml_collections.ConfigDict()
    cfg.model_name = name
    cfg.seed = 0
    cfg.model = ml_collections.ConfigDict(dict(model or {}))
    cfg.optim = ml_collections.ConfigDict({**OPTIM, **(optim or {})} if neural else {"name": "none", **(optim or {})})
    cfg.data = ml_collections.ConfigDict({**DATA, **(data or {})})
    cfg.train = ml_collections.ConfigDict({**TRAIN, **(train or {})})
    cfg.eval = ml_collections.ConfigDict({**EVAL, **(eval or {})})
    cfg.eval_periodic = ml_collections.ConfigDict(dict(eval_periodic or {}))
    cfg.sample = ml_collections.ConfigDict(dict(sample or {}))
    return add_platform_keys(cfg, neural=neural)


def smoke(cfg: ml_collections.ConfigDict, **evals) -> ml_collections.ConfigDict:
    """The tests' few-step run: batch 16, no periodic evaluation or pictures, a small evaluation
    (`evals` adds or replaces eval keys)."""
    cfg.train.update(
        num_steps=3, batch_size=16, log_every=1, eval_every=0, ckpt_every=2, sample_every=0, num_samples=16
    )
    cfg.eval.update(dict(batch_size=16, num_examples=32, num_samples=64, sample_batch=32, **evals))
    return cfg
