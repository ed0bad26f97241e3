"""Recipes: a study's grid of factors, read from YAML and planned into cells, steps and comparisons.

A recipe (read with ``yaml.safe_load``; anchors are fine)::

    name: sft_vs_dpo
    scales:                     # named variable sets; --scale picks one (toy runs on a laptop CPU)
      toy: {model: smollm2-135m-instruct, max_steps: 4, eval_limit: 20}
      full: {model: meta-llama/Llama-3.1-8B-Instruct, max_steps: -1, eval_limit: null}
    data_files: {medqa:train: data/train.jsonl}   # optional, TASK[:SPLIT]: PATH (relative to the recipe)
    grid:                       # the factors; cells are their cartesian product
      task: [uti, hyponatremia]
      method: [base, sft, dpo]
      seed: [1, 2]
      difficulty:               # a level may be a mapping: its name, plus variables it binds
        - {name: human, difficulty_models: null}
        - {name: llm, difficulty_models: "{ensemble}"}
    exclude: [{method: dpo, task: discharge_summary}]   # optional: cells to leave out
    cell:
      model: "{model}"
      steps_by: method          # optional: pick the step list by this factor's value
      steps:
        base: []
        sft: [{plugin: sft, task: "{task}", options: {max_steps: "{max_steps}"}}]
        dpo: [{plugin: sft, ...}, {plugin: dpo, task: "{task}"}]   # a later step starts from the one before
      eval: {tasks: ["{task}"], limit: "{eval_limit}", mode: loglikelihood, judges: [likert],
             judge_options: {model: REF}}   # also gen_kwargs, system_prompt(_file), repeats (medbench.generation)
    comparisons:                # each cell at `levels` of `factor` against the cell at `baseline`, all else equal
      - {factor: method, baseline: base}
      - {factor: method, levels: [dpo], baseline: sft}
      - {factor: scoring, baseline: loglikelihood, where: {method: [base, sft]}}   # only these cells

``"{name}"`` is replaced by a factor or scale variable (a whole-string reference keeps the value's type); scale
variables may refer to each other. A step's model defaults to the previous step's final checkpoint;
``"{prev}"`` names it explicitly (a merge step merges it back into ``"{model}"``). The older form
``baseline: {method: base}`` + ``report: {compare: method}`` is one comparison.

Identity: a step's identity hashes its plugin, resolved options, seed, input model (or the identity of the step
it builds on) and its training data (the task folder and any user data file, by content); a cell's identity
adds the evaluation. Cells whose identities coincide (an untrained model at every data size) are planned once
and stand for every factor combination they cover (``aliases``), so comparisons find them under each.

Planning fails in one line where the study could not be answered: an ``exclude`` that removes a comparison's
baseline, or scale variables that refer to each other in a cycle. A trainer may say at plan time that a step
cannot run on the data (``plan_check``); its cells are skipped with that reason, before anything trains.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medbench.errors import MedbenchError
from medbench.records import slug

RECIPE_KEYS = {"name", "description", "scales", "grid", "exclude", "cell", "baseline", "report", "study",
               "comparisons", "data_files"}
CELL_KEYS = {"model", "steps", "steps_by", "eval"}
STEP_KEYS = {"plugin", "task", "model", "options"}
EVAL_KEYS = {"tasks", "limit", "mode", "num_fewshot", "fewshot_rationales", "chat_template", "batch_size", "judges",
             "judge_options", "gen_kwargs", "system_prompt", "system_prompt_file", "repeats"}  # dashes work too
COMPARISON_KEYS = {"factor", "baseline", "levels", "where"}
_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Recipe:
    name: str
    path: Path
    description: str
    scales: dict[str, dict[str, Any]]
    grid: dict[str, list[Any]]
    exclude: list[dict[str, Any]]
    cell: dict[str, Any]
    comparisons: list[dict[str, Any]]
    data_files: dict[str, str] = field(default_factory=dict)
    study: str = ""


def _fail(path: Path, problem: str, fix: str) -> MedbenchError:
    return MedbenchError(f"recipe {path}: {problem}", fix)


def _level_name(value: Any) -> str:
    return str(value.get("name")) if isinstance(value, dict) else str(value)


def _read_comparisons(path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    comparisons = data.get("comparisons")
    if comparisons is None:  # the older form: one baseline mapping, one compared factor
        baseline = data.get("baseline") or {}
        if not baseline:
            return []
        if not isinstance(baseline, dict) or len(baseline) != 1:
            raise _fail(path, "baseline must name one factor and its baseline level, e.g. {method: base}",
                        "or list comparisons: [{factor: method, baseline: base}]")
        factor, level = next(iter(baseline.items()))
        return [{"factor": factor, "baseline": level}]
    if not isinstance(comparisons, list) or not all(isinstance(c, dict) for c in comparisons):
        raise _fail(path, "comparisons must be a list of mappings", "write comparisons: [{factor: method, baseline: base}]")
    for comparison in comparisons:
        unknown = sorted(set(comparison) - COMPARISON_KEYS)
        if unknown or "factor" not in comparison or "baseline" not in comparison:
            raise _fail(path, f"comparison {comparison} needs factor and baseline (unknown: {unknown or 'none'})",
                        "write {factor: method, baseline: base, levels: [dpo]} (levels optional)")
        where = comparison.get("where") or {}
        if not isinstance(where, dict) or not set(where) <= set(data["grid"]):
            raise _fail(path, f"comparison where: {where!r} must map grid factors to lists of levels",
                        "write where: {method: [base, sft]}")
        if comparison["factor"] not in data["grid"]:
            raise _fail(path, f"comparison factor {comparison['factor']!r} is not a grid factor",
                        f"use one of {', '.join(data['grid'])}")
    return comparisons


def _bundled_recipes() -> dict[str, Path]:
    try:
        from medbench_recipes import bundled_recipes
    except ImportError:  # installed before the recipes were package data (`pip install -e .` again adds them)
        return {}
    return bundled_recipes()


def _bundled_recipe(path: Path) -> Path | None:
    """A missing ``NAME``, ``NAME.yaml`` or ``recipes/NAME.yaml`` names a recipe bundled with medbench."""
    if path.is_absolute() or path.parent not in (Path("."), Path("recipes")):
        return None
    return _bundled_recipes().get(path.stem if path.suffix == ".yaml" else path.name)


def read_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.exists():
        path = _bundled_recipe(path) or path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = ", ".join(_bundled_recipes())
        raise MedbenchError(f"recipe {path} does not exist",
                            "give a recipe file's path" + (f" or a bundled recipe's name: {names}" if names else "")) \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise _fail(path, f"is not valid YAML{where}", "fix the YAML syntax (check indentation and quoting)") from None
    if not isinstance(data, dict):
        raise _fail(path, "is not a mapping", "a recipe has name, grid and cell keys (see recipes/sft_vs_dpo.yaml)")
    unknown = sorted(set(data) - RECIPE_KEYS)
    if unknown:
        raise _fail(path, f"has unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(RECIPE_KEYS))}")
    for key in ("name", "grid", "cell"):
        if key not in data:
            raise _fail(path, f"is missing {key!r}", "add it (see recipes/sft_vs_dpo.yaml for a complete recipe)")
    grid = data["grid"]
    if not isinstance(grid, dict) or not grid:
        raise _fail(path, "has an empty grid", "list at least one factor with at least one value under grid:")
    for factor, values in grid.items():
        if isinstance(values, str) and _REF.fullmatch(values):
            continue  # a scale variable holding the levels, e.g. sizes: "{sizes}"
        if not isinstance(values, list) or not values:
            raise _fail(path, f"factor {factor!r} has no values", f"give {factor}: a non-empty list")
    cell = data["cell"]
    if not isinstance(cell, dict) or "eval" not in cell:
        raise _fail(path, "cell has no eval", "add cell.eval.tasks: the tasks every checkpoint is scored on")
    unknown = sorted(set(cell) - CELL_KEYS)
    if unknown:
        raise _fail(path, f"cell has unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(CELL_KEYS))}")
    cell["eval"] = {str(k).replace("-", "_"): v for k, v in (cell["eval"] or {}).items()}  # either spelling
    unknown = sorted(set(cell["eval"]) - EVAL_KEYS)
    if unknown:
        raise _fail(path, f"cell.eval has unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(EVAL_KEYS))}")
    steps_by = cell.get("steps_by")
    if steps_by is not None:
        if steps_by not in grid:
            raise _fail(path, f"steps_by names {steps_by!r}, which is not a grid factor",
                        f"use one of {', '.join(grid)}")
        levels = grid[steps_by] if isinstance(grid[steps_by], list) else []
        missing = [n for n in map(_level_name, levels) if n not in {str(k) for k in (cell.get("steps") or {})}]
        if missing:
            raise _fail(path, f"cell.steps has no entry for {steps_by}={', '.join(missing)}",
                        "add a step list (possibly []) for every value of that factor")
    exclude = data.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(e, dict) for e in exclude):
        raise _fail(path, "exclude must be a list of factor mappings", "write exclude: [{method: dpo, task: uti}]")
    data_files = data.get("data_files") or {}
    if not isinstance(data_files, dict):
        raise _fail(path, "data_files must map TASK[:SPLIT] to a path", "write data_files: {medqa:train: train.jsonl}")
    return Recipe(name=str(data["name"]), path=path, description=str(data.get("description") or ""),
                  scales=data.get("scales") or {}, grid=grid, exclude=exclude, cell=cell,
                  comparisons=_read_comparisons(path, data),
                  data_files={str(k): str(v) for k, v in data_files.items()}, study=str(data.get("study") or ""))


def substitute(value: Any, variables: dict[str, Any], where: str) -> Any:
    """Replace ``{name}`` references; a string that is exactly one reference takes the variable's value."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return copy.deepcopy(_lookup(whole.group(1), variables, where))
        return _REF.sub(lambda m: str(_lookup(m.group(1), variables, where)), value)
    if isinstance(value, list):
        return [substitute(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables, where) for k, v in value.items()}
    return value


