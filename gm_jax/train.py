"""`train`: one run, from a config to eval.json, written in the order it happens.

    check      the config, the devices, the data, the workdir, the first stage; the family traced
               abstractly (`gm_jax.core.validation`); nothing is written before this passes
    open       lock the workdir, record config.json, restore the latest checkpoint or initialise
    loop       the compiled step over the batches; logs, periodic evaluations, pictures, checkpoints
    evaluate   the final evaluation (`gm_jax.evaluators`) into eval.json, the last pictures
    finish     close the writers and the checkpointer, release the lock

The CLI calls it (`experiments/run.py`), and so do notebooks and tests. A family plugs in through
the contract of `gm_jax.family`; the workdir's rules are `gm_jax.core.workdir`'s; a second stage's
first stage comes from `gm_jax.stages`.

The step is compiled once with a replicated state, a batch sharded over every device of every
process, and a donated state buffer; with `train.steps_per_call` = k it is scanned over k stacked
batches (`gm_jax.core.steps.scan_steps`). The mesh is also the context mesh (`jax.set_mesh`), so a
step that splits work over the data axis itself (`shard_map`) sees the devices the batch is sharded
over. Losses are checked one call behind, so the host does not wait on every step; a non-finite loss
or state stops the run naming the step, and only states whose values are all finite are saved.
"""

from __future__ import annotations

import errno
import json
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gm_jax import data as data_lib
from gm_jax import evaluators, stages
from gm_jax import family as contract
from gm_jax.core import parallel, paths, validation
from gm_jax.core.checkpoint import Checkpointer, abstract_like
from gm_jax.core.errors import UserError
from gm_jax.core.steps import scan_steps
from gm_jax.core.workdir import Workdir
from gm_jax.core.writer import Progress, Writer
from gm_jax.evaluators import pictures

MODES = ("train", "eval", "sample", "describe")


class RunResult(NamedTuple):
    """What `train` returns.

    Attributes:
      state: the final train state (replicated arrays); None for "describe".
      eval: the final evaluation {metric: value} ({} in sample mode; the parameter summary in
        describe mode).
      step: the final step.
      step_compilations: how many times the train step was compiled in this call (1 when it ran).
      workdir: where outputs were written.
      cfg: the config as run (with the data facts), for calling the family afterwards.
    """

    state: Any
    eval: dict
    step: int
    step_compilations: int
    workdir: str
    cfg: Any = None


