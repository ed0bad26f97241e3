"""Property tests pinning the six orderings to the study's reference definitions (plugins/curriculum/__init__.py
docstring), on many seeded random data sets: category counts from 1 to 7, categories of any size (including smaller
than three), uneven tiers, and interleaved data order. The groups (categories, tiers, parts) are fixed by the data;
the categories are laid out in the run seed's order (orderings.category_order), the same for every grouped ordering
of that seed, and inside a group the items take the run seed's order (orderings.seeded_order), the same for every
ordering."""

import random
from collections import Counter

import pytest

from medbench.trainingdata import TrainingExample
from medbench_plugins.curriculum.orderings import ORDERINGS, TIERS, order_examples, seeded_order

DATASETS = 300
GROUPED = [o for o in ORDERINGS if o != "random"]


def random_examples(seed):
    rng = random.Random(seed)
    categories = [f"cat{i}" for i in range(rng.randint(1, 7))]
    weights = [rng.random() + 0.05 for _ in categories]
    tier_weights = [rng.random() + 0.05 for _ in TIERS]
    return [TrainingExample(doc_id=i, prompt=f"q{i}", completion=" A", rejected=[" B"], answer="A",
                            category=rng.choices(categories, weights)[0],
                            difficulty=rng.choices(TIERS, tier_weights)[0])
            for i in range(rng.randint(0, 60))]


def datasets():
    return [random_examples(seed) for seed in range(DATASETS)]


def first_appearance(examples):
    order = []
    for example in examples:
        if example.category not in order:
            order.append(example.category)
    return order


def block_order(examples, seed):
    """The seed's order of the categories: as ``blocked`` lays them out (its own properties are tested below; every
    other grouped ordering must follow the same order)."""
    return first_appearance(order_examples(examples, "blocked", seed=seed))


def in_category(examples, category):
    return [e for e in examples if e.category == category]


def shuffled(examples, seed):
    """The seed's order of the items, which each group's items follow (its own properties are tested below)."""
    return seeded_order(examples, seed)


def reference_parts(block, count=3):
    """The reference's three parts of a category's blocked order: contiguous, sizes differing by at most one, the
    larger first (what numpy.array_split gives)."""
    size, extra = divmod(len(block), count)
    sizes = [size + (1 if i < extra else 0) for i in range(count)]
    starts = [sum(sizes[:i]) for i in range(count)]
    return [block[start:start + n] for start, n in zip(starts, sizes)]


def ids(examples):
    return [e.doc_id for e in examples]


def tier(example):
    return TIERS.index(example.difficulty)


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_every_ordering_is_a_permutation_of_its_input(ordering):
    for examples in datasets():
        ordered = order_examples(examples, ordering, seed=1)
        assert sorted(ids(ordered)) == ids(examples)
        assert all(o is e for o, e in zip(sorted(ordered, key=lambda e: e.doc_id), examples))  # unchanged items


def group_pattern(ordering, examples):
    """What the seed may not change: the groups an ordering lays out (the seed reorders the categories, so each
    category's own sequence of tiers, and the tier sequence of ``curriculum``)."""
    if ordering == "curriculum":
        return [e.difficulty for e in examples]
    return {c: [e.difficulty if ordering.endswith("curriculum") else None for e in in_category(examples, c)]
            for c in sorted(first_appearance(examples))}


@pytest.mark.parametrize("ordering", GROUPED)
def test_inside_each_group_the_items_follow_the_seeds_order(ordering):
    """Within a (category, tier) group every grouped ordering keeps the seed's order of its items: the groups
    differ by ordering, the order inside them by seed only."""
    for seed, examples in enumerate(datasets()):
        ordered = order_examples(examples, ordering, seed=seed)
        rank = {e.doc_id: i for i, e in enumerate(shuffled(examples, seed))}
        groups = {}
        for example in ordered:
            groups.setdefault((example.category, example.difficulty), []).append(rank[example.doc_id])
        assert all(group == sorted(group) for group in groups.values())


@pytest.mark.parametrize("ordering", GROUPED)
def test_a_seed_repeats_and_another_seed_reorders_within_the_same_groups(ordering):
    for examples in datasets():
        first = order_examples(examples, ordering, seed=1)
        assert ids(order_examples(list(examples), ordering, seed=1)) == ids(first)  # reproducible
        other = order_examples(examples, ordering, seed=2)
        assert group_pattern(ordering, other) == group_pattern(ordering, first)  # same tier/category structure
    # data sets with a group of 10 or more: another seed, another order inside it (a clash is ~1 in 10!)
    big = [e for e in datasets() if max(Counter(x.category for x in e).values(), default=0) >= 10
           and min(Counter(x.difficulty for x in e).values()) >= 10]
    assert big and all(ids(order_examples(e, ordering, 1)) != ids(order_examples(e, ordering, 2)) for e in big)


def test_the_seeded_order_of_two_items_ignores_the_others_and_the_file_order():
    """A subset (a max_examples draw) is ordered as the whole split orders those items, and the rows' order in the
    file does not show through."""
    for seed, examples in enumerate(datasets()):
        whole = ids(shuffled(examples, seed))
        assert sorted(whole) == ids(examples)
        assert ids(shuffled(examples[::2], seed)) == [i for i in whole if i % 2 == 0]
        assert ids(shuffled(examples[::-1], seed)) == whole


