"""How many items of a task a run scores: --limit as lm-eval reads it, a whole number of items or, below 1, a
fraction of each task's items (``--limit 0.1``: the first tenth, rounded up), so a stock command line's --limit
scores the same items here."""

from __future__ import annotations

import math
from typing import Any

from medbench.errors import MedbenchError


def checked_limit(limit: Any, option: str = "--limit") -> int | float | None:
    """--limit as lm-eval reads it: a whole number of items, or a fraction of each task's items when below 1
    (0.1: the first tenth, rounded up). A whole float is that number; any other number is one line."""
    if limit is None or isinstance(limit, bool) or not isinstance(limit, (int, float)):
        return limit  # not a number: the checks after this one name it
    if isinstance(limit, float) and not math.isfinite(limit):
        raise MedbenchError(f"{option} must be a number of items, got {limit}", f"pass {option} 1 or more")
    if isinstance(limit, float) and limit >= 1:
        if not limit.is_integer():
            raise MedbenchError(f"{option} {limit:g} is neither a whole number of items nor a fraction below 1",
                                f"pass {option} {int(limit)} (items) or a fraction such as {option} 0.5")
        return int(limit)
    return limit


def task_limit(task: Any, limit: int | float | None) -> int | None:
    """The items lm-eval scores of ``task`` under ``limit`` (lm-eval's get_sample_size)."""
    from lm_eval.evaluator_utils import get_sample_size

    return get_sample_size(task, limit)
