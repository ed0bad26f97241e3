"""Planning a recipe: its grid expanded into cells, steps and comparisons, before any model loads.

Identity: a step's identity hashes its plugin, resolved options, seed, input model (or the identity of the step
it builds on) and its training data (the task folder and any user data file, by content); a cell's identity
adds the evaluation. Cells whose identities coincide (an untrained model at every data size) are planned once
and stand for every factor combination they cover (``aliases``), so comparisons find them under each.

Planning fails in one line where the study could not be answered: an ``exclude`` that removes a comparison's
baseline, a comparison pooled over strata scored on different metrics (medbench.comparison_planning), or scale
variables that refer to each other in a cycle; a comparison whose baseline or level no cell has at this scale, or
whose ``where`` matches no cell, is listed as left out (a value the factor has at no scale is a typo, refused when
the recipe is read: medbench.recipe_comparisons). A trainer may say at plan time that a step cannot run on the data
(``plan_check``): its cells are skipped with that reason, before anything trains; one that knows which
checkpoints a step will make (``plan_checkpoints``) has them listed on the cell and its comparisons. A cell
that stands for several factor combinations is labelled with the levels it covers (``shots=any``).
Values that would fail only when a cell runs (a seed past 32 bits, an eval limit of 0) or that would make two
cells write one record folder (two levels of a factor named alike) are refused here (medbench.cell_checks).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medbench.comparison_planning import (  # noqa: F401  (PlannedComparison: re-exported with the plan)
    PlannedComparison, check_held_out, check_metric_tasks, check_pooled_metrics, plan_comparisons, plan_selections)
from medbench.cell_checks import check_distinct_labels, check_eval_values, check_seed
from medbench.errors import MedbenchError
from medbench.recipe import (STEP_KEYS, Recipe, contained_file_options, data_file_overrides, map_file_options,
                             grid_levels, recipe_error, resolve_bindings, resolve_variables, set_value,
                             substitute, task_fingerprint, whole_seed, model_reference)
from medbench.records import slug
from medbench.step_selection import read_select, selection_identity, variant_options


@dataclass
class StepSpec:
    plugin: str
    task: str
    model: str  # a model reference, or "{prev}" for the previous step's final checkpoint
    options: dict[str, Any]
    seed: int
    key: str = ""  # identity hash, filled in by plan()
    task_metadata: dict[str, Any] = field(default_factory=dict)  # the user's data files for the step's task
    select: dict[str, Any] | None = None  # {split, tasks, ties, ...}: a checkpoint chosen on validation (step_selection)
    select_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # user data files of select's tasks
    variants: list["StepSpec"] = field(default_factory=list)  # select.over: one training per option setting

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
    checkpoints: list[str] = field(default_factory=list)  # the last step's checkpoints, when its trainer says
    selections: list[dict[str, Any]] = field(default_factory=list)  # {split, tasks} its checkpoints are chosen by
    data_problem: str | None = None  # why an eval.require_real_data task would score a bundled sample (skipped)


MAX_GRID_CELLS = 10_000  # an order above the largest study here (curriculum with human labels: 360 cells)


@dataclass
class SweepPlan:
    recipe: Recipe
    scale: str
    out_dir: Path
    cells: list[CellSpec]
    variables: dict[str, Any] = field(default_factory=dict)
    comparisons: list[PlannedComparison] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {cell, reason}: cells a trainer cannot run
    comparisons_left_out: list[str] = field(default_factory=list)  # no such level or cell at this scale, or skipped

    @property
    def leaderboard_dir(self) -> Path:
        return self.out_dir / "leaderboard"


def _digest(data: Any) -> str:
    return hashlib.blake2b(json.dumps(data, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


def _by_content(options: Any) -> Any:
    """A step's options for its identity, each file option by its file's content: the same recipe in another
    folder is the same step, and an edited file is a new one."""
    from medbench.taskdata import sha256_file

    return map_file_options(options, lambda key, value: f"sha256:{sha256_file(Path(value))}"
                            if Path(value).is_file() else value)


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


def _plan_check(recipe: Recipe, step: StepSpec) -> str | None:
    """A trainer's own plan-time verdict on whether this step can run on its data (None: it can). A bad option
    stops the plan in the recipe's own spelling, naming the recipe and step."""
    from medbench.trainer_options import recipe_options
    from medbench.training import get_trainer

    check = getattr(get_trainer(step.plugin), "plan_check", None)
    if check is None:
        return None
    files = (step.task_metadata or {}).get("data_files") or {}
    with recipe_options(_step_in_recipe(recipe.path, step)):
        return check(step.task, copy.deepcopy(step.options),
                     {f"{step.task}:{split}": path for split, path in files.items()})