def test_blocked_is_each_category_in_one_block_in_the_seeds_category_order():
    for seed, examples in enumerate(datasets()):
        order = block_order(examples, seed)
        assert sorted(order) == sorted(first_appearance(examples))  # every category once: one intact block each
        expected = [e for category in order for e in in_category(shuffled(examples, seed), category)]
        assert ids(order_examples(examples, "blocked", seed=seed)) == ids(expected)
        # the category order comes from the seed and the names only: not the file's row order, not the others
        assert block_order(examples[::-1], seed) == order
        assert block_order([e for e in examples if e.category != order[0]], seed) == order[1:]


def test_two_seeds_give_different_block_orders_with_every_block_intact():
    """A fixed category order would train the same subject last (at the lowest learning rate) in every seed."""
    many = [e for e in datasets() if len(first_appearance(e)) >= 4]
    differing = 0
    for examples in many:
        for seed in (1, 2):
            ordered = order_examples(examples, "blocked", seed=seed)
            runs = [c for i, c in enumerate(e.category for e in ordered) if i == 0 or ordered[i - 1].category != c]
            assert sorted(runs) == sorted(first_appearance(examples))  # one contiguous block per category
        differing += block_order(examples, 1) != block_order(examples, 2)
    assert many and differing >= 0.9 * len(many)  # 4+ categories: the same order by chance is at most 1 in 24
    assert block_order(many[0], 7) == block_order(list(many[0]), 7)  # one seed repeats exactly


def test_interleaved_takes_part_i_of_every_category_in_turn():
    for seed, examples in enumerate(datasets()):
        blocks = {c: in_category(shuffled(examples, seed), c) for c in block_order(examples, seed)}
        parts = {c: reference_parts(block) for c, block in blocks.items()}
        expected = [e for i in range(3) for category in block_order(examples, seed) for e in parts[category][i]]
        ordered = order_examples(examples, "interleaved", seed=seed)
        assert ids(ordered) == ids(expected)
        for category, category_parts in parts.items():  # the parts themselves: sizes as in the reference
            sizes = [len(part) for part in category_parts]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
            assert [e for part in category_parts for e in part] == blocks[category]


def test_curriculum_is_easy_then_medium_then_hard():
    for seed, examples in enumerate(datasets()):
        ordered = order_examples(examples, "curriculum", seed=seed)
        assert [tier(e) for e in ordered] == sorted(tier(e) for e in examples)
        assert ids(ordered) == ids(sorted(shuffled(examples, seed), key=tier))  # sorted() is stable


def test_blocked_curriculum_is_blocked_with_each_block_easy_to_hard():
    for seed, examples in enumerate(datasets()):
        ordered = order_examples(examples, "blocked_curriculum", seed=seed)
        expected = [e for c in block_order(examples, seed) for e in sorted(in_category(shuffled(examples, seed), c),
                                                                           key=tier)]
        assert ids(ordered) == ids(expected)
        assert [e.category for e in ordered] == [e.category for e in order_examples(examples, "blocked", seed=seed)]


def test_interleaved_curriculum_is_tiers_with_categories_in_blocked_order_inside_each():
    for seed, examples in enumerate(datasets()):
        ordered = order_examples(examples, "interleaved_curriculum", seed=seed)
        assert [tier(e) for e in ordered] == sorted(tier(e) for e in examples)  # easy, medium, hard tiers
        categories = block_order(examples, seed)  # the blocked order of the whole data, not of each tier
        for level in TIERS:
            inside = [e for e in ordered if e.difficulty == level]
            expected = [e for c in categories for e in in_category(shuffled(examples, seed), c)
                        if e.difficulty == level]
            assert ids(inside) == ids(expected)


def test_random_depends_on_the_seed_only():
    for seed, examples in enumerate(datasets()):
        first = order_examples(examples, "random", seed=seed)
        # the same seed: the same order, whatever the labels say
        relabelled = [TrainingExample(**{**e.__dict__, "category": "x", "difficulty": "hard"}) for e in examples]
        assert ids(order_examples(relabelled, "random", seed=seed)) == ids(first)
        assert ids(order_examples(examples, "random", seed=seed)) == ids(first)
    # a different seed, a different order (for data sets long enough that a clash is negligible)
    long_sets = [examples for examples in datasets() if len(examples) >= 10]
    assert all(ids(order_examples(e, "random", 1)) != ids(order_examples(e, "random", 2)) for e in long_sets)


def test_the_random_data_sets_cover_the_edge_cases():
    """The generator really produces what the properties must hold on."""
    sets = datasets()
    assert any(not examples for examples in sets)
    assert any(len(first_appearance(examples)) == 1 and len(examples) > 3 for examples in sets)
    assert any(min(Counter(e.category for e in examples).values()) < 3 for examples in sets if examples)
    assert any(len({e.difficulty for e in examples}) < 3 for examples in sets if examples)
    assert any(len(first_appearance(examples)) >= 5 and len(examples) >= 40 for examples in sets)
