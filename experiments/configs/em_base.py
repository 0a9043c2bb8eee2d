"""Shared shape of the EM configs (gmm, hmm): full-batch EM, one loop step = one EM iteration."""

import ml_collections

from experiments.configs.platform import add_platform_keys


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
    cfg = ml_collections.ConfigDict()
    cfg.model_name = model_name
    cfg.seed = 0
    cfg.model = ml_collections.ConfigDict(model)
    cfg.optim = ml_collections.ConfigDict(dict(name="none"))  # EM needs no optimizer
    cfg.data = ml_collections.ConfigDict(dict(name=data_name, data_dir="", binarize="none"))
    cfg.train = ml_collections.ConfigDict(
        dict(
            num_steps=num_steps,
            batch_size=n_train,
            log_every=5,
            eval_every=0,
            ckpt_every=num_steps // 2,
            sample_every=0,
            num_samples=num_samples,
            max_to_keep=3,
            init_from="",
        )
    )
    # num_samples > 0 would add the set-level sample-quality stage (it needs an image feature extractor).
    cfg.eval = ml_collections.ConfigDict(dict(batch_size=n_test, num_examples=-1, num_samples=0, features="auto"))
    if arg == "smoke":
        cfg.train.update(num_steps=3, log_every=1, ckpt_every=2)
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return add_platform_keys(cfg, neural=False)
