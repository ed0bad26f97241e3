"""Sweeps: a recipe declares a grid of factors; every cell trains, scores its checkpoints and lands in a leaderboard.

A recipe (YAML, read with ``yaml.safe_load``)::

    name: sft_vs_dpo
    scales:                     # named variable sets; --scale picks one (toy runs on a laptop CPU)
      toy: {model: smollm2-135m-instruct, max_steps: 4, eval_limit: 20}
      full: {model: meta-llama/Llama-3.1-8B-Instruct, max_steps: -1, eval_limit: null}
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
        dpo: [{plugin: dpo, task: "{task}", options: {max_steps: "{max_steps}"}}]
      eval: {tasks: ["{task}"], limit: "{eval_limit}", mode: loglikelihood}
    baseline: {method: base}    # the cells every other cell is compared with (same other factors)
    report: {compare: method}   # the factor whose levels the closing comparison contrasts

``"{name}"`` is replaced by a factor or scale variable (a whole-string reference keeps the value's type).
A step's model defaults to the previous step's final checkpoint; ``"{prev}"`` names it explicitly (a merge
step merges it back into ``"{model}"``).

Identity and resume: a step's identity hashes its plugin, resolved options, seed, input model (or the
identity of the step it builds on) and its training data; a cell's identity adds the evaluation. Finished
steps and cells leave a marker, so a re-run skips them and an interrupted sweep resumes where it stopped;
shared steps (one SFT feeding five merge weights) run once. A cell that fails is recorded with its error
and the others go on. Cells run through an executor from the ``register_executors`` hook.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from medbench.errors import MedbenchError
from medbench.plugins import named_registry, unknown_name
from medbench.records import atomic_write_json, slug

RECIPE_KEYS = {"name", "description", "scales", "grid", "exclude", "cell", "baseline", "report", "study"}
CELL_KEYS = {"model", "steps", "steps_by", "eval"}
STEP_KEYS = {"plugin", "task", "model", "options"}
EVAL_KEYS = {"tasks", "limit", "mode", "num_fewshot", "fewshot_rationales", "chat_template", "batch_size", "judges"}
_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


# ----------------------------------------------------------------------------------------------- recipe

@dataclass
class Recipe:
    name: str
    path: Path
    description: str
    scales: dict[str, dict[str, Any]]
    grid: dict[str, list[Any]]
    exclude: list[dict[str, Any]]
    cell: dict[str, Any]
    baseline: dict[str, Any]
    report: dict[str, Any]
    study: str = ""


def _fail(path: Path, problem: str, fix: str) -> MedbenchError:
    return MedbenchError(f"recipe {path}: {problem}", fix)


def read_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MedbenchError(f"recipe {path} does not exist", "check the path (the bundled recipes are in recipes/)") \
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
    unknown = sorted(set(cell["eval"] or {}) - EVAL_KEYS)
    if unknown:
        raise _fail(path, f"cell.eval has unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(EVAL_KEYS))}")
    steps_by = cell.get("steps_by")
    if steps_by is not None:
        if steps_by not in grid:
            raise _fail(path, f"steps_by names {steps_by!r}, which is not a grid factor",
                        f"use one of {', '.join(grid)}")
        levels = grid[steps_by] if isinstance(grid[steps_by], list) else []
        names = [str(v.get("name")) if isinstance(v, dict) else str(v) for v in levels]
        missing = [n for n in names if n not in {str(k) for k in (cell.get("steps") or {})}]
        if missing:
            raise _fail(path, f"cell.steps has no entry for {steps_by}={', '.join(missing)}",
                        "add a step list (possibly []) for every value of that factor")
    scales = data.get("scales") or {}
    exclude = data.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(e, dict) for e in exclude):
        raise _fail(path, "exclude must be a list of factor mappings", "write exclude: [{method: dpo, task: uti}]")
    return Recipe(name=str(data["name"]), path=path, description=str(data.get("description") or ""),
                  scales=scales, grid=grid, exclude=exclude, cell=cell, baseline=data.get("baseline") or {},
                  report=data.get("report") or {}, study=str(data.get("study") or ""))


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


# ----------------------------------------------------------------------------------------------- cells

@dataclass
class StepSpec:
    plugin: str
    task: str
    model: str  # a model reference, or "{prev}" for the previous step's final checkpoint
    options: dict[str, Any]
    seed: int
    key: str = ""  # identity hash, filled in by plan()


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


@dataclass
class SweepPlan:
    recipe: Recipe
    scale: str
    out_dir: Path
    cells: list[CellSpec]
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def leaderboard_dir(self) -> Path:
        return self.out_dir / "leaderboard"


def _digest(data: Any) -> str:
    return hashlib.blake2b(json.dumps(data, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


def task_fingerprint(task: str, data_files: Any = None) -> str:
    """Hash of a task's YAML and the data files beside it (and the user's, if given): its training data."""
    from medbench.tasks import build_registry

    entry = build_registry().get(task)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(entry.path.read_bytes())
    folder = entry.path.parent
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json", ".csv",
                                                                                       ".parquet", ".py", ".yaml")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _selected_scale(recipe: Recipe, scale: str | None) -> tuple[str, dict[str, Any]]:
    if not recipe.scales:
        return scale or "default", {}
    scale = scale or next(iter(recipe.scales))
    if scale not in recipe.scales:
        raise MedbenchError(f"recipe {recipe.name!r} has no scale {scale!r}",
                            f"pass --scale {' or --scale '.join(recipe.scales)}")
    return scale, dict(recipe.scales[scale] or {})


def _excluded(factors: dict[str, Any], exclude: list[dict[str, Any]]) -> bool:
    return any(all(str(factors.get(k)) == str(v) for k, v in rule.items()) for rule in exclude)


def plan(recipe: Recipe, scale: str | None = None, out_dir: str | Path | None = None,
         overrides: dict[str, Any] | None = None) -> SweepPlan:
    """Expand the grid into cells with their identities (no model is loaded). ``overrides`` replace the
    chosen scale's variables (``medbench sweep --set model=PATH``)."""
    scale, scale_vars = _selected_scale(recipe, scale)
    for key, value in (overrides or {}).items():
        if key not in scale_vars:
            raise MedbenchError(f"--set {key}=...: scale {scale!r} of recipe {recipe.name!r} has no variable {key!r}",
                                f"set one of: {', '.join(sorted(scale_vars)) or '(none)'}")
        scale_vars[key] = yaml.safe_load(value) if isinstance(value, str) else value
    out_dir = Path(out_dir) if out_dir else Path("sweeps") / f"{slug(recipe.name)}-{slug(scale)}"
    factor_names = list(recipe.grid)
    levels = {f: substitute(v, scale_vars, f"recipe {recipe.name!r}, grid {f}") for f, v in recipe.grid.items()}
    for factor, values in levels.items():
        if not isinstance(values, list) or not values:
            raise _fail(recipe.path, f"factor {factor!r} has no values at scale {scale!r}",
                        f"give {factor}: a non-empty list")
    fingerprints: dict[str, str] = {}
    cells: list[CellSpec] = []
    seen: set[str] = set()
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
        if _excluded(factors, recipe.exclude):
            continue
        variables = {**scale_vars, **factors}
        variables.update(substitute(bound, variables, f"recipe {recipe.name!r}, cell {factors}"))
        seed = int(factors.get("seed", scale_vars.get("seed", 1234)))
        where = f"recipe {recipe.name!r}, cell {factors}"
        cell = recipe.cell
        model = str(substitute(cell.get("model", "{model}"), variables, where))
        raw_steps = cell.get("steps") or []
        if cell.get("steps_by"):
            by_value = {str(k): v for k, v in (raw_steps or {}).items()}
            raw_steps = by_value[str(factors[cell["steps_by"]])] or []
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
            if task not in fingerprints:
                fingerprints[task] = task_fingerprint(task)
            identity = {"plugin": raw["plugin"], "task": task, "data": fingerprints[task], "options": options,
                        "seed": seed, "model": step_model, "prev": previous_key}
            step = StepSpec(raw["plugin"], task, step_model, options, seed, key=_digest(identity))
            steps.append(step)
            previous_key = step.key
        if any(s.model == "{prev}" or "{prev}" in json.dumps(s.options) for s in steps[:1]):
            raise _fail(recipe.path, f"the first step of cell {factors} refers to {{prev}}",
                        "only a later step can build on the previous one")
        evaluation = substitute(cell["eval"], variables, where)
        tasks = evaluation.get("tasks")
        if isinstance(tasks, str):
            tasks = [t.strip() for t in tasks.split(",") if t.strip()]
        if not tasks:
            raise _fail(recipe.path, f"cell {factors} scores no tasks", "list them under cell.eval.tasks")
        evaluation["tasks"] = [str(t) for t in tasks]
        for name in evaluation["tasks"]:
            if name not in fingerprints:
                fingerprints[name] = task_fingerprint(name) if name in _known_tasks() else "group:" + name
        key = _digest({"model": model, "steps": [s.key for s in steps], "eval": evaluation, "seed": seed,
                       "data": [fingerprints[t] for t in evaluation["tasks"]]})
        if key in seen:  # identical work under other factor values (an untrained model at every data size)
            continue
        seen.add(key)
        label = ",".join(f"{k}={v}" for k, v in factors.items())
        is_baseline = bool(recipe.baseline) and all(str(factors.get(k)) == str(v) for k, v in recipe.baseline.items())
        cells.append(CellSpec(key, label, factors, model, steps, evaluation, seed, is_baseline))
    if not cells:
        raise _fail(recipe.path, "expands to an empty grid (every cell is excluded)", "loosen exclude: or add values")
    return SweepPlan(recipe, scale, out_dir, cells, scale_vars)