def _plan_checkpoints(recipe: Recipe, step: StepSpec) -> list[str]:
    """The checkpoint names a step will make, when its trainer can say so before training (else [])."""
    from medbench.trainer_options import recipe_options
    from medbench.training import get_trainer

    names = getattr(get_trainer(step.plugin), "plan_checkpoints", None)
    with recipe_options(_step_in_recipe(recipe.path, step)):
        return [str(n) for n in names(step.task, copy.deepcopy(step.options)) or []] if names else []


def _step_in_recipe(path: Any, step: StepSpec) -> str:
    """Where a step's options are written, for messages: ``recipe PATH, step sft (task uti)``."""
    return f"recipe {path}, step {step.plugin} (task {step.task})"


def _alias_labels(cells: list[CellSpec], levels: dict[str, list[Any]]) -> None:
    """A cell standing for several factor combinations names the levels it covers: ``any`` for all of them."""
    for cell in cells:
        if not cell.aliases:
            continue
        parts = []
        for factor, value in cell.factors.items():
            names = [str(v.get("name")) if isinstance(v, dict) else str(v) for v in levels[factor]]
            covered = {str(f.get(factor)) for f in (cell.factors, *cell.aliases)}
            if len(covered) > 1:
                value = "any" if covered == set(names) else "+".join(n for n in names if n in covered)
            parts.append(f"{factor}={value}")
        cell.label = ",".join(parts)


def plan(recipe: Recipe, scale: str | None = None, out_dir: str | Path | None = None,
         overrides: dict[str, Any] | None = None, data_files: dict[str, str] | None = None) -> SweepPlan:
    """Expand the grid into cells, their identities and comparisons (no model is loaded). ``overrides``
    replace the chosen scale's variables (``--set model=PATH``); ``data_files`` (``--data-file``, resolved
    against the CWD) go over the recipe's own."""
    from medbench.trainingdata import examples_read_once

    with examples_read_once():  # the trainers' plan checks read each task's training data once
        return _plan(recipe, scale, out_dir, overrides, data_files)


def _plan(recipe: Recipe, scale: str | None, out_dir: str | Path | None, overrides: dict[str, Any] | None,
          data_files: dict[str, str] | None) -> SweepPlan:
    scale, scale_vars = _selected_scale(recipe, scale)
    for key, value in (overrides or {}).items():
        if key not in scale_vars:
            raise MedbenchError(f"--set {key}=...: scale {scale!r} of recipe {recipe.name!r} has no variable {key!r}",
                                f"set one of: {', '.join(sorted(scale_vars)) or '(none)'}")
        scale_vars[key] = set_value(key, value) if isinstance(value, str) else value
    scale_vars = resolve_variables(scale_vars, f"recipe {recipe.name!r}, scale {scale!r}")
    given = {str(scale_vars[key]) for key in overrides or {}}  # --set values: the user's own paths
    user_files = {**data_file_overrides(recipe.data_files, recipe.path.parent),
                  **data_file_overrides(data_files or {})}
    out_dir = Path(out_dir) if out_dir else Path("sweeps") / f"{slug(recipe.name)}-{slug(scale)}"
    factor_names = list(recipe.grid)
    levels = {f: grid_levels(v, scale_vars, f"recipe {recipe.name!r}, grid {f}") for f, v in recipe.grid.items()}
    for factor, values in levels.items():
        if not isinstance(values, list) or not values:
            raise recipe_error(recipe.path, f"factor {factor!r} has no values at scale {scale!r}",
                        f"give {factor}: a non-empty list")
    fingerprints: dict[str, str] = {}
    registry: list[Any] = []

    def task_registry() -> Any:
        if not registry:
            from medbench.tasks import build_registry

            registry.append(build_registry())
        return registry[0]

    def fingerprint(task: str) -> str:
        if task not in fingerprints:
            fingerprints[task] = task_fingerprint(task, (user_files.get(task) or {}).get("data_files"),
                                                  task_registry())
        return fingerprints[task]

    cells: dict[str, CellSpec] = {}
    excluded: list[dict[str, Any]] = []
    skipped: dict[str, dict[str, Any]] = {}  # label -> {factors, reason}
    labels: dict[str, str] = {}  # label -> cell key: one label is one record folder
    size = math.prod(len(levels[f]) for f in factor_names)
    if size > MAX_GRID_CELLS:  # planning checks every cell's data and trainer: a huge grid would seem to hang
        shape = " x ".join(str(len(levels[f])) for f in factor_names)
        raise recipe_error(recipe.path, f"grid expands to {size:,} cells ({shape})",
                           f"keep it under {MAX_GRID_CELLS:,} cells: fewer levels, or exclude: combinations")
    for values in itertools.product(*(levels[f] for f in factor_names)):
        factors, bound = {}, {}
        for factor, value in zip(factor_names, values):
            if isinstance(value, dict):  # {name: llm, difficulty_models: [...]}: a level that binds variables
                if "name" not in value:
                    raise recipe_error(recipe.path, f"a level of factor {factor!r} is a mapping without 'name'",
                                "give every mapping level a name: {name: llm, ...}")
                factors[factor] = value["name"]
                bound.update({k: v for k, v in value.items() if k != "name"})
            else:
                factors[factor] = value
        if any(_matches(factors, rule) for rule in recipe.exclude):
            excluded.append(factors)
            continue
        cell = _plan_cell(recipe, factors, bound, scale_vars, user_files, fingerprint, given)
        for step in (s for s in cell.steps if s.select):  # each task's own validation split, whatever its name
            for task in step.select["tasks"]:
                split = task_registry().get(task).config.get("validation_split") or "validation"
                check_held_out(recipe.path, f"step {step.plugin} (task {step.task})",
                               {"split": split, "tasks": [task]}, task_registry)
        check_distinct_labels(recipe, labels, cell.label, cell.key, levels)
        if cell.key in cells:  # identical work under other factor values (an untrained model at every data size)
            cells[cell.key].aliases.append(factors)
            continue
        if reason := next((r for r in (_plan_check(recipe, s) for s in trained_steps(cell)) if r), None) \
                or cell.data_problem:
            skipped[cell.label] = {"factors": factors, "reason": " ".join(str(reason).split())}
            continue
        cell.checkpoints = _plan_checkpoints(recipe, cell.steps[-1]) if cell.steps else []
        cells[cell.key] = cell
    if not cells:
        why = f" ({next(iter(skipped.values()))['reason']})" if skipped else ""
        raise recipe_error(recipe.path, f"expands to an empty grid (every cell is excluded or skipped{why})",
                    "loosen exclude:, add values, or give the data the skipped steps need")
    _alias_labels(list(cells.values()), levels)
    sweep = SweepPlan(recipe, scale, out_dir, list(cells.values()), scale_vars,
                      skipped=[{"cell": label, "reason": s["reason"]} for label, s in skipped.items()])
    sweep.comparisons = plan_comparisons(sweep, excluded, [s["factors"] for s in skipped.values()])
    plan_selections(sweep, task_registry)
    check_pooled_metrics(sweep, task_registry)
    check_metric_tasks(sweep, task_registry)
    baselines = {c.baseline for c in sweep.comparisons} - {c.cell for c in sweep.comparisons}
    for cell in sweep.cells:  # a cell only ever compared against
        cell.is_baseline = cell.key in baselines
    return sweep