def _lookup(name: str, variables: dict[str, Any], where: str) -> Any:
    if name not in variables:
        close = difflib.get_close_matches(name, list(variables), n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MedbenchError(f"{where} refers to {{{name}}}, which is neither a factor nor a scale variable{hint}",
                            "define it under grid: or under the chosen scale")
    return variables[name]


def _references(value: Any) -> set[str]:
    return set(_REF.findall(json.dumps(value, default=str)))


def resolve_variables(variables: dict[str, Any], where: str) -> dict[str, Any]:
    """Scale variables may refer to each other (``judge: "{model}"``); resolve them, refusing a cycle."""
    resolved: dict[str, Any] = {}

    def visit(name: str, chain: list[str]) -> Any:
        if name in resolved:
            return resolved[name]
        if name in chain:
            cycle = " -> ".join([*chain[chain.index(name):], name])
            raise MedbenchError(f"{where}: scale variables refer to each other in a cycle ({cycle})",
                                "give one of them a literal value")
        value = variables[name]
        for ref in _references(value) & set(variables):
            visit(ref, [*chain, name])
        known = {k: v for k, v in resolved.items()}
        resolved[name] = substitute(value, {**known, **{r: "{" + r + "}" for r in _references(value) - set(known)}},
                                    f"{where}, variable {name}")
        return resolved[name]

    for name in variables:
        visit(name, [])
    return resolved


# ----------------------------------------------------------------------------------------------- data files

def data_file_overrides(pairs: dict[str, str], base_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """``TASK[:SPLIT] -> PATH`` (``--data-file`` / a recipe's ``data_files``) as per-task metadata overrides.
    A path without a split is the test split; relative paths resolve against ``base_dir`` (else the CWD)."""
    overrides: dict[str, dict[str, Any]] = {}
    for target, raw in pairs.items():
        task, _, split = str(target).partition(":")
        if not task or not str(raw):
            raise MedbenchError(f"data file {target!r}={raw!r} is not TASK[:SPLIT]=PATH",
                                "write medqa=/path/to/test.jsonl or medqa:train=/path/to/train.jsonl")
        path = Path(str(raw)).expanduser()
        path = (path if path.is_absolute() or base_dir is None else base_dir / path).resolve()
        if not path.is_file():
            raise MedbenchError(f"data file for {target} is not a readable file: {path}",
                                "check the path (a recipe's data_files resolve against the recipe's folder)")
        overrides.setdefault(task, {"data_files": {}})["data_files"][split or "test"] = str(path)
    return overrides


def task_fingerprint(task: str, data_files: dict[str, str] | None = None, registry: Any = None) -> str:
    """Hash of a task as it will run (its resolved YAML, code and the data files beside it; a group: its
    members') and of the user's data files for it, by content. An unknown task name fails here, at plan time."""
    from medbench.tasks import LM_EVAL, build_registry, task_config_hash

    registry = registry or build_registry()
    digest = hashlib.blake2b(digest_size=8)
    for name in registry.expand([task]):
        entry = registry.get(name)
        digest.update(task_config_hash(entry).encode())
        if entry.plugin == LM_EVAL:  # lm-eval's own task: its dataset comes from the hub or the datasets cache
            continue
        folder = entry.path.parent
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (
                ".jsonl", ".json", ".csv", ".parquet", ".py", ".yaml")):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    for split, path in sorted((data_files or {}).items()):
        digest.update(f"user:{split}".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- cells

@dataclass
class StepSpec:
    plugin: str
    task: str
    model: str  # a model reference, or "{prev}" for the previous step's final checkpoint
    options: dict[str, Any]
    seed: int
    key: str = ""  # identity hash, filled in by plan()
    task_metadata: dict[str, Any] = field(default_factory=dict)  # the user's data files for the step's task

    @property
    def name(self) -> str:
        return f"{slug(self.plugin)}-{self.key}"


@dataclass
class CellSpec:
    key: str
    label: str
    factors: dict[str, Any]
    model: str
    steps: list[StepSpec]
    eval: dict[str, Any]
    seed: int
    is_baseline: bool = False
    aliases: list[dict[str, Any]] = field(default_factory=list)  # other factor combinations this cell stands for
    task_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # user data files per eval task


@dataclass
class PlannedComparison:
    """``cell`` (at ``level`` of ``factor``) against ``baseline`` (at ``baseline_level``), all else equal."""

    cell: str
    baseline: str
    factor: str
    level: Any
    baseline_level: Any


@dataclass
class SweepPlan:
    recipe: Recipe
    scale: str
    out_dir: Path
    cells: list[CellSpec]
    variables: dict[str, Any] = field(default_factory=dict)
    comparisons: list[PlannedComparison] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {cell, reason}: cells a trainer cannot run

    @property
    def leaderboard_dir(self) -> Path:
        return self.out_dir / "leaderboard"


def _digest(data: Any) -> str:
    return hashlib.blake2b(json.dumps(data, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


def _selected_scale(recipe: Recipe, scale: str | None) -> tuple[str, dict[str, Any]]:
    if not recipe.scales:
        return scale or "default", {}
    scale = scale or next(iter(recipe.scales))
    if scale not in recipe.scales:
        raise MedbenchError(f"recipe {recipe.name!r} has no scale {scale!r}",
                            f"pass --scale {' or --scale '.join(recipe.scales)}")
    return scale, dict(recipe.scales[scale] or {})


def _matches(factors: dict[str, Any], rule: dict[str, Any]) -> bool:
    return all(str(factors.get(k)) == str(v) for k, v in rule.items())


def _plan_check(step: StepSpec) -> str | None:
    """A trainer's own plan-time verdict on whether this step can run on its data (None: it can)."""
    from medbench.training import get_trainer

    check = getattr(get_trainer(step.plugin), "plan_check", None)
    if check is None:
        return None
    files = (step.task_metadata or {}).get("data_files") or {}
    return check(step.task, copy.deepcopy(step.options), {f"{step.task}:{split}": path for split, path in files.items()})


def plan(recipe: Recipe, scale: str | None = None, out_dir: str | Path | None = None,
         overrides: dict[str, Any] | None = None, data_files: dict[str, str] | None = None) -> SweepPlan:
    """Expand the grid into cells, their identities and comparisons (no model is loaded). ``overrides``
    replace the chosen scale's variables (``--set model=PATH``); ``data_files`` (``--data-file``, resolved
    against the CWD) go over the recipe's own."""
    scale, scale_vars = _selected_scale(recipe, scale)
    for key, value in (overrides or {}).items():
        if key not in scale_vars:
            raise MedbenchError(f"--set {key}=...: scale {scale!r} of recipe {recipe.name!r} has no variable {key!r}",
                                f"set one of: {', '.join(sorted(scale_vars)) or '(none)'}")
        scale_vars[key] = yaml.safe_load(value) if isinstance(value, str) else value
    scale_vars = resolve_variables(scale_vars, f"recipe {recipe.name!r}, scale {scale!r}")
    user_files = {**data_file_overrides(recipe.data_files, recipe.path.parent),
                  **data_file_overrides(data_files or {})}
    out_dir = Path(out_dir) if out_dir else Path("sweeps") / f"{slug(recipe.name)}-{slug(scale)}"
    factor_names = list(recipe.grid)
    levels = {f: substitute(v, scale_vars, f"recipe {recipe.name!r}, grid {f}") for f, v in recipe.grid.items()}
    for factor, values in levels.items():
        if not isinstance(values, list) or not values:
            raise _fail(recipe.path, f"factor {factor!r} has no values at scale {scale!r}",
                        f"give {factor}: a non-empty list")
    fingerprints: dict[str, str] = {}
    registry: list[Any] = []

    def fingerprint(task: str) -> str:
        if task not in fingerprints:
            if not registry:
                from medbench.tasks import build_registry

                registry.append(build_registry())
            fingerprints[task] = task_fingerprint(task, (user_files.get(task) or {}).get("data_files"), registry[0])
        return fingerprints[task]

    cells: dict[str, CellSpec] = {}
    excluded: list[dict[str, Any]] = []
    skipped: dict[str, dict[str, Any]] = {}  # label -> {factors, reason}
    for values in itertools.product(*(levels[f] for f in factor_names)):
        factors, bound = {}, {}
        for factor, value in zip(factor_names, values):
            if isinstance(value, dict):  # {name: llm, difficulty_models: [...]}: a level that binds variables
                if "name" not in value:
                    raise _fail(recipe.path, f"a level of factor {factor!r} is a mapping without 'name'",
                                "give every mapping level a name: {name: llm, ...}")
                factors[factor] = value["name"]
                bound.update({k: v for k, v in value.items() if k != "name"})
            else:
                factors[factor] = value
        if any(_matches(factors, rule) for rule in recipe.exclude):
            excluded.append(factors)
            continue
        cell = _plan_cell(recipe, factors, bound, scale_vars, user_files, fingerprint)
        if cell.key in cells:  # identical work under other factor values (an untrained model at every data size)
            cells[cell.key].aliases.append(factors)
            continue
        reason = next((r for r in map(_plan_check, cell.steps) if r), None)
        if reason:
            skipped[cell.label] = {"factors": factors, "reason": " ".join(str(reason).split())}
            continue
        cells[cell.key] = cell
    if not cells:
        why = f" ({next(iter(skipped.values()))['reason']})" if skipped else ""
        raise _fail(recipe.path, f"expands to an empty grid (every cell is excluded or skipped{why})",
                    "loosen exclude:, add values, or give the data the skipped steps need")
    sweep = SweepPlan(recipe, scale, out_dir, list(cells.values()), scale_vars,
                      skipped=[{"cell": label, "reason": s["reason"]} for label, s in skipped.items()])
    sweep.comparisons = _plan_comparisons(sweep, excluded, [s["factors"] for s in skipped.values()])
    baselines = {c.baseline for c in sweep.comparisons} - {c.cell for c in sweep.comparisons}
    for cell in sweep.cells:
        cell.is_baseline = cell.key in baselines
    return sweep


def _plan_cell(recipe: Recipe, factors: dict[str, Any], bound: dict[str, Any], scale_vars: dict[str, Any],
               user_files: dict[str, dict[str, Any]], fingerprint) -> CellSpec:
    variables = {**scale_vars, **factors}
    where = f"recipe {recipe.name!r}, cell {factors}"
    variables.update(substitute(bound, variables, where))
    seed = int(factors.get("seed", scale_vars.get("seed", 1234)))
    cell = recipe.cell
    model = str(substitute(cell.get("model", "{model}"), variables, where))
    raw_steps = cell.get("steps") or []
    if cell.get("steps_by"):
        raw_steps = {str(k): v for k, v in (raw_steps or {}).items()}[str(factors[cell["steps_by"]])] or []
    steps: list[StepSpec] = []
    previous_key = None
    for index, raw in enumerate(raw_steps):
        unknown = sorted(set(raw) - STEP_KEYS)
        if unknown or "plugin" not in raw:
            raise _fail(recipe.path, f"step {index + 1} of cell {factors} has unknown key(s) {unknown} or no plugin",
                        f"a step has {', '.join(sorted(STEP_KEYS))} (plugin required)")
        step_vars = {**variables, "prev": "{prev}"}
        task = str(substitute(raw.get("task", "{task}"), step_vars, where))
        step_model = str(substitute(raw.get("model", "{prev}" if steps else model), step_vars, where))
        options = substitute(raw.get("options") or {}, step_vars, where)
        if not steps and (step_model == "{prev}" or "{prev}" in json.dumps(options)):
            raise _fail(recipe.path, f"the first step of cell {factors} refers to {{prev}}",
                        "only a later step can build on the previous one")
        identity = {"plugin": raw["plugin"], "task": task, "data": fingerprint(task), "options": options,
                    "seed": seed, "model": step_model, "prev": previous_key}
        step = StepSpec(raw["plugin"], task, step_model, options, seed, key=_digest(identity),
                        task_metadata=copy.deepcopy(user_files.get(task) or {}))
        steps.append(step)
        previous_key = step.key
    evaluation = substitute(cell["eval"], variables, where)
    tasks = evaluation.get("tasks")
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if not tasks:
        raise _fail(recipe.path, f"cell {factors} scores no tasks", "list them under cell.eval.tasks")
    evaluation["tasks"] = [str(t) for t in tasks]
    # Generation controls checked now, in the form that scores: a system prompt file is read into the identity.
    from medbench.generation import generation_settings

    evaluation.update(generation_settings(evaluation, f"{where}, eval", recipe.path.parent))
    evaluation.pop("system_prompt_file", None)
    key = _digest({"model": model, "steps": [s.key for s in steps], "eval": evaluation, "seed": seed,
                   "data": [fingerprint(t) for t in evaluation["tasks"]]})
    label = ",".join(f"{k}={v}" for k, v in factors.items())
    task_metadata = {t: copy.deepcopy(user_files[t]) for t in evaluation["tasks"] if t in user_files}
    return CellSpec(key, label, factors, model, steps, evaluation, seed, task_metadata=task_metadata)


def _factor_key(factors: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in factors.items()))


def _plan_comparisons(sweep: SweepPlan, excluded: list[dict[str, Any]],
                      skipped: list[dict[str, Any]]) -> list[PlannedComparison]:
    """Pair every compared cell with its baseline cell; an ``exclude`` that removes a baseline is an error."""
    recipe = sweep.recipe
    by_factors: dict[tuple, CellSpec] = {}
    for cell in sweep.cells:
        for factors in (cell.factors, *cell.aliases):
            by_factors[_factor_key(factors)] = cell
    excluded_keys = {_factor_key(f) for f in excluded}
    skipped_keys = {_factor_key(f) for f in skipped}
    every = [f for c in sweep.cells for f in (c.factors, *c.aliases)] + excluded + skipped
    planned: dict[tuple, PlannedComparison] = {}
    for spec in recipe.comparisons:
        factor, baseline_level = spec["factor"], str(spec["baseline"])
        if baseline_level not in {str(f.get(factor)) for f in every}:
            continue  # an optional arm this scale leaves out: the comparison does not apply here
        levels = {str(v) for v in spec.get("levels") or []}
        where = {k: {str(x) for x in (v if isinstance(v, list) else [v])} for k, v in (spec.get("where") or {}).items()}
        for cell in sweep.cells:
            for factors in (cell.factors, *cell.aliases):
                level = str(factors.get(factor))
                if level == baseline_level or (levels and level not in levels):
                    continue
                if any(str(factors.get(k)) not in allowed for k, allowed in where.items()):
                    continue
                partner = _factor_key({**factors, factor: spec["baseline"]})
                base = by_factors.get(partner)
                if base is None:
                    if partner in skipped_keys:
                        continue  # its baseline was skipped at plan time; listed with the skipped cells
                    label = ",".join(f"{k}={v}" for k, v in factors.items())
                    why = "exclude: removes it" if partner in excluded_keys else "no cell has those factors"
                    raise _fail(recipe.path, f"cell {label} has no baseline cell with {factor}={baseline_level} "
                                f"({why}), so the comparison of {factor} cannot be made",
                                "keep the baseline cells in the grid, or drop that comparison")
                if base.key != cell.key:
                    planned.setdefault((cell.key, base.key, factor),
                                       PlannedComparison(cell.key, base.key, factor, factors.get(factor),
                                                         spec["baseline"]))
    return list(planned.values())


def step_input(step: StepSpec, previous: StepSpec | None) -> str:
    """What a step starts from: a model reference, or ``step:NAME`` of the step before it."""
    return f"step:{previous.name}" if step.model == "{prev}" and previous else step.model
