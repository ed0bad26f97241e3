"""The six orderings of the human-inspired learning study as pure functions of TrainingExamples and the run's seed
(definitions in the package docstring), and the rules that cut a difficulty score into easy/medium/hard tiers.

The random arm keeps its plain seeded shuffle (random.Random), so its orders are those of earlier medbench runs;
the grouped orderings shuffle inside their groups by ``seeded_order``, whose order of two items does not depend on
the other items (its docstring says why)."""

from __future__ import annotations

import hashlib
import random
from typing import Callable

from medbench.errors import MedbenchError
from medbench.trainingdata import TrainingExample

from .labels import example_key

TIERS = ("easy", "medium", "hard")
INTERLEAVE_CHUNKS = 3  # the study's definition of interleaving
EASY_MAX, MEDIUM_MAX = 0.66, 0.80  # the study's MedQA tiers: easy <= 0.66 < medium <= 0.80 < hard
# How a difficulty score (1 - mean P(correct)) becomes a tier. medbench's default is ``tertiles``: the scored items
# (a task's training split, as trained on) are ranked by score and cut into three equal thirds. Reason: the study's
# absolute cut-offs were set for its own ensemble; on a 4-option item a model at chance scores 0.75 ("medium") and
# "hard" needs a below-chance P(correct), so with weak ensemble members most items land in "medium" and the tier mix,
# not the order, would drive the LLM-vs-human contrast. Tertiles give every LLM curriculum the same 1/3-1/3-1/3 mix
# whatever the ensemble's calibration. ``thresholds`` keeps the study's cut-offs (EASY_MAX, MEDIUM_MAX).
TIER_RULES = ("tertiles", "thresholds")


def category_order(examples: list[TrainingExample], seed: int) -> list[str]:
    """The categories in a seeded order: sorted by a seeded hash of their names, so each seed lays the blocks out
    in another order (a fixed order would always train the same subject last, at the lowest learning rate under
    linear decay, and the seeds' spread would hide that), while one seed repeats exactly. Like ``seeded_order``,
    the order of two categories depends on the seed and their names only, never on the data's row order or on
    which other categories are present."""
    names: dict[str, None] = {}
    for example in examples:
        if example.category is None:
            raise MedbenchError(f"training example {example.doc_id} has no category",
                                "set metadata.category_field in the task YAML, or pass --category-field")
        names.setdefault(str(example.category), None)

    def key(name: str) -> tuple[bytes, str]:
        return hashlib.blake2b(f"{seed}:category:{name}".encode(), digest_size=8).digest(), name

    return sorted(names, key=key)


def seeded_order(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    """The examples sorted by a seeded hash of their content (labels.example_key): a shuffle in which two items'
    relative order depends on the seed and on those two items only, not on which others are present, so a subset
    (a ``max_examples`` draw) comes out in the order the whole split would give it. Exact duplicates keep data
    order."""
    def key(example: TrainingExample) -> bytes:
        return hashlib.blake2b(f"{seed}:{example_key(example)}".encode(), digest_size=8).digest()

    return sorted(examples, key=key)


def _categories(examples: list[TrainingExample], seed: int) -> dict[str, list[TrainingExample]]:
    """Category -> its examples: categories in the seed's order (category_order), each one's examples in seeded
    order."""
    groups: dict[str, list[TrainingExample]] = {category: [] for category in category_order(examples, seed)}
    for example in seeded_order(examples, seed):
        groups[str(example.category)].append(example)
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


# The grouped orderings: tiers easy to hard and parts in a fixed order, categories in the seed's order
# (category_order), items inside each group in the seeded order (seeded_order): each seed gives another order of the
# categories and within the groups, and the same groups.
def blocked(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    return [e for group in _categories(examples, seed).values() for e in group]


def interleaved(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    return _round_robin([_chunks(group, INTERLEAVE_CHUNKS) for group in _categories(examples, seed).values()])


def curriculum(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    return [e for tier in _tiers(seeded_order(examples, seed)) for e in tier]


def blocked_curriculum(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    return [e for group in _categories(examples, seed).values() for tier in _tiers(group) for e in tier]


def interleaved_curriculum(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    return _round_robin([_tiers(group) for group in _categories(examples, seed).values()])


GROUPED_ORDERINGS: dict[str, Callable[[list[TrainingExample], int], list[TrainingExample]]] = {
    "blocked": blocked, "interleaved": interleaved, "curriculum": curriculum,
    "blocked_curriculum": blocked_curriculum, "interleaved_curriculum": interleaved_curriculum,
}
ORDERINGS = ("random", *GROUPED_ORDERINGS)


def order_examples(examples: list[TrainingExample], ordering: str, seed: int) -> list[TrainingExample]:
    """``examples`` in ``ordering`` under the run's ``seed``: the whole list shuffled (random), or the groups
    (categories in the seed's order, tiers easy to hard) with a seeded order inside each (the others; package
    docstring). A seed repeats exactly, and
    so does its data hash."""
    if ordering == "random":
        return random_shuffle(examples, seed)
    if ordering not in GROUPED_ORDERINGS:
        raise MedbenchError(f"unknown ordering {ordering!r}", f"pass --ordering one of {', '.join(ORDERINGS)}")
    return GROUPED_ORDERINGS[ordering](examples, seed)


def tier_of(score: float, easy_max: float = EASY_MAX, medium_max: float = MEDIUM_MAX) -> str:
    return "easy" if score <= easy_max else "medium" if score <= medium_max else "hard"


def tertile_tiers(scores: list[float]) -> list[str]:
    """Easy/medium/hard by rank: the lowest third of the scores easy, the highest third hard (sizes differing by at
    most one, the larger ones first, as ``_chunks``); equal scores keep data order, so a tie on a boundary splits by
    position - deterministic, and rare for continuous ensemble scores."""
    ranked = sorted(range(len(scores)), key=lambda i: scores[i])
    tiers = [""] * len(scores)
    for tier, chunk in zip(TIERS, _chunks(ranked, len(TIERS))):
        for i in chunk:
            tiers[i] = tier
    return tiers


def assign_tiers(scores: list[float], rule: str = "tertiles", easy_max: float = EASY_MAX,
                 medium_max: float = MEDIUM_MAX) -> list[str]:
    """Tiers of ``scores`` by ``rule`` (TIER_RULES; reasons beside them)."""
    if rule == "tertiles":
        return tertile_tiers(scores)
    if rule == "thresholds":
        return [tier_of(score, easy_max, medium_max) for score in scores]
    raise MedbenchError(f"unknown tier rule {rule!r}", f"pass one of {', '.join(TIER_RULES)}")


def tier_counts(examples: list[TrainingExample]) -> dict[str, int]:
    """How many examples each tier holds (labels as ``tier_index`` reads them)."""
    counts = dict.fromkeys(TIERS, 0)
    for example in examples:
        counts[TIERS[tier_index(example)]] += 1
    return counts
