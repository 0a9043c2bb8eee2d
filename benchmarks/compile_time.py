"""First compiled train step of every registered model's smoke config (target: < 5 s each).

    python -m benchmarks.compile_time

Times trace + compile + first execution of the step exactly as the loop builds it (replicated state,
sharded batch, donated state) on this machine's devices. Last line: `speedup <5 s / worst> vs 5s-budget`.
"""

from __future__ import annotations

import time

import jax
import ml_collections

from gm_jax import get_family, load_config, model_names
from gm_jax.core import parallel
from gm_jax.data import load


def first_step_seconds(name: str) -> float:
    cfg = load_config(name, "smoke")
    family = get_family(name)
    mesh = parallel.make_mesh()
    data = load(cfg.data, cfg.train.batch_size, seed=0)
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.data.update(data.facts())
    batch = parallel.shard_batch(data.train_batch(0), mesh)
    repl = parallel.replicated(mesh)
    state = jax.jit(lambda k: family.init(k, cfg, data.train_batch(0)), out_shardings=repl)(jax.random.key(0))
    jax.block_until_ready(state)
    step = jax.jit(
        lambda s, b, k: family.train_step(s, b, k, cfg),
        in_shardings=(repl, parallel.batch_sharded(mesh), repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )
    t = time.perf_counter()
    state, metrics = step(state, batch, jax.random.key(1))
    jax.block_until_ready(metrics)
    return time.perf_counter() - t


def main() -> None:
    rows = [(name, first_step_seconds(name)) for name in model_names()]
    print(f"devices: {len(jax.devices())} x {jax.devices()[0].platform}")
    print(f"{'model':<12}{'first step (s)':>16}")
    for name, s in rows:
        print(f"{name:<12}{s:>16.2f}")
    worst = max(s for _, s in rows)
    print(f"speedup {5.0 / worst:.2f} vs 5s-budget")


if __name__ == "__main__":
    main()
