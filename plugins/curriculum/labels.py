"""Categories and difficulty labels of training items: from a document field, from a file keyed by item content,
or from clustering the questions (TF-IDF + k-means)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.records import read_regular_text
from medbench.trainingdata import TrainingExample


def is_mcq_doc(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("choices"), list) and len(doc["choices"]) > 1 and isinstance(doc.get("gold"), int)


def example_key(example: TrainingExample) -> str:
    """Identifies a training item by content, so a difficulty file cannot silently apply to other data."""
    return hashlib.blake2b(json.dumps([example.prompt, example.completion]).encode(), digest_size=12).hexdigest()



def read_keyed_file(path: str | Path, column: str, what: str) -> dict[str, str]:
    """``key`` -> ``column`` from a JSONL file (one object a line) or a CSV file with a header row."""
    path = Path(path).expanduser()
    how = f"write JSON lines or CSV with the columns key and {column} (`medbench difficulty` lists every item's key)"
    try:
        text = read_regular_text(path)  # a FIFO or /dev/zero in its place would block or fill memory
    except FileNotFoundError:
        raise MedbenchError(f"{what} file {path} does not exist", how) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise MedbenchError(f"{what} file {path} cannot be read ({reason})", how) from None
    try:
        if path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
        else:  # JSON lines end at "\n" only: U+2028 may sit inside a string
            rows = [json.loads(line) for line in text.split("\n") if line.strip()]
        return {str(row["key"]): row[column] for row in rows}
    except (ValueError, KeyError, TypeError, RecursionError, csv.Error):  # ValueError: JSON and 4300+ digits
        raise MedbenchError(f"{what} file {path} does not give key and {column} on every row", how) from None


def read_difficulty_tiers(path: str | Path) -> dict[str, str]:
    return read_keyed_file(path, "tier", "difficulty")


def with_keyed_file(examples: list[TrainingExample], attribute: str, values: dict[str, Any],
                    path: str | Path) -> list[TrainingExample]:
    missing = [e for e in examples if example_key(e) not in values]
    if missing:
        raise MedbenchError(f"{attribute} file {path} has no entry for {len(missing)} of {len(examples)} training "
                            f"examples (e.g. example {missing[0].doc_id})",
                            "recompute it with `medbench difficulty` on this task and data, or add the missing keys")
    return [dataclasses.replace(e, **{attribute: values[example_key(e)]}) for e in examples]


def with_difficulty_file(examples: list[TrainingExample], path: str | Path) -> list[TrainingExample]:
    return with_keyed_file(examples, "difficulty", read_difficulty_tiers(path), path)


def with_field(examples: list[TrainingExample], attribute: str, field_name: str) -> list[TrainingExample]:
    """Take ``attribute`` (category or difficulty) from another field of the task's documents."""
    if not any(field_name in e.doc for e in examples):
        fields = ", ".join(sorted(examples[0].doc)) if examples else "none"
        raise MedbenchError(f"the training documents have no field {field_name!r}", f"their fields are: {fields}")
    return [dataclasses.replace(e, **{attribute: e.doc.get(field_name)}) for e in examples]


def question_text(example: TrainingExample) -> str:
    """What an item is about: the document's question and its options (drug, gene and organism names are the most
    topical words a vignette has) when it has them, else the whole prompt."""
    question = example.doc.get("question")
    if not (isinstance(question, str) and question.strip()):
        return example.prompt
    return " ".join([question, *map(str, example.doc["choices"])]) if is_mcq_doc(example.doc) else question


def cluster_categories(examples: list[TrainingExample], n_clusters: int, seed: int) -> list[TrainingExample]:
    """Categories by clustering the questions: TF-IDF + k-means (module docstring), named by first appearance."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not 2 <= n_clusters <= len(examples):
        raise MedbenchError(f"--n-clusters must lie between 2 and the {len(examples)} training examples, got "
                            f"{n_clusters}", f"pass --n-clusters between 2 and {len(examples)}")
    vectors = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(
        [question_text(e) for e in examples])
    labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(vectors)
    names: dict[int, str] = {}
    for label in labels:
        names.setdefault(int(label), f"cluster-{len(names) + 1}")
    return [dataclasses.replace(e, category=names[int(label)]) for e, label in zip(examples, labels)]
