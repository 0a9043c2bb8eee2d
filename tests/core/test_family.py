"""The family contract (gm_jax.family): every registered family keeps it, a family that breaks a rule
is refused in one line naming the rule, and the core leans on nothing above it."""

import ast
import glob
import os
import types

import pytest

from gm_jax import family as contract
from gm_jax import registry
from gm_jax.core.errors import UserError
from tests.core import toy_families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", registry.model_names())
def test_every_registered_family_keeps_the_contract(name):
    spec = registry.get_family(name)
    assert all(callable(getattr(spec, f)) for f in contract.REQUIRED)
    assert registry.load_config(name).model_name == name
    assert spec.takes_parent == (name == "vqvae")  # the one second stage among the registered families


def test_a_family_that_breaks_a_rule_is_refused_naming_it():
    broken = types.SimpleNamespace(init=toy_families.toy_em.init, train_step=None, evaluate=print, sample=print)
    with pytest.raises(UserError, match="no callable train_step"):
        contract.as_family(broken, "broken")
    with pytest.raises(UserError, match="encode is not callable"):
        contract.as_family(types.SimpleNamespace(**vars(toy_families.toy_em), encode=3), "toy")
    cfg = registry.load_config("vae")
    with pytest.raises(UserError, match="model_name is 'vae', not its registry key 'vae2'"):
        contract.check_config("vae2", cfg)
    del cfg.model["dtype"]
    with pytest.raises(UserError, match="needs model.dtype"):
        contract.check_config("vae", cfg)


def test_train_steps_without_a_loss_are_refused_before_anything_is_written(tmp_path):
    from gm_jax.train import train
    from tests.core.test_train import _toy_cfg

    def step(state, batch, key, cfg):
        state, metrics = toy_families.toy_em.train_step(state, batch, key, cfg)
        return state, {k: v for k, v in metrics.items() if k != "loss"}

    fam = types.SimpleNamespace(**{**vars(toy_families.toy_em), "train_step": step})
    cfg = _toy_cfg("toy_em")
    with pytest.raises(UserError, match="metrics must include 'loss'"):
        train(fam, cfg, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def _imports(path: str) -> set[str]:
    tree = ast.parse(open(path).read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_the_core_imports_nothing_above_it_and_asks_the_contract_not_hasattr():
    above = ("gm_jax.data", "gm_jax.metrics", "gm_jax.evaluators", "gm_jax.registry", "gm_jax.models", "gm_jax.train")
    for path in glob.glob(os.path.join(ROOT, "gm_jax", "core", "*.py")):
        bad = [m for m in _imports(path) if m.startswith(above)]
        assert not bad, (path, bad)
    for path in [*glob.glob(os.path.join(ROOT, "gm_jax", "core", "*.py")), os.path.join(ROOT, "gm_jax", "train.py")]:
        assert "hasattr(fam" not in open(path).read() and "hasattr(spec" not in open(path).read(), path


def test_the_example_family_trains_through_the_loop_to_the_closed_form(tmp_path):
    import numpy as np

    from gm_jax.data import sources
    from gm_jax.train import train
    from tests.core import example_family

    r = train(example_family, example_family.get_config(), str(tmp_path))
    x = sources.gmm2d().train.get(np.arange(2400))
    p = r.state.params
    np.testing.assert_allclose(p["mean"], x.mean(0), atol=0.05)
    np.testing.assert_allclose(np.exp(p["log_std"]), x.std(0), rtol=0.03)
    assert r.step_compilations == 1 and np.isfinite(r.eval["nll_nats"])
