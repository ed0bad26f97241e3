"""ADRD five-year prediction data: the bundled generated histories (generate.py) or the user's jsonl in the same
format (``history``, ``label`` no/yes, optional ``rationale`` and ``rationale_clinician``: the two writers' rationales,
README.md).

``load`` gives the balanced (case-control) splits; ``load_prevalence`` the same train/validation splits with the
population-prevalence test split (data/test_prevalence.jsonl), for the ``adrd_prediction_prevalence`` task."""

from pathlib import Path

from medbench.taskdata import JSONL_SPLITS, choice_index, load_splits, require_columns

CHOICES = ["no", "yes"]  # index 1 is the positive class (AUROC, F1)


def normalize(row, source):
    require_columns(row, ["history", "label"], source)
    gold = choice_index(row["label"], CHOICES, source)
    return {
        "history": str(row["history"]),
        "label": CHOICES[gold],
        "gold": gold,
        "rationale": str(row.get("rationale") or ""),
        "rationale_clinician": str(row.get("rationale_clinician") or ""),  # the second writer (generate.py)
        "category": str(row.get("category") or ""),
        "difficulty": str(row.get("difficulty") or ""),
    }


PREVALENCE_SPLITS = {**JSONL_SPLITS, "test": "data/test_prevalence.jsonl"}


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )


def load_prevalence(**metadata):
    return load_splits(Path(__file__).parent, bundled=PREVALENCE_SPLITS, normalize=normalize, **metadata)
