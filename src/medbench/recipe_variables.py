"""A recipe's ``{name}`` references, replaced by factor and scale values (medbench.recipe re-exports these).

Within bounds, because a recipe is untrusted text whose references multiply: eight references to a variable that
holds eight references, twelve deep, is a 500 GB string from a 1 KB file. One substitution produces at most
MAX_SUBSTITUTED characters and values; scale variables resolve in time linear in their number."""

from __future__ import annotations

import collections
import copy
import difflib
import json
import re
from typing import Any, Mapping

from medbench.errors import MedbenchError

_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_SUBSTITUTED = 4 << 20  # characters and values (a recipe is at most 1 MiB: this leaves room for reuse)


def substitute(value: Any, variables: Mapping[str, Any], where: str, _budget: list[int] | None = None) -> Any:
    """Replace ``{name}`` references; a string that is exactly one reference takes the variable's value."""
    budget = [MAX_SUBSTITUTED] if _budget is None else _budget
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            found = _lookup(whole.group(1), variables, where)
            _spend(budget, _size(found), where)
            return copy.deepcopy(found)

        def text(match: re.Match) -> str:
            found = str(_lookup(match.group(1), variables, where))
            _spend(budget, len(found), where)
            return found

        return _REF.sub(text, value)
    _spend(budget, 1, where)
    if isinstance(value, list):
        return [substitute(v, variables, where, budget) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables, where, budget) for k, v in value.items()}
    return value


def _spend(budget: list[int], amount: int, where: str) -> None:
    budget[0] -= amount
    if budget[0] < 0:
        raise MedbenchError(f"{where} expands to more than {MAX_SUBSTITUTED:,} characters and values (references "
                            "to variables that hold references multiply)",
                            "write the values out, or refer to each variable fewer times")


def _size(value: Any) -> int:
    """Characters of text plus one per value, the measure MAX_SUBSTITUTED bounds (never past the bound + 1)."""
    total, stack = 0, [value]
    while stack and total <= MAX_SUBSTITUTED:
        item = stack.pop()
        total += len(item) if isinstance(item, str) else 1
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return total


def _lookup(name: str, variables: Mapping[str, Any], where: str) -> Any:
    if name not in variables:
        close = difflib.get_close_matches(name, list(variables), n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MedbenchError(f"{where} refers to {{{name}}}, which is neither a factor nor a scale variable{hint}",
                            "define it under grid: or under the chosen scale")
    return variables[name]


def _references(value: Any) -> set[str]:
    return set(_REF.findall(json.dumps(value, default=str)))


class _ScaleOnly(dict):
    """Scale variables for a grid's mapping levels: a name the scale lacks is left as ``{name}`` for the cell."""

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def grid_levels(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    """A grid factor's levels at a scale (``variables``). A mapping level's variables are filled per cell
    (:func:`resolve_bindings`), where they may also refer to another factor's level variables: here a reference
    the scale lacks is left for the cell."""
    if not isinstance(value, list):
        return substitute(value, variables, where)
    levels = []
    for level in value:
        if isinstance(level, dict):  # its name must resolve now: it labels cells and comparisons
            named = {"name": substitute(level["name"], variables, where)} if "name" in level else {}
            level = {**substitute(level, _ScaleOnly(variables), where), **named}
        levels.append(substitute(level, variables, where) if not isinstance(level, dict) else level)
    return levels


def resolve_bindings(bound: dict[str, Any], variables: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The variables a cell's factor levels bind, filled from ``variables`` (the scale's and the factors') and from
    each other: one level's value may refer to another factor's level variable (a condition's
    ``fewshot_rationales: "{rationale_field}"`` takes the writer level's field). A reference to a level variable's
    own name is the scale variable or factor of that name, as before; a cycle is refused."""
    done: dict[str, Any] = {}

    def visit(name: str, chain: list[str]) -> Any:
        if name not in done:
            if name in chain:
                cycle = " -> ".join([*chain[chain.index(name):], name])
                raise MedbenchError(f"{where}: level variables refer to each other in a cycle ({cycle})",
                                    "give one of them a literal value")
            others = {ref: visit(ref, [*chain, name]) for ref in _references(bound[name])
                      if ref in bound and ref != name}
            done[name] = substitute(bound[name], collections.ChainMap(others, dict(variables)), where)
        return done[name]

    return {name: visit(name, []) for name in bound}


def resolve_variables(variables: dict[str, Any], where: str) -> dict[str, Any]:
    """Scale variables may refer to each other (``judge: "{model}"``); resolve them, refusing a cycle."""
    resolved: dict[str, Any] = {}
    names = set(variables)

    def visit(name: str, chain: dict[str, None]) -> Any:
        if name in resolved:
            return resolved[name]
        if name in chain:
            ring = list(chain)
            cycle = " -> ".join([*ring[ring.index(name):], name])
            raise MedbenchError(f"{where}: scale variables refer to each other in a cycle ({cycle})",
                                "give one of them a literal value")
        value = variables[name]
        references = _references(value)
        chain[name] = None
        for ref in references & names:
            visit(ref, chain)
        del chain[name]
        unknown = {r: "{" + r + "}" for r in references if r not in resolved}  # left for the factors to fill
        resolved[name] = substitute(value, collections.ChainMap(resolved, unknown), f"{where}, variable {name}")
        return resolved[name]

    try:
        for name in variables:
            visit(name, {})
    except RecursionError:
        raise MedbenchError(f"{where}: scale variables refer to each other in a chain too deep to follow",
                            "give the variables literal values instead of references to references") from None
    return resolved


def whole_seed(value: Any, where: str) -> int:
    """A cell's seed as the whole number it must be (a recipe's `seed` level, or the scale's `seed`)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise MedbenchError(f"{where}: seed {str(value)[:40]!r} is not a whole number",
                            "give seed levels as whole numbers, e.g. seed: [1, 2, 3]")
    return int(value)


def model_reference(raw: Any, variables: Mapping[str, Any], where: str) -> str:
    """A cell's or step's model, substituted, as the reference it must be: `--set model=` (YAML null), a number or
    a list would be planned as the model 'None' and fail only when the cell runs."""
    value = substitute(raw, variables, where)
    if not isinstance(value, str) or not value.strip():
        raise MedbenchError(f"{where}: the model is {str(value)[:40]!r}, not a model reference",
                            "set it to a checkpoint folder or a name from `medbench models` (e.g. --set model=REF)")
    return value
