"""MedMCQA data: raw published json lines (cop 1-based), the hub copy or a file exported from it (cop 0-based),
or the bundled sample."""

import warnings
from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import PerFile, load_splits, mcq_row, require_columns

OPTION_KEYS = ("opa", "opb", "opc", "opd")


def _cop(row):
    value = row.get("cop") if isinstance(row, dict) else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    # int() would read 2.5 as 2 and true as 1: a wrong gold answer, never an error
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def file_cop_base(rows, source):
    """0 or 1: where this file's answer indices start. The hub copy (and a file exported from it, as lm-eval
    scores it) counts from 0, the raw release from 1; a file shows which by holding a 0 or a 4."""
    cops = {_cop(row) for row in rows}
    if None in cops:
        return 1  # a row without a whole-number cop is refused by its own check: no guess about the base first
    if 0 in cops and 4 in cops:
        raise MedbenchError(f"{source} mixes cop 0 (hub export, 0-based) and cop 4 (raw release, 1-based)",
                            "give one file per format, or set metadata cop_base in a copy of the task's YAML")
    if 0 in cops:
        return 0
    if 4 not in cops:
        warnings.warn(f"{source}: no row has cop 0 or 4, so cop is read as 1-based (the raw release); set "
                      "metadata cop_base: 0 in a copy of the task's YAML if the file came from the hub", stacklevel=2)
    return 1


def make_normalizer(cop_base=None):
    """``cop_base`` None: 0 for the hub copy, else what each file shows (``file_cop_base``)."""

    def for_file(rows, source):
        base = cop_base if cop_base is not None else (0 if source.from_hub else file_cop_base(rows, source))

        def normalize(row, source):
            require_columns(row, ["question", *OPTION_KEYS, "cop"], source)
            cop = _cop(row)
            if cop is None:
                raise MedbenchError(f"{source}: cop {row['cop']!r} is not a whole-number answer index",
                                    "give cop as 0-3 (hub export) or 1-4 (raw release)")
            if cop < 0:  # the hub's unlabelled test split
                return None
            if base == 1 and cop == 0:
                raise MedbenchError(f"{source}: cop is 0 but this file is read as 1-based (the raw release)",
                                    "set metadata cop_base: 0 for files exported from the hub")
            return mcq_row(row["question"], [row[k] for k in OPTION_KEYS], cop - base, source,
                           subject=str(row.get("subject_name") or "unknown"),
                           difficulty=str(row.get("difficulty") or ""),
                           explanation=str(row.get("exp") or ""))

        return normalize

    return PerFile(for_file)


def load(cop_base=None, **metadata):
    return load_splits(
        Path(__file__).parent,
        bundled={"train": "data/train.json", "validation": "data/dev.json", "test": "data/test.json"},
        normalize=make_normalizer(None if cop_base is None else int(cop_base)),
        **metadata,
    )
