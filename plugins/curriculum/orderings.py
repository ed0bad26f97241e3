"""The six orderings of the human-inspired learning study as pure functions over TrainingExamples (definitions in
the package docstring), and the study's difficulty tiers."""

from __future__ import annotations

import random
from typing import Callable

from medbench.errors import MedbenchError
from medbench.trainingdata import TrainingExample

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


def tier_of(score: float, easy_max: float = EASY_MAX, medium_max: float = MEDIUM_MAX) -> str:
    return "easy" if score <= easy_max else "medium" if score <= medium_max else "hard"
