"""MedMCQA data: raw published json lines (cop 1-based), the hub copy (cop 0-based), or the bundled sample."""

from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import load_splits, mcq_row, require_columns

OPTION_KEYS = ("opa", "opb", "opc", "opd")


def make_normalizer(cop_base=None):
    """``cop_base`` None: 0 for rows from the hub copy, 1 for files in the raw release format."""

    def normalize(row, source):
        require_columns(row, ["question", *OPTION_KEYS, "cop"], source)
        cop = int(row["cop"])
        if cop < 0:  # the hub's unlabelled test split
            return None
        base = cop_base if cop_base is not None else (0 if source.from_hub else 1)
        if base == 1 and cop == 0:
            raise MedbenchError(f"{source}: cop is 0 but this file is read as 1-based (the raw release)",
                                "set metadata cop_base: 0 for files exported from the hub")
        return mcq_row(row["question"], [row[k] for k in OPTION_KEYS], cop - base, source,
                       subject=str(row.get("subject_name") or "unknown"),
                       difficulty=str(row.get("difficulty") or ""),
                       explanation=str(row.get("exp") or ""))

    return normalize


def load(cop_base=None, **metadata):
    return load_splits(
        Path(__file__).parent,
        bundled={"train": "data/train.json", "validation": "data/dev.json", "test": "data/test.json"},
        normalize=make_normalizer(None if cop_base is None else int(cop_base)),
        **metadata,
    )
