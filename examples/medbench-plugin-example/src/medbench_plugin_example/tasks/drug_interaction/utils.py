"""Data for the drug_interaction task: the bundled sample, or your own jsonl file in the same format.

Each row: ``drug_a``, ``drug_b``, ``interaction`` ("yes" or "no"), and optionally ``area`` (the clinical area, the
task's category field) and ``mechanism`` (why, the task's rationale field).
"""

from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import load_splits, require_columns

ANSWERS = ("no", "yes")  # the order of doc_to_choice in the YAML


def normalize(row, source):
    require_columns(row, ["drug_a", "drug_b", "interaction"], source)
    answer = str(row["interaction"]).strip().lower()
    if answer not in ANSWERS:
        raise MedbenchError(f"{source}: interaction must be yes or no, got {row['interaction']!r}",
                            "write interaction: yes or no in every row")
    return {**row, "gold": ANSWERS.index(answer), "area": str(row.get("area") or "unknown"),
            "mechanism": str(row.get("mechanism") or "")}


def load(**metadata):
    """lm-eval's ``custom_dataset`` hook; the YAML's metadata arrives as keyword arguments."""
    return load_splits(
        Path(__file__).parent,
        bundled={"train": "data/train.jsonl", "validation": "data/validation.jsonl", "test": "data/test.jsonl"},
        normalize=normalize,
        **metadata,
    )
