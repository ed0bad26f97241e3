"""Training examples from a task YAML, so any lm-eval task a plugin registers can be trained on.

The prompt is the task's own ``doc_to_text`` (with its ``description``), the target its ``doc_to_target`` /
``doc_to_choice``, and for multiple-choice tasks the wrong choices become DPO rejections. medbench's extra
fields come from the YAML's ``metadata:``: ``rationale_field`` (text explaining the answer, for rationale
targets), ``category_field`` and ``difficulty_field`` (for curriculum orderings).

Which examples a trainer takes (:func:`select_examples`, the same for every trainer that uses it):

* ``exclude_difficulty``: drop the examples whose difficulty label is one of these (``[hard]``: the rows whose
  outcome goes against the record, for a sensitivity arm). Every example must carry a difficulty label, and each
  value must name one the data holds; anything else is a one-line error.
* ``max_examples``: a seeded, label-stratified sample of what is left, not its first N rows. The draw uses the
  run's seed, so seeds differ in their rows and two runs with one seed share them (the arms of a study compared
  within a seed train on the same rows). Each label (``answer``) keeps its share of the data, apportioned by
  Sainte-Lague's divisor method; the draw is one seeded sequence, so under one seed the 50-example subset lies
  inside the 100-example one. The selected examples keep their original relative order, so an ordering applied
  after (the curriculum trainer's) sees them as it would the whole split.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import heapq
import json
import random
import re
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator

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
    # The task's description, the start of ``prompt``: scoring in a chat template puts it in the system turn,
    # joined to any system prompt by the task's fewshot_delimiter (lm-eval's fewshot_context).
    description: str = ""
    fewshot_delimiter: str = "\n\n"


def _field(doc: dict[str, Any], name: str | None) -> Any:
    if not name:
        return None
    value = doc.get(name)
    return None if value in ("", None) else value


def _description(task: Any, doc: dict[str, Any]) -> str:
    """The task's description for one document as lm-eval renders it: a field name or a template over the doc."""
    return str(task.resolve_field(doc, task.config.description) or "") if task.config.description else ""


def examples_from_task(task: Any, metadata: dict[str, Any], split: str | None = None) -> list[TrainingExample]:
    """Turn an lm-eval Task's training split (or ``split``) into examples, in the split's order."""
    config = task.config
    split = split or config.training_split
    if not split or task.dataset is None or split not in task.dataset:
        raise MedbenchError(f"task {config.task!r} has no training split {split!r}",
                            "set training_split in its YAML, or pass a task that has one")
    if getattr(config, "gen_prefix", None):  # lm-eval scores after it (an assistant-turn opener); no example has it
        raise MedbenchError(f"task {config.task!r} sets gen_prefix {config.gen_prefix!r}: it is scored after that "
                            "opening of the answer, and a training example would not carry it",
                            "train on a copy of the task's YAML without gen_prefix, and score that copy too")
    docs = task.training_docs() if split == config.training_split else task.dataset[split]
    if config.process_docs is not None and split != config.training_split:
        docs = config.process_docs(docs)
    delimiter = config.target_delimiter
    examples = []
    for doc_id, doc in enumerate(docs):
        description = _description(task, doc)
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
            difficulty=_field(doc, metadata.get("difficulty_field")), doc=dict(doc), description=description,
            fewshot_delimiter=config.fewshot_delimiter))
    if not examples:
        raise MedbenchError(f"the {split!r} split of task {config.task!r} is empty",
                            f"give it training data: --data-file {config.task}:{split}=PATH (a bare "
                            f"--data-file {config.task}=PATH is its test split)")
    return examples


_READ_ONCE: ContextVar[dict[str, list[TrainingExample]] | None] = ContextVar("training examples read", default=None)


@contextlib.contextmanager
def examples_read_once() -> Iterator[None]:
    """Within it, each task's training examples (per data files and split) are read once and handed out as copies:
    a sweep's plan checks every training of every cell against its data, and reading one task hundreds of times
    (registry, YAML, a template rendered per document) took most of a large plan's time."""
    token = _READ_ONCE.set({})
    try:
        yield
    finally:
        _READ_ONCE.reset(token)


