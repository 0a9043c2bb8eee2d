"""Command-line entry point: parse flags, build the config, call `gm_jax.core.loop.train`.

    python -m experiments.run --model=vae [--config=experiments/configs/vae.py[:smoke]]
        [--config.optim.lr=3e-4 ...] [--workdir=runs/vae] [--mode=train|eval|sample] [--multihost]

Bad input exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from gm_jax import registry
from gm_jax.core.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, f"model to run; one of: {', '.join(registry.model_names())}")
flags.DEFINE_string("workdir", None, "output directory (default runs/<model>); re-running resumes")
flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "eval", "sample", "describe"],
    "train, eval/sample the latest checkpoint, or describe the networks (parameter counts, no data read)",
)
flags.DEFINE_bool("multihost", False, "call jax.distributed.initialize (also when the environment asks)")
flags.DEFINE_string("coordinator_address", None, "multi-host: host:port of process 0 (default: auto-detect)")
flags.DEFINE_integer("num_processes", None, "multi-host: number of processes (default: auto-detect)")
flags.DEFINE_integer("process_id", None, "multi-host: this process's index (default: auto-detect)")


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def _fail_now(msg: str) -> None:
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
        _fail(f"config file {given.split(':', 1)[0]!r} not found")
    if given is None and model is not None:
        if model not in registry.REGISTRY:
            _fail(f"unknown model {model!r}; registered: {', '.join(registry.model_names())}")
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


def _define_config_flag(argv: list[str]) -> None:
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
        _fail(_unknown_override(argv) or f"malformed --config.* override: {_first_line(e)}")


def _first_line(e: BaseException) -> str:
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


def _quiet_background_failures() -> None:
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


def _parse(argv: list[str]) -> list[str]:
    try:
        return FLAGS(argv)
    except Exception as e:  # noqa: BLE001 - flags and config-file errors all end here
        _fail(_unknown_override(argv) or _first_line(e))
    return argv


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:  # config_flags defers a config file's load errors to first use
        cfg = FLAGS.config
        cfg is not None and cfg.get("model_name")
    except Exception as e:  # noqa: BLE001
        _fail(f"bad --config: {_first_line(e)}")
    if cfg is None:
        _fail(f"pass --model (one of: {', '.join(registry.model_names())}) or --config=<file>")
    model = FLAGS.model or cfg.get("model_name")
    if model not in registry.REGISTRY:
        _fail(f"unknown model {model!r}; registered: {', '.join(registry.model_names())}")
    if cfg.get("model_name") != model:
        _fail(f"--model={model} but the config is for {cfg.get('model_name')!r}")
    workdir = FLAGS.workdir or os.path.join("runs", model)
    from gm_jax.core import parallel

    if FLAGS.multihost or parallel.multihost_requested_by_env():
        parallel.init_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    # Orbax reports failures of its background writes through absl logging as well as by raising;
    # the raised error becomes the one line below.
    import logging as py_logging

    from gm_jax.core.loop import train

    py_logging.getLogger("absl").setLevel(py_logging.CRITICAL)
    _quiet_background_failures()
    try:
        result = train(model, cfg, workdir, mode=FLAGS.mode)
    except UserError as e:
        _fail_now(str(e))
    import jax

    if FLAGS.mode == "describe":
        return
    if jax.process_index() == 0:
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(result.eval.items()))
        print(f"done: {model} step {result.step} in {result.workdir} {shown}".rstrip(), flush=True)


def run(argv: list[str] | None = None) -> None:
    """Parse `argv` (default sys.argv) and run."""
    argv = list(sys.argv if argv is None else argv)
    _define_config_flag(argv)
    app.run(main, argv=argv, flags_parser=_parse)


if __name__ == "__main__":
    run()
