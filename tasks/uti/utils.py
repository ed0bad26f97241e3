"""UTI note classification data: the bundled generated notes (generate.py) or the user's jsonl in the same format."""

from pathlib import Path

from medbench.taskdata import JSONL_SPLITS, choice_index, load_splits, require_columns

CHOICES = ["no", "yes"]  # index 1 is the positive class (AUROC, F1)


def normalize(row, source):
    require_columns(row, ["text", "label"], source)
    gold = choice_index(row["label"], CHOICES, source)
    return {
        "text": str(row["text"]),
        "label": CHOICES[gold],
        "gold": gold,
        "category": str(row.get("category") or ""),
        "difficulty": str(row.get("difficulty") or ""),
    }


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )
