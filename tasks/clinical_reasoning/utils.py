"""clinical_reasoning data: 4-option diagnosis and treatment-selection questions.

A row (bundled sample or the user's file) is in MedQA's published jsonl shape: ``question``, ``options``
{A..D}, ``answer_idx`` (the gold letter), optionally ``answer`` (the gold text, checked against the option it
names), ``subject``, ``difficulty``, ``question_type`` (diagnosis | treatment) and ``rationale``.
"""

from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import JSONL_SPLITS, load_splits, mcq_row, require_columns

LETTERS = "ABCD"
QUESTION_TYPES = ("diagnosis", "treatment")


def normalize(row, source):
    require_columns(row, ["question", "options", "answer_idx"], source)
    options = row["options"]
    if not isinstance(options, dict) or sorted(options) != list(LETTERS):
        raise MedbenchError(f"{source}: options must map the letters A, B, C and D to answer texts, got "
                            f"{sorted(options) if isinstance(options, dict) else type(options).__name__}",
                            'write options as {"A": "...", "B": "...", "C": "...", "D": "..."}')
    choices = [str(options[letter]) for letter in LETTERS]
    letter = str(row["answer_idx"]).strip().upper()
    gold = LETTERS.index(letter) if len(letter) == 1 and letter in LETTERS else -1
    answer = row.get("answer")
    if answer not in (None, "") and str(answer) not in choices:
        raise MedbenchError(f"{source}: the answer {answer!r} is not among the choices",
                            "make `answer` the exact text of one option (or leave it out) and `answer_idx` its letter")
    if answer not in (None, "") and gold >= 0 and choices[gold] != str(answer):
        raise MedbenchError(f"{source}: answer_idx {letter} names {choices[gold]!r}, not the answer {answer!r}",
                            "make answer_idx the letter of the option whose text is `answer`")
    question_type = str(row.get("question_type") or "")
    if question_type and question_type not in QUESTION_TYPES:
        raise MedbenchError(f"{source}: question_type {question_type!r} is not one of {', '.join(QUESTION_TYPES)}",
                            "set question_type to diagnosis or treatment, or leave it out")
    return mcq_row(row["question"], choices, gold, source,
                   subject=str(row.get("subject") or "unknown"),
                   difficulty=str(row.get("difficulty") or ""),
                   question_type=question_type,
                   rationale=str(row.get("rationale") or ""))


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )
