"""Command-line entry point: parse flags, build the config, call `gm_jax.train.train`.

    python -m experiments.run --model=vae [--config=experiments/configs/vae.py[:smoke]]
        [--config.optim.lr=3e-4 ...] [--workdir=runs/vae] [--mode=train|eval|sample|describe] [--multihost]

Bad input exits with code 2 and one line on stderr (`gm_jax.cli`).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from gm_jax import cli, registry
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


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:  # config_flags defers a config file's load errors to first use
        cfg = FLAGS.config
        cfg is not None and cfg.get("model_name")
    except Exception as e:  # noqa: BLE001
        cli.fail(f"bad --config: {cli.first_line(e)}")
    if cfg is None:
        cli.fail(f"pass --model (one of: {', '.join(registry.model_names())}) or --config=<file>")
    model = FLAGS.model or cfg.get("model_name")
    if model not in registry.REGISTRY:
        cli.fail(f"unknown model {model!r}; registered: {', '.join(registry.model_names())}")
    if cfg.get("model_name") != model:
        cli.fail(f"--model={model} but the config is for {cfg.get('model_name')!r}")
    workdir = FLAGS.workdir or os.path.join("runs", model)
    from gm_jax.core import parallel

    if FLAGS.multihost or parallel.multihost_requested_by_env():
        parallel.init_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    # Orbax reports failures of its background writes through absl logging as well as by raising;
    # the raised error becomes the one line below.
    import logging as py_logging

    from gm_jax.train import train

    py_logging.getLogger("absl").setLevel(py_logging.CRITICAL)
    cli.quiet_background_failures()
    try:
        result = train(model, cfg, workdir, mode=FLAGS.mode)
    except UserError as e:
        cli.fail_now(str(e))
    import jax

    if FLAGS.mode == "describe":
        return
    if jax.process_index() == 0:
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(result.eval.items()))
        print(f"done: {model} step {result.step} in {result.workdir} {shown}".rstrip(), flush=True)


def run(argv: list[str] | None = None) -> None:
    """Parse `argv` (default sys.argv) and run."""
    argv = list(sys.argv if argv is None else argv)
    cli.define_config_flag(argv)
    app.run(main, argv=argv, flags_parser=cli.parse)


if __name__ == "__main__":
    run()
