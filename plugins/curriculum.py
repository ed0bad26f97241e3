"""The ``curriculum`` trainer (an ordering of the training data that wraps another trainer) and the
``medbench difficulty`` command (LLM-defined difficulty).

The six orderings of the human-inspired learning study (DESIGN.md), as pure functions over TrainingExamples:

- ``random``: a shuffle seeded with the run's seed;
- ``blocked``: all examples of one category, then the next;
- ``interleaved``: each category split into 3 contiguous chunks; chunk 1 of every category, then chunk 2, then 3;
- ``curriculum``: easy, then medium, then hard;
- ``blocked_curriculum``: blocked, each block easy to hard;
- ``interleaved_curriculum``: the easy examples of every category, then the medium ones, then the hard ones
  (interleaved with the difficulty tiers as the 3 chunks of each category).

Categories come in the order they first appear in the data, and examples keep their data order within a group,
so every ordering but ``random`` is fully determined by the data. Difficulty is a tier (easy/medium/hard): a
human label from the task's ``difficulty_field``, or the tier written by ``medbench difficulty``.
"""

from __future__ import annotations

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
    trainer_registry,
)
from medbench.trainingdata import TrainingExample, examples_hash

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
    rounds = max(len(chunks) for chunks in chunks_by_category)
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


# --- difficulty files ------------------------------------------------------------------------------------------

def example_key(example: TrainingExample) -> str:
    """Identifies a training item by content, so a difficulty file cannot silently apply to other data."""
    return hashlib.blake2b(json.dumps([example.prompt, example.completion]).encode(), digest_size=12).hexdigest()


def tier_of(score: float, easy_max: float = EASY_MAX, medium_max: float = MEDIUM_MAX) -> str:
    return "easy" if score <= easy_max else "medium" if score <= medium_max else "hard"


def read_difficulty_tiers(path: str | Path) -> dict[str, str]:
    path = Path(path)
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {row["key"]: row["tier"] for row in rows}
    except FileNotFoundError:
        raise MedbenchError(f"difficulty file {path} does not exist",
                            "write it with `medbench difficulty --models a,b --task TASK --output FILE`") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise MedbenchError(f"difficulty file {path} is not a `medbench difficulty` output (JSON lines with key "
                            "and tier)", "rewrite it with `medbench difficulty`") from None


def with_difficulty_file(examples: list[TrainingExample], path: str | Path) -> list[TrainingExample]:
    tiers = read_difficulty_tiers(path)
    missing = [e for e in examples if example_key(e) not in tiers]
    if missing:
        raise MedbenchError(f"difficulty file {path} has no entry for {len(missing)} of {len(examples)} training "
                            f"examples (e.g. example {missing[0].doc_id})",
                            "recompute it with `medbench difficulty` on this task and data")
    return [dataclasses.replace(e, difficulty=tiers[example_key(e)]) for e in examples]


def with_field(examples: list[TrainingExample], attribute: str, field_name: str) -> list[TrainingExample]:
    """Take ``attribute`` (category or difficulty) from another field of the task's documents."""
    if not any(field_name in e.doc for e in examples):
        fields = ", ".join(sorted(examples[0].doc)) if examples else "none"
        raise MedbenchError(f"the training documents have no field {field_name!r}", f"their fields are: {fields}")
    return [dataclasses.replace(e, **{attribute: e.doc.get(field_name)}) for e in examples]


# --- the trainer -----------------------------------------------------------------------------------------------

@dataclass
class CurriculumConfig:
    base: str | None = None  # the wrapped trainer: any registered trainer name
    ordering: str | None = None  # one of ORDERINGS
    base_config: str | None = None  # YAML file of the wrapped trainer's options
    base_options: dict[str, Any] | None = None  # the wrapped trainer's options inline (over base_config's)
    difficulty_file: str | None = None  # from `medbench difficulty`; else the task's difficulty field
    difficulty_models: list[str] | None = None  # LLM-ensemble difficulty computed here (cached), as `difficulty`
    category_field: str | None = None  # document field of the category (default: the task's category_field)
    difficulty_field: str | None = None  # document field of easy/medium/hard labels (default: the task's)


