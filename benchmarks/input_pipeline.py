"""Input path throughput against what the DCGAN and U-Net steps consume, at batch 128, 32x32x3.

    python -m benchmarks.input_pipeline [--examples=20000] [--steps=100] [--platform=cpu|gpu]

Writes a CIFAR-shaped set locally (nothing can be downloaded): `--examples` random uint8 32x32x3
images with labels as ArrayRecord records (the file format TFDS's `data_source` reads, through the
same ArrayRecord reader; writing the TFDS wrapper itself needs TensorFlow), read through
`gm_jax.data.pipeline.DataPipeline` exactly as a TFDS set is: random access by index, the step's
permutation, this process's rows, uint8 encoding, Grain reader threads / worker processes and
prefetch. Prints examples/s of the input path with 0 reader threads (reading in the consuming
thread), 1 thread, all cores' threads, and worker processes; then the examples/s the DCGAN step
(one D and one G update) and the DDPM U-Net step (CIFAR-10 paper net) consume on the platform, and
the ratio input / consumption for each (>= 1: the input path keeps up).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

B, S = 128, 32


def write_set(path: str, n: int) -> None:
    from array_record.python import array_record_module

    rng = np.random.default_rng(0)
    w = array_record_module.ArrayRecordWriter(path, "group_size:1")
    for i in range(n):
        w.write(rng.integers(0, 256, S * S * 3, dtype=np.uint8).tobytes() + bytes([i % 10]))
    w.close()


def source(path: str):
    import grain

    from gm_jax.data.sources import ArraySplit, Source

    ds = grain.sources.ArrayRecordDataSource([path])

    def get(idx):
        recs = ds.__getitems__([int(i) for i in idx])
        raw = np.frombuffer(b"".join(recs), np.uint8).reshape(len(recs), S * S * 3 + 1)
        x = raw[:, :-1].reshape(-1, S, S, 3).astype(np.float32) / 255.0
        return {"x": x, "y": raw[:, -1].astype(np.int32)}

    split = ArraySplit(get=get, size=len(ds), shape=(S, S, 3))
    return Source(split, split, "image", "array_record:cifar_shaped", levels=256)


def input_rate(src, steps: int, threads: int, workers: int) -> float:
    from gm_jax.data.pipeline import DataPipeline

    p = DataPipeline(src, B, 0, num_threads=threads, prefetch=max(4, 2 * threads), num_workers=workers)
    it = p.train_iter(0, steps + 5)
    for _ in range(5):  # warm-up: threads / workers started, first reads done
        next(it)
    t = time.perf_counter()
    for _ in range(steps):
        b = next(it)
    dt = time.perf_counter() - t
    assert b["x"].dtype == np.uint8 and b["x"].shape == (B, S, S, 3)
    return steps * B / dt


def step_rate(model: str, steps: int) -> float:

    from benchmarks.bf16_step import time_step
    from gm_jax import load_config
    from gm_jax.registry import get_family

    if model == "dcgan":
        cfg = load_config("dcgan")
        cfg.model.update(channels=64)
    else:  # the DDPM CIFAR-10 U-Net
        from experiments.configs import ddpm_cifar10

        cfg = ddpm_cifar10.get_config()
    cfg.data.update(shape=(S, S, 3), kind="image", levels=256, train_size=50000, test_size=10000, features=())
    cfg.train.batch_size = B
    x = np.random.default_rng(0).random((B, S, S, 3), dtype=np.float32)
    ms, _ = time_step(get_family(model), cfg, {"x": x}, steps, warmup=3)
    return 1000 * B / ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--model_steps", type=int, default=20)
    ap.add_argument("--platform", default="")
    args = ap.parse_args()
    if args.platform:
        os.environ["JAX_PLATFORMS"] = args.platform
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import jax

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cifar_shaped.array_record")
        t = time.perf_counter()
        write_set(path, args.examples)
        print(f"wrote {args.examples} records of 32x32x3 uint8 + label in {time.perf_counter() - t:.1f} s", flush=True)
        src = source(path)
        rates = {}
        for threads, workers in ((0, 0), (1, 0), (cores, 0), (cores, max(1, cores // 2))):
            name = f"threads={threads} workers={workers}"
            rates[name] = input_rate(src, args.steps, threads, workers)
            print(f"input path {name}: {rates[name]:,.0f} examples/s", flush=True)
    best = max(rates.values())
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {cores} CPU cores", flush=True)
    for model in ("dcgan", "ddpm"):
        need = step_rate(model, args.model_steps)
        print(
            f"{model} step at batch {B}: consumes {need:,.0f} examples/s; input / consumption: "
            f"{rates['threads=0 workers=0'] / need:.2f} with 0 threads, {best / need:.2f} at best",
            flush=True,
        )


if __name__ == "__main__":
    main()
