"""Training examples from a task YAML, so any lm-eval task a plugin registers can be trained on.

The prompt is the task's own ``doc_to_text`` (with its ``description``), the target its ``doc_to_target`` /
``doc_to_choice``, and for multiple-choice tasks the wrong choices become DPO rejections. medbench's extra
fields come from the YAML's ``metadata:``: ``rationale_field`` (text explaining the answer, for rationale
targets), ``category_field`` and ``difficulty_field`` (for curriculum orderings).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from medbench.errors import MedbenchError


@dataclass
class TrainingExample:
    doc_id: int
    prompt: str
    completion: str  # the gold answer as the task scores it, with the task's target delimiter
    rejected: list[str] = field(default_factory=list)  # the wrong choices, same form as completion
    answer: str = ""  # the gold answer without delimiter (a choice label or the target text)
    rationale: str | None = None
    category: str | None = None
    difficulty: Any = None
    doc: dict[str, Any] = field(default_factory=dict)


def _field(doc: dict[str, Any], name: str | None) -> Any:
    if not name:
        return None
    value = doc.get(name)
    return None if value in ("", None) else value


def examples_from_task(task: Any, metadata: dict[str, Any], split: str | None = None) -> list[TrainingExample]:
    """Turn an lm-eval Task's training split (or ``split``) into examples, in the split's order."""
    config = task.config
    split = split or config.training_split
    if not split or task.dataset is None or split not in task.dataset:
        raise MedbenchError(f"task {config.task!r} has no training split {split!r}",
                            "set training_split in its YAML, or pass a task that has one")
    docs = task.training_docs() if split == config.training_split else task.dataset[split]
    if config.process_docs is not None and split != config.training_split:
        docs = config.process_docs(docs)
    delimiter = config.target_delimiter
    description = config.description or ""
    examples = []
    for doc_id, doc in enumerate(docs):
        prompt = description + task.doc_to_text(doc)
        target = task.doc_to_target(doc)
        rejected: list[str] = []
        if config.output_type == "multiple_choice":
            choices = task.doc_to_choice(doc)
            gold = target if isinstance(target, int) else (
                choices.index(str(target)) if str(target) in choices else -1)
            if not 0 <= gold < len(choices):
                raise MedbenchError(f"task {config.task!r}, {split} document {doc_id + 1}: the answer {target!r} is not "
                                    f"among its {len(choices)} choices", "fix the answer field of that document so it "
                                    "names one of the options")
            answer = str(choices[gold])
            rejected = [delimiter + str(c) for i, c in enumerate(choices) if i != gold]
        else:
            answer = str(target[0] if isinstance(target, list) else target)
        examples.append(TrainingExample(
            doc_id=doc_id, prompt=prompt, completion=delimiter + answer, rejected=rejected, answer=answer,
            rationale=_field(doc, metadata.get("rationale_field")),
            category=_field(doc, metadata.get("category_field")),
            difficulty=_field(doc, metadata.get("difficulty_field")), doc=dict(doc)))
    if not examples:
        raise MedbenchError(f"the {split!r} split of task {config.task!r} is empty", "give it training data")
    return examples


def load_training_examples(task_name: str, task_metadata: dict[str, Any] | None = None,
                           split: str | None = None) -> list[TrainingExample]:
    from medbench.tasks import build_registry, load_tasks

    registry = build_registry()
    entry = registry.get(task_name)
    metadata = {**entry.metadata, **(task_metadata or {})}
    task = load_tasks([task_name], registry, {task_name: task_metadata} if task_metadata else None)[task_name]
    return examples_from_task(task, metadata, split)


def data_file_metadata(task: str, data_files: dict[str, str] | None) -> dict[str, Any] | None:
    """The task metadata for ``--data-file``-style entries ("TASK" or "TASK:SPLIT" -> path; TASK alone names the
    test split, as ``medbench eval --data-file`` does) that concern ``task``; None when none do."""
    from pathlib import Path

    files = {}
    for target, path in (data_files or {}).items():
        name, _, split = str(target).partition(":")
        if name == task:
            files[split or "test"] = str(Path(path).expanduser().resolve())
    return {"data_files": files} if files else None


def examples_hash(examples: list[TrainingExample]) -> str:
    """Content hash of the examples in order: the same data in another order hashes differently."""
    digest = hashlib.blake2b(digest_size=16)
    for example in examples:
        digest.update(json.dumps([example.prompt, example.completion, example.rejected, example.rationale],
                                 default=str).encode())
    return digest.hexdigest()
