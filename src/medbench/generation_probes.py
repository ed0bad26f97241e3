"""Shortcut probes for generation tasks: answers that never read the item, scored by the task's own
``process_results`` on its test split (baselines.py reports them; tests/test_baselines.py holds them under the
task's ceiling).

- ``constant``: one training reference given for every test item, the one that scores best on the other training
  items. A reference frame every item shares (one opening, one sentence order) or an instruction any fixed text
  meets makes it score like a model.
- ``copy``: the prompt itself as the answer. A reference that repeats the input's wording scores this way.
"""

from __future__ import annotations

import random
from typing import Any, Callable

CANDIDATES = 40  # training references tried as the constant answer (a seeded sample: the cost is candidates x items)
CHOOSING_ITEMS = 40  # training items the constant is chosen on


def _value(task: Any, metric: str) -> Callable[[dict, str], float]:
    def value(doc: dict, answer: str) -> float:
        try:
            found = task.process_results(doc, [answer]).get(metric)
        except Exception:  # noqa: BLE001 - an answer the task's scorer cannot read scores nothing
            return 0.0
        return float(found) if isinstance(found, (int, float)) else 0.0

    return value


def _reference(task: Any, doc: dict) -> str:
    target = task.doc_to_target(doc)
    if isinstance(target, list):
        target = target[0] if target else ""
    return target if isinstance(target, str) else ""


def constant_answer(task: Any, train: list[dict], metric: str, seed: int = 0) -> str | None:
    """The training reference that scores best, given as the answer to other training items; None when the
    training items have no text references."""
    value = _value(task, metric)
    rng = random.Random(seed)
    references = list(dict.fromkeys(r for r in (_reference(task, doc) for doc in train) if r.strip()))
    if not references:
        return None
    candidates = rng.sample(references, min(CANDIDATES, len(references)))
    items = [(doc, _reference(task, doc)) for doc in rng.sample(train, min(CHOOSING_ITEMS, len(train)))]

    def mean_on_others(answer: str) -> float:  # each item's own reference rendered once, not once a candidate
        others = [doc for doc, reference in items if reference != answer]
        return sum(value(doc, answer) for doc in others) / max(1, len(others))

    return max(candidates, key=mean_on_others)


def generation_probes(task: Any, train: list[dict], test: list[dict], metric: str) -> dict[str, list[float]]:
    """Per test item, the metric's value of each probe (module docstring)."""
    value = _value(task, metric)
    found = {"copy": [value(doc, task.doc_to_text(doc)) for doc in test]}
    constant = constant_answer(task, train, metric)
    if constant is not None:
        found["constant"] = [value(doc, constant) for doc in test]
    return found
