"""The command line's plumbing: the --config flag (whose default follows --model and the data), one-line
errors, and quiet background failures. `experiments/run.py` is the main that uses it.

    python -m experiments.run --model=vae [--config=experiments/configs/vae.py[:smoke]]
        [--config.optim.lr=3e-4 ...] [--workdir=runs/vae] [--mode=train|eval|sample|describe] [--multihost]

Bad input exits with code 2 and one line on stderr (`fail`); a --config.<key> the config does not have
is named with the keys its section has.
"""

from __future__ import annotations

import os
import sys

from absl import flags
from ml_collections import config_flags

from gm_jax import registry

FLAGS = flags.FLAGS


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def fail_now(msg: str) -> None:
    """`_fail` for errors during a run: exits at once, so background checkpoint threads that are
    still failing (a full disk, a damaged checkpoint) add no tracebacks after the one line."""
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)


def _argv_value(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _config_arg(argv: list[str]) -> str | None:
    """The --config value to load: the given one, or the --model's config file; with the config's
    `points` variant when --config.data.name names a 2-D set and no variant is named."""
    model = _argv_value(argv, "model")
    given = _argv_value(argv, "config")
    if given is not None and not os.path.isfile(given.split(":", 1)[0]):
        fail(f"config file {given.split(':', 1)[0]!r} not found")
    if given is None and model is not None:
        if model not in registry.REGISTRY:
            fail(f"unknown model {model!r}; registered: {', '.join(registry.model_names())}")
        given = registry.config_path(model)
    if given is not None and ":" not in given and registry.is_point_set(_argv_value(argv, "config.data.name")):
        module = _load_module(given)
        if module is not None and hasattr(module, "points"):
            given += ":points"
    return given


def _load_module(path: str):
    """The config module at `path` (None when it cannot be loaded)."""
    import importlib.util

    try:
        spec = importlib.util.spec_from_file_location("_gm_jax_config", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    except Exception:  # noqa: BLE001 - the caller falls back to the parser's own message
        return None


def define_config_flag(argv: list[str]) -> None:
    """The default of --config follows --model (and a 2-D data set, see `_config_arg`), so
    `--model=X --config.a=b` overrides X's config."""
    value, given = _config_arg(argv), _argv_value(argv, "config")
    if given is not None and value != given:  # the points variant of a given config file
        out, skip = [], False
        for a in argv:
            if skip:
                skip = False
                continue
            if a == "--config":
                skip = True
                continue
            out.append(f"--config={value}" if a.startswith("--config=") else a)
        if skip or "--config" in argv:
            out.insert(1, f"--config={value}")
        argv[:] = out
    default = value if given is None else None
    try:  # a default config is loaded (and --config.* overrides applied) right here
        config_flags.DEFINE_config_file("config", default, "config file[:arg]", lock_config=True)
    except Exception as e:  # noqa: BLE001
        fail(_unknown_override(argv) or f"malformed --config.* override: {first_line(e)}")


def first_line(e: BaseException) -> str:
    """Outer message's first line, plus the root cause's when it adds something."""

    def line(x: BaseException) -> str:
        raw = str(x).strip()
        if len(raw) > 1 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = raw[1:-1]
        text = [t.strip() for t in raw.splitlines() if t.strip()]
        return text[0] if text else type(x).__name__

    root = e
    while (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__
    outer, inner = line(e), line(root)
    return outer if inner in outer else f"{outer.rstrip(':')}: {inner}"


def quiet_background_failures() -> None:
    """Drop the tracebacks of Orbax's writer threads that die after the run failed (their event loop
    already closed); every other thread failure still prints."""
    import threading

    default = threading.excepthook

    def hook(args):
        if isinstance(args.exc_value, RuntimeError) and "Event loop is closed" in str(args.exc_value):
            return
        default(args)

    threading.excepthook = hook
    sys.unraisablehook = lambda u: None if "Event loop is closed" in str(u.exc_value) else sys.__unraisablehook__(u)


def _load_base_config(argv: list[str]):
    """The config the --config.* overrides apply to (None when it cannot be loaded)."""
    given = _config_arg(argv)
    if given is None:
        return None
    path, _, arg = given.partition(":")
    mod = _load_module(path)
    try:
        return mod.get_config(arg or None) if mod is not None else None
    except Exception:  # noqa: BLE001 - the caller falls back to the parser's own message
        return None


def _unknown_override(argv: list[str]) -> str | None:
    """One line naming the first --config.<key> that the config does not have, with its section's keys."""
    cfg = _load_base_config(argv)
    if cfg is None:
        return None
    for a in argv:
        if not a.startswith("--config."):
            continue
        path = a[len("--config.") :].split("=", 1)[0].split(".")
        node, seen = cfg, []
        for part in path:
            keys = sorted(node.keys()) if hasattr(node, "keys") else []
            if part not in keys:
                where = ".".join(seen) or "the config"
                return f"unknown config key {'.'.join(path)!r}: {where} has {', '.join(keys) or 'no keys'}"
            node, seen = node[part], seen + [part]
    return None


def parse(argv: list[str]) -> list[str]:
    try:
        return FLAGS(argv)
    except Exception as e:  # noqa: BLE001 - flags and config-file errors all end here
        fail(_unknown_override(argv) or first_line(e))
    return argv
