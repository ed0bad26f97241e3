"""Plan-time checks of a sweep cell's values: what would fail only once the cell runs (a limit scoring refuses, a
seed numpy refuses) or go wrong silently (two cells writing one record folder), refused in one line when the recipe
is planned, before anything trains or scores."""

from __future__ import annotations

from typing import Any

from medbench.recipe import Recipe, recipe_error

# What `eval --seed` and the trainers take (medbench.commands.common.SEED): numpy's and torch's seeds are 32-bit.
MAX_SEED = 2**32 - 1


def check_seed(recipe: Recipe, where: str, seed: int) -> int:
    """A cell's whole-number seed within the range every run accepts, else each cell would fail at run time."""
    if not 0 <= seed <= MAX_SEED:
        shown = str(seed) if len(str(seed)) <= 24 else f"{str(seed)[:20]}..."
        raise recipe_error(recipe.path, f"{where.removeprefix(f'recipe {recipe.name!r}, ')}: seed {shown} is outside "
                           f"0..{MAX_SEED}, the range eval --seed takes",
                           f"give seed levels between 0 and {MAX_SEED} (numpy and torch accept no other)")
    return seed


def check_distinct_labels(recipe: Recipe, labels: dict[str, str], label: str, key: str,
                          levels: dict[str, list[Any]]) -> None:
    """Two cells of one label but different work (two levels of a factor named alike, e.g. two ``{name: medqa}``
    levels with other limits) would write one record folder, the second overwriting the first: refused.
    ``labels`` maps each label planned so far to its cell's key."""
    if labels.setdefault(label, key) == key:
        return
    names = {factor: [str(v.get("name")) if isinstance(v, dict) else str(v) for v in values]
             for factor, values in levels.items()}
    twins = [(factor, name) for factor, found in names.items() for name in dict.fromkeys(found)
             if found.count(name) > 1 and f"{factor}={name}" in label.split(",")]
    factor, name = twins[0] if twins else ("", label)
    which = f"factor {factor!r} has two levels named {name!r}" if twins else f"two cells are labelled {label!r}"
    raise recipe_error(recipe.path, f"{which} that plan different work; both would write one record folder, the "
                       "second overwriting the first", f"give the levels distinct names, e.g. {{name: "
                       f"{name}-a, ...}} and {{name: {name}-b, ...}}")


def check_eval_values(recipe: Recipe, factors: dict[str, Any], evaluation: dict[str, Any],
                      section: str = "eval") -> None:
    """What scoring would refuse after training, refused at plan time: the limit, batch size, shots, options."""
    for key, least in (("limit", 1), ("batch_size", 1), ("num_fewshot", 0)):
        value = evaluation.get(key)
        if key == "batch_size" and value == "auto":  # the largest batch the GPU holds (medbench.fastlm)
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise recipe_error(recipe.path, f"cell {factors}: {section}.{key} {value!r} is not a whole number "
                               f"{least} or more{' or auto' if key == 'batch_size' else ''}",
                               f"write {section}.{key}: {max(least, 1)} (or leave it out)")
    for key in ("judge_options",):
        if evaluation.get(key) is not None and not isinstance(evaluation[key], dict):
            raise recipe_error(recipe.path, f"cell {factors}: eval.{key} is not a mapping",
                               f"write eval.{key}: {{model: REF}}")
    if evaluation.get("judges") is not None and not isinstance(evaluation["judges"], list):
        raise recipe_error(recipe.path, f"cell {factors}: eval.judges is not a list", "write eval.judges: [likert]")
