"""MedQA (USMLE, 4 options) data: the published jsonl format, the hub's ``-hf`` variant, or the bundled sample."""

from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import JSONL_SPLITS, load_splits, mcq_row, require_columns

LETTERS = "ABCD"


def normalize(row, source):
    if "options" in row:  # the published jsonl: question, options{A..D}, answer_idx, meta_info
        require_columns(row, ["question", "options", "answer_idx"], source)
        options = row["options"]
        if isinstance(options, dict) and options and sorted(options) != list(LETTERS):
            # the prompt shows A-D: a missing letter would fail inside its template, an extra one be dropped unseen
            raise MedbenchError(f"{source}: options must map the letters A, B, C and D (this is the 4-option "
                                f"MedQA), got {', '.join(map(str, sorted(options, key=str)))}",
                                'write options as {"A": "...", "B": "...", "C": "...", "D": "..."}')
        letters = [letter for letter in LETTERS if letter in options]
        choices = [options[letter] for letter in letters]
        answer = str(row["answer_idx"]).strip()
        gold = letters.index(answer) if answer in letters else -1
    else:  # GBaker/MedQA-USMLE-4-options-hf: sent1, ending0..3, label
        require_columns(row, ["sent1", "ending0", "ending1", "ending2", "ending3", "label"], source)
        choices = [row[f"ending{i}"] for i in range(4)]
        label = row["label"]
        # int() would read 1.7 as 1 and true as 1: a wrong gold answer, never an error (medmcqa's cop likewise)
        if isinstance(label, bool) or not (isinstance(label, int) or (isinstance(label, str) and label.isdigit())):
            raise MedbenchError(f"{source}: label {label!r} is not the index (0-3) of the right ending",
                                "write label as 0, 1, 2 or 3 (ending0 is 0)")
        gold = int(label)
        row = {**row, "question": row["sent1"]}
    return mcq_row(row["question"], choices, gold, source,
                   subject=str(row.get("subject") or row.get("meta_info") or "unknown"),
                   difficulty=str(row.get("difficulty") or ""),
                   meta_info=str(row.get("meta_info") or ""))


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )
