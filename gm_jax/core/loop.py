"""The run loop: init -> restore -> compiled step -> log / eval / sample / checkpoint.

`train(family, cfg, workdir)` is what the CLI calls and what notebooks and tests call. A family is a
module (or any object) with four pure functions:

    init(key, cfg, example_batch[, parent]) -> TrainState
    train_step(state, batch, key, cfg) -> (state, metrics)      # metrics must contain "loss"
    evaluate(state, batch, key, cfg) -> {name: per-example values [B]}
    sample(state, key, n, cfg) -> samples (images [n, H, W, C] in [0, 1], points, sequences)

and optionally `reconstruct(state, batch, key, cfg) -> images` (drawn beside the batch at every
sampling), `log_density(state, x, cfg) -> log p(x) [N]` (for 2-D points: drawn on a grid beside
the data at every sampling, samples/density_step_N.png), `figures(state, batch, key, cfg) ->
{name: images [rows, cols, H, W, C]}` (any picture made from a test batch, e.g. latent traversals,
drawn row by row at every sampling as samples/<name>_step_N.png) and `encode(state, x, cfg) ->
codes [B, Z]` (a representation; on data generated from known factors, with `eval.disentanglement`
on, it is scored by `gm_jax.metrics.disentanglement`: the β-VAE and FactorVAE metrics and MIG in
eval.json, their sample sizes from `eval.beta_vae_train`, `beta_vae_eval`, `factor_vae_train`,
`factor_vae_eval`, `mig_samples`, `pairs`), and `summarize(vectors, cfg) -> {name: scalar}`: with
it, `evaluate` may also return per-example vectors [B, K] (e.g. code frequencies), which the loop
averages over the test set; their summary goes to eval.json and each mean vector is drawn as a bar
chart, samples/<name>_eval.png.

What a family can read besides its own config sections:
- `state.step` inside `train_step` (the generic step passes it to the loss as `step`): the number of
  updates done, for schedules (annealing, critic schedules, lazy regularisation).
- `cfg.data.shape`, `cfg.data.train_size`, `cfg.data.test_size`, `cfg.data.levels` (discrete values
  per dimension: 17 for the digits, 256 for uint8 images, 2 for binary data, 0 for continuous),
  `cfg.data.kind` ("image", "points", "sequence") and `cfg.data.features` (what batches carry besides
  "x", e.g. labels "y"), derived from the data and recorded in config.json.
- `cfg.sample`: sampling options (sampler, steps, truncation, temperature). Like `eval` and
  `eval_periodic` it may change when a finished workdir is resumed, evaluated or sampled again.
- `parent` (only when `cfg.train.init_from` names a finished first-stage workdir): a `Parent` with
  the first stage's state, restored into its own abstract state on the current mesh (any device
  count), its config and its family, so a second stage need not repeat the first's architecture.

Set-level sample quality: when `eval.num_samples` > 0 and the family has `sample`, every evaluation
also draws that many samples in compiled batches sharded over the devices and scores them, in
eval.json and, for periodic evaluations, metrics.jsonl:
- images, against the training data with `gm_jax.metrics.sample_quality` (`eval.features`: "auto"
  picks the digits features for 8x8x1 images or the digits enlarged by `data.image_size`, and skips
  the metrics for data no extractor is made for): FID, KID, precision/recall, classifier score;
- points from a set with known modes (`gm_jax.data.points`): `eval.mode_samples` samples (2500 by
  default, the VEEGAN/PacGAN protocol; 0 = off) scored by `gm_jax.metrics.modes`: modes covered,
  high-quality fraction, KL of the mode histogram to uniform (`eval.mode_min_count`).
`eval.parzen_samples` > 0 adds the Parzen-window log-likelihood (`gm_jax.metrics.parzen`) of the
second half of the test split, sigma chosen on the first half (`eval.parzen_sigmas`: the grid).
Point samples are also drawn as a scatter PNG over the training points at every sampling.

The step is compiled once with a replicated state, a batch sharded over every device of every
process, and a donated state buffer. The mesh is also the context mesh (`jax.set_mesh`), so a step
that splits work over the data axis itself (`shard_map`) sees the devices the batch is sharded over.

Before anything is written the whole config is checked: the train section here, the optimizer, and
the family's own sections by tracing `init`, `train_step`, `evaluate` and `sample` abstractly. Workdir
contract: config.json (with the history of resumed changes), metrics.jsonl (one row per step),
TensorBoard events, samples/*.png, checkpoints/ (Orbax; only finite states are saved), eval.json
(strict JSON: non-finite values are null); re-running resumes; a workdir holding another run, or used
by a running process, is refused.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gm_jax.core import parallel, paths
from gm_jax.core.checkpoint import Checkpointer, abstract_like
from gm_jax.core.errors import UserError
from gm_jax.core.steps import check_optimizer, scan_steps
from gm_jax.core.writer import Progress, Writer

# Config keys that may change between a run and its resumption (length, intervals, evaluation, sampling,
# steps per dispatch, and how the data is read).
RESUMABLE_KEYS = {
    "train": {
        "num_steps",
        "log_every",
        "eval_every",
        "ckpt_every",
        "sample_every",
        "num_samples",
        "max_to_keep",
        "steps_per_call",
    },
}
RESUMABLE_SECTIONS = {"eval", "eval_periodic", "sample"}
RESUMABLE_DATA_KEYS = {"num_threads", "prefetch", "num_workers"}
LOCK_FILE = ".lock"


class RunResult(NamedTuple):
    """What `train` returns.

    Attributes:
      state: the final train state (replicated arrays).
      eval: final evaluation {metric: mean over the test set, and the sample-quality metrics}, or {}
        in sample mode.
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


