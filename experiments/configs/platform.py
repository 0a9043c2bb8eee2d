"""The platform's keys every config carries, with their defaults (one place, called by the base configs).

- train.steps_per_call: train steps per compiled call (a `lax.scan` over that many batches); it must
  divide num_steps and the log / eval / checkpoint / sample intervals.
- data.num_threads, data.prefetch, data.num_workers: Grain reader threads, batches read ahead, and
  worker processes of the input path (`gm_jax.data.pipeline`).
- data.train_split, data.test_split: TFDS split names ("" = "train", and the first of test /
  validation; slicing such as "train[:90%]" allowed).
- model.dtype (neural families): the compute dtype, float32 or bfloat16; parameters, optimizer state,
  losses and metrics stay float32.
"""

import ml_collections


def add_platform_keys(cfg: ml_collections.ConfigDict, neural: bool = True) -> ml_collections.ConfigDict:
    """`cfg` with the platform keys above set to their defaults where it has none; returns `cfg`."""
    defaults = {
        "train": {"steps_per_call": 1},
        "data": {"num_threads": 2, "prefetch": 4, "num_workers": 0, "train_split": "", "test_split": ""},
    }
    if neural:
        defaults["model"] = {"dtype": "float32"}
    for section, keys in defaults.items():
        for key, value in keys.items():
            if key not in cfg[section]:
                cfg[section][key] = value
    return cfg
