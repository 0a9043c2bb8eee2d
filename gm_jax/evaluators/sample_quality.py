"""Sample quality of image models: `eval.num_samples` samples against the training images on learned
features (`gm_jax.metrics.sample_quality`): FID (float64 statistics), KID (unbiased, mean +- std over
subsets of `eval.kid_subset`), precision/recall (k-NN manifolds, k = 3), the classifier score and the
classes covered. `eval.features=auto` picks the digits features for 8x8x1 images or the digits
enlarged by `data.image_size`, and skips the metrics for data no extractor is made for; the
extractor is pluggable (`sample_quality.EXTRACTORS`)."""

from __future__ import annotations

from gm_jax.core.errors import UserError
from gm_jax.metrics import sample_quality


def features(ctx, ev: dict) -> str | None:
    """The extractor an eval section asks for; "auto" picks the one made for this data or none."""
    name = ev.get("features", "auto")
    if name != "auto":
        return name
    shape = tuple(ctx.cfg.data.shape)
    for cand, base in sample_quality.EXTRACTOR_SHAPES.items():
        if ctx.kind == "image" and sample_quality.accepts(cand, shape):
            if shape == tuple(base) or ctx.cfg.data.name == cand:
                return cand
    return None


def wanted(ctx, ev: dict) -> bool:
    return ctx.kind == "image" and int(ev.get("num_samples", 0)) > 0 and features(ctx, ev) is not None


def check(ctx, ev: dict, section: str) -> None:
    if not ev.get("num_samples", 0):
        return
    name = features(ctx, ev)
    if name is None:
        return
    if name not in sample_quality.EXTRACTORS:
        raise UserError(f"{section}.features must be auto or one of {sorted(sample_quality.EXTRACTORS)}, got {name!r}")
    shape = tuple(ctx.cfg.data.shape)
    if ctx.kind != "image" or not sample_quality.accepts(name, shape):
        raise UserError(
            f"{section}.features={name} needs images of shape {sample_quality.EXTRACTOR_SHAPES.get(name)}; the data "
            f"is {ctx.kind} of shape {shape} (use {section}.features=auto or {section}.num_samples=0)"
        )


def run(ctx, state, ecfg) -> dict:
    ev = ecfg.get("eval", {})
    if not wanted(ctx, ev):
        return {}
    name, n = features(ctx, ev), int(ev["num_samples"])
    if ("extractor", name) not in ctx.cache:  # the extractor and the training images' features, once a run
        ex = sample_quality.get_extractor(name, ev.get("feature_cache", "") or None)
        feats = ex.fn(ctx.train_images())[0]
        ctx.cache["extractor", name] = (ex, (feats, sample_quality.gaussian_stats(feats)))
    ex, reference = ctx.cache["extractor", name]
    images = ctx.draw(state, n, int(ev.get("sample_batch", 0)) or 256, ctx.keys.quality)
    out = sample_quality.compare(ex, images, reference, kid_subset=int(ev.get("kid_subset", 100)))
    return {**out, **ex.info, f"{name}_num_samples": float(n)}