class CurriculumTrainer:
    name = "curriculum"
    description = "orders the training data (random, blocked, interleaved, curriculum, ...) for a --base trainer"
    config_class = CurriculumConfig

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        config: CurriculumConfig = request.config
        if not config.base:
            others = sorted(name for name in trainer_registry() if name != self.name)
            raise MedbenchError("curriculum needs the trainer it wraps",
                                f"pass --base NAME (installed: {', '.join(others) or 'none'})")
        if config.ordering not in ORDERINGS:
            raise MedbenchError(f"curriculum needs an ordering, got {config.ordering!r}",
                                f"pass --ordering one of {', '.join(ORDERINGS)}")
        base = get_trainer(config.base)
        file_values = read_config_file(config.base_config) if config.base_config else {}
        base_config = build_config(base.config_class, file_values, dict(config.base_options or {}), base.name)

        examples = request.training_examples()
        if config.category_field:
            examples = with_field(examples, "category", config.category_field)
        if config.difficulty_field:
            examples = with_field(examples, "difficulty", config.difficulty_field)
        if config.difficulty_file and config.difficulty_models:
            raise MedbenchError("curriculum got both --difficulty-file and --difficulty-models",
                                "pass one: a file from `medbench difficulty`, or the ensemble to compute it with")
        if config.difficulty_file:
            examples = with_difficulty_file(examples, config.difficulty_file)
        if config.difficulty_models:
            examples = with_difficulty_file(examples, cached_difficulty_file(request.task, examples,
                                                                             config.difficulty_models,
                                                                             request.load_options))
        ordered = order_examples(examples, config.ordering, request.seed)

        checkpoints = base.train(dataclasses.replace(request, config=base_config, examples=ordered, keep_order=True))
        for checkpoint in checkpoints:
            checkpoint.metrics = {**checkpoint.metrics, "ordering": config.ordering, "base_trainer": base.name}
            checkpoint.trainer_config = dataclasses.asdict(base_config)
            checkpoint.data_hash = checkpoint.data_hash or examples_hash(ordered)
        return checkpoints


# --- medbench difficulty ---------------------------------------------------------------------------------------

def p_correct(loaded: Any, examples: list[TrainingExample], batch_size: int,
              advance: Callable[[int], None]) -> list[float]:
    """P(correct option) per example: the softmax over its options' log-likelihoods after the task's prompt,
    scored by lm-eval's HFLM as evaluation scores them."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size,
              device=str(next(loaded.model.parameters()).device))
    probabilities = []
    step = batch_size * 4  # a few batches per call: HFLM sorts each call by length, progress moves between calls
    for start in range(0, len(examples), step):
        chunk = examples[start:start + step]
        requests = [Instance("loglikelihood", {}, (e.prompt, option), i)
                    for e in chunk for i, option in enumerate([e.completion, *e.rejected])]
        logliks = iter(ll for ll, _greedy in lm.loglikelihood(requests, disable_tqdm=True))
        for example in chunk:
            scores = torch.tensor([next(logliks) for _ in range(1 + len(example.rejected))], dtype=torch.float64)
            probabilities.append(float(scores.softmax(0)[0]))  # the gold option comes first
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


def ensemble_difficulty(examples: list[TrainingExample], refs: list[str], task: str, batch_size: int = 8,
                        load_options: Any = None, easy_max: float = EASY_MAX,
                        medium_max: float = MEDIUM_MAX) -> list[dict[str, Any]]:
    """Difficulty rows for ``examples``: 1 - mean P(correct option) over the ensemble ``refs``, with tiers."""
    import gc

    from medbench.models import resolve_model
    from medbench.progress import new_progress

    if not refs or len(set(refs)) != len(refs):
        raise MedbenchError(f"the difficulty ensemble must list distinct model references, got {refs!r}",
                            "pass each ensemble member once, e.g. --models a,b,c")
    if not all(e.rejected for e in examples):
        raise MedbenchError(f"task {task!r} is not multiple choice", "difficulty needs answer options to score")
    p_by_model: dict[str, list[float]] = {}
    with new_progress() as progress:
        for ref in refs:
            bar = progress.add_task(f"difficulty · {ref} · {task}", total=len(examples), status="")
            loaded = resolve_model(ref, load_options)
            p_by_model[ref] = p_correct(loaded, examples, batch_size, lambda n: progress.advance(bar, n))
            del loaded
            gc.collect()  # one model in memory at a time
    return difficulty_rows(examples, p_by_model, easy_max, medium_max)


def cached_difficulty_file(task: str, examples: list[TrainingExample], refs: list[str], load_options: Any) -> Path:
    """The ensemble's difficulty file for these examples, computed once per (examples, ensemble)."""
    from medbench.models import cache_dir
    from medbench.records import atomic_write_jsonl

    key = hashlib.blake2b(json.dumps([examples_hash(examples), refs]).encode(), digest_size=8).hexdigest()
    path = cache_dir() / "difficulty" / f"{task}-{key}.jsonl"
    if not path.exists():
        atomic_write_jsonl(path, ensemble_difficulty(examples, refs, task, load_options=load_options))
    return path


@click.command("difficulty")
@click.option("--models", required=True, help="Comma-separated model references: the ensemble.")
@click.option("--task", required=True, help="Multiple-choice task whose training split is scored.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="JSON-lines file to write (default: TASK-difficulty.jsonl).")
@click.option("--easy-max", type=float, default=EASY_MAX, show_default=True, help="Highest difficulty still easy.")
@click.option("--medium-max", type=float, default=MEDIUM_MAX, show_default=True,
              help="Highest difficulty still medium.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
def difficulty_command(models, task, output, easy_max, medium_max, batch_size, device, dtype) -> None:
    """Write 1 - mean P(correct option) over an ensemble for each training item, with easy/medium/hard tiers.

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
    rows = ensemble_difficulty(load_training_examples(task), refs, task, batch_size,
                               LoadOptions(dtype=dtype, device=device), easy_max, medium_max)
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
