"""Run outputs: metrics.jsonl, TensorBoard events, config.json, PNG grids, eval.json, progress lines.

TensorBoard events are written with tensorboardX: CLU's metric writers import TensorFlow, which this
project does not need anywhere else. Only process 0 writes; other processes get a no-op writer.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np


def _scalar(v: Any) -> float:
    return float(np.asarray(v))


class Writer:
    """Writes the workdir's logs. Construct with `enabled=False` on processes other than 0."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.workdir = workdir
        self.enabled = enabled
        self._tb = None  # the workdir is created on first write, so refused runs leave nothing behind

    def _tensorboard(self):
        if self._tb is None:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(self.workdir, "tensorboard"))
        return self._tb

    def scalars(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Append one JSON line {"step": step, **metrics} and the same scalars to TensorBoard."""
        if not self.enabled:
            return
        row = {"step": int(step), **{k: _scalar(v) for k, v in metrics.items()}}
        os.makedirs(self.workdir, exist_ok=True)
        with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        tb = self._tensorboard()
        for k, v in row.items():
            if k != "step":
                tb.add_scalar(k, v, int(step))

    def image_grid(self, name: str, images: np.ndarray) -> str | None:
        """Save images [N, H, W, C] in [0, 1] as one PNG grid at <workdir>/<name>.png; return its path."""
        if not self.enabled:
            return None
        from PIL import Image

        grid = make_grid(np.asarray(images))
        path = os.path.join(self.workdir, name + ".png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(grid).save(path)
        return path

    def json(self, name: str, obj: Any) -> None:
        """Write <workdir>/<name> as indented JSON (atomic rename)."""
        if not self.enabled:
            return
        path = os.path.join(self.workdir, name)
        os.makedirs(self.workdir, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
        os.replace(tmp, path)

    def flush(self) -> None:
        """Flush TensorBoard events."""
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def make_grid(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """Tile [N, H, W, C] images in [0, 1] into one uint8 [rows*H, cols*W, C or none] array."""
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = images[i]
    grid = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    return grid[..., 0] if c == 1 else grid


class Progress:
    """Prints `step k/N loss=... steps/s ETA` lines to stdout."""

    def __init__(self, total: int, start: int, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self._t0, self._s0 = time.perf_counter(), start

    def restart_clock(self, step: int) -> None:
        """Measure speed from here (call after the first, compiling step)."""
        self._t0, self._s0 = time.perf_counter(), step

    def line(self, step: int, metrics: Mapping[str, Any]) -> dict:
        """Print one progress line; returns {"steps_per_sec": ...} for logging."""
        dt = time.perf_counter() - self._t0
        rate = (step - self._s0) / dt if dt > 0 and step > self._s0 else float("nan")
        eta = (self.total - step) / rate if rate == rate and rate > 0 else float("nan")
        eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta == eta else "?"
        shown = " ".join(f"{k}={_scalar(v):.4g}" for k, v in metrics.items())
        if self.enabled:
            print(f"step {step}/{self.total} {shown} {rate:.1f} steps/s ETA {eta_s}", file=sys.stdout, flush=True)
        return {"steps_per_sec": rate} if rate == rate else {}