def load_training_examples(task_name: str, task_metadata: dict[str, Any] | None = None,
                           split: str | None = None) -> list[TrainingExample]:
    read = _READ_ONCE.get()
    if read is None:
        return _read_training_examples(task_name, task_metadata, split)
    key = json.dumps([task_name, task_metadata, split], sort_keys=True, default=str)
    if key not in read:
        read[key] = _read_training_examples(task_name, task_metadata, split)
    return copy.deepcopy(read[key])  # a check may change what it is given; the next one gets them as read


def _read_training_examples(task_name: str, task_metadata: dict[str, Any] | None,
                            split: str | None) -> list[TrainingExample]:
    from medbench.tasks import build_registry, load_tasks

    registry = build_registry()
    entry = registry.get(task_name)
    metadata = {**entry.metadata, **(task_metadata or {})}
    task = load_tasks([task_name], registry, {task_name: task_metadata} if task_metadata else None)[task_name]
    examples = examples_from_task(task, metadata, split)
    return examples if split is not None else without_scored_items(examples, task, task_name)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def without_scored_items(examples: list[TrainingExample], task: Any, task_name: str) -> list[TrainingExample]:
    """The training examples less those whose prompt repeats a test or validation item's (compared without case,
    spacing or punctuation): real benchmark files hold such repeats across their splits, and training on a scored
    item inflates the score it is then given. Each removal is said in one warning; a file that is nothing but
    scored items is refused."""
    config = task.config
    scored = set()
    for split in dict.fromkeys(s for s in (config.test_split, config.validation_split) if s):
        if task.dataset is not None and split in task.dataset and split != config.training_split:
            docs = task.test_docs() if split == config.test_split else task.validation_docs()
            scored.update(_plain(_description(task, doc) + task.doc_to_text(doc)) for doc in docs or [])
    kept = [example for example in examples if _plain(example.prompt) not in scored]
    if len(kept) < len(examples):
        if not kept:
            raise MedbenchError(f"every training example of task {task_name!r} repeats a test or validation item",
                                "train on a file without the items it is scored on (--data-file TASK:train=PATH)")
        warnings.warn(f"task {task_name!r}: {len(examples) - len(kept)} of {len(examples)} training examples repeat "
                      "a test or validation item (same prompt) and are left out of training", stacklevel=2)
    return kept


def answer_grader(task_name: str, task_metadata: dict[str, Any] | None = None):
    """``grade(doc, answer) -> bool | None``: whether the task's own scoring (its ``process_results`` on its primary
    metric) counts a free-text answer correct, so that a trainer judges a model's answer as the evaluation will
    (aliases, paraphrase rules and all); None where the task cannot say: a multiple-choice task scores
    log-likelihoods, not text. A graded metric (ROUGE) reads as correct only at 1.0, a copy of the reference."""
    from medbench.tasks import build_registry, load_tasks

    entry = build_registry().get(task_name)
    task = load_tasks([task_name], None, {task_name: task_metadata} if task_metadata else None)[task_name]
    metrics = [m.get("metric") for m in (task.config.metric_list or []) if isinstance(m, dict)]
    metric = (entry.metadata or {}).get("primary_metric") or (metrics[0] if metrics else None)
    if task.config.output_type != "generate_until" or not metric:
        return lambda doc, answer: None

    def grade(doc: dict[str, Any], answer: str) -> bool | None:
        try:
            value = task.process_results(doc, [answer]).get(metric)
        except Exception:  # noqa: BLE001 - a scorer that cannot read this answer says nothing about it
            return None
        if isinstance(value, bool):
            return value
        return bool(value) if isinstance(value, (int, float)) and value in (0, 1) else None

    return grade


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


@dataclass
class SelectionOptions:
    """Training-row options any trainer's config gets by inheriting this first (``class MyOptions(
    SelectionOptions, TrlOptions)``; it then also runs the next class's ``__post_init__``) and passing them to
    :func:`select_examples`."""

    exclude_difficulty: list[str] | None = None  # leave out examples of these difficulty tiers (e.g. hard) first
    max_examples: int | None = None  # train on N examples: a seeded sample keeping the label shares, in data order

    def __post_init__(self):
        if self.max_examples is not None and (isinstance(self.max_examples, bool) or self.max_examples < 1):
            raise MedbenchError(f"--max-examples must be positive, got {self.max_examples}",
                                "pass a positive --max-examples")
        if self.exclude_difficulty is not None:
            values = [value.strip() if isinstance(value, str) else value for value in self.exclude_difficulty]
            if not values or any(not isinstance(value, str) or not value for value in values):
                raise MedbenchError(f"--exclude-difficulty {self.exclude_difficulty!r} is not a list of tier names",
                                    "pass --exclude-difficulty hard (or easy,hard), or leave it out")
            if len(set(values)) < len(values):
                raise MedbenchError(f"--exclude-difficulty names a tier twice ({', '.join(values)})",
                                    "name each tier once")
            self.exclude_difficulty = values
        after = getattr(super(), "__post_init__", None)  # the next config class's checks (TrlOptions)
        if after is not None:
            after()


