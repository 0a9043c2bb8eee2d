"""Evaluators: the set-level stages of an evaluation, one module each, chosen by the config's `eval` keys.

Each module has `check(ctx, eval_section, section_name)` (run before anything is written; raises a
one-line UserError) and `run(ctx, state, eval_cfg) -> {metric: value}` (returns {} when its keys
are off). An evaluation is `test_set` (the family's own per-example metrics over the test split),
then every evaluator in `EVALUATORS` in order; their results go to eval.json, and for periodic
evaluations to metrics.jsonl as eval/*. `pictures` runs at every sampling. A new metric is a new
module here and one line in `EVALUATORS`.

| module | on when | reports |
|---|---|---|
| `test_set` | always | the family's `evaluate`, averaged; its `summarize` of vector metrics |
| `sample_quality` | images and `eval.num_samples` > 0 | FID, KID, precision/recall, classifier score, classes |
| `modes` | a 2-D set with known modes and `eval.mode_samples` > 0 | modes covered, high-quality fraction, KL |
| `parzen` | `eval.parzen_samples` > 0 | Parzen-window log-likelihood of the test split's second half |
| `disentanglement` | `eval.disentanglement` and data from known factors | β-VAE metric, FactorVAE metric, MIG |
"""

from __future__ import annotations

from gm_jax.evaluators import disentanglement, modes, parzen, pictures, sample_quality, test_set
from gm_jax.evaluators.context import Context, RunKeys

EVALUATORS = (sample_quality, modes, parzen, disentanglement)


def check(ctx: Context, ecfg, section: str) -> None:
    """Every evaluator's checks of one eval section."""
    ev = ecfg.get("eval", {})
    for module in (test_set, *EVALUATORS):
        module.check(ctx, ev, section)


def evaluate(ctx: Context, state, ecfg) -> dict:
    """One evaluation: the test set's means, then every evaluator's metrics."""
    out = test_set.run(ctx, state, ecfg)
    for module in EVALUATORS:
        out.update(module.run(ctx, state, ecfg))
    return out


__all__ = ["EVALUATORS", "Context", "RunKeys", "check", "evaluate", "pictures"]
