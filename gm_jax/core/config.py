"""Config helpers every family shares: its `model` section as a frozen dataclass, and the usual checks.

A family declares its model section as a frozen dataclass (a typo in a key then fails at init) and
builds it with `model_section(Cls, cfg)`; its checks use `require_*`, whose errors all read
"model.<key> must be ..., got <value>".
"""

from __future__ import annotations

import math
from typing import Any

from gm_jax.core.errors import UserError


def positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def non_negative_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def real(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def model_section(cls: type, cfg: Any, what: str | None = None) -> Any:
    """`cls(**cfg.model)` (the key "name" dropped); an unknown key is one UserError naming the model."""
    d = dict(cfg.model)
    d.pop("name", None)
    try:
        return cls(**d)
    except TypeError as e:
        raise UserError(f"bad model config for {what or cfg.get('model_name', 'this model')}: {e}") from None


def require(ok: bool, key: str, what: str, value: Any) -> None:
    """UserError "<key> must be <what>, got <value>" unless `ok`."""
    if not ok:
        raise UserError(f"{key} must be {what}, got {value!r}")


def require_positive_int(key: str, value: Any) -> None:
    require(positive_int(value), key, "a positive integer", value)


def require_non_negative_int(key: str, value: Any) -> None:
    require(non_negative_int(value), key, "a non-negative integer", value)


def require_one_of(key: str, value: Any, options: tuple) -> None:
    if value not in options:
        raise UserError(f"{key} must be one of {', '.join(map(str, options))}, got {value!r}")


def require_range(key: str, value: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    """A finite number in [lo, hi] (with open ends as asked; +-inf for no bound)."""
    ok = real(value) and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    require(ok, key, f"a number in {left}{lo}, {hi}{right}", value)