def exclude_by_difficulty(examples: list[TrainingExample], exclude: list[str] | None,
                          source: str = "the training data") -> list[TrainingExample]:
    """``examples`` without those whose difficulty is in ``exclude`` (order kept); None or [] keeps all."""
    if not exclude:
        return examples
    wanted = [str(value).strip() for value in exclude]
    if any(not value for value in wanted):
        raise MedbenchError(f"--exclude-difficulty has an empty value ({exclude!r})",
                            "name the tiers to leave out, e.g. --exclude-difficulty hard")
    unlabelled = sum(example.difficulty is None for example in examples)
    if unlabelled:
        raise MedbenchError(f"--exclude-difficulty needs a difficulty label on every example, and {unlabelled} of "
                            f"{len(examples)} in {source} have none",
                            "set metadata.difficulty_field in the task's YAML (or fill the field), or drop "
                            "--exclude-difficulty")
    tiers = sorted({str(example.difficulty) for example in examples})
    unknown = [value for value in wanted if value not in tiers]
    if unknown:
        raise MedbenchError(f"--exclude-difficulty {', '.join(unknown)}: {source} has no such difficulty",
                            f"use one of {', '.join(tiers)}")
    kept = [example for example in examples if str(example.difficulty) not in wanted]
    if not kept:
        raise MedbenchError(f"--exclude-difficulty {', '.join(wanted)} leaves none of the {len(examples)} examples "
                            f"of {source}", "exclude fewer tiers")
    return kept


def stratified_sample(examples: list[TrainingExample], n: int, seed: int) -> list[TrainingExample]:
    """``n`` of ``examples``, drawn with ``seed``, each label keeping its share, in their original order.

    Within each label the order is a seeded shuffle; labels take turns by Sainte-Lague's divisor method (next
    pick: the label with the largest count / (taken + 0.5)), ties going to a seeded order of the labels. The
    picks form one sequence whatever ``n``, so a smaller sample is part of a larger one under the same seed.
    """
    if n >= len(examples):
        return list(examples)
    rng = random.Random(f"medbench.stratified_sample:{seed}")  # a str seed: stable across processes
    strata: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        strata.setdefault(str(example.answer), []).append(index)
    for indices in strata.values():  # in first-appearance order, so the draw depends on the data and seed only
        rng.shuffle(indices)
    labels = list(strata)
    rng.shuffle(labels)
    heap = [(-len(strata[label]) / 0.5, rank, label) for rank, label in enumerate(labels)]
    heapq.heapify(heap)
    taken = dict.fromkeys(labels, 0)
    chosen = []
    for _ in range(n):
        _, rank, label = heapq.heappop(heap)
        chosen.append(strata[label][taken[label]])
        taken[label] += 1
        if taken[label] < len(strata[label]):
            heapq.heappush(heap, (-len(strata[label]) / (taken[label] + 0.5), rank, label))
    return [examples[index] for index in sorted(chosen)]


def select_examples(examples: list[TrainingExample], max_examples: int | None = None, seed: int = 0,
                    exclude_difficulty: list[str] | None = None,
                    source: str = "the training data") -> list[TrainingExample]:
    """What a trainer trains on (module docstring): ``exclude_difficulty`` first, then a seeded label-stratified
    sample of ``max_examples``. Asking for more than is left is an error, never a silent cut: a study's "256
    shots" must not quietly train on 200."""
    kept = exclude_by_difficulty(examples, exclude_difficulty, source)
    if max_examples is None:
        return kept
    if max_examples > len(kept):
        held = f"holds only {len(kept)} examples" + (
            f" once difficulty {', '.join(exclude_difficulty)} is left out" if exclude_difficulty else "")
        raise MedbenchError(f"--max-examples {max_examples} but {source} {held}",
                            f"pass --max-examples {len(kept)} or fewer, or train on your own larger data file")
    return stratified_sample(kept, max_examples, seed)
