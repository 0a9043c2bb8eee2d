"""The run loop: init -> restore -> compiled step -> log / eval / sample / checkpoint.

`train(family, cfg, workdir)` is what the CLI calls and what notebooks and tests call. A family is a
module (or any object) with four pure functions:

    init(key, cfg, example_batch[, parent]) -> TrainState
    train_step(state, batch, key, cfg) -> (state, metrics)      # metrics must contain "loss"
    evaluate(state, batch, key, cfg) -> {name: per-example values [B]}
    sample(state, key, n, cfg) -> samples (images [n, H, W, C] in [0, 1], points, sequences)

and optionally `reconstruct(state, batch, key, cfg) -> images`. `parent` is passed to `init` only
when `cfg.train.init_from` names a finished first-stage workdir (e.g. the prior of a VQ-VAE).

The step is compiled once with a replicated state, a batch sharded over every device of every
process, and a donated state buffer. Workdir contract: config.json, metrics.jsonl, TensorBoard
events, samples/*.png, checkpoints/ (Orbax), eval.json; re-running resumes; a workdir holding
another run is refused.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from gm_jax.core import parallel
from gm_jax.core.checkpoint import Checkpointer, abstract_like
from gm_jax.core.errors import UserError
from gm_jax.core.writer import Progress, Writer

# Config keys that may change between a run and its resumption (length, intervals, evaluation).
RESUMABLE_KEYS = {
    "train": {"num_steps", "log_every", "eval_every", "ckpt_every", "sample_every", "num_samples", "max_to_keep"},
}
RESUMABLE_SECTIONS = {"eval", "eval_periodic"}


class RunResult(NamedTuple):
    """What `train` returns.

    Attributes:
      state: the final train state (replicated arrays).
      eval: final evaluation {metric: mean over the test set}, or {} in sample mode.
      step: the final step.
      step_compilations: how many times the train step was compiled in this call (1 when it ran).
      workdir: where outputs were written.
      cfg: the config as run (with the derived `data.shape`), for calling the family afterwards.
    """

    state: Any
    eval: dict
    step: int
    step_compilations: int
    workdir: str
    cfg: Any = None


def resolve_family(family: Any) -> Any:
    """A family module from a registry name, a module path, or the module itself."""
    if isinstance(family, str):
        from gm_jax.registry import get_family

        return get_family(family)
    return family


def _validate(cfg: ml_collections.ConfigDict) -> None:
    t = cfg.train
    for key in ("num_steps", "batch_size"):
        v = t.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise UserError(f"train.{key} must be a positive integer, got {v!r}")
    for key in ("log_every", "eval_every", "ckpt_every", "sample_every"):
        v = t.get(key, 0)
        if not isinstance(v, int) or v < 0:
            raise UserError(f"train.{key} must be a non-negative integer, got {v!r}")


def _comparable(cfg_dict: dict) -> dict:
    out = {k: v for k, v in cfg_dict.items() if k not in RESUMABLE_SECTIONS}
    for section, keys in RESUMABLE_KEYS.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in keys}
    return out


def _check_workdir(workdir: str, cfg_dict: dict, mode: str) -> bool:
    """Refuse a workdir holding another run; returns True when it already holds this run."""
    path = os.path.join(workdir, "config.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
            old_cfg = old["config"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"workdir {workdir} has an unreadable config.json; refusing to use it") from None
        if old_cfg.get("model_name") != cfg_dict.get("model_name"):
            raise UserError(
                f"workdir {workdir} holds a run of model {old_cfg.get('model_name')!r}, not "
                f"{cfg_dict.get('model_name')!r}; choose another --workdir"
            )
        a, b = _comparable(old_cfg), _comparable(cfg_dict)
        if a != b:
            diff = sorted(_diff_keys(a, b))
            raise UserError(
                f"workdir {workdir} holds a run with a different config ({', '.join(diff[:5])}); "
                "choose another --workdir"
            )
        return True
    if os.path.isdir(workdir) and os.listdir(workdir):
        raise UserError(f"workdir {workdir} is not empty and holds no gm_jax run; choose another --workdir")
    if mode != "train":
        raise UserError(f"workdir {workdir} holds no run to {mode}; train one first")
    return False


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _host_seed(key: jax.Array) -> int:
    return int(np.asarray(jax.random.key_data(key)).ravel()[-1])


def _scalar(x: Any) -> float:
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return float(np.asarray(x))


class _Run:
    """One call of `train`: holds the compiled functions and the run's keys."""

    def __init__(self, family, cfg, workdir, mesh):
        self.family, self.cfg, self.workdir = family, cfg, workdir
        self.mesh = mesh
        self.repl = parallel.replicated(self.mesh)
        self.data_sharding = parallel.batch_sharded(self.mesh)
        init_key, data_key, self.loop_key = jax.random.split(jax.random.key(cfg.seed), 3)
        self.init_key = init_key
        # Evaluation and sampling keys come from an index no train step uses.
        self.eval_key, self.sample_key = jax.random.split(jax.random.fold_in(self.loop_key, 0xFFFFFFFF))
        self.data_seed = _host_seed(data_key)
        self.writer = Writer(workdir, enabled=jax.process_index() == 0)
        self._eval_fns: dict[int, Any] = {}
        self._sample_fns: tuple | None = None

    def evaluate(self, state, data, eval_cfg) -> dict:
        bs = int(eval_cfg.get("eval", {}).get("batch_size", self.cfg.train.batch_size))
        n_dev = self.mesh.devices.size
        bs = -(-max(bs, 1) // n_dev) * n_dev  # eval batches are padded, so round up to the devices
        fn = self._eval_fns.get(id(eval_cfg))
        if fn is None:  # one compilation per eval config, reused by every periodic evaluation
            fn = self._eval_fns[id(eval_cfg)] = jax.jit(
                lambda s, b, k: self.family.evaluate(s, b, k, eval_cfg),
                in_shardings=(self.repl, self.data_sharding, self.repl),
            )
        sums: dict[str, float] = {}
        count = 0.0
        for i, batch in enumerate(data.eval_batches(bs, eval_cfg.get("eval", {}).get("num_examples", -1))):
            mask = batch.pop("mask")
            out = fn(state, parallel.shard_batch(batch, self.mesh), jax.random.fold_in(self.eval_key, i))
            out = parallel.to_host(out)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(np.sum(np.asarray(v, np.float64) * mask))
            count += float(mask.sum())
        return {k: v / max(count, 1.0) for k, v in sums.items()}

    def write_samples(self, state, data, step: int) -> None:
        if self._sample_fns is None:  # compiled once per run (self.cfg is final by now), reused at every sampling
            cfg, family, n = self.cfg, self.family, self.cfg.train.get("num_samples", 64)
            recon = None
            if hasattr(family, "reconstruct"):
                recon = jax.jit(lambda s, b, k: family.reconstruct(s, b, k, cfg), out_shardings=self.repl)
            self._sample_fns = (jax.jit(lambda s, k: family.sample(s, k, n, cfg), out_shardings=self.repl), recon)
        sample_fn, recon_fn = self._sample_fns
        key = jax.random.fold_in(self.sample_key, step)
        samples = np.asarray(parallel.to_host(sample_fn(state, key)))
        if samples.ndim == 4:
            self.writer.image_grid(f"samples/step_{step}", samples)
        elif self.writer.enabled:
            os.makedirs(os.path.join(self.workdir, "samples"), exist_ok=True)
            np.save(os.path.join(self.workdir, "samples", f"step_{step}.npy"), samples)
        if recon_fn is not None and data.kind == "image":
            bs = self.cfg.train.batch_size
            batch = next(data.eval_batches(bs, bs))
            batch.pop("mask")
            rec = recon_fn(state, parallel.shard_batch(batch, self.mesh), key)
            rec = np.asarray(parallel.to_host(rec))[:32]
            orig = batch["x"][:32]
            pairs = np.stack([orig, rec], 1).reshape((-1,) + orig.shape[1:])
            self.writer.image_grid(f"samples/recon_step_{step}", pairs)


def train(family: Any, cfg: ml_collections.ConfigDict, workdir: str, mode: str = "train") -> RunResult:
    """Train (or evaluate / sample from) a model, writing everything into `workdir`.

    Args:
      family: registry name ("vae"), or a family module/object (see module docstring).
      cfg: the run config (sections model, optim, data, train, eval, seed; `model_name`).
      workdir: output directory; resumed from its latest checkpoint when it holds this run.
      mode: "train", "eval" (latest checkpoint -> eval.json) or "sample" (latest -> samples/).
    Returns:
      RunResult.
    Raises:
      UserError: bad config, data, or workdir; unreadable checkpoint; non-finite loss.
    """
    # The mesh is also the context mesh, so steps that split work over its data axis themselves
    # (the GMM's chunked E-step) see the devices the batch is sharded over.
    mesh = parallel.make_mesh()
    with jax.set_mesh(mesh):
        return _train(family, cfg, workdir, mode, mesh)


def _train(family: Any, cfg: ml_collections.ConfigDict, workdir: str, mode: str, mesh) -> RunResult:
    if mode not in ("train", "eval", "sample"):
        raise UserError(f"--mode must be train, eval or sample, got {mode!r}")
    family = resolve_family(family)
    _validate(cfg)
    workdir = os.path.abspath(workdir)
    run = _Run(family, cfg, workdir, mesh)
    parallel.check_global_batch(cfg.train.batch_size, run.mesh)
    from gm_jax import data as data_lib

    data = data_lib.load(cfg.data, cfg.train.batch_size, run.data_seed)
    # The example shape is derived from the data, so families can build outputs of the right shape
    # and switching datasets on the command line needs no shape flags.
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.data.shape = tuple(int(d) for d in data.example_shape)
    run.cfg = cfg
    cfg_dict = json.loads(cfg.to_json_best_effort())
    is_resume = _check_workdir(workdir, cfg_dict, mode)
    example = data.train_batch(0)

    parent = None
    init_from = cfg.train.get("init_from", "")
    if init_from:
        parent = Checkpointer(os.path.join(init_from, "checkpoints")).restore_raw()

    def init_fn(key):
        if parent is None:
            return family.init(key, cfg, example)
        return family.init(key, cfg, example, parent=parent)

    abstract = jax.eval_shape(init_fn, run.init_key)
    if not is_resume:
        run.writer.json("config.json", {"model": cfg_dict.get("model_name"), "config": cfg_dict})
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=cfg.train.get("max_to_keep", 3))
    if ckpt.latest_step() is not None:
        state = ckpt.restore(abstract_like(abstract, run.repl))
    elif mode != "train":
        raise UserError(f"workdir {workdir} has no checkpoint to {mode}; train first")
    else:
        state = jax.jit(init_fn, out_shardings=run.repl)(run.init_key)
    start = int(_scalar(state.step))

    if mode == "eval":
        ev = run.evaluate(state, data, cfg)
        run.writer.json("eval.json", {"step": start, **ev})
        ckpt.close()
        return RunResult(state, ev, start, 0, workdir, cfg)
    if mode == "sample":
        run.write_samples(state, data, start)
        ckpt.close()
        return RunResult(state, {}, start, 0, workdir, cfg)

    step_fn = jax.jit(
        lambda s, b, k: family.train_step(s, b, k, cfg),
        in_shardings=(run.repl, run.data_sharding, run.repl),
        out_shardings=(run.repl, run.repl),
        donate_argnums=(0,),
    )
    t = cfg.train
    num_steps = t.num_steps
    progress = Progress(num_steps, start, enabled=jax.process_index() == 0)
    last_good = ckpt.latest_step()
    pending: tuple[int, Any] | None = None
    periodic_cfg = _eval_cfg(cfg, "eval_periodic")

    def check(entry):
        s, m = entry
        loss = _scalar(m["loss"])
        if not math.isfinite(loss):
            ckpt.wait()
            kept = f"last good checkpoint (step {last_good}) kept" if last_good is not None else "no checkpoint saved"
            raise UserError(f"non-finite loss ({loss}) at step {s}; run stopped, {kept}")

    try:
        for step in range(start, num_steps):
            batch = parallel.shard_batch(data.train_batch(step), run.mesh)
            state, metrics = step_fn(state, batch, run.loop_key)
            if pending is not None:
                check(pending)  # one step behind, so the host does not wait on every step
            done = step + 1
            pending = (done, metrics)
            if done == start + 1:
                progress.restart_clock(done)
            if t.log_every and (done % t.log_every == 0 or done == num_steps):
                check(pending)
                shown = {k: v for k, v in metrics.items()}
                speed = progress.line(done, shown)
                run.writer.scalars(done, {**shown, **speed})
            if t.eval_every and done % t.eval_every == 0 and done != num_steps:
                ev = run.evaluate(state, data, periodic_cfg)
                run.writer.scalars(done, {"eval/" + k: v for k, v in ev.items()})
            if t.sample_every and done % t.sample_every == 0:
                run.write_samples(state, data, done)
            if (t.ckpt_every and done % t.ckpt_every == 0) or done == num_steps:
                check(pending)
                ckpt.save(done, state)
                last_good = done
        if pending is not None:
            check(pending)
        ckpt.wait()
    finally:
        run.writer.flush()
    compilations = step_fn._cache_size() if num_steps > start else 0
    end = max(start, num_steps)
    ev = run.evaluate(state, data, _eval_cfg(cfg, "eval"))
    run.writer.scalars(end, {"eval/" + k: v for k, v in ev.items()})
    run.writer.json("eval.json", {"step": end, **ev})
    if not t.sample_every or end % t.sample_every:
        run.write_samples(state, data, end)
    run.writer.close()
    ckpt.close()
    return RunResult(state, ev, end, compilations, workdir, cfg)


def _eval_cfg(cfg: ml_collections.ConfigDict, section: str) -> ml_collections.ConfigDict:
    """The config evaluate sees: `cfg` with its `eval` section replaced by `section` when present."""
    if section == "eval" or section not in cfg:
        return cfg
    out = ml_collections.ConfigDict(cfg.to_dict())
    merged = dict(cfg.get("eval", {}).to_dict() if "eval" in cfg else {})
    merged.update(cfg[section].to_dict())
    out.eval = ml_collections.ConfigDict(merged)
    return out
