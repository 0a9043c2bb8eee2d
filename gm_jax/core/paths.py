"""Workdir paths: local directories or object-store URIs (gs://, s3://, ...) through `etils.epath`.

A TPU pod job writes its workdir to a bucket; a workstation run to a local folder. Everything the run
writes goes through these helpers (Orbax takes either kind itself). On an object store an object is
replaced whole, so "append" and "atomic replace" become read-and-rewrite and one write; the lock
against two runs in one workdir is a local file lock, and is not taken for a remote workdir.
"""

from __future__ import annotations

import io
import os

from etils import epath


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URI with a scheme (gs://bucket/run), False for a local path."""
    return "://" in os.fspath(path)


def resolve(path: str | os.PathLike) -> str:
    """A local path made absolute; a URI kept as given (without a trailing slash)."""
    path = os.fspath(path)
    return path.rstrip("/") if is_remote(path) else os.path.abspath(path)


def join(*parts: str) -> str:
    """`os.path.join` that keeps a URI a URI."""
    return os.fspath(epath.Path(parts[0]).joinpath(*parts[1:])) if is_remote(parts[0]) else os.path.join(*parts)


def exists(path: str) -> bool:
    return epath.Path(path).exists()


def isdir(path: str) -> bool:
    return epath.Path(path).is_dir()


def listdir(path: str) -> list[str]:
    """Names in a directory ([] when it does not exist)."""
    p = epath.Path(path)
    return sorted(c.name for c in p.iterdir()) if p.is_dir() else []


def makedirs(path: str) -> None:
    epath.Path(path).mkdir(parents=True, exist_ok=True)


def read_text(path: str) -> str:
    return epath.Path(path).read_text()


def write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` whole: a local file through a temporary file and an atomic rename."""
    makedirs(os.fspath(epath.Path(path).parent))
    if is_remote(path):
        epath.Path(path).write_bytes(data)
        return
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode())


def append_text(path: str, text: str) -> None:
    """Append `text`; on an object store, by rewriting the object."""
    if not is_remote(path):
        makedirs(os.fspath(epath.Path(path).parent))
        with open(path, "a") as f:
            f.write(text)
        return
    old = read_text(path) if exists(path) else ""
    write_text(path, old + text)


def save_image(path: str, image) -> None:
    """Save a PIL image as PNG at `path`."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def save_npy(path: str, array) -> None:
    """Save a numpy array at `path` (.npy)."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    write_bytes(path, buf.getvalue())
