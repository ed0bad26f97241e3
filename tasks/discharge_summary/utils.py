"""discharge_summary data and scoring: summarise a hospital course note into a short discharge summary.

A row (bundled sample or the user's file, jsonl) has ``note`` (the hospital course note), ``summary`` (the
reference discharge summary), ``key_facts`` (short strings a summary must mention) and optionally
``min_words`` / ``max_words`` (the acceptable summary length; default 15 and 100).

Per-sample metrics, averaged by lm-eval:
* ``rougeL``: ROUGE-L F-measure of the generated summary against the reference (``rouge_score``, Porter
  stemming on, its default tokenizer).
* ``coverage``: share of ``key_facts`` mentioned in the generated summary. Both texts are normalised: lower
  case; thousands separators dropped ("2,000" -> "2000"); a number glued to a unit split ("40mg" -> "40 mg");
  every run of characters other than a-z and 0-9 becomes one space; number words one to thirty become digits;
  a final "s" is dropped from words longer than 3 letters ("days" -> "day"); and the ways of stating a length
  of stay ("admitted for five days", "a 5-day stay", "LOS 5 days", "length of stay was 5 days") become
  "length of stay 5 day". A fact counts when its normalised form occurs as a whole-word sequence (so
  "amoxicillin-clavulanate" matches "Amoxicillin/clavulanate" and "statin" does not match "atorvastatin").
  A fact written with " ... " is a sequence of parts that must appear in that order, at most 4 words apart
  ("furosemide ... 60 mg" matches "furosemide titrated to 60 mg daily" but not "furosemide 40 mg").
* ``length_ok``: 1 if the summary's word count (whitespace-separated) is within [min_words, max_words].
"""

import re
from functools import lru_cache
from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import JSONL_SPLITS, load_splits, require_columns

DEFAULT_MIN_WORDS, DEFAULT_MAX_WORDS = 15, 100


def normalize(row, source):
    require_columns(row, ["note", "summary", "key_facts"], source)
    facts = row["key_facts"]
    if not isinstance(facts, list) or not facts or not all(isinstance(f, str) and f.strip() for f in facts):
        raise MedbenchError(f"{source}: key_facts must be a non-empty list of non-empty strings, got {facts!r}",
                            'write key_facts as a JSON list, e.g. ["pneumonia", "amoxicillin", "primary care clinic"]')
    try:
        low = int(row.get("min_words", DEFAULT_MIN_WORDS))
        high = int(row.get("max_words", DEFAULT_MAX_WORDS))
    except (TypeError, ValueError):
        raise MedbenchError(f"{source}: min_words / max_words must be whole numbers",
                            "give integer word limits or leave them out (defaults 15 and 100)") from None
    if not 0 <= low <= high:
        raise MedbenchError(f"{source}: min_words {low} is greater than max_words {high}",
                            "make min_words <= max_words")
    return {"note": str(row["note"]), "summary": str(row["summary"]), "key_facts": [str(f) for f in facts],
            "min_words": low, "max_words": high, "service": str(row.get("service") or ""),
            "diagnosis": str(row.get("diagnosis") or "")}


def load(**metadata):
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )


NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four twenty-five twenty-six "
    "twenty-seven twenty-eight twenty-nine thirty".split())}
MAX_GAP = 4  # words allowed between the parts of a " ... " fact
_STAY = [re.compile(p) for p in (
    r"\b(?:admitted|hospitalized|hospitalised|stayed|inpatient|admission) for (?:a |an )?(\d+) day\b",
    r"\b(\d+) day (?:hospital )?(?:stay|admission|hospitalization|hospitalisation|inpatient stay)\b",
    r"\b(?:length of stay|los)(?: was| of| is)? (\d+) day\b",
)]


def _words(text):
    text = str(text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(\d)([a-z])", r"\1 \2", text)
    text = re.sub(r"\b(twenty)-(one|two|three|four|five|six|seven|eight|nine)\b", r"\1_\2", text)
    words = []
    for word in re.sub(r"[^a-z0-9_]+", " ", text).split():
        word = NUMBER_WORDS.get(word.replace("_", "-"), word).replace("_", " ")
        words.extend(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in word.split())
    joined = " ".join(words)
    for pattern in _STAY:
        joined = pattern.sub(r"length of stay \1 day", joined)
    return joined.split()


def _find(words, part, start=0):
    """Index just after the first whole-word occurrence of ``part`` in ``words`` at or after ``start``."""
    n = len(part)
    for i in range(start, len(words) - n + 1):
        if words[i:i + n] == part:
            return i + n
    return -1


def mentions(text, fact):
    """True when the (normalised) text states the fact; rules in the module docstring."""
    words = _words(text)
    parts = [_words(p) for p in str(fact).split(" ... ") if _words(p)]
    if not parts:
        return False
    start = 0
    while True:
        end = _find(words, parts[0], start)
        if end < 0:
            return False
        position, found_all = end, True
        for part in parts[1:]:  # each next part starts within MAX_GAP words of the previous one's end
            found = _find(words[position:position + MAX_GAP + len(part)], part)
            if found < 0:
                found_all = False
                break
            position += found
        if found_all:
            return True
        start = end - len(parts[0]) + 1


def coverage(summary, key_facts):
    """Share of key facts mentioned in the summary (see the module docstring for the matching rules)."""
    if not key_facts:
        return 0.0
    return sum(1 for fact in key_facts if mentions(summary, fact)) / len(key_facts)


def length_ok(summary, min_words, max_words):
    return 1.0 if min_words <= len(str(summary).split()) <= max_words else 0.0


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction, reference):
    return _scorer().score(reference, prediction)["rougeL"].fmeasure


def process_results(doc, results):
    summary = (results[0] if results else "").strip()
    return {
        "rougeL": rouge_l(summary, doc["summary"]),
        "coverage": coverage(summary, doc["key_facts"]),
        "length_ok": length_ok(summary, doc["min_words"], doc["max_words"]),
    }
