"""discharge_summary data and scoring: summarise a hospital course note into a short discharge summary.

A row (bundled sample or the user's file, jsonl) has ``note`` (the hospital course note), ``summary`` (the
reference discharge summary), ``key_facts`` (short strings a summary must mention) and optionally
``min_words`` / ``max_words`` (the acceptable summary length; default 15 and 70).

Per-sample metrics, averaged by lm-eval:
* ``rougeL``: ROUGE-L F-measure of the generated summary against the reference (``rouge_score``, Porter
  stemming on, its default tokenizer).
* ``coverage``: share of ``key_facts`` mentioned in the generated summary. Matching rule: both texts are
  lower-cased and every run of characters other than a-z and 0-9 becomes one space; a fact counts when its
  normalised form occurs in the normalised summary as a whole-word sequence (so "amoxicillin-clavulanate"
  matches "Amoxicillin/clavulanate", and "statin" does not match "atorvastatin").
* ``length_ok``: 1 if the summary's word count (whitespace-separated) is within [min_words, max_words].
"""

import re
from functools import lru_cache
from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import JSONL_SPLITS, load_splits, require_columns

DEFAULT_MIN_WORDS, DEFAULT_MAX_WORDS = 15, 70


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
                            "give integer word limits or leave them out (defaults 15 and 70)") from None
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


def _norm(text):
    return " " + re.sub(r"[^a-z0-9]+", " ", str(text).lower()).strip() + " "


def coverage(summary, key_facts):
    """Share of key facts mentioned in the summary (whole-word match after normalisation; see above)."""
    if not key_facts:
        return 0.0
    text = _norm(summary)
    return sum(1 for fact in key_facts if _norm(fact) in text) / len(key_facts)


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