def _plan_cell(recipe: Recipe, factors: dict[str, Any], bound: dict[str, Any], scale_vars: dict[str, Any],
               user_files: dict[str, dict[str, Any]], fingerprint, given: set[str]) -> CellSpec:
    variables = {**scale_vars, **factors}
    where = f"recipe {recipe.name!r}, cell {factors}"
    variables.update(resolve_bindings(bound, variables, where))  # a level's variables may use another level's
    seed = check_seed(recipe, where, whole_seed(factors.get("seed", scale_vars.get("seed", 1234)), where))
    cell = recipe.cell
    model = model_reference(cell.get("model", "{model}"), variables, where)
    raw_steps = cell.get("steps") or []
    if cell.get("steps_by"):
        by_level = {str(k): v for k, v in (raw_steps or {}).items()}
        level = str(factors[cell["steps_by"]])
        if level not in by_level:  # a level a scale variable (or --set) gave, which the recipe has no steps for
            raise recipe_error(recipe.path, f"cell.steps has no entry for {cell['steps_by']}={level}",
                               f"add a step list for {level} under cell.steps, or leave {level} out of the grid")
        raw_steps = by_level[level] or []
    evaluation = substitute(cell["eval"], variables, where)
    tasks = evaluation.get("tasks")
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if not tasks or not isinstance(tasks, list) or not all(isinstance(t, (str, int)) for t in tasks):
        raise recipe_error(recipe.path, f"cell {factors} scores no tasks (cell.eval.tasks is {str(tasks)[:60]!r})",
                           "list the task names under cell.eval.tasks: [medqa, ...]")
    evaluation["tasks"] = [str(t) for t in tasks]
    check_eval_values(recipe, factors, evaluation)
    required = evaluation.pop("require_real_data", None) or []  # a check, not part of how the cell scores
    if not isinstance(required, list) or not set(map(str, required)) <= set(evaluation["tasks"]):
        raise recipe_error(recipe.path, f"cell {factors}: eval.require_real_data {required!r} must list tasks of "
                           "eval.tasks", "write eval.require_real_data: [medqa] (medbench.real_data)")
    # Generation controls checked now, in the form that scores: a system prompt file is read into the identity.
    from medbench.generation import generation_settings

    evaluation.update(generation_settings(evaluation, f"{where}, eval", recipe.path.parent))
    evaluation.pop("system_prompt_file", None)
    steps: list[StepSpec] = []
    previous_key = None
    if not isinstance(raw_steps, list):
        raise recipe_error(recipe.path, f"the steps of cell {factors} are not a list",
                           "write steps: [{plugin: sft, task: ...}, ...] (or a mapping of lists with steps_by)")
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            raise recipe_error(recipe.path, f"step {index + 1} of cell {factors} is not a mapping",
                               "write a step as {plugin: NAME, task: TASK, options: {...}}")
        unknown = sorted(set(raw) - STEP_KEYS)
        if unknown or "plugin" not in raw:
            raise recipe_error(recipe.path, f"step {index + 1} of cell {factors} has unknown key(s) {unknown} or no plugin",
                        f"a step has {', '.join(sorted(STEP_KEYS))} (plugin required)")
        if not isinstance(raw["plugin"], str):
            raise recipe_error(recipe.path, f"step {index + 1} of cell {factors}: plugin {raw['plugin']!r} is not a "
                               "trainer name", "write plugin: sft (see `medbench trainers`)")
        step_vars = {**variables, "prev": "{prev}"}
        task = str(substitute(raw.get("task", "{task}"), step_vars, where))
        step_model = model_reference(raw.get("model", "{prev}" if steps else model), step_vars, where)
        options = contained_file_options(substitute(raw.get("options") or {}, step_vars, where),
                                         recipe.path.parent, given, where)
        if not isinstance(options, dict):
            raise recipe_error(recipe.path, f"step {index + 1} of cell {factors}: options {str(options)[:60]!r} are "
                               "not a mapping", "write options: {max_steps: 10, learning_rate: 2.0e-4}")
        if not steps and (step_model == "{prev}" or "{prev}" in json.dumps(options)):
            raise recipe_error(recipe.path, f"the first step of cell {factors} refers to {{prev}}",
                        "only a later step can build on the previous one")
        identity = {"plugin": raw["plugin"], "task": task, "data": fingerprint(task), "options": _by_content(options),
                    "seed": seed, "model": step_model, "prev": previous_key}
        select = None
        if "select" in raw:  # the choice, and what it is scored with, are part of what the next step starts from
            try:
                select = read_select(substitute(raw["select"], step_vars, where), task,
                                     f"step {index + 1} of cell {factors}")
            except MedbenchError as exc:
                raise recipe_error(recipe.path, exc.problem, exc.fix) from None
            if "scoring" in select:  # checked now, in the form that scores (as the cell's eval below)
                check_eval_values(recipe, factors, select["scoring"], f"step {index + 1} select.scoring")
                select["scoring"].update(generation_settings(select["scoring"], f"{where}, step select scoring",
                                                             recipe.path.parent))
                select["scoring"].pop("system_prompt_file", None)
            identity["select"] = selection_identity(select, evaluation, [fingerprint(t) for t in select["tasks"]])
        step = StepSpec(raw["plugin"], task, step_model, options, seed, key=_digest(identity),
                        task_metadata=copy.deepcopy(user_files.get(task) or {}), select=select,
                        select_metadata={t: copy.deepcopy(user_files[t]) for t in (select or {}).get("tasks", [])
                                         if t in user_files})
        plain = {k: v for k, v in identity.items() if k != "select"}  # a variant's identity: a plain step's
        for setting in variant_options(select or {}):  # each trains as the plain step with that setting would
            setting = contained_file_options(setting, recipe.path.parent, given, where)  # file options: as above
            if not steps and "{prev}" in json.dumps(setting):
                raise recipe_error(recipe.path, f"the first step of cell {factors} refers to {{prev}} in select.over",
                                   "only a later step can build on the previous one")
            varied = {**options, **setting}
            step.variants.append(replace(step, options=varied, select=None, select_metadata={}, variants=[],
                                         key=_digest({**plain, "options": _by_content(varied)})))
        steps.append(step)
        previous_key = step.key
    key = _digest({"model": model, "steps": [s.key for s in steps], "eval": evaluation, "seed": seed,
                   "data": [fingerprint(t) for t in evaluation["tasks"]]})
    label = ",".join(f"{k}={v}" for k, v in factors.items())
    task_metadata = {t: copy.deepcopy(user_files[t]) for t in evaluation["tasks"] if t in user_files}
    from medbench.real_data import eval_data_problem

    return CellSpec(key, label, factors, model, steps, evaluation, seed, task_metadata=task_metadata,
                    data_problem=eval_data_problem([str(t) for t in required], user_files) if required else None)


def trained_steps(cell: CellSpec) -> list[StepSpec]:
    """The trainings a cell's steps make: a step with ``select.over`` is one per option setting."""
    return [v for step in cell.steps for v in (step.variants or [step])]


def variant_setting(step: StepSpec, variant: StepSpec) -> dict[str, Any]:
    """The options ``step``'s ``select.over`` sets in one of its ``variants``."""
    return {k: variant.options[k] for k in (step.select or {}).get("over") or {}}


def step_input(step: StepSpec, previous: StepSpec | None) -> str:
    """What a step starts from: a model reference, or ``step:NAME`` of the step before it (its final checkpoint;
    ``step:NAME@selected``: the one its ``select`` chooses on validation)."""
    if step.model != "{prev}" or not previous:
        return step.model
    return f"step:{previous.name}" + ("@selected" if previous.select else "")
