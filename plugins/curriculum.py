"""The ``curriculum`` trainer (an ordering of the training data that wraps another trainer) and the
``medbench difficulty`` command (LLM-defined difficulty).

The six orderings of the human-inspired learning study (seed 003 in the project's study summaries), as pure functions over TrainingExamples. They
follow the definitions of the study's public reference code (Oxford-AI-for-Society/human-learning-strategies; read,
not copied), and tests/test_orderings_reference.py pins each one with property tests:

- ``random``: a shuffle seeded with the run's seed (and nothing else);
- ``blocked``: all examples of one category, then the next (the category's "blocked order");
- ``interleaved``: each category's blocked order cut in three contiguous parts (sizes differing by at most one, the
  larger ones first); part 1 of every category, then part 2 of every category, then part 3;
- ``curriculum``: easy, then medium, then hard;
- ``blocked_curriculum``: blocked, each block easy to hard;
- ``interleaved_curriculum``: the easy tier, then medium, then hard, with the categories in blocked order inside
  each tier (interleaving with the difficulty tiers as the three parts of each category).

Categories come in the order they first appear in the data, and examples keep their data order within a group,
so every ordering but ``random`` is fully determined by the data. Difficulty is a tier (easy/medium/hard; the
study's MedQA thresholds on LLM difficulty: easy <= 0.66 < medium <= 0.80 < hard).

Where categories and difficulty come from, so that every arm runs on a user's own MedQA/MedMCQA file, not only on
the bundled sample:

- human labels from a document field (``category_field`` / ``difficulty_field``; default: the task's metadata), or
  from a file keyed by item (``category_file`` / ``difficulty_file``: JSONL or CSV rows with ``key`` - see
  example_key; ``medbench difficulty`` writes the key and doc_id of every item - and ``category`` or ``tier``);
- LLM-defined difficulty: ``difficulty_models`` (or a ``medbench difficulty`` file): 1 - mean P(correct option)
  over an ensemble. A small model's P(correct) is dominated by answer-letter bias (the embedded model prefers
  "A" so strongly that every bundled item's tier would be decided by whether its gold letter is A), so P(correct)
  is averaged over the cyclic shifts of the option order, the options re-lettered so the gold answer sits under
  every letter once (all k shifts by default; ``option_orders: N`` takes a seeded random N of them per item). This
  is the study's "shuffle the answer options" remedy, made exhaustive: with all shifts a pure letter bias adds the
  same to every item. Tasks whose documents are not in medbench's multiple-choice shape (``choices`` + ``gold``)
  are scored in their one order;
- ``category_source: llm_clusters``: categories made by clustering the questions, for data without subject labels.
  The study clustered questions with an LLM embedding; medbench uses TF-IDF over the question and its options and
  k-means (``n_clusters``, default 6 - the bundled samples' subject count -, seeded by ``cluster_seed``): it needs no
  model, so a sweep can plan it and it costs milliseconds, and it is deterministic. It is a weak topic model on
  little data (on the 60 bundled MedQA items it agrees with the human subjects at an adjusted Rand index of
  0.06-0.19 over five seeds, chance 0); for the study's own choice, cluster LLM embeddings yourself and pass the
  labels as ``category_file``.
  Clusters are named cluster-1, cluster-2, ... by first appearance.

``plan_check`` tells a sweep, before any model loads, why a step cannot run on a task's data (no difficulty labels,
a single category) - the same reasons training would stop with.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.training import (
    CheckpointInfo,
    TrainRequest,
    build_config,
    get_trainer,
    read_config_file,
    run_trainer,
    trainer_registry,
)
from medbench.trainingdata import TrainingExample, data_file_metadata, examples_hash

TIERS = ("easy", "medium", "hard")
INTERLEAVE_CHUNKS = 3  # the study's definition of interleaving
EASY_MAX, MEDIUM_MAX = 0.66, 0.80  # the study's MedQA tiers: easy <= 0.66 < medium <= 0.80 < hard


def _categories(examples: list[TrainingExample]) -> dict[str, list[TrainingExample]]:
    groups: dict[str, list[TrainingExample]] = {}
    for example in examples:
        if example.category is None:
            raise MedbenchError(f"training example {example.doc_id} has no category",
                                "set metadata.category_field in the task YAML, or pass --category-field")
        groups.setdefault(str(example.category), []).append(example)
    return groups


def tier_index(example: TrainingExample) -> int:
    label = str(example.difficulty).strip().lower() if example.difficulty is not None else None
    if label not in TIERS:
        raise MedbenchError(f"training example {example.doc_id} has difficulty {example.difficulty!r}, not one of "
                            f"{', '.join(TIERS)}", "pass --difficulty-file from `medbench difficulty`, or "
                            "--difficulty-field naming a field of easy/medium/hard labels")
    return TIERS.index(label)


def _tiers(examples: list[TrainingExample]) -> list[list[TrainingExample]]:
    return [[e for e in examples if tier_index(e) == i] for i in range(len(TIERS))]


def _chunks(examples: list[TrainingExample], count: int) -> list[list[TrainingExample]]:
    """``count`` contiguous chunks, sizes differing by at most one, the larger ones first."""
    size, extra = divmod(len(examples), count)
    bounds = [i * size + min(i, extra) for i in range(count + 1)]
    return [examples[bounds[i]:bounds[i + 1]] for i in range(count)]


def _round_robin(chunks_by_category: list[list[list[TrainingExample]]]) -> list[TrainingExample]:
    rounds = max((len(chunks) for chunks in chunks_by_category), default=0)
    return [e for i in range(rounds) for chunks in chunks_by_category for e in chunks[i]]


def random_shuffle(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    return shuffled


def blocked(examples: list[TrainingExample]) -> list[TrainingExample]:
    return [e for group in _categories(examples).values() for e in group]


def interleaved(examples: list[TrainingExample]) -> list[TrainingExample]:
    return _round_robin([_chunks(group, INTERLEAVE_CHUNKS) for group in _categories(examples).values()])


def curriculum(examples: list[TrainingExample]) -> list[TrainingExample]:
    return [e for tier in _tiers(examples) for e in tier]


def blocked_curriculum(examples: list[TrainingExample]) -> list[TrainingExample]:
    return [e for group in _categories(examples).values() for e in curriculum(group)]


def interleaved_curriculum(examples: list[TrainingExample]) -> list[TrainingExample]:
    return _round_robin([_tiers(group) for group in _categories(examples).values()])


DETERMINISTIC_ORDERINGS: dict[str, Callable[[list[TrainingExample]], list[TrainingExample]]] = {
    "blocked": blocked, "interleaved": interleaved, "curriculum": curriculum,
    "blocked_curriculum": blocked_curriculum, "interleaved_curriculum": interleaved_curriculum,
}
ORDERINGS = ("random", *DETERMINISTIC_ORDERINGS)


def order_examples(examples: list[TrainingExample], ordering: str, seed: int) -> list[TrainingExample]:
    if ordering == "random":
        # The one ordering that needs randomness; seeded so a run (and its data hash) can be repeated exactly.
        return random_shuffle(examples, seed)
    if ordering not in DETERMINISTIC_ORDERINGS:
        raise MedbenchError(f"unknown ordering {ordering!r}", f"pass --ordering one of {', '.join(ORDERINGS)}")
    return DETERMINISTIC_ORDERINGS[ordering](examples)


# --- categories and difficulty from fields, files and clusters ------------------------------------------------

def example_key(example: TrainingExample) -> str:
    """Identifies a training item by content, so a difficulty file cannot silently apply to other data."""
    return hashlib.blake2b(json.dumps([example.prompt, example.completion]).encode(), digest_size=12).hexdigest()


def tier_of(score: float, easy_max: float = EASY_MAX, medium_max: float = MEDIUM_MAX) -> str:
    return "easy" if score <= easy_max else "medium" if score <= medium_max else "hard"


def read_keyed_file(path: str | Path, column: str, what: str) -> dict[str, str]:
    """``key`` -> ``column`` from a JSONL file (one object a line) or a CSV file with a header row."""
    path = Path(path).expanduser()
    how = f"write JSON lines or CSV with the columns key and {column} (`medbench difficulty` lists every item's key)"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MedbenchError(f"{what} file {path} does not exist", how) from None
    try:
        if path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(text.splitlines()))
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return {str(row["key"]): row[column] for row in rows}
    except (json.JSONDecodeError, KeyError, TypeError, csv.Error):
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


# --- the trainer -----------------------------------------------------------------------------------------------

CATEGORY_SOURCES = ("task", "llm_clusters")
NEEDS_CATEGORIES = ("blocked", "interleaved", "blocked_curriculum", "interleaved_curriculum")
NEEDS_TIERS = ("curriculum", "blocked_curriculum", "interleaved_curriculum")


@dataclass
class CurriculumConfig:
    base: str | None = None  # the wrapped trainer: any registered trainer name
    ordering: str | None = None  # one of ORDERINGS
    base_config: str | None = None  # YAML file of the wrapped trainer's options
    base_options: dict[str, Any] | None = None  # the wrapped trainer's options inline (over base_config's)
    difficulty_file: str | None = None  # JSONL/CSV of key + tier (`medbench difficulty` writes one); else the field
    difficulty_models: list[str] | None = None  # LLM-ensemble difficulty computed here (cached), as `difficulty`
    option_orders: int | None = None  # with difficulty_models: None = every cyclic shift of the options; N = N of them
    category_field: str | None = None  # document field of the category (default: the task's category_field)
    difficulty_field: str | None = None  # document field of easy/medium/hard labels (default: the task's)
    category_file: str | None = None  # JSONL/CSV of key + category, over the field
    category_source: str = "task"  # task: the field or category_file; llm_clusters: clusters of the questions
    n_clusters: int = 6  # llm_clusters: how many categories
    cluster_seed: int = 0  # llm_clusters: k-means seed (fixed, so the run's seed varies training only)

    def __post_init__(self):
        if self.category_source not in CATEGORY_SOURCES:
            raise MedbenchError(f"unknown category_source {self.category_source!r}",
                                f"pass --category-source with one of {', '.join(CATEGORY_SOURCES)}")
        if self.category_source == "llm_clusters" and self.category_file:
            raise MedbenchError("curriculum got both --category-file and --category-source llm_clusters",
                                "pass one source of categories")
        if self.difficulty_file and self.difficulty_models:
            raise MedbenchError("curriculum got both --difficulty-file and --difficulty-models",
                                "pass one: a file from `medbench difficulty`, or the ensemble to compute it with")
        if self.option_orders is not None and self.option_orders < 1:
            raise MedbenchError(f"--option-orders must be 1 or more, got {self.option_orders}",
                                "drop --option-orders to score every cyclic order of the options")


def annotated(config: CurriculumConfig, examples: list[TrainingExample]) -> list[TrainingExample]:
    """Categories and human difficulty from the configured fields, files or clusters (no model)."""
    if config.category_field:
        examples = with_field(examples, "category", config.category_field)
    if config.difficulty_field:
        examples = with_field(examples, "difficulty", config.difficulty_field)
    if config.category_file:
        examples = with_keyed_file(examples, "category", read_keyed_file(config.category_file, "category",
                                                                         "category"), config.category_file)
    if config.category_source == "llm_clusters":
        examples = cluster_categories(examples, config.n_clusters, config.cluster_seed)
    if config.difficulty_file:
        examples = with_difficulty_file(examples, config.difficulty_file)
    return examples


def check_orderable(examples: list[TrainingExample], ordering: str, task: str, check_tiers: bool = True) -> None:
    """Stop with the reason when ``ordering`` has nothing to order by: no categories, a single category (blocked
    would equal interleaved), or missing difficulty labels."""
    if ordering in NEEDS_CATEGORIES:
        missing = [e for e in examples if e.category is None]
        fix = "pass category_field, category_file, or category_source: llm_clusters"
        if missing:
            raise MedbenchError(f"no category for {len(missing)} of {len(examples)} items of {task}'s training data "
                                f"(e.g. training example {missing[0].doc_id}), which {ordering} needs", fix)
        distinct = {str(e.category) for e in examples}
        if len(distinct) < 2:
            raise MedbenchError(f"{task}'s training data has a single category ({distinct.pop()!r}), so {ordering} "
                                "would not order anything by category", fix)
    if check_tiers and ordering in NEEDS_TIERS:
        unlabelled = [e for e in examples if e.difficulty is None]
        if len(unlabelled) == len(examples):
            raise MedbenchError(f"no human difficulty labels in {task}'s training data, which {ordering} needs",
                                "pass difficulty_file or difficulty_field, or difficulty_models for LLM difficulty")
        for example in examples:
            tier_index(example)


def capped_for_base(base_config: Any, examples: list[TrainingExample], task: str) -> tuple[Any, list[TrainingExample]]:
    """The base trainer's ``max_examples`` taken here, in data order and before ordering: capping an ordered list
    would keep only its first categories or its easy items. The base then trains on all it is given."""
    limit = getattr(base_config, "max_examples", None)
    if limit is None:
        return base_config, examples
    if limit > len(examples):
        raise MedbenchError(f"--max-examples {limit} but task {task!r}'s training data holds only {len(examples)} "
                            "examples", f"pass max_examples {len(examples)} or fewer, or train on your own larger data "
                                        "file")
    return dataclasses.replace(base_config, max_examples=None), examples[:limit]


class CurriculumTrainer:
    name = "curriculum"
    plot_factors = {"ordering": "curriculum ordering"}  # the leaderboard page plots scores against the ordering
    description = "orders the training data (random, blocked, interleaved, curriculum, ...) for a --base trainer"
    config_class = CurriculumConfig

    def _base(self, config: CurriculumConfig) -> tuple[Any, Any]:
        if not config.base:
            others = sorted(name for name in trainer_registry() if name != self.name)
            raise MedbenchError("curriculum needs the trainer it wraps",
                                f"pass --base NAME (installed: {', '.join(others) or 'none'})")
        if config.ordering not in ORDERINGS:
            raise MedbenchError(f"curriculum needs an ordering, got {config.ordering!r}",
                                f"pass --ordering one of {', '.join(ORDERINGS)}")
        base = get_trainer(config.base)
        file_values = read_config_file(config.base_config) if config.base_config else {}
        return base, build_config(base.config_class, file_values, dict(config.base_options or {}), base.name)

    def plan_check(self, task: str, options: dict[str, Any], data_files: dict[str, str] | None = None) -> str | None:
        """Why this step cannot run on ``task``'s training data, in one line, or None. Reads the documents only
        (no model): categories and human difficulty are checked; LLM difficulty is computed at training time."""
        from medbench.trainingdata import load_training_examples

        # Options it does not take, or a bad ordering, are the recipe's error everywhere: raised, not a skip reason.
        config = build_config(CurriculumConfig, {}, dict(options), self.name)
        base, base_config = self._base(config)
        try:
            examples = annotated(config, load_training_examples(task, data_file_metadata(task, data_files)))
            _, examples = capped_for_base(base_config, examples, task)
            check_orderable(examples, config.ordering, task, check_tiers=not config.difficulty_models)
            if config.difficulty_models and not all(e.rejected for e in examples):
                raise MedbenchError(f"task {task!r} is not multiple choice", "LLM difficulty needs answer options")
        except MedbenchError as exc:
            return exc.one_line()
        return None

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        config: CurriculumConfig = request.config
        base, base_config = self._base(config)
        recorded_config = base_config
        examples = annotated(config, request.training_examples())
        base_config, examples = capped_for_base(base_config, examples, request.task)
        if config.difficulty_models:
            examples = with_difficulty_file(examples, cached_difficulty_file(
                request.task, examples, config.difficulty_models, request.load_options, config.option_orders,
                request.task_metadata or None))
        check_orderable(examples, config.ordering, request.task)
        ordered = order_examples(examples, config.ordering, request.seed)

        # run_trainer: a crash inside the wrapped trainer names that trainer's plugin, not curriculum.
        checkpoints = run_trainer(base, dataclasses.replace(request, config=base_config, examples=ordered,
                                                         keep_order=True))
        for checkpoint in checkpoints:
            checkpoint.metrics = {**checkpoint.metrics, "ordering": config.ordering, "base_trainer": base.name}
            checkpoint.trainer_config = dataclasses.asdict(recorded_config)
            checkpoint.data_hash = checkpoint.data_hash or examples_hash(ordered)
        return checkpoints


# --- medbench difficulty ---------------------------------------------------------------------------------------

# One way of asking an item: (prompt, options) with the gold option first.
Variant = tuple[str, list[str]]


def is_mcq_doc(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("choices"), list) and len(doc["choices"]) > 1 and isinstance(doc.get("gold"), int)


def render_shift(task: Any, example: TrainingExample, shift: int) -> Variant:
    """The item with its options rotated by ``shift`` (option j moves to j - shift) and rendered by the task's own
    templates, so the letters follow: the gold answer's letter moves with it."""
    doc = example.doc
    if not is_mcq_doc(doc) or shift == 0:
        return example.prompt, [example.completion, *example.rejected]
    choices = doc["choices"]
    k = len(choices)
    rotated = {**doc, "choices": choices[shift:] + choices[:shift], "gold": (doc["gold"] - shift) % k}
    config = task.config
    prompt = (config.description or "") + task.doc_to_text(rotated)
    options = [str(c) for c in task.doc_to_choice(rotated)]
    target = task.doc_to_target(rotated)
    gold = target if isinstance(target, int) else options.index(str(target))
    delimiter = config.target_delimiter
    return prompt, [delimiter + options[gold], *(delimiter + o for i, o in enumerate(options) if i != gold)]


def option_shifts(example: TrainingExample, option_orders: int | None, seed: int) -> list[int]:
    """Cyclic shifts to score: all k by default; ``option_orders`` of them drawn per item from the seed."""
    k = len(example.doc["choices"]) if is_mcq_doc(example.doc) else 1
    if option_orders is None or option_orders >= k:
        return list(range(k))
    return sorted(random.Random(f"{seed}:{example_key(example)}").sample(range(k), option_orders))


def permuted_items(task: Any, examples: list[TrainingExample], option_orders: int | None = None,
                   seed: int = 0) -> list[list[Variant]]:
    return [[render_shift(task, e, shift) for shift in option_shifts(e, option_orders, seed)] for e in examples]


def hflm_scorer(loaded: Any, batch_size: int) -> Callable[[list[tuple[str, str]]], list[float]]:
    """Log-likelihoods of (context, continuation) pairs by lm-eval's HFLM, as evaluation scores them."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size,
              device=str(next(loaded.model.parameters()).device))

    def score(pairs: list[tuple[str, str]]) -> list[float]:
        requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
        return [ll for ll, _greedy in lm.loglikelihood(requests, disable_tqdm=True)]

    return score


def p_correct(scorer: Any, items: list[Any], batch_size: int = 8,
              advance: Callable[[int], None] = lambda n: None) -> list[float]:
    """P(correct option) per item: the softmax over its options' log-likelihoods after the prompt, averaged over
    the item's variants (option orders). ``scorer``: a loaded model (scored by HFLM) or a function from
    (context, continuation) pairs to log-likelihoods; an item: a TrainingExample or a list of variants."""
    import torch

    score = scorer if callable(scorer) else hflm_scorer(scorer, batch_size)
    items = [[(i.prompt, [i.completion, *i.rejected])] if isinstance(i, TrainingExample) else i for i in items]
    probabilities = []
    step = batch_size * 4  # a few batches per call: HFLM sorts each call by length, progress moves between calls
    for start in range(0, len(items), step):
        chunk = items[start:start + step]
        logliks = iter(score([(prompt, option) for variants in chunk for prompt, options in variants
                              for option in options]))
        for variants in chunk:
            per_variant = []
            for _prompt, options in variants:
                scores = torch.tensor([next(logliks) for _ in options], dtype=torch.float64)
                per_variant.append(float(scores.softmax(0)[0]))  # the gold option comes first
            probabilities.append(sum(per_variant) / len(per_variant))
        advance(len(chunk))
    return probabilities


def difficulty_rows(examples: list[TrainingExample], p_by_model: dict[str, list[float]], easy_max: float,
                    medium_max: float) -> list[dict[str, Any]]:
    rows = []
    for i, example in enumerate(examples):
        p = {model: values[i] for model, values in p_by_model.items()}
        score = 1 - sum(p.values()) / len(p)
        rows.append({"key": example_key(example), "doc_id": example.doc_id, "category": example.category,
                     "difficulty": score, "tier": tier_of(score, easy_max, medium_max), "p_correct": p})
    return rows


def load_task(task: str, task_metadata: dict[str, Any] | None = None) -> Any:
    from medbench.tasks import load_tasks

    return load_tasks([task], metadata={task: task_metadata} if task_metadata else None)[task]


def ensemble_difficulty(examples: list[TrainingExample], refs: list[str], task: str, batch_size: int = 8,
                        load_options: Any = None, easy_max: float = EASY_MAX, medium_max: float = MEDIUM_MAX,
                        option_orders: int | None = None, seed: int = 0,
                        task_metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Difficulty rows for ``examples``: 1 - mean P(correct option) over the ensemble ``refs`` and the option
    orders (module docstring), with tiers."""
    import gc

    from medbench.models import resolve_model
    from medbench.progress import new_progress

    if not refs or len(set(refs)) != len(refs):
        raise MedbenchError(f"the difficulty ensemble must list distinct model references, got {refs!r}",
                            "pass each ensemble member once, e.g. --models a,b,c")
    if not all(e.rejected for e in examples):
        raise MedbenchError(f"task {task!r} is not multiple choice", "difficulty needs answer options to score")
    items = permuted_items(load_task(task, task_metadata), examples, option_orders, seed)
    p_by_model: dict[str, list[float]] = {}
    with new_progress() as progress:
        for ref in refs:
            bar = progress.add_task(f"difficulty · {ref} · {task}", total=len(examples), status="")
            loaded = resolve_model(ref, load_options)
            p_by_model[ref] = p_correct(loaded, items, batch_size, lambda n: progress.advance(bar, n))
            del loaded
            gc.collect()  # one model in memory at a time
    return difficulty_rows(examples, p_by_model, easy_max, medium_max)


def cached_difficulty_file(task: str, examples: list[TrainingExample], refs: list[str], load_options: Any,
                           option_orders: int | None = None, task_metadata: dict[str, Any] | None = None) -> Path:
    """The ensemble's difficulty file for these examples, computed once per (examples, ensemble, option orders)."""
    from medbench.models import cache_dir
    from medbench.records import atomic_write_jsonl

    key = hashlib.blake2b(json.dumps([examples_hash(examples), refs, option_orders, "cyclic-v1"]).encode(),
                          digest_size=8).hexdigest()
    path = cache_dir() / "difficulty" / f"{task}-{key}.jsonl"
    if not path.exists():
        atomic_write_jsonl(path, ensemble_difficulty(examples, refs, task, load_options=load_options,
                                                     option_orders=option_orders, task_metadata=task_metadata))
    return path


@click.command("difficulty")
@click.option("--models", required=True, help="Comma-separated model references: the ensemble.")
@click.option("--task", required=True, help="Multiple-choice task whose training split is scored.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="JSON-lines file to write (default: TASK-difficulty.jsonl).")
@click.option("--easy-max", type=float, default=EASY_MAX, show_default=True, help="Highest difficulty still easy.")
@click.option("--medium-max", type=float, default=MEDIUM_MAX, show_default=True,
              help="Highest difficulty still medium.")
@click.option("--option-orders", type=int, default=None,
              help="Score N seeded cyclic orders of each item's options (default: all of them), to cancel letter bias.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --option-orders' draw.")
@click.option("--data-file", "data_file", multiple=True,
              help="Your own data: TASK:SPLIT=PATH (e.g. medqa:train=~/medqa_train.jsonl); repeatable.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
def difficulty_command(models, task, output, easy_max, medium_max, option_orders, seed, data_file, batch_size, device,
                       dtype) -> None:
    """Write 1 - mean P(correct option) over an ensemble for each training item, with easy/medium/hard tiers.

    P(correct) is averaged over the cyclic orders of the options (re-lettered), so answer-letter bias cancels.
    The file feeds `medbench train --plugin curriculum --difficulty-file FILE`.
    """
    from medbench.cli import console
    from medbench.models import LoadOptions
    from medbench.records import atomic_write_jsonl
    from medbench.trainingdata import load_training_examples

    refs = [ref.strip() for ref in models.split(",") if ref.strip()]
    if not 0 <= easy_max < medium_max <= 1:
        raise MedbenchError(f"tier thresholds need 0 <= --easy-max < --medium-max <= 1, got {easy_max}, {medium_max}",
                            "pass e.g. --easy-max 0.66 --medium-max 0.80")
    if batch_size <= 0:
        raise MedbenchError(f"--batch-size must be positive, got {batch_size}", "pass --batch-size 1 or more")
    if option_orders is not None and option_orders < 1:
        raise MedbenchError(f"--option-orders must be 1 or more, got {option_orders}",
                            "drop --option-orders to score every cyclic order")
    files = {}
    for value in data_file:
        target, eq, path = value.partition("=")
        if not eq or not target or not path:
            raise MedbenchError(f"--data-file {value!r} is not TASK:SPLIT=PATH",
                                "write --data-file medqa:train=/path/to/train.jsonl")
        files[target] = path
    metadata = data_file_metadata(task, files)
    rows = ensemble_difficulty(load_training_examples(task, metadata), refs, task, batch_size,
                               LoadOptions(dtype=dtype, device=device), easy_max, medium_max, option_orders, seed,
                               metadata)
    path = Path(output or f"{task}-difficulty.jsonl")
    atomic_write_jsonl(path, rows)
    counts = {tier: sum(row["tier"] == tier for row in rows) for tier in TIERS}
    console.print(f"{len(rows)} items of {task}: " + ", ".join(f"{n} {tier}" for tier, n in counts.items())
                  + f" → {path}", highlight=False)


@hookimpl
def register_trainers(register):
    register(CurriculumTrainer())


@hookimpl
def register_commands(cli):
    cli.add_command(difficulty_command)