class Parent(NamedTuple):
    """A finished first stage, as a second stage's `init` receives it.

    Attributes:
      state: its latest TrainState, placed replicated on the current mesh.
      cfg: its config (with its data facts).
      family: its family.
      workdir: where it lives.
    """

    state: Any
    cfg: Any
    family: Any
    workdir: str


def resolve_family(family: Any) -> Any:
    """A family module from a registry name, a module path, or the module itself."""
    if isinstance(family, str):
        from gm_jax.registry import get_family

        return get_family(family)
    return family


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _validate(cfg: ml_collections.ConfigDict) -> None:
    t = cfg.train
    for key in ("num_steps", "batch_size"):
        v = t.get(key)
        if not _positive_int(v):
            raise UserError(f"train.{key} must be a positive integer, got {v!r}")
    for key in ("log_every", "eval_every", "ckpt_every", "sample_every", "num_samples"):
        v = t.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise UserError(f"train.{key} must be a non-negative integer, got {v!r}")
    k = t.get("steps_per_call", 1)
    if not _positive_int(k):
        raise UserError(f"train.steps_per_call must be a positive integer, got {k!r}")
    if k > 1:
        keys = ("num_steps", "log_every", "eval_every", "ckpt_every", "sample_every")
        bad = [key for key in keys if t.get(key, 0) % k]
        if bad:
            raise UserError(
                f"train.steps_per_call={k} must divide train.{bad[0]} ({t.get(bad[0])}): steps run {k} per call, so "
                "logging, evaluation, sampling and checkpoints fall on multiples of it"
            )
    dtype = cfg.get("model", {}).get("dtype", "float32")
    if dtype not in ("float32", "bfloat16"):
        raise UserError(f"model.dtype must be float32 or bfloat16 (the compute dtype), got {dtype!r}")
    if not _positive_int(t.get("max_to_keep", 3)):
        raise UserError(
            f"train.max_to_keep must be a positive integer (checkpoints kept), got {t.get('max_to_keep')!r}"
        )
    for section in ("eval", "eval_periodic"):
        ev = cfg.get(section, {})
        for key in ("num_samples", "sample_batch"):
            v = ev.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UserError(f"{section}.{key} must be a non-negative integer, got {v!r}")
    if "optim" in cfg:
        check_optimizer(cfg.optim)


def _comparable(cfg_dict: dict) -> dict:
    out = {k: v for k, v in cfg_dict.items() if k not in RESUMABLE_SECTIONS}
    for section, keys in {**RESUMABLE_KEYS, "data": RESUMABLE_DATA_KEYS}.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in keys}
    return out


def _flat(d: Any, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def _diff_keys(a: Any, b: Any) -> list[str]:
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))


def _host_seed(key: jax.Array) -> int:
    return int(np.asarray(jax.random.key_data(key)).ravel()[-1])


def _scalar(x: Any) -> float:
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return float(np.asarray(x))


def _first_line(e: BaseException) -> str:
    text = [t.strip() for t in str(e).strip().splitlines() if t.strip()]
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _is_disk_full(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


class _Run:
    """One call of `train`, in phases: prepare (check everything, write nothing), open (lock, config,
    restore or init), the training loop, and the final evaluation."""

    def __init__(self, family, cfg, workdir, mesh, mode):
        self.family, self.cfg, self.workdir, self.mode = family, cfg, paths.resolve(workdir), mode
        self.mesh = mesh
        self.repl = parallel.replicated(self.mesh)
        self.data_sharding = parallel.batch_sharded(self.mesh)
        self.init_key, data_key, self.loop_key = jax.random.split(jax.random.key(cfg.seed), 3)
        # Evaluation and sampling keys come from an index no train step uses.
        eval_root = jax.random.fold_in(self.loop_key, 0xFFFFFFFF)
        self.eval_key, self.sample_key, self.quality_key = jax.random.split(eval_root, 3)
        self.data_seed = _host_seed(data_key)
        self.writer = Writer(self.workdir, enabled=jax.process_index() == 0)
        self.step_compilations = 0
        self._eval_fns: dict[int, Any] = {}
        self._sample_fns: tuple | None = None
        self._density_fn: Any = None
        self._quality_fns: dict[int, Any] = {}
        self._extractors: dict[str, Any] = {}
        self._encode_fn: Any = None
        self._figures_fn: Any = None
        self._references: dict[str, Any] = {}
        self.parent: Parent | None = None
        self.lock_fd: int | None = None
        self.old_record: dict | None = None

    # ------------------------------------------------------------------ prepare (writes nothing)

    def prepare(self) -> None:
        """Check the config, data, workdir and first stage; trace the family abstractly."""
        _validate(self.cfg)
        parallel.check_global_batch(self.cfg.train.batch_size, self.mesh)
        from gm_jax import data as data_lib

        self.data = data_lib.load(self.cfg.data, self.cfg.train.batch_size, self.data_seed)
        # Data facts beside the shape, so families and metrics need no hand-copied constants and
        # switching datasets on the command line needs no shape flags.
        cfg = ml_collections.ConfigDict(self.cfg.to_dict())
        cfg.data.update(self.data.facts())
        self.cfg = cfg
        self.cfg_dict = json.loads(cfg.to_json_best_effort())
        self.is_resume = self._check_workdir()
        self.example = self.data.train_batch(0)
        init_from = cfg.train.get("init_from", "")
        if init_from:
            self.parent = load_parent(init_from, self.mesh)
        self.abstract = self._dry_run()

    def _check_workdir(self) -> bool:
        """Refuse a workdir holding another run; True when it already holds this run."""
        workdir, mode = self.workdir, self.mode
        if paths.exists(workdir) and not paths.isdir(workdir):
            raise UserError(f"workdir {workdir} exists and is not a directory; choose another --workdir")
        path = paths.join(workdir, "config.json")
        if paths.exists(path):
            try:
                old = json.loads(paths.read_text(path))
                old_cfg = old["config"]
            except (OSError, ValueError, KeyError, TypeError):
                raise UserError(f"workdir {workdir} has an unreadable config.json; refusing to use it") from None
            if old_cfg.get("model_name") != self.cfg_dict.get("model_name"):
                raise UserError(
                    f"workdir {workdir} holds a run of model {old_cfg.get('model_name')!r}, not "
                    f"{self.cfg_dict.get('model_name')!r}; choose another --workdir"
                )
            a, b = _comparable(old_cfg), _comparable(self.cfg_dict)
            if a != b:
                diff = _diff_keys(a, b)
                raise UserError(
                    f"workdir {workdir} holds a run with a different config ({', '.join(diff[:5])}); "
                    "choose another --workdir"
                )
            self.old_record = old
            return True
        if [f for f in paths.listdir(workdir) if f != LOCK_FILE]:
            raise UserError(f"workdir {workdir} is not empty and holds no gm_jax run; choose another --workdir")
        if mode != "train":
            raise UserError(f"workdir {workdir} holds no run to {mode}; train one first")
        if paths.is_remote(workdir):
            return False  # a bucket's permissions show at the first write
        parent = os.path.dirname(workdir.rstrip("/")) or "/"
        probe = workdir if os.path.isdir(workdir) else parent
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.access(probe, os.W_OK):
            raise UserError(f"workdir {workdir} cannot be created or written ({probe} is not writable)")
        return False

    def init_fn(self, key):
        if self.parent is None:
            return self.family.init(key, self.cfg, self.example)
        return self.family.init(key, self.cfg, self.example, parent=self.parent)

    def _eval_batch_size(self, eval_cfg) -> int:
        bs = int(eval_cfg.get("eval", {}).get("batch_size", self.cfg.train.batch_size))
        n_dev = self.mesh.devices.size
        return -(-max(bs, 1) // n_dev) * n_dev  # eval batches are padded, so round up to the devices

    def _dry_run(self) -> Any:
        """Trace init, one step, one evaluation batch per eval config, and sampling, without running
        them: a config the family cannot build fails here, before anything is written."""
        fam, cfg = self.family, self.cfg
        try:
            abstract = jax.eval_shape(self.init_fn, self.init_key)
            if self.mode == "train":
                jax.eval_shape(lambda s, b: fam.train_step(s, b, self.loop_key, cfg), abstract, self.example)
            for section in ("eval", "eval_periodic"):
                ecfg = _eval_cfg(cfg, section)
                bs = self._eval_batch_size(ecfg)
                batch = next(self.data.eval_batches(bs, bs))
                batch.pop("mask")
                out = jax.eval_shape(lambda s, b, c=ecfg: fam.evaluate(s, b, self.eval_key, c), abstract, batch)
                for k, v in out.items():
                    vector = len(v.shape) == 2 and v.shape[0] == bs and hasattr(fam, "summarize")
                    if tuple(v.shape) != (bs,) and not vector:
                        raise UserError(
                            f"evaluate's metric {k!r} has shape {tuple(v.shape)}; it must be per-example [{bs}], or "
                            f"[{bs}, K] for a family with `summarize` (set-level metrics of samples come from the "
                            "sample-quality stage)"
                        )
                self._check_quality(ecfg, section)
            if hasattr(fam, "sample"):
                n = self.cfg.train.get("num_samples", 64) or 1
                jax.eval_shape(lambda s: fam.sample(s, self.sample_key, n, cfg), abstract)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - the family's own error, reported in one line
            raise UserError(f"the config does not build a {cfg.get('model_name', 'model')}: {_first_line(e)}") from None
        return abstract

    def _features(self, ev) -> str | None:
        """The feature extractor an eval section asks for; "auto" picks the one made for this data
        (digits features for 8x8x1 images, or the digits enlarged by data.image_size) or none, in
        which case the image metrics are skipped."""
        from gm_jax.metrics import sample_quality

        name = ev.get("features", "auto")
        if name != "auto":
            return name
        shape = tuple(self.cfg.data.shape)
        for cand, base in sample_quality.EXTRACTOR_SHAPES.items():
            if self.data.kind != "image" or not sample_quality.accepts(cand, shape):
                continue
            if shape == tuple(base) or self.cfg.data.name == cand:
                return cand
        return None

    def _check_quality(self, ecfg, section) -> None:
        ev = ecfg.get("eval", {})
        if ev.get("disentanglement", False):
            if self.data.source.factors is None:
                raise UserError(
                    f"{section}.disentanglement needs data generated from known factors (dsprites, dsprites32); "
                    f"{self.data.source.name} has none"
                )
            if not hasattr(self.family, "encode"):
                raise UserError(f"{section}.disentanglement needs a family with an encoder; this one has none")
            for key in ("beta_vae_train", "beta_vae_eval", "factor_vae_train", "factor_vae_eval", "mig_samples"):
                v = ev.get(key, 1)
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise UserError(f"{section}.{key} must be a positive integer, got {v!r}")
            v = ev.get("pairs", 64)
            if not isinstance(v, int) or isinstance(v, bool) or v < 2:
                raise UserError(f"{section}.pairs must be an integer >= 2, got {v!r}")
        for key in ("parzen_samples", "mode_min_count", "mode_samples"):
            v = ev.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UserError(f"{section}.{key} must be a non-negative integer, got {v!r}")
        if not hasattr(self.family, "sample"):
            return
        if ev.get("parzen_samples", 0) and self.data.kind not in ("image", "points"):
            raise UserError(f"{section}.parzen_samples needs image or point data; the data is {self.data.kind}")
        if not ev.get("num_samples", 0):
            return
        from gm_jax.metrics import sample_quality

        name = self._features(ev)
        if name is None:
            return
        if name not in sample_quality.EXTRACTORS:
            raise UserError(
                f"{section}.features must be auto or one of {sorted(sample_quality.EXTRACTORS)}, got {name!r}"
            )
        shape = sample_quality.EXTRACTOR_SHAPES.get(name)
        if self.data.kind != "image" or not sample_quality.accepts(name, tuple(self.cfg.data.shape)):
            raise UserError(
                f"{section}.features={name} needs images of shape {shape}; the data is {self.data.kind} of shape "
                f"{tuple(self.cfg.data.shape)} (use {section}.features=auto or {section}.num_samples=0)"
            )

    # ------------------------------------------------------------------ open (lock, config, state)

    def open(self) -> Any:
        """Lock the workdir, record the config, restore the latest checkpoint or initialise."""
        if self.mode == "train":
            self._lock()
        if not self.is_resume:
            self.writer.json("config.json", {"model": self.cfg_dict.get("model_name"), "config": self.cfg_dict})
        create = self.mode == "train"
        if not create and not paths.isdir(paths.join(self.workdir, "checkpoints")):
            raise UserError(f"workdir {self.workdir} has no checkpoint to {self.mode}; train first")
        self.ckpt = Checkpointer(
            paths.join(self.workdir, "checkpoints"), max_to_keep=self.cfg.train.get("max_to_keep", 3), create=create
        )
        if self.ckpt.latest_step() is not None:
            state = self.ckpt.restore(abstract_like(self.abstract, self.repl))
            if not bool(_all_finite(state)):
                self.ckpt.close()
                raise UserError(
                    f"checkpoint {self.ckpt.directory}/{self.ckpt.latest_step()} holds non-finite values "
                    "(damaged or saved by a failing run); it was left as is"
                )
        elif self.mode != "train":
            raise UserError(f"workdir {self.workdir} has no checkpoint to {self.mode}; train first")
        else:
            state = jax.jit(self.init_fn, out_shardings=self.repl)(self.init_key)
        self.start = int(_scalar(state.step))
        if self.mode == "train" and self.is_resume:
            self.writer.truncate_after(self.start)
            self._record_history()
        return state

    def _lock(self) -> None:
        if jax.process_index() != 0 or paths.is_remote(self.workdir):  # a file lock needs a local directory
            return
        os.makedirs(self.workdir, exist_ok=True)
        fd = os.open(os.path.join(self.workdir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(
                f"workdir {self.workdir} is in use by another running process; wait for it or choose another --workdir"
            ) from None
        self.lock_fd = fd

    def unlock(self) -> None:
        if self.lock_fd is not None:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
            os.close(self.lock_fd)
            self.lock_fd = None

    def _record_history(self) -> None:
        """config.json follows the resumed run's resumable keys, with a history of the changes."""
        old = self.old_record or {}
        changed = {k: [_flat(old.get("config", {})).get(k), v] for k, v in _flat(self.cfg_dict).items()}
        changed = {k: ov for k, ov in changed.items() if ov[0] != ov[1]}
        if not changed:
            return
        history = list(old.get("history", [])) + [{"resumed_at_step": self.start, "changed": changed}]
        self.writer.json(
            "config.json", {"model": self.cfg_dict.get("model_name"), "config": self.cfg_dict, "history": history}
        )

    # ------------------------------------------------------------------ evaluation and samples

    def evaluate(self, state, eval_cfg) -> dict:
        """Per-example metrics averaged over the test set, then the sample-quality metrics."""
        bs = self._eval_batch_size(eval_cfg)
        fn = self._eval_fns.get(id(eval_cfg))
        if fn is None:  # one compilation per eval config, reused by every periodic evaluation
            fn = self._eval_fns[id(eval_cfg)] = jax.jit(
                lambda s, b, k: self.family.evaluate(s, b, k, eval_cfg),
                in_shardings=(self.repl, self.data_sharding, self.repl),
            )
        sums: dict[str, Any] = {}
        count = 0.0
        rows = parallel.process_slice(bs)  # each process reads its own rows
        n_max = eval_cfg.get("eval", {}).get("num_examples", -1)
        for i, batch in enumerate(self.data.eval_batches(bs, n_max, rows)):
            mask = batch.pop("mask")
            out = fn(state, parallel.shard_local(batch, self.mesh), jax.random.fold_in(self.eval_key, i))
            out = parallel.to_host(out)
            for k, v in out.items():
                v = np.asarray(v, np.float64)
                part = np.sum(v * mask.reshape((-1,) + (1,) * (v.ndim - 1)), 0)  # a scalar, or [K] for a vector metric
                sums[k] = sums.get(k, 0.0) + (float(part) if v.ndim == 1 else part)
            count += float(mask.sum())
        means = {k: v / max(count, 1.0) for k, v in sums.items()}
        ev = {k: v for k, v in means.items() if np.ndim(v) == 0}
        vectors = {k: v for k, v in means.items() if np.ndim(v) == 1}
        if vectors:
            # Set-level statistics of per-example vectors (e.g. a code histogram): the family's
            # summary in eval.json, each vector drawn as a bar chart.
            ev.update({k: float(v) for k, v in self.family.summarize(vectors, eval_cfg).items()})
            for k, v in vectors.items():
                self.writer.bars(f"samples/{k}_eval", v)
        return {**ev, **self.sample_quality(state, eval_cfg), **self.disentanglement(state, eval_cfg)}

    def encode_images(self, state, images: np.ndarray) -> np.ndarray:
        """The family's `encode` of host images, in compiled batches sharded over the devices."""
        bs = self._eval_batch_size({"eval": {"batch_size": 256}})
        if self._encode_fn is None:
            fam, cfg = self.family, self.cfg
            self._encode_fn = jax.jit(
                lambda s, x: fam.encode(s, x, cfg),
                in_shardings=(self.repl, self.data_sharding),
                out_shardings=self.repl,
            )
        out = []
        for lo in range(0, len(images), bs):
            part = images[lo : lo + bs]
            pad = bs - len(part)
            if pad:
                part = np.concatenate([part, np.zeros((pad,) + part.shape[1:], part.dtype)])
            codes = np.asarray(
                parallel.to_host(self._encode_fn(state, parallel.shard_batch({"x": part}, self.mesh)["x"]))
            )
            out.append(codes[: bs - pad])
        return np.concatenate(out)

    def disentanglement(self, state, eval_cfg) -> dict:
        """The disentanglement metrics of the family's `encode` on the data's factors (`eval.disentanglement`)."""
        ev = eval_cfg.get("eval", {})
        if not ev.get("disentanglement", False):
            return {}
        from gm_jax.metrics import disentanglement

        sizes = {
            k: int(ev[k])
            for k in ("beta_vae_train", "beta_vae_eval", "factor_vae_train", "factor_vae_eval", "mig_samples", "pairs")
            if k in ev
        }
        return disentanglement.all_scores(
            lambda x: self.encode_images(state, x), self.data.source.factors, seed=int(self.cfg.seed), **sizes
        )

    def draw(self, state, n: int, batch: int, key) -> np.ndarray:
        """n samples drawn in compiled batches whose rows are sharded over the devices."""
        n_dev = self.mesh.devices.size
        bs = -(-max(1, min(batch, n)) // n_dev) * n_dev
        fn = self._quality_fns.get(bs)
        if fn is None:
            fam, cfg = self.family, self.cfg
            fn = self._quality_fns[bs] = jax.jit(
                lambda s, k: fam.sample(s, k, bs, cfg),
                in_shardings=(self.repl, self.repl),
                out_shardings=self.data_sharding,
            )
        parts = [np.asarray(parallel.to_host(fn(state, jax.random.fold_in(key, i)))) for i in range(-(-n // bs))]
        return np.concatenate(parts)[:n]

    def sample_quality(self, state, eval_cfg) -> dict:
        """Set-level metrics of samples: the image metrics on learned features, or mode coverage for
        point sets with known modes (`eval.num_samples`), and the Parzen estimate (`eval.parzen_samples`)."""
        ev = eval_cfg.get("eval", {})
        if not hasattr(self.family, "sample"):
            return {}
        out: dict = {}
        n = int(ev.get("num_samples", 0))
        if self.data.kind == "points":
            n_modes = int(ev.get("mode_samples", 2500))
            if n_modes > 0:
                out.update(self._mode_metrics(state, ev, n_modes))
        elif n > 0:
            out.update(self._image_metrics(state, ev, n))
        n_parzen = int(ev.get("parzen_samples", 0))
        if n_parzen > 0:
            out.update(self._parzen(state, ev, n_parzen))
        return out

    def _mode_metrics(self, state, ev, n: int) -> dict:
        src = self.data.source
        if src.modes is None:
            return {}
        from gm_jax.metrics import modes

        points = self.draw(state, n, int(ev.get("sample_batch", 0)) or 2500, self.quality_key)
        got = modes.mode_metrics(points, src.modes, src.mode_std, min_count=int(ev.get("mode_min_count", 1)) or 1)
        return {**got, "modes_num_samples": float(n)}

    def _parzen(self, state, ev, n: int) -> dict:
        """Goodfellow's protocol: sigma chosen on the first half of the test split (the validation
        split), the mean log-likelihood reported on the second half."""
        from gm_jax.metrics import parzen

        test = self.data.source.test
        x = _images(test.get(np.arange(test.size)))
        half = len(x) // 2
        samples = self.draw(state, n, int(ev.get("sample_batch", 0)) or 1000, jax.random.fold_in(self.quality_key, 1))
        grid = ev.get("parzen_sigmas", None) or (
            parzen.POINT_SIGMAS if self.data.kind == "points" else parzen.IMAGE_SIGMAS
        )
        return parzen.parzen(samples, x[:half], x[half:], tuple(float(g) for g in grid))

    def _image_metrics(self, state, ev, n: int) -> dict:
        from gm_jax.metrics import sample_quality

        name = self._features(ev)
        if name is None:
            return {}
        if name not in self._extractors:
            self._extractors[name] = sample_quality.get_extractor(name, ev.get("feature_cache", "") or None)
            ex = self._extractors[name]
            train = self.data.source.train
            real = np.concatenate(
                [_images(train.get(np.arange(i, min(i + 1024, train.size)))) for i in range(0, train.size, 1024)]
            )
            feats = ex.fn(real)[0]
            self._references[name] = (feats, sample_quality.gaussian_stats(feats))
        ex = self._extractors[name]
        images = self.draw(state, n, int(ev.get("sample_batch", 0)) or 256, self.quality_key)
        out = sample_quality.compare(ex, images, self._references[name], kid_subset=int(ev.get("kid_subset", 100)))
        return {**out, **ex.info, f"{name}_num_samples": float(n)}

    def write_samples(self, state, step: int) -> None:
        if self._sample_fns is None:  # compiled once per run (self.cfg is final by now), reused at every sampling
            cfg, family, n = self.cfg, self.family, self.cfg.train.get("num_samples", 64) or 1
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
            paths.save_npy(paths.join(self.workdir, "samples", f"step_{step}.npy"), samples)
            if samples.ndim == 2:
                self.writer.scatter(f"samples/step_{step}", samples, background=self._density_points())
                self._write_density(state, step)
        if hasattr(self.family, "figures") and self.data.kind == "image":
            self._write_figures(state, step, key)
        if recon_fn is not None and self.data.kind == "image":
            bs = self.cfg.train.batch_size
            batch = next(self.data.eval_batches(bs, bs))
            batch.pop("mask")
            rec = recon_fn(state, parallel.shard_batch(batch, self.mesh), key)
            rec = np.asarray(parallel.to_host(rec))[:32]
            orig = batch["x"][:32]
            pairs = np.stack([orig, rec], 1).reshape((-1,) + orig.shape[1:])
            self.writer.image_grid(f"samples/recon_step_{step}", pairs)

    def _write_figures(self, state, step: int, key) -> None:
        """The family's `figures` of a test batch, each a grid drawn row by row."""
        bs = self._eval_batch_size({"eval": {"batch_size": self.cfg.train.batch_size}})
        batch = next(self.data.eval_batches(bs, bs))
        batch.pop("mask")
        if self._figures_fn is None:
            fam, cfg = self.family, self.cfg
            self._figures_fn = jax.jit(lambda s, b, k: fam.figures(s, b, k, cfg), out_shardings=self.repl)
        figs = parallel.to_host(self._figures_fn(state, parallel.shard_batch(batch, self.mesh), key))
        for name, grid in figs.items():
            grid = np.asarray(grid)
            self.writer.image_grid(
                f"samples/{name}_step_{step}", grid.reshape((-1,) + grid.shape[2:]), cols=grid.shape[1]
            )

    def _write_density(self, state, step: int) -> None:
        """For a family with `log_density` on 2-D points: its density on a grid beside the data."""
        if not hasattr(self.family, "log_density") or tuple(self.cfg.data.shape) != (2,):
            return
        from gm_jax.core.writer import density_grid

        ref = self._density_points()
        g = 128
        if self._density_fn is None:
            fam, cfg = self.family, self.cfg
            self._density_fn = jax.jit(lambda s, x: fam.log_density(s, x, cfg), out_shardings=self.repl)
        log_p = np.asarray(parallel.to_host(self._density_fn(state, jnp.asarray(density_grid(ref, g)))))
        self.writer.density(f"samples/density_step_{step}", log_p.reshape(g, g), ref)

    def _density_points(self) -> np.ndarray | None:
        """Up to 20 000 training points, drawn under point samples as the data's density."""
        if self.data.kind != "points":
            return None
        train = self.data.source.train
        return _images(train.get(np.arange(min(train.size, 20_000))))

    def write_eval(self, step: int, ev: dict) -> None:
        bad = self.writer.json("eval.json", {"step": step, **ev})
        if bad and jax.process_index() == 0:
            print(f"warning: eval.json: {', '.join(bad)} not finite, written as null", flush=True)

    # ------------------------------------------------------------------ training

    def train_loop(self, state) -> Any:
        family, cfg = self.family, self.cfg

        t = cfg.train
        k = int(t.get("steps_per_call", 1))
        decode = self.data.decode

        def traced_step(s, b, key):
            self.step_compilations += 1  # runs once per trace, i.e. once per compilation
            if k == 1:
                return family.train_step(s, decode(b), key, cfg)
            # k steps in one dispatch: the same step scanned over k stacked batches; metrics [k].
            return scan_steps(lambda s, b, key, c: family.train_step(s, decode(b), key, c))(s, b, key, cfg)

        batch_axis = 0 if k == 1 else 1
        step_fn = jax.jit(
            traced_step,
            in_shardings=(self.repl, parallel.batch_sharded(self.mesh, batch_axis), self.repl),
            out_shardings=(self.repl, self.repl),
            donate_argnums=(0,),
        )
        num_steps, start = t.num_steps, self.start
        if k > 1 and start % k:
            raise UserError(
                f"train.steps_per_call={k} must divide the step the run resumes from ({start}); resume with a "
                "steps_per_call that divides it"
            )
        progress = Progress(num_steps, start, enabled=jax.process_index() == 0)
        pending: tuple[int, Any] | None = None
        periodic_cfg = _eval_cfg(cfg, "eval_periodic")

        def kept() -> str:
            last = self.ckpt.committed_step()  # what is on disk, not what was handed to the async writer
            return f"last good checkpoint (step {last}) kept" if last is not None else "no checkpoint saved"

        def check(entry):
            s, m = entry
            losses = np.atleast_1d(np.asarray(parallel.to_host(m["loss"]), np.float64))
            bad = np.flatnonzero(~np.isfinite(losses))
            if len(bad):
                at = s - len(losses) + 1 + int(bad[0])
                self.ckpt.wait()
                raise UserError(f"non-finite loss ({losses[bad[0]]}) at step {at}; run stopped, {kept()}")

        def save(done, state):
            # Only a state whose own values are all finite is saved and called good.
            if not bool(_all_finite(state)):
                self.ckpt.wait()
                raise UserError(f"non-finite values in the model state at step {done}; run stopped, {kept()}")
            self.ckpt.save(done, state)

        try:
            process = (jax.process_index(), jax.process_count())
            batches = self.data.train_iter(start, num_steps, k, process) if start < num_steps else iter(())
            for step in range(start, num_steps, k):
                batch = parallel.shard_local(next(batches), self.mesh, batch_axis)
                state, metrics = step_fn(state, batch, self.loop_key)
                if pending is not None:
                    check(pending)  # one call behind, so the host does not wait on every step
                done = step + k
                pending = (done, metrics)
                if k > 1:  # the last of the k steps' metrics is logged (the intervals are multiples of k)
                    metrics = jax.tree.map(lambda v: v[-1], metrics)
                if done == start + k:
                    progress.restart_clock(done)
                if t.log_every and (done % t.log_every == 0 or done == num_steps):
                    check(pending)
                    speed = progress.line(done, metrics)
                    self.writer.scalars(done, {**metrics, **speed})
                if t.eval_every and done % t.eval_every == 0 and done != num_steps:
                    ev = self.evaluate(state, periodic_cfg)
                    self.writer.scalars(done, {"eval/" + k: v for k, v in ev.items()})
                if t.sample_every and done % t.sample_every == 0:
                    self.write_samples(state, done)
                if (t.ckpt_every and done % t.ckpt_every == 0) or done == num_steps:
                    check(pending)
                    save(done, state)
            if pending is not None:
                check(pending)
            self.ckpt.wait()
        except UserError:
            raise
        except Exception as e:
            if _is_disk_full(e):
                try:
                    self.ckpt.wait()
                except Exception:  # noqa: BLE001, S110 - the pending save failed too; kept() says what is on disk
                    pass
                raise UserError(f"no space left on the device writing {self.workdir}; run stopped, {kept()}") from None
            raise
        finally:
            try:
                self.writer.flush()
            except Exception:
                if sys.exc_info()[0] is None:  # a failing flush must not hide the error that stopped the run
                    raise
        return state

    def finish(self, state) -> RunResult:
        end = max(self.start, self.cfg.train.num_steps)
        ev = self.evaluate(state, _eval_cfg(self.cfg, "eval"))
        self.writer.scalars(end, {"eval/" + k: v for k, v in ev.items()})
        self.write_eval(end, ev)
        t = self.cfg.train
        if not t.sample_every or end % t.sample_every:
            self.write_samples(state, end)
        self.writer.close()
        self.ckpt.close()
        return RunResult(state, ev, end, self.step_compilations, self.workdir, self.cfg)


def _images(got: Any) -> np.ndarray:
    return got["x"] if isinstance(got, dict) else got


def load_parent(init_from: str, mesh) -> Parent:
    """A finished run restored into its own abstract state (its family and config.json), replicated on
    `mesh` whatever device count it was saved from. Reads only.

    Raises:
      UserError: no gm_jax run there, no checkpoint, or an unreadable one.
    """
    path = paths.resolve(init_from)
    rec_path = paths.join(path, "config.json")
    if not paths.exists(rec_path):
        raise UserError(f"train.init_from={init_from}: no gm_jax run there (no config.json)")
    try:
        pcfg = ml_collections.ConfigDict(json.loads(paths.read_text(rec_path))["config"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"train.init_from={init_from}: unreadable config.json") from None
    if not paths.isdir(paths.join(path, "checkpoints")):
        raise UserError(f"train.init_from={init_from}: no checkpoint there; train the first stage first")
    family = resolve_family(pcfg.model_name)
    from gm_jax import data as data_lib

    _, data_key, _ = jax.random.split(jax.random.key(pcfg.seed), 3)
    pdata = data_lib.load(pcfg.data, pcfg.train.batch_size, _host_seed(data_key))
    pcfg.data.update(pdata.facts())
    example = pdata.train_batch(0)
    grand = load_parent(pcfg.train.init_from, mesh) if pcfg.train.get("init_from", "") else None

    def init_fn(key):
        if grand is None:
            return family.init(key, pcfg, example)
        return family.init(key, pcfg, example, parent=grand)

    abstract = jax.eval_shape(init_fn, jax.random.key(0))
    ck = Checkpointer(paths.join(path, "checkpoints"), create=False)
    if ck.latest_step() is None:
        raise UserError(f"train.init_from={init_from}: no checkpoint there; train the first stage first")
    state = ck.restore(abstract_like(abstract, parallel.replicated(mesh)))
    ck.close()
    return Parent(state, pcfg, family, path)


def train(family: Any, cfg: ml_collections.ConfigDict, workdir: str, mode: str = "train") -> RunResult:
    """Train (or evaluate / sample from) a model, writing everything into `workdir`.

    Args:
      family: registry name ("vae"), or a family module/object (see module docstring).
      cfg: the run config (sections model, optim, data, train, eval, sample, seed; `model_name`).
      workdir: output directory; resumed from its latest checkpoint when it holds this run.
      mode: "train", "eval" (latest checkpoint -> eval.json), "sample" (latest -> samples/) or
        "describe" (parameter counts from an abstract init -> model_summary.json; `RunResult.eval`
        holds the summary, `state` is None).
    Returns:
      RunResult.
    Raises:
      UserError: bad config, data, or workdir; unreadable checkpoint; non-finite loss or state.
    """
    if mode not in ("train", "eval", "sample", "describe"):
        raise UserError(f"--mode must be train, eval, sample or describe, got {mode!r}")
    if mode == "describe":
        from gm_jax.core.describe import describe

        return RunResult(None, describe(resolve_family(family), cfg, workdir), 0, 0, paths.resolve(workdir), cfg)
    mesh = parallel.make_mesh()
    with jax.set_mesh(mesh):
        run = _Run(resolve_family(family), cfg, workdir, mesh, mode)
        run.prepare()
        try:
            state = run.open()
            if mode == "eval":
                ev = run.evaluate(state, run.cfg)
                run.write_eval(run.start, ev)
                run.ckpt.close()
                return RunResult(state, ev, run.start, 0, run.workdir, run.cfg)
            if mode == "sample":
                run.write_samples(state, run.start)
                run.ckpt.close()
                return RunResult(state, {}, run.start, 0, run.workdir, run.cfg)
            state = run.train_loop(state)
            return run.finish(state)
        finally:
            run.unlock()


def _eval_cfg(cfg: ml_collections.ConfigDict, section: str) -> ml_collections.ConfigDict:
    """The config evaluate sees: `cfg` with its `eval` section replaced by `section` when present."""
    if section == "eval" or section not in cfg:
        return cfg
    out = ml_collections.ConfigDict(cfg.to_dict())
    merged = dict(cfg.get("eval", {}).to_dict() if "eval" in cfg else {})
    merged.update(cfg[section].to_dict())
    out.eval = ml_collections.ConfigDict(merged)
    return out