def _known_tasks() -> set[str]:
    from medbench.tasks import build_registry

    return set(build_registry().entries)


# ----------------------------------------------------------------------------------------------- running

@dataclass
class CellResult:
    key: str
    label: str
    status: str  # done | skipped (already done) | failed
    records: list[str] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0


def _cell_marker(out_dir: Path, cell: CellSpec) -> Path:
    return out_dir / "cells" / f"{cell.key}.json"


def _finished(out_dir: Path, cell: CellSpec) -> dict[str, Any] | None:
    """The marker of a cell that finished (status done), or None."""
    marker = _cell_marker(out_dir, cell)
    if not marker.exists():
        return None
    done = json.loads(marker.read_text(encoding="utf-8"))
    return done if done.get("status") == "done" else None


def _step_dir(out_dir: Path, step: StepSpec) -> Path:
    return out_dir / "steps" / f"{slug(step.plugin)}-{step.key}"


def _run_step(out_dir: Path, step: StepSpec, model: str, prev: str | None) -> list[dict[str, Any]]:
    """Train one step, or reuse it if a finished copy exists; returns its checkpoints (path, step, final)."""
    from medbench import training

    directory = _step_dir(out_dir, step)
    marker = directory / "step.json"
    if marker.exists():
        return json.loads(marker.read_text(encoding="utf-8"))["checkpoints"]
    if directory.exists():  # a step interrupted mid-way starts over: its partial checkpoints are not trusted
        import shutil

        shutil.rmtree(directory)
    resolved = substitute(step.options, {"prev": prev or ""}, f"step {step.plugin}")
    trainer = training.get_trainer(step.plugin)
    config = training.build_config(trainer.config_class, {}, resolved, step.plugin)
    directory.mkdir(parents=True)
    request = training.TrainRequest(model_ref=model, task=step.task, output_dir=directory, config=config,
                                    seed=step.seed)
    checkpoints = training.train(step.plugin, request, directory.name)
    found = [{"path": str(c.path), "step": c.step, "final": c.final, "plugin": step.plugin,
              "trainer_config": c.trainer_config or dataclasses.asdict(config)} for c in checkpoints]
    atomic_write_json(marker, {"key": step.key, "plugin": step.plugin, "task": step.task, "model": model,
                               "options": resolved, "checkpoints": found})
    return found


