"""Hyponatremia categorisation data: the bundled generated set (generate.py) or the user's jsonl in the same format."""

from pathlib import Path

from medbench.taskdata import JSONL_SPLITS, choice_index, load_splits, require_columns

CHOICES = ["non-hypotonic", "primary polydipsia", "extrarenal losses", "renal losses", "SIADH",
           "edematous state", "kidney failure"]
VALUES = ["serum_sodium", "serum_osmolality", "urine_osmolality", "urine_sodium", "volume_status"]


def render_values(row):
    """The prompt text for a row that gives the five values but no ``text``."""
    return (f"Serum sodium: {row['serum_sodium']} mmol/L\nSerum osmolality: {row['serum_osmolality']} mOsm/kg\n"
            f"Urine osmolality: {row['urine_osmolality']} mOsm/kg\nUrine sodium: {row['urine_sodium']} mmol/L\n"
            f"Volume status: {row['volume_status']}")


def _number(value):
    return None if value in (None, "") else float(value)


def normalize(row, source):
    require_columns(row, ["label"], source)
    if not row.get("text"):  # no prompt text: the five values make one
        require_columns(row, VALUES, source)
    text = str(row["text"]) if row.get("text") else render_values(row)
    gold = choice_index(row["label"], CHOICES, source)
    return {
        "text": text,
        "label": CHOICES[gold],
        "gold": gold,
        "serum_sodium": _number(row.get("serum_sodium")),
        "serum_osmolality": _number(row.get("serum_osmolality")),
        "urine_osmolality": _number(row.get("urine_osmolality")),
        "urine_sodium": _number(row.get("urine_sodium")),
        "volume_status": str(row.get("volume_status") or ""),
        "category": str(row.get("category") or row.get("volume_status") or ""),
        "difficulty": str(row.get("difficulty") or ""),
    }


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )
