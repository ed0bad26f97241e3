"""The ``curriculum`` trainer (an ordering of the training data that wraps another trainer) and the
``medbench difficulty`` command (LLM-defined difficulty): orderings in ``orderings``, categories and difficulty
labels from fields, files and clusters in ``labels``, LLM-ensemble difficulty in ``difficulty``.

The six orderings of the human-inspired learning study (seed 003 in the project's study summaries), as pure
functions of TrainingExamples and the run's seed. They follow the definitions of the study's public reference code
(Oxford-AI-for-Society/human-learning-strategies; read, not copied), and tests/test_orderings_reference.py pins
each one with property tests:

- ``random``: a shuffle seeded with the run's seed (and nothing else);
- ``blocked``: all examples of one category, then the next (the category's "blocked order");
- ``interleaved``: each category's blocked order cut in three contiguous parts (sizes differing by at most one, the
  larger ones first); part 1 of every category, then part 2 of every category, then part 3;
- ``curriculum``: easy, then medium, then hard;
- ``blocked_curriculum``: blocked, each block easy to hard;
- ``interleaved_curriculum``: the easy tier, then medium, then hard, with the categories in blocked order inside
  each tier (interleaving with the difficulty tiers as the three parts of each category).

The groups are fixed by the data (the categories, tiers easy to hard). The categories are laid out in an order
drawn with the run's seed (orderings.category_order: a seeded hash of their names), not in the data's
first-appearance order: under a decaying learning rate the last block trains at the lowest rate, and a fixed
order would give that to the same subject in every seed, so the seeds' spread would understate a blocked arm's
order variance. Inside each group the examples take a seeded order drawn with the run's seed
(orderings.seeded_order): within each category for
``blocked`` and ``interleaved`` (whose three parts are then contiguous thirds of that order), within each tier for
``curriculum``, within each category's tier for the two curricula. The study's reference code likewise shuffles
within each tier and category and runs several shuffle seeds per ordering: no structure in the data file's row
order leaks into an arm, and every arm's spread over seeds includes order variance, not only the random arm's.
One seed gives one order every time; seeds change the order of the categories and the order inside the groups,
never the groups themselves.

Difficulty is a tier (easy/medium/hard). LLM difficulty scores become tiers by ``tiers``: ``tertiles`` (default:
thirds of the training items by score) or ``thresholds`` (the study's MedQA cut-offs easy <= 0.66 < medium <= 0.80
< hard); orderings.TIER_RULES says why.

``max_examples`` in the base's options is drawn here, before ordering, as a label-stratified sample seeded by
``sample_seed`` (a constant, default 0, not the run's seed): every arm and seed trains on the same rows, so arms
differ in order only, and LLM difficulty scores those rows once.

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
a single category, or - with ``require_real_data`` - the bundled 60-item sample standing in for the real data) -
the same reasons training would stop with - and prints each task's tier counts once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.real_data import real_data_problem  # noqa: F401  (the curriculum's require_real_data; re-exported)
from medbench.training import (
    CheckpointInfo,
    TrainRequest,
    build_config,
    get_trainer,
    option_flag,
    read_config_file,
    run_trainer,
    trainer_registry,
)
from medbench.trainingdata import TrainingExample, data_file_metadata, examples_hash, stratified_sample

from .difficulty import cached_difficulty_file, difficulty_command
from .labels import cluster_categories, read_keyed_file, with_difficulty_file, with_field, with_keyed_file
from .orderings import ORDERINGS, TIER_RULES, TIERS, order_examples, tertile_tiers, tier_counts, tier_index

CATEGORY_SOURCES = ("task", "llm_clusters")
NEEDS_CATEGORIES = ("blocked", "interleaved", "blocked_curriculum", "interleaved_curriculum")
NEEDS_TIERS = ("curriculum", "blocked_curriculum", "interleaved_curriculum")


@dataclass
class CurriculumConfig:
    base: str | None = None  # the wrapped trainer: any registered trainer name
    ordering: str | None = None  # random, blocked, interleaved, curriculum, blocked_curriculum, interleaved_curriculum
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
    tiers: str = "tertiles"  # with difficulty_models: tertiles (thirds by score) or thresholds (0.66/0.80; TIER_RULES)
    require_real_data: bool = False  # stop (plan: skip) on the bundled sample instead of the user's data or the hub
    sample_seed: int = 0  # the base's max_examples draw: fixed, not the run's seed, so all arms share the rows

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
        if self.tiers not in TIER_RULES:
            raise MedbenchError(f"unknown tiers {self.tiers!r}", f"pass --tiers with one of {', '.join(TIER_RULES)}")
        if self.option_orders is not None and self.option_orders < 1:
            raise MedbenchError(f"--option-orders must be 1 or more, got {self.option_orders}",
                                "drop --option-orders to score every cyclic order of the options")

    def ignored_options(self) -> dict[str, str]:
        """Options this ordering, category source or difficulty source never reads (the trainer SDK's hook):
        `medbench train` refuses them when given; a recipe gives one block to every arm of its grid, quietly."""
        inert: dict[str, str] = {}
        if self.ordering not in ORDERINGS:
            return inert  # training names the missing or unknown ordering
        base = self._base_values()
        if self.ordering not in NEEDS_CATEGORIES:
            for name in ("category_field", "category_file", "category_source", "n_clusters", "cluster_seed"):
                inert[name] = f"the {self.ordering} ordering reads no categories ({', '.join(NEEDS_CATEGORIES)} do)"
        elif self.category_source != "llm_clusters":
            for name in ("n_clusters", "cluster_seed"):
                inert[name] = f"only {option_flag('category_source')} llm_clusters makes clusters"
        # difficulty tiers order the curricula; the base trainer's exclude_difficulty reads them under any ordering
        if self.ordering not in NEEDS_TIERS and not base.get("exclude_difficulty"):
            for name in ("difficulty_field", "difficulty_file", "difficulty_models", "option_orders", "tiers"):
                inert[name] = f"the {self.ordering} ordering reads no difficulty ({', '.join(NEEDS_TIERS)} do)"
        if not self.difficulty_models:
            for name in ("option_orders", "tiers"):
                inert.setdefault(name, f"only {option_flag('difficulty_models')} scores difficulty into tiers")
        if base.get("max_examples") is None:
            inert["sample_seed"] = "it draws the base trainer's max_examples, and none is given"
        return inert

    def _base_values(self) -> dict[str, Any]:
        """The wrapped trainer's options as given (base_config under base_options), unchecked: training checks them."""
        try:
            values = dict(read_config_file(self.base_config)) if self.base_config else {}
        except MedbenchError:
            return {"max_examples": "unknown", "exclude_difficulty": "unknown"}  # the base's own error says why
        values.update({str(key).replace("-", "_"): value for key, value in (self.base_options or {}).items()})
        return values


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
                                "pass difficulty_file (key + tier rows: per-item easy/medium/hard labels, as LEK's from "
                                "exam statistics) or difficulty_field, or difficulty_models for LLM difficulty")
        for example in examples:
            tier_index(example)


def capped_for_base(base_config: Any, examples: list[TrainingExample], task: str,
                    sample_seed: int = 0) -> tuple[Any, list[TrainingExample]]:
    """The base trainer's ``max_examples`` taken here, before ordering (capping an ordered list would keep only its
    first categories or its easy items): a label-stratified sample drawn with ``sample_seed``, a constant rather than
    the run's seed, so every arm and seed trains on the same rows (and LLM difficulty scores them once); kept in data
    order. The base then trains on all it is given."""
    limit = getattr(base_config, "max_examples", None)
    if limit is None:
        return base_config, examples
    if limit > len(examples):
        raise MedbenchError(f"--max-examples {limit} but task {task!r}'s training data holds only {len(examples)} "
                            "examples", f"pass max_examples {len(examples)} or fewer, or train on your own larger data "
                                        "file")
    return dataclasses.replace(base_config, max_examples=None), stratified_sample(examples, limit, sample_seed)


_LOADED: dict[str, tuple[list[TrainingExample], dict[str, Any]]] = {}  # plan time: one load per task and data
_ANNOTATED: dict[str, list[TrainingExample]] = {}
_REPORTED: set[str] = set()


def _stamp(*paths: Any) -> list[Any]:
    """What identifies files' contents cheaply within one planning process: path, size and mtime."""
    stamps = []
    for path in paths:
        try:
            stat = Path(str(path)).expanduser().stat()
            stamps.append([str(path), stat.st_size, stat.st_mtime_ns])
        except OSError:
            stamps.append([str(path), None, None])
    return stamps


def _remember(cache: dict[str, Any], key: str, make: Any) -> Any:
    if key not in cache:
        if len(cache) >= 8:
            cache.pop(next(iter(cache)))
        cache[key] = make()
    return cache[key]


def examples_with_source(task: str, metadata: dict[str, Any] | None) -> tuple[list[TrainingExample], dict[str, Any]]:
    """The task's training examples and where its data came from (task_facts.data_source: kind bundled / file /
    hub, ...; task_hub: the hub data set the task's YAML names)."""
    from medbench.task_facts import data_source
    from medbench.tasks import build_registry, load_tasks
    from medbench.trainingdata import examples_from_task

    registry = build_registry()
    entry = registry.get(task)
    loaded = load_tasks([task], registry, {task: metadata} if metadata else None)[task]
    source = {**data_source(entry, loaded), "task_hub": entry.metadata.get("hub")}
    return examples_from_task(loaded, {**entry.metadata, **(metadata or {})}), source


def report_tiers(task: str, config: CurriculumConfig, examples: list[TrainingExample], when: str) -> dict[str, int] | None:
    """Print how many training items each difficulty tier holds (at plan time once per message), and return the
    counts; at plan time LLM tiers exist only as tertiles (their sizes are known before any model scores an item)."""
    from medbench.console import terminal_safe
    from medbench.progress import console

    if config.difficulty_models and when == "plan":
        if config.tiers != "tertiles":
            return None
        tiers = tertile_tiers([0.0] * len(examples))  # the sizes of the thirds, whatever the scores
        counts = {tier: tiers.count(tier) for tier in TIERS}
        source = "LLM ensemble, tertiles (scored when training)"
    else:
        counts = tier_counts(examples)
        source = f"LLM ensemble, {config.tiers}" if config.difficulty_models else "human labels"
    message = (f"curriculum · {task} ({when}): difficulty tiers from {source}: "
               + ", ".join(f"{n} {tier}" for tier, n in counts.items()) + f" of {len(examples)} training items")
    if when != "plan" or message not in _REPORTED:  # a plan checks many cells on the same data: once each there
        _REPORTED.add(message)
        console.print(terminal_safe(message), highlight=False, soft_wrap=True)  # task and tier names from files
    return counts


class CurriculumTrainer:
    name = "curriculum"
    plot_factors = {"ordering": "curriculum ordering"}  # the leaderboard page plots scores against the ordering
    description = "orders the training data (random, blocked, interleaved, curriculum, ...) for a --base trainer"
    config_class = CurriculumConfig

    def _base(self, config: CurriculumConfig) -> tuple[Any, Any]:
        if not config.base or config.base == self.name:  # itself: it would ask itself for a trainer to wrap
            others = sorted(name for name in trainer_registry() if name != self.name)
            raise MedbenchError("curriculum cannot wrap itself (--base curriculum)" if config.base else
                                "curriculum needs the trainer it wraps",
                                f"pass --base NAME (installed: {', '.join(others) or 'none'})")
        if config.ordering not in ORDERINGS:
            raise MedbenchError(f"curriculum needs an ordering, got {config.ordering!r}",
                                f"pass --ordering one of {', '.join(ORDERINGS)}")
        base = get_trainer(config.base)
        file_values = read_config_file(config.base_config) if config.base_config else {}
        return base, build_config(base.config_class, file_values, dict(config.base_options or {}), base.name)

    def plan_check(self, task: str, options: dict[str, Any], data_files: dict[str, str] | None = None) -> str | None:
        """Why this step cannot run on ``task``'s training data, in one line, or None. Reads the documents only
        (no model): the data's source, categories and human difficulty are checked; LLM difficulty is computed at
        training time. The data is loaded (and clustered) once per task and data for the whole plan."""
        # Options it does not take, or a bad ordering, are the recipe's error everywhere: raised, not a skip reason.
        config = build_config(CurriculumConfig, {}, dict(options), self.name)
        base, base_config = self._base(config)
        metadata = data_file_metadata(task, data_files)
        files = sorted(((metadata or {}).get("data_files") or {}).items())
        loaded_key = json.dumps([task, files, _stamp(*(path for _, path in files)), os.environ.get("HF_HUB_OFFLINE")])
        try:
            examples, source = _remember(_LOADED, loaded_key, lambda: examples_with_source(task, metadata))
            problem = config.require_real_data and real_data_problem(task, source, metadata)
            if problem:
                raise problem
            labels = {f.name: getattr(config, f.name) for f in dataclasses.fields(CurriculumConfig)
                      if f.name in ("category_field", "difficulty_field", "category_file", "category_source",
                                    "n_clusters", "cluster_seed", "difficulty_file")}
            annotated_key = json.dumps([loaded_key, labels, _stamp(config.category_file, config.difficulty_file)],
                                       default=str)
            examples = _remember(_ANNOTATED, annotated_key, lambda: annotated(config, examples))
            _, examples = capped_for_base(base_config, examples, task, config.sample_seed)
            check_orderable(examples, config.ordering, task, check_tiers=not config.difficulty_models)
            if config.difficulty_models and not all(e.rejected for e in examples):
                raise MedbenchError(f"task {task!r} is not multiple choice", "LLM difficulty needs answer options")
        except MedbenchError as exc:
            return exc.one_line()
        if config.ordering in NEEDS_TIERS:
            report_tiers(task, config, examples, "plan")
        return None

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        config: CurriculumConfig = request.config
        base, base_config = self._base(config)
        recorded_config = base_config
        if config.require_real_data and request.examples is None:  # examples a caller hands over are its own data
            request.examples, source = examples_with_source(request.task, request.task_metadata or None)
            problem = real_data_problem(request.task, source, request.task_metadata)
            if problem:
                raise problem
        examples = annotated(config, request.training_examples())
        base_config, examples = capped_for_base(base_config, examples, request.task, config.sample_seed)
        if config.difficulty_models:
            examples = with_difficulty_file(examples, cached_difficulty_file(
                request.task, examples, config.difficulty_models, request.load_options, config.option_orders,
                request.task_metadata or None, config.tiers))
        check_orderable(examples, config.ordering, request.task)
        tiers = report_tiers(request.task, config, examples, "train") if config.ordering in NEEDS_TIERS else None
        ordered = order_examples(examples, config.ordering, request.seed)

        # run_trainer: a crash inside the wrapped trainer names that trainer's plugin, not curriculum.
        checkpoints = run_trainer(base, dataclasses.replace(request, config=base_config, examples=ordered,
                                                         keep_order=True))
        for checkpoint in checkpoints:
            checkpoint.metrics = {**checkpoint.metrics, "ordering": config.ordering, "base_trainer": base.name,
                                  **({"difficulty_tiers": tiers} if tiers else {})}
            checkpoint.trainer_config = dataclasses.asdict(recorded_config)
            checkpoint.data_hash = checkpoint.data_hash or examples_hash(ordered)
        return checkpoints


@hookimpl
def register_trainers(register):
    register(CurriculumTrainer())


@hookimpl
def register_commands(cli):
    cli.add_command(difficulty_command)
