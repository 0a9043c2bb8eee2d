"""The run's workdir: whose run it holds, the lock against two processes, and config.json's history.

A workdir holds one run: `config.json` records its config (with the data facts). Re-running the same
command resumes it; the keys in `RESUMABLE_*` (length, intervals, evaluation, sampling, steps per
call, how data is read) may change between a run and its resumption, and config.json then keeps a
`history` of the changes. A workdir holding another model's run or another config is refused, never
overwritten. A training process holds an exclusive lock (`.lock`, released when it exits or dies);
a bucket workdir (gs://...) takes none.
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any

from gm_jax.core import paths
from gm_jax.core.errors import UserError

LOCK_FILE = ".lock"
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


def comparable(cfg_dict: dict) -> dict:
    """The part of a config that must match for a run to be resumed."""
    out = {k: v for k, v in cfg_dict.items() if k not in RESUMABLE_SECTIONS}
    for section, keys in {**RESUMABLE_KEYS, "data": RESUMABLE_DATA_KEYS}.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in keys}
    return out


def flat(d: Any, prefix: str = "") -> dict:
    """{"section.key": value} of a nested dict."""
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}."))
    return out


def diff_keys(a: Any, b: Any) -> list[str]:
    fa, fb = flat(a), flat(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))


class Workdir:
    """One run's workdir as the mode asks for it ("train", "eval", "sample")."""

    def __init__(self, path: str, mode: str, cfg_dict: dict):
        self.path, self.mode, self.cfg_dict = paths.resolve(path), mode, cfg_dict
        self.old_record: dict | None = None
        self._lock_fd: int | None = None

    def check(self) -> bool:
        """Refuse a workdir holding another run, a file, or one this process cannot write; True when
        it already holds this run (a resumption). Writes nothing."""
        workdir, mode = self.path, self.mode
        if paths.exists(workdir) and not paths.isdir(workdir):
            raise UserError(f"workdir {workdir} exists and is not a directory; choose another --workdir")
        record = paths.join(workdir, "config.json")
        if paths.exists(record):
            self.old_record = self._read(record)
            self._same_run(self.old_record["config"])
            return True
        if [f for f in paths.listdir(workdir) if f != LOCK_FILE]:
            raise UserError(f"workdir {workdir} is not empty and holds no gm_jax run; choose another --workdir")
        if mode != "train":
            raise UserError(f"workdir {workdir} holds no run to {mode}; train one first")
        if not paths.is_remote(workdir):  # a bucket's permissions show at the first write
            probe = workdir if os.path.isdir(workdir) else (os.path.dirname(workdir.rstrip("/")) or "/")
            while not os.path.exists(probe):
                probe = os.path.dirname(probe)
            if not os.access(probe, os.W_OK):
                raise UserError(f"workdir {workdir} cannot be created or written ({probe} is not writable)")
        return False

    def _read(self, record: str) -> dict:
        try:
            old = json.loads(paths.read_text(record))
            if not isinstance(old["config"], dict):
                raise TypeError
            return old
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"workdir {self.path} has an unreadable config.json; refusing to use it") from None

    def _same_run(self, old_cfg: dict) -> None:
        new = self.cfg_dict
        if old_cfg.get("model_name") != new.get("model_name"):
            raise UserError(
                f"workdir {self.path} holds a run of model {old_cfg.get('model_name')!r}, not "
                f"{new.get('model_name')!r}; choose another --workdir"
            )
        a, b = comparable(old_cfg), comparable(new)
        if a != b:
            raise UserError(
                f"workdir {self.path} holds a run with a different config ({', '.join(diff_keys(a, b)[:5])}); "
                "choose another --workdir"
            )

    def lock(self, primary: bool) -> None:
        """Hold the workdir's exclusive lock (process 0 of a local workdir only)."""
        if not primary or paths.is_remote(self.path):  # a file lock needs a local directory
            return
        os.makedirs(self.path, exist_ok=True)
        fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(
                f"workdir {self.path} is in use by another running process; wait for it or choose another --workdir"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def record(self, writer, start: int | None = None) -> None:
        """config.json: written at a run's start; on a resumption (at `start`) it follows the resumable
        keys that changed, with a history of the changes."""
        model = self.cfg_dict.get("model_name")
        if self.old_record is None:
            writer.json("config.json", {"model": model, "config": self.cfg_dict})
            return
        old = flat(self.old_record.get("config", {}))
        changed = {k: [old.get(k), v] for k, v in flat(self.cfg_dict).items() if old.get(k) != v}
        if not changed:
            return
        history = list(self.old_record.get("history", [])) + [{"resumed_at_step": start, "changed": changed}]
        writer.json("config.json", {"model": model, "config": self.cfg_dict, "history": history})
