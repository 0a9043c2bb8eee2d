"""Run outputs: metrics.jsonl, TensorBoard events, config.json, PNG grids, eval.json, progress lines.

TensorBoard events are written with tensorboardX: CLU's metric writers import TensorFlow, which this
project does not need anywhere else. Only process 0 writes; other processes get a no-op writer.
"""

from __future__ import annotations

import collections
import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from gm_jax.core import paths


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

            # TensorBoard events need a local directory; a remote workdir keeps metrics.jsonl only.
            remote = paths.is_remote(self.workdir)
            self._tb = False if remote else SummaryWriter(os.path.join(self.workdir, "tensorboard"))
        return self._tb

    def scalars(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Append one JSON line {"step": step, **metrics} and the same scalars to TensorBoard."""
        if not self.enabled:
            return
        row = {"step": int(step), **{k: _scalar(v) for k, v in metrics.items()}}
        paths.append_text(paths.join(self.workdir, "metrics.jsonl"), json.dumps(row) + "\n")
        tb = self._tensorboard()
        for k, v in row.items():
            if k != "step" and tb:
                tb.add_scalar(k, v, int(step))

    def truncate_after(self, step: int) -> None:
        """Drop metrics.jsonl rows logged after `step` (a resumed run logs them again), atomically."""
        path = paths.join(self.workdir, "metrics.jsonl")
        if not self.enabled or not paths.exists(path):
            return
        lines = paths.read_text(path).splitlines(keepends=True)
        keep = []
        for line in lines:
            try:
                if int(json.loads(line)["step"]) <= step:
                    keep.append(line if line.endswith("\n") else line + "\n")
            except (ValueError, KeyError, TypeError):
                continue  # a row cut short by a crash
        if len(keep) != len(lines):
            paths.write_text(path, "".join(keep))

    def scatter(
        self, name: str, points: np.ndarray, size: int = 384, background: np.ndarray | None = None
    ) -> str | None:
        """Save the first two coordinates of points [N, D] as a PNG scatter plot at <workdir>/<name>.png.

        `background` (reference points [M, D], e.g. the training data) is drawn first as a grey 2-D
        histogram of its density, on the same axes, so the samples read against the data.
        """
        if not self.enabled:
            return None
        from PIL import Image, ImageDraw

        def two_d(a):
            a = np.asarray(a, np.float64).reshape(len(a), -1)
            a = a[np.all(np.isfinite(a), 1)]
            return np.concatenate([a, np.zeros_like(a)], 1) if a.shape[1] == 1 else a[:, :2]

        p = two_d(points)
        ref = two_d(background) if background is not None else np.zeros((0, 2))
        both = np.concatenate([p, ref]) if len(ref) else p
        img = Image.new("RGB", (size, size), "white")
        if len(both):
            # Axes: the reference's range (samples far outside are clipped to the border), padded 10%.
            lo, hi = _extent(ref if len(ref) else p)
            span = hi - lo

            def to_px(a):
                uv = 8 + (a - lo) / span * (size - 16)
                return np.clip(uv, 2, size - 3)

            if len(ref):
                uv = to_px(ref).astype(int)
                hist = np.zeros((size, size))
                np.add.at(hist, (size - 1 - uv[:, 1], uv[:, 0]), 1.0)
                k = np.ones(5) / 5.0  # a little blur so sharp modes show as spots, not pixels
                hist = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 0, hist)
                hist = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, hist)
                shade = np.log1p(hist) / max(np.log1p(hist).max(), 1e-12)
                grey = (255 - 150 * shade).astype(np.uint8)
                img = Image.fromarray(np.stack([grey] * 3, -1), "RGB")
            draw = ImageDraw.Draw(img)
            for u, v in to_px(p):
                draw.ellipse([u - 1.5, size - v - 1.5, u + 1.5, size - v + 1.5], fill=(214, 39, 40))
        path = paths.join(self.workdir, name + ".png")
        paths.save_image(path, img)
        return path

    def density(self, name: str, log_p: np.ndarray, reference: np.ndarray, size: int = 384) -> str | None:
        """Save a learned 2-D density beside the data as one PNG at <workdir>/<name>.png.

        `log_p` [G, G] is the log-density on the grid `density_grid(reference, G)` returns (row 0 at
        the top, i.e. the largest y); `reference` [M, 2] (the training points) is drawn on the right
        as a 2-D histogram on the same axes. Each panel is scaled to its own maximum (brighter = more
        mass).
        """
        if not self.enabled:
            return None
        from PIL import Image

        log_p = np.asarray(log_p, np.float64)
        g = log_p.shape[0]
        p = np.exp(
            np.where(np.isfinite(log_p), log_p - np.nanmax(np.where(np.isfinite(log_p), log_p, -np.inf)), -np.inf)
        )
        lo, hi = _extent(reference)
        ref = np.asarray(reference, np.float64)[:, :2]
        ij = np.clip(((ref - lo) / (hi - lo) * g).astype(int), 0, g - 1)
        hist = np.zeros((g, g))
        np.add.at(hist, (g - 1 - ij[:, 1], ij[:, 0]), 1.0)

        def panel(v):
            v = v / max(float(v.max()), 1e-300)
            rgb = np.stack([v**0.5, v**0.8, 0.25 + 0.75 * v], -1)  # dark blue -> white
            img = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
            return img.resize((size, size), Image.NEAREST)

        out = Image.new("RGB", (2 * size + 8, size), "white")
        out.paste(panel(p), (0, 0))
        out.paste(panel(hist), (size + 8, 0))
        path = paths.join(self.workdir, name + ".png")
        paths.save_image(path, out)
        return path

    def bars(self, name: str, values: np.ndarray, height: int = 160) -> str | None:
        """Save a bar chart of values [K] (non-negative, e.g. a histogram) at <workdir>/<name>.png:
        one bar per entry, at least 2 pixels wide, heights relative to the largest."""
        if not self.enabled:
            return None
        from PIL import Image

        v = np.nan_to_num(np.asarray(values, np.float64).reshape(-1), nan=0.0).clip(min=0.0)
        k = len(v)
        bar = max(2, 512 // max(k, 1))
        img = np.full((height + 8, k * bar + 8, 3), 255, np.uint8)
        top = v / v.max() if v.max() > 0 else v
        for i, t in enumerate(top):
            h = int(round(t * height))
            if h:
                img[4 + height - h : 4 + height, 4 + i * bar : 4 + (i + 1) * bar - (1 if bar > 2 else 0)] = (
                    40,
                    90,
                    160,
                )
        img[4 + height, 4 : 4 + k * bar] = 0  # baseline
        path = paths.join(self.workdir, name + ".png")
        paths.save_image(path, Image.fromarray(img))
        return path

    def image_grid(self, name: str, images: np.ndarray, cols: int | None = None) -> str | None:
        """Save images [N, H, W, C] in [0, 1] as one PNG grid at <workdir>/<name>.png; return its path.

        Images smaller than 32 pixels a side are enlarged (nearest neighbour) so the grid can be read.
        `cols`: images per row (default: a square grid).
        """
        if not self.enabled:
            return None
        from PIL import Image

        grid = make_grid(enlarge(np.asarray(images)), cols=cols)
        path = paths.join(self.workdir, name + ".png")
        paths.save_image(path, Image.fromarray(grid))
        return path

    def json(self, name: str, obj: Any) -> list[str]:
        """Write <workdir>/<name> as strict, indented JSON (atomic rename).

        Non-finite numbers are written as null; returns the keys that were (so the caller can say so).
        """
        clean, bad = _finite_json(obj)
        if not self.enabled:
            return bad
        text = json.dumps(clean, indent=2, sort_keys=True, allow_nan=False)
        paths.write_text(paths.join(self.workdir, name), text)
        return bad

    def flush(self) -> None:
        """Flush TensorBoard events."""
        if self._tb:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._tb:
            self._tb.close()
        self._tb = None


def _finite_json(obj: Any, prefix: str = "") -> tuple[Any, list[str]]:
    if isinstance(obj, dict):
        out, bad = {}, []
        for k, v in obj.items():
            out[k], b = _finite_json(v, f"{prefix}{k}.")
            bad += b
        return out, bad
    if isinstance(obj, (list, tuple)):
        items = [_finite_json(v, f"{prefix}{i}.") for i, v in enumerate(obj)]
        return [v for v, _ in items], [b for _, bs in items for b in bs]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        return None, [prefix.rstrip(".")]
    if isinstance(obj, np.generic):
        return obj.item(), []
    return obj, []


def _extent(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axes of a 2-D plot of `reference` [M, >=2]: its range padded by 10% on every side."""
    ref = np.asarray(reference, np.float64)[:, :2]
    lo, hi = ref.min(0), ref.max(0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    return lo - pad, hi + pad


def density_grid(reference: np.ndarray, g: int = 128) -> np.ndarray:
    """[g * g, 2] cell centres of a g x g grid over `reference`'s padded range, row-major with the
    first row at the largest y (image order), for `Writer.density`."""
    lo, hi = _extent(reference)
    xs = lo[0] + (np.arange(g) + 0.5) / g * (hi[0] - lo[0])
    ys = lo[1] + (np.arange(g)[::-1] + 0.5) / g * (hi[1] - lo[1])
    xx, yy = np.meshgrid(xs, ys)
    return np.stack([xx.ravel(), yy.ravel()], -1).astype(np.float32)


def enlarge(images: np.ndarray, min_side: int = 32) -> np.ndarray:
    """[N, H, W, C] images repeated (nearest neighbour) so that the smaller side is >= min_side."""
    if images.ndim == 3:
        images = images[..., None]
    f = max(1, -(-min_side // max(1, min(images.shape[1:3]))))
    return images.repeat(f, 1).repeat(f, 2) if f > 1 else images


def make_grid(images: np.ndarray, pad: int = 1, cols: int | None = None) -> np.ndarray:
    """Tile [N, H, W, C] images in [0, 1] into one uint8 [rows*H, cols*W, C or none] array
    (`cols` per row; default a square grid)."""
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    cols = int(cols) if cols else int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = images[i]
    grid = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    return grid[..., 0] if c == 1 else grid


class Progress:
    """Prints `step k/N loss=... steps/s ETA` lines to stdout.

    steps/s is the rate over the last `window` seconds (at least the last two lines), so it follows
    changes of speed; the ETA shows days past 24 hours.
    """

    def __init__(self, total: int, start: int, enabled: bool = True, window: float = 60.0):
        self.total, self.enabled, self.window = total, enabled, window
        self._marks: collections.deque = collections.deque([(time.perf_counter(), start)])

    def restart_clock(self, step: int) -> None:
        """Measure speed from here (call after the first, compiling step)."""
        self._marks = collections.deque([(time.perf_counter(), step)])

    def rate(self, step: int, now: float | None = None) -> float:
        """Steps per second over the recent window, recording (now, step)."""
        now = time.perf_counter() if now is None else now
        self._marks.append((now, step))
        while len(self._marks) > 2 and now - self._marks[1][0] >= self.window:
            self._marks.popleft()
        (t0, s0), (t1, s1) = self._marks[0], self._marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else float("nan")

    def line(self, step: int, metrics: Mapping[str, Any], now: float | None = None) -> dict:
        """Print one progress line; returns {"steps_per_sec": ...} for logging."""
        rate = self.rate(step, now)
        eta = (self.total - step) / rate if rate == rate and rate > 0 else float("nan")
        shown = " ".join(f"{k}={_scalar(v):.4g}" for k, v in metrics.items())
        if self.enabled:
            print(f"step {step}/{self.total} {shown} {rate:.1f} steps/s ETA {format_eta(eta)}", flush=True)
        return {"steps_per_sec": rate} if rate == rate else {}


def format_eta(seconds: float) -> str:
    """H:MM:SS, with days in front past 24 hours ("3d 04:05:06"); "?" when unknown."""
    if not seconds == seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    hms = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {hms}" if days else hms
