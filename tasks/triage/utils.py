"""Patient-message triage data, shared by triage_personnel and triage_urgency: the bundled generated messages
(generate.py) or the user's jsonl in the same format (``message`` plus ``personnel`` and/or ``urgency``)."""

from functools import partial
from pathlib import Path

from medbench.taskdata import JSONL_SPLITS, choice_index, load_splits, require_columns

PERSONNEL = ["physician", "nurse", "pharmacist", "front desk"]
URGENCY = ["emergent", "urgent", "routine"]
CHOICES = {"personnel": PERSONNEL, "urgency": URGENCY}


def _optional(row, column, source):
    value = row.get(column)
    if value in (None, ""):
        return ""
    return CHOICES[column][choice_index(value, CHOICES[column], source, column)]


def normalize(row, source, target):
    """``target`` is the column this task scores (personnel or urgency); the other one is kept when present."""
    require_columns(row, ["message", target], source)
    gold = choice_index(row[target], CHOICES[target], source, target)
    return {
        "message": str(row["message"]),
        "personnel": _optional(row, "personnel", source),
        "urgency": _optional(row, "urgency", source),
        "label": CHOICES[target][gold],
        "gold": gold,
        "category": str(row.get("category") or row.get("intent") or ""),
    }


def _load(target, **metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=partial(normalize, target=target),
        **metadata,
    )


def load_personnel(**metadata):
    return _load("personnel", **metadata)


def load_urgency(**metadata):
    return _load("urgency", **metadata)
