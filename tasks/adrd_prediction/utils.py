"""ADRD five-year prediction data: the bundled generated histories (generate.py) or the user's jsonl in the same
format (``history``, ``label`` no/yes, optional ``rationale``)."""

from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import load_splits, require_columns

CHOICES = ["no", "yes"]  # index 1 is the positive class (AUROC, F1)


def gold_index(label, choices, source, column="label"):
    """Index of ``label`` among ``choices`` (case and surrounding spaces ignored), else a one-line error."""
    wanted = str(label).strip().lower()
    for i, choice in enumerate(choices):
        if choice.lower() == wanted:
            return i
    raise MedbenchError(f"{source}: {column} {label!r} is not one of the task's choices ({', '.join(choices)})",
                        f"write {column} as exactly one of: {', '.join(choices)}")


def normalize(row, source):
    require_columns(row, ["history", "label"], source)
    gold = gold_index(row["label"], CHOICES, source)
    return {
        "history": str(row["history"]),
        "label": CHOICES[gold],
        "gold": gold,
        "rationale": str(row.get("rationale") or ""),
        "category": str(row.get("category") or ""),
        "difficulty": str(row.get("difficulty") or ""),
    }


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled={"train": "data/train.jsonl", "validation": "data/validation.jsonl", "test": "data/test.jsonl"},
        normalize=normalize,
        **metadata,
    )