def run_cell(out_dir: Path, recipe_name: str, cell: CellSpec) -> CellResult:
    """Train the cell's steps and score the model it ends with (every checkpoint of the last step)."""
    from medbench.evaluation import EvalConfig, evaluate

    started = time.time()
    marker = _cell_marker(out_dir, cell)
    done = _finished(out_dir, cell)
    if done is not None:
        return CellResult(cell.key, cell.label, "skipped", done.get("records", []))
    try:
        scored: list[dict[str, Any]] = [{"path": cell.model, "step": None, "final": True, "plugin": None}]
        prev = None
        for step in cell.steps:
            model = prev if step.model == "{prev}" else step.model
            scored = _run_step(out_dir, step, model, prev)
            finals = [c for c in scored if c["final"]] or scored
            prev = finals[-1]["path"]
        records = []
        evaluation = cell.eval
        for checkpoint in scored:
            suffix = "" if len(scored) == 1 else f"/{Path(checkpoint['path']).name}"
            extra = {"sweep": recipe_name, "cell": cell.key, "factors": cell.factors, "baseline": cell.is_baseline,
                     **({"training": {"plugin": checkpoint["plugin"], "trainer_config": checkpoint["trainer_config"],
                                      "step": checkpoint["step"]}} if checkpoint["plugin"] else {})}
            config = EvalConfig(tasks=list(evaluation["tasks"]), limit=evaluation.get("limit"),
                                num_fewshot=evaluation.get("num_fewshot"),
                                batch_size=int(evaluation.get("batch_size") or 8), seed=cell.seed,
                                output_dir=out_dir / "leaderboard", label=cell.label + suffix,
                                chat_template=bool(evaluation.get("chat_template")),
                                mode=evaluation.get("mode") or "loglikelihood",
                                fewshot_rationales=bool(evaluation.get("fewshot_rationales")),
                                judges=list(evaluation.get("judges") or []), extra=extra)
            records += [r["_path"] for r in evaluate(checkpoint["path"], config)]
        result = CellResult(cell.key, cell.label, "done", records, duration_s=round(time.time() - started, 1))
    except (Exception, SystemExit) as exc:  # a failed cell is recorded; the sweep goes on
        message = exc.one_line() if isinstance(exc, MedbenchError) else f"{type(exc).__name__}: {exc}"
        result = CellResult(cell.key, cell.label, "failed", error=" ".join(message.split()),
                            duration_s=round(time.time() - started, 1))
        (out_dir / "cells").mkdir(parents=True, exist_ok=True)
        (out_dir / "cells" / f"{cell.key}.traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
    atomic_write_json(marker, {**dataclasses.asdict(result), "factors": cell.factors})
    return result


# ----------------------------------------------------------------------------------------------- executors

CellRunner = Callable[[CellSpec], CellResult]


def executor_registry() -> dict[str, Any]:
    return named_registry("register_executors", "executor", ("name", "run"))


def get_executor(name: str) -> Any:
    executors = executor_registry()
    if name not in executors:
        raise unknown_name("executor", name, executors, "pass --executor with a known name, or install its plugin")
    return executors[name]


def run_sweep(sweep: SweepPlan, executor: str = "local", options: dict[str, str] | None = None,
              on_result: Callable[[CellResult], None] | None = None) -> list[CellResult]:
    """Run every cell through ``executor``; results come back in completion order."""
    chosen = get_executor(executor)
    sweep.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(sweep.out_dir / "plan.json", describe(sweep))
    results = []
    runner = _CellRunner(sweep.out_dir, sweep.recipe.name)
    for result in chosen.run(sweep.cells, runner, dict(options or {})):
        results.append(result)
        if on_result:
            on_result(result)
    return results


@dataclass
class _CellRunner:
    """Picklable: executors may ship it to other processes or machines (a shared filesystem is assumed)."""

    out_dir: Path
    recipe_name: str

    def __call__(self, cell: CellSpec) -> CellResult:
        return run_cell(self.out_dir, self.recipe_name, cell)


def describe(sweep: SweepPlan) -> dict[str, Any]:
    return {"recipe": sweep.recipe.name, "scale": sweep.scale, "out_dir": str(sweep.out_dir),
            "variables": sweep.variables, "grid": sweep.recipe.grid,
            "cells": [{"key": c.key, "label": c.label, "factors": c.factors, "baseline": c.is_baseline,
                       "model": c.model, "steps": [{"plugin": s.plugin, "task": s.task, "key": s.key,
                                                    "options": s.options} for s in c.steps],
                       "eval": c.eval, "done": _finished(sweep.out_dir, c) is not None}
                      for c in sweep.cells]}


def iter_cells_local(cells: list[CellSpec], runner: CellRunner) -> Iterator[CellResult]:
    for cell in cells:
        yield runner(cell)
