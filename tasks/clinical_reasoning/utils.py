"""clinical_reasoning data: 4-option diagnosis and treatment-selection questions.

A row (bundled sample or the user's file) is in MedQA's published jsonl shape: ``question``, ``options``
{A..D}, ``answer_idx`` (the gold letter), optionally ``answer`` (the gold text, checked against the option it
names), ``subject``, ``difficulty``, ``question_type`` (diagnosis | treatment), ``rationale`` and
``answer_aliases`` (other accepted names of the gold answer, for the open-ended variant).

The open-ended variant (``clinical_reasoning_open``) shows the question without options and scores the
model's first line of text (``process_results_open``):

* words: the text is lower-cased, accents and possessive 's are dropped, every other run of non-letters and
  non-digits becomes a space, a final "s" is dropped from words longer than 3 letters (plurals), and route
  and connector words (``IGNORED``: oral, intravenous, plus, and, with, the, ...) are removed;
* ``acc`` (contains): the answer counts when all the words of the gold answer, or of one of its aliases,
  appear in the first line, in any order, and the line does not also name a distractor (all the words of
  one of the other three options, unless those words are part of the matched answer): listing every option
  scores nothing;
* ``exact_match``: the first line, with a leading "answer:" / "the (most likely) diagnosis is" removed, has
  exactly the words of the gold answer or one alias, in order.
"""

import re
import unicodedata
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
    aliases = row.get("answer_aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise MedbenchError(f"{source}: answer_aliases must be a list of non-empty strings, got {aliases!r}",
                            'write answer_aliases as a JSON list, e.g. ["pericarditis"], or leave it out')
    return mcq_row(row["question"], choices, gold, source,
                   subject=str(row.get("subject") or "unknown"),
                   difficulty=str(row.get("difficulty") or ""),
                   question_type=question_type,
                   rationale=str(row.get("rationale") or ""),
                   open_question=open_question(str(row["question"])),
                   answer_text=choices[gold] if gold >= 0 else "",
                   answer_aliases=[str(a) for a in aliases],
                   condition=str(row["condition"]) if row.get("condition") not in (None, "") else None)


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )


# ------------------------------------------------------------------------------------ open-ended variant
IGNORED = {"a", "an", "the", "and", "plus", "with", "or", "of", "for", "by", "to", "then", "in", "on", "is",
           "oral", "orally", "intravenous", "intravenously", "iv", "intramuscular", "im", "subcutaneous",
           "inhaled", "sublingual", "daily"}
_LEAD = re.compile(r"^\s*(?:final\s+)?(?:answer|the\s+answer\s+is|(?:the\s+)?(?:most\s+(?:likely|appropriate)\s+)?"
                   r"(?:first-line\s+|initial\s+)?(?:diagnosis|treatment)\s+is)\s*[:\-]?\s*", re.IGNORECASE)


def open_question(question):
    """The MCQ stem asked without options: "Which of the following is ..." becomes "What is ..."."""
    return re.sub(r"\bWhich of the following (is|are|best)\b", lambda m: "What " + m.group(1), question)


def words(text):
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"'s\b", "", text)
    out = []
    for word in re.sub(r"[^a-z0-9]+", " ", text).split():
        if word in IGNORED:
            continue
        out.append(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return out


def first_line(response):
    return next((line for line in str(response).splitlines() if line.strip()), "")


def open_match(response, answer, aliases, distractors):
    """(contains, exact) for a free-text answer; rules in the module docstring."""
    line = first_line(response)
    said = set(words(line))
    accepted = [words(a) for a in [answer, *aliases] if words(a)]
    matched = [a for a in accepted if set(a) <= said]
    named_wrong = any(set(w) <= said and not any(set(w) <= set(a) for a in matched)
                      for w in (words(d) for d in distractors) if w)
    contains = bool(matched) and not named_wrong
    exact = words(_LEAD.sub("", line).rstrip(" .")) in accepted
    return contains, exact


def process_results_open(doc, results):
    response = results[0] if results else ""
    distractors = [c for i, c in enumerate(doc["choices"]) if i != doc["gold"]]
    contains, exact = open_match(response, doc["answer_text"], doc["answer_aliases"], distractors)
    return {"acc": float(contains), "exact_match": float(exact)}