def train(family: Any, cfg: ml_collections.ConfigDict, workdir: str, mode: str = "train") -> RunResult:
    """Train (or evaluate / sample from / describe) a model, writing everything into `workdir`.

    Args:
      family: registry name ("vae"), or a family module or object (`gm_jax.family`).
      cfg: the run config (sections model, optim, data, train, eval, sample, seed; `model_name`).
      workdir: output directory; resumed from its latest checkpoint when it holds this run.
      mode: "train", "eval" (latest checkpoint -> eval.json), "sample" (latest -> samples/) or
        "describe" (parameter counts from an abstract init -> model_summary.json; `gm_jax.describe`).
    Raises:
      UserError: bad config, data, or workdir; unreadable checkpoint; non-finite loss or state.
    """
    if mode not in MODES:
        raise UserError(f"--mode must be {', '.join(MODES[:-1])} or {MODES[-1]}, got {mode!r}")
    spec = resolve(family)
    if mode == "describe":
        from gm_jax.describe import describe

        return RunResult(None, describe(spec, cfg, workdir), 0, 0, paths.resolve(workdir), cfg)
    mesh = parallel.make_mesh()
    with jax.set_mesh(mesh):
        # ---- check: everything the run needs, before anything is written
        validation.check_config(cfg)
        parallel.check_global_batch(cfg.train.batch_size, mesh)
        keys = evaluators.RunKeys.from_seed(cfg.seed)
        data = data_lib.load(cfg.data, cfg.train.batch_size, keys.data_seed)
        cfg = ml_collections.ConfigDict(cfg.to_dict())
        cfg.data.update(data.facts())  # shape, sizes, levels, kind, features: families read them here
        wd = Workdir(workdir, mode, json.loads(cfg.to_json_best_effort()))
        is_resume = wd.check()
        example = data.train_batch(0)
        parent = None
        if cfg.train.get("init_from", ""):
            parent = stages.load_parent(cfg.train.init_from, mesh)
            contract.check_parent(spec)

        def init_fn(key):
            if parent is None:
                return spec.init(key, cfg, example)
            return spec.init(key, cfg, example, parent=parent)

        writer = Writer(wd.path, enabled=jax.process_index() == 0)
        ctx = evaluators.Context(spec, cfg, data, mesh, keys, writer)
        sections = {s: validation.eval_cfg(cfg, s) for s in ("eval", "eval_periodic")}
        for name, ecfg in sections.items():
            evaluators.check(ctx, ecfg, name)
        traced = [(ecfg, ctx.test_batch(ctx.batch_size(ecfg))) for ecfg in sections.values()]
        n_pictures = cfg.train.get("num_samples", 64) or 1
        abstract = validation.dry_run(spec, cfg, init_fn, keys, example, traced, mode == "train", n_pictures)

        try:
            # ---- open: lock, config.json, the latest checkpoint or a fresh state
            if mode == "train":
                wd.lock(primary=jax.process_index() == 0)
            if not is_resume:
                wd.record(writer)
            if mode != "train" and not paths.isdir(paths.join(wd.path, "checkpoints")):
                raise UserError(f"workdir {wd.path} has no checkpoint to {mode}; train first")
            ckpt = Checkpointer(
                paths.join(wd.path, "checkpoints"), max_to_keep=cfg.train.get("max_to_keep", 3), create=mode == "train"
            )
            if ckpt.latest_step() is not None:
                state = ckpt.restore(abstract_like(abstract, parallel.replicated(mesh)))
                if not bool(all_finite(state)):
                    ckpt.close()
                    raise UserError(
                        f"checkpoint {ckpt.directory}/{ckpt.latest_step()} holds non-finite values "
                        "(damaged or saved by a failing run); it was left as is"
                    )
            elif mode != "train":
                raise UserError(f"workdir {wd.path} has no checkpoint to {mode}; train first")
            else:
                state = jax.jit(init_fn, out_shardings=parallel.replicated(mesh))(keys.init)
            start = int(_scalar(state.step))
            if mode == "train" and is_resume:
                writer.truncate_after(start)  # metrics.jsonl: the rows past the restored step go
                wd.record(writer, start)
            if mode == "eval":
                ev = evaluators.evaluate(ctx, state, cfg)
                _write_eval(writer, start, ev)
                ckpt.close()
                return RunResult(state, ev, start, 0, wd.path, cfg)
            if mode == "sample":
                pictures.run(ctx, state, start)
                ckpt.close()
                return RunResult(state, {}, start, 0, wd.path, cfg)

            # ---- loop: the compiled step over the batches of steps start .. num_steps
            t = cfg.train
            k = int(t.get("steps_per_call", 1))
            if k > 1 and start % k:
                raise UserError(
                    f"train.steps_per_call={k} must divide the step the run resumes from ({start}); resume with a "
                    "steps_per_call that divides it"
                )
            compilations = [0]

            def traced_step(s, b, key):
                compilations[0] += 1  # runs once per trace, i.e. once per compilation
                if k == 1:
                    return spec.train_step(s, data.decode(b), key, cfg)
                # k steps in one dispatch: the same step scanned over k stacked batches; metrics [k].
                return scan_steps(lambda s, b, key, c: spec.train_step(s, data.decode(b), key, c))(s, b, key, cfg)

            batch_axis = 0 if k == 1 else 1
            repl = parallel.replicated(mesh)
            step_fn = jax.jit(
                traced_step,
                in_shardings=(repl, parallel.batch_sharded(mesh, batch_axis), repl),
                out_shardings=(repl, repl),
                donate_argnums=(0,),
            )
            progress = Progress(t.num_steps, start, enabled=jax.process_index() == 0)
            pending: tuple[int, Any] | None = None
            try:
                process = (jax.process_index(), jax.process_count())
                batches = data.train_iter(start, t.num_steps, k, process) if start < t.num_steps else iter(())
                for step in range(start, t.num_steps, k):
                    batch = parallel.shard_local(next(batches), mesh, batch_axis)
                    state, metrics = step_fn(state, batch, keys.loop)
                    if pending is not None:
                        _check_loss(pending, ckpt)  # one call behind, so the host does not wait on every step
                    done = step + k
                    pending = (done, metrics)
                    if k > 1:  # the last of the k steps' metrics is logged (the intervals are multiples of k)
                        metrics = jax.tree.map(lambda v: v[-1], metrics)
                    if done == start + k:
                        progress.restart_clock(done)
                    if t.log_every and (done % t.log_every == 0 or done == t.num_steps):
                        _check_loss(pending, ckpt)
                        writer.scalars(done, {**metrics, **progress.line(done, metrics)})
                    if t.eval_every and done % t.eval_every == 0 and done != t.num_steps:
                        ev = evaluators.evaluate(ctx, state, sections["eval_periodic"])
                        writer.scalars(done, {"eval/" + m: v for m, v in ev.items()})
                    if t.sample_every and done % t.sample_every == 0:
                        pictures.run(ctx, state, done)
                    if (t.ckpt_every and done % t.ckpt_every == 0) or done == t.num_steps:
                        _check_loss(pending, ckpt)
                        _save(ckpt, done, state)
                if pending is not None:
                    _check_loss(pending, ckpt)
                ckpt.wait()
            except UserError:
                raise
            except Exception as e:
                if _is_disk_full(e):
                    try:
                        ckpt.wait()
                    except Exception:  # noqa: BLE001, S110 - the pending save failed too; _kept says what is on disk
                        pass
                    raise UserError(
                        f"no space left on the device writing {wd.path}; run stopped, {_kept(ckpt)}"
                    ) from None
                raise
            finally:
                try:
                    writer.flush()
                except Exception:
                    if sys.exc_info()[0] is None:  # a failing flush must not hide the error that stopped the run
                        raise

            # ---- evaluate: the final evaluation, the last pictures
            end = max(start, t.num_steps)
            ev = evaluators.evaluate(ctx, state, cfg)
            writer.scalars(end, {"eval/" + m: v for m, v in ev.items()})
            _write_eval(writer, end, ev)
            if not t.sample_every or end % t.sample_every:
                pictures.run(ctx, state, end)

            # ---- finish
            writer.close()
            ckpt.close()
            return RunResult(state, ev, end, compilations[0], wd.path, cfg)
        finally:
            wd.unlock()


def resolve(family: Any) -> contract.FamilySpec:
    """The contract's view of a registry name, a module or a family object."""
    if isinstance(family, str):
        from gm_jax.registry import get_family

        return get_family(family)
    return contract.as_family(family)


@jax.jit
def all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _scalar(x: Any) -> float:
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return float(np.asarray(x))


def _kept(ckpt: Checkpointer) -> str:
    last = ckpt.committed_step()  # what is on disk, not what was handed to the async writer
    return f"last good checkpoint (step {last}) kept" if last is not None else "no checkpoint saved"


def _check_loss(entry: tuple[int, Any], ckpt: Checkpointer) -> None:
    """Stop the run at the first non-finite loss among the steps `entry` (done, metrics) covers."""
    done, metrics = entry
    losses = np.atleast_1d(np.asarray(parallel.to_host(metrics["loss"]), np.float64))
    bad = np.flatnonzero(~np.isfinite(losses))
    if len(bad):
        at = done - len(losses) + 1 + int(bad[0])
        ckpt.wait()
        raise UserError(f"non-finite loss ({losses[bad[0]]}) at step {at}; run stopped, {_kept(ckpt)}")


def _save(ckpt: Checkpointer, done: int, state: Any) -> None:
    """Save `state` at step `done`; only a state whose values are all finite is saved and called good."""
    if not bool(all_finite(state)):
        ckpt.wait()
        raise UserError(f"non-finite values in the model state at step {done}; run stopped, {_kept(ckpt)}")
    ckpt.save(done, state)


def _write_eval(writer: Writer, step: int, ev: dict) -> None:
    bad = writer.json("eval.json", {"step": step, **ev})
    if bad and jax.process_index() == 0:
        print(f"warning: eval.json: {', '.join(bad)} not finite, written as null", flush=True)


def _is_disk_full(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False
