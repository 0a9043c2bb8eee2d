"""Shared shape of the EM configs (gmm, hmm): full-batch EM, one loop step = one EM iteration."""

import ml_collections

from experiments.configs.base import base


def em_config(
    arg, model_name: str, model: dict, data_name: str, n_train: int, n_test: int, num_steps: int, num_samples: int
) -> ml_collections.ConfigDict:
    """A config whose batch is the whole training set (so each step is exact EM).

    Args:
      arg: None, or "smoke" for a 3-iteration run.
      model_name, model: the registry name and its model section.
      data_name: embedded dataset; n_train / n_test: its split sizes (batch and eval batch).
      num_steps: EM iterations; num_samples: samples written at the end.
    """
    cfg = base(
        model_name,
        model=model,
        neural=False,  # EM needs no optimizer
        data=dict(name=data_name),
        train=dict(
            num_steps=num_steps,
            batch_size=n_train,
            log_every=5,
            eval_every=0,
            ckpt_every=num_steps // 2,
            sample_every=0,
            num_samples=num_samples,
        ),
        # num_samples > 0 would add the set-level sample-quality stage (it needs an image feature extractor).
        eval=dict(batch_size=n_test, num_samples=0),
    )
    if arg == "smoke":
        cfg.train.update(num_steps=3, log_every=1, ckpt_every=2)
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
