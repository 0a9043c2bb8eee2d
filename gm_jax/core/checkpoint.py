"""Orbax CheckpointManager wrapper: save, and restore the latest step into an abstract state.

Restores go into `jax.eval_shape(init)` with the target shardings, so a run resumed on a different
device count gets correctly placed arrays. A checkpoint that cannot be read is reported as a
`UserError` and left on disk untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import orbax.checkpoint as ocp

from gm_jax.core import paths
from gm_jax.core.errors import UserError

# Orbax logs every save at INFO through absl; keep the run's own progress readable.
logging.getLogger("absl").setLevel(logging.WARNING)


class Checkpointer:
    """Step-indexed checkpoints of a train-state pytree under `<workdir>/checkpoints`."""

    def __init__(self, directory: str, max_to_keep: int = 3, create: bool = True):
        """Args: directory: checkpoint root; max_to_keep: retained steps (>= 1); create: make the
        directory (False to only read: nothing is written then)."""
        self.directory = paths.resolve(directory)  # a local folder or a URI (Orbax writes either)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create, read_only=not create)
        self._mngr = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The newest saved step, or None when there is none."""
        return self._mngr.latest_step()

    def committed_step(self) -> int | None:
        """The newest step fully on disk (read from the directory, so a save that failed is not counted)."""
        steps = [int(d) for d in paths.listdir(self.directory) if d.isdigit()]
        return max(steps) if steps else None

    def save(self, step: int, state: Any) -> None:
        """Save `state` as `step` (asynchronous; call `wait` before reading it back)."""
        self._mngr.save(step, args=ocp.args.StandardSave(state))

    def wait(self) -> None:
        """Block until pending saves are on disk."""
        self._mngr.wait_until_finished()

    def restore(self, abstract_state: Any, step: int | None = None) -> Any:
        """Restore `step` (default latest) into the structure/shardings of `abstract_state`.

        Raises:
          UserError: missing or unreadable checkpoint (the files are not touched).
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise UserError(f"no checkpoint in {self.directory}")
        try:
            return self._mngr.restore(step, args=ocp.args.StandardRestore(abstract_state))
        except Exception as e:  # noqa: BLE001 - any orbax/tensorstore failure means unreadable
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            self._close_quietly()
            raise UserError(
                f"checkpoint {self.directory}/{step} is unreadable or does not match this config ({msg}); "
                "it was left as is"
            ) from None

    def restore_raw(self, step: int | None = None) -> Any:
        """Restore `step` (default latest) as a nested dict of host arrays, without a target.

        Used to start a second training stage from a first stage's checkpoint.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise UserError(f"no checkpoint in {self.directory}")
        try:
            return self._mngr.restore(step, args=ocp.args.StandardRestore())
        except Exception as e:  # noqa: BLE001
            raise UserError(f"checkpoint {self.directory}/{step} is unreadable ({type(e).__name__})") from None

    def close(self) -> None:
        """Finish pending saves and release the manager."""
        self._mngr.wait_until_finished()
        self._mngr.close()

    def _close_quietly(self) -> None:
        # A failed read leaves Orbax's async machinery mid-flight; closing it here keeps it from
        # printing tracebacks at interpreter exit.
        try:
            self._mngr.close()
        except Exception:  # noqa: BLE001, S110 - already failing; the UserError says why
            pass


def abstract_like(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """ShapeDtypeStructs of `tree` (e.g. from `jax.eval_shape`) carrying `sharding`."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
