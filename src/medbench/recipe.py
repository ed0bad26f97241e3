"""Recipes: a study's grid of factors, read from YAML (medbench.planning plans them into cells, steps and
comparisons).

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
        # a step's select: {split: validation, tasks: [uti]} scores each of its checkpoints (save_every_epoch: true
        #   keeps one per epoch) on validation; the best is what the next step starts from and the cell scores
        #   (medbench.step_selection)
      eval: {tasks: ["{task}"], limit: "{eval_limit}", mode: loglikelihood, judges: [likert],
             judge_options: {model: REF}}   # also gen_kwargs, system_prompt(_file), repeats (medbench.generation)
      # eval.require_real_data: [medqa]: skip the cell (plan time, one line) where that task would score its bundled
      #   sample instead of its real test set (medbench.real_data)
    comparisons:                # each cell at `levels` of `factor` against the cell at `baseline`, all else equal
      - {factor: method, baseline: base}
      - {factor: method, levels: [dpo], baseline: sft}
      - {factor: scoring, baseline: loglikelihood, where: {method: [base, sft]}}   # only these cells
      # primary: the study's question (its own Benjamini-Hochberg family, tested pooled over seeds);
      # metrics: {task: metric} compares that task on another of its metrics than its primary one;
      # margin: m also tests equivalence (TOST: the 90% CI of the difference inside +-m) for "on par" claims
      # select: {split: validation, tasks: [medqa, ...]}: a cell with several checkpoints (a curve) is compared
      #   through one, chosen per cell (so per seed) by the mean of those tasks' primary metrics on that split,
      #   never the test split (the plan carries it: PlannedComparison.select, CellSpec.selections);
      #   exclude: {t: [0.0, 1.0]} keeps checkpoints with those factor values out of the choice (a merge's endpoints
      #   are its unmerged inputs), though they stay on the curve
      # pool_over: [model, task]: one answer averaged over those factors' combinations and the seeds (a stratified
      #   test, medbench.stratified), plus whether the effect differs between them (medbench.recipe_comparisons)
      # tasks: [a, b]: only those of the cells' scored tasks are compared by this comparison
      # noninferiority: m reads it one-sided instead (no worse than the baseline by more than m, superior where the
      #   one-sided bound clears 0; medbench.noninferiority), for "retains" claims where doing better is welcome

``"{name}"`` is replaced by a factor or scale variable (a whole-string reference keeps the value's type); scale
variables may refer to each other. A step's model defaults to the previous step's final checkpoint;
``"{prev}"`` names it explicitly (a merge step merges it back into ``"{model}"``). The older form
``baseline: {method: base}`` + ``report: {compare: method}`` is one comparison.

Planning (medbench.planning) expands the grid into cells, their identities and comparisons.
"""

from __future__ import annotations

import errno
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medbench.errors import MedbenchError
from medbench.recipe_comparisons import COMPARISON_KEYS, read_comparisons, recipe_error  # noqa: F401  (re-exported)
from medbench.recipe_variables import (_REF, grid_levels, model_reference, resolve_bindings,  # noqa: F401
                                       resolve_variables, substitute, whole_seed)  # (re-exported)
from medbench.records import read_regular_text
from medbench.task_yaml import check_expansion, is_inside
from medbench.taskdata import check_data_size
from medbench.unique_keys import DuplicateKeyError, UniqueKeyLoader

RECIPE_KEYS = {"name", "description", "scales", "grid", "exclude", "cell", "baseline", "report", "study",
               "comparisons", "data_files"}
CELL_KEYS = {"model", "steps", "steps_by", "eval"}
STEP_KEYS = {"plugin", "task", "model", "options", "select"}
EVAL_KEYS = {"tasks", "limit", "mode", "num_fewshot", "fewshot_rationales", "chat_template", "batch_size", "judges",
             "judge_options", "gen_kwargs", "system_prompt", "system_prompt_file", "repeats",
             "require_real_data"}  # dashes work too


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


def _level_name(value: Any) -> str:
    return str(value.get("name")) if isinstance(value, dict) else str(value)


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
        # A recipe is a few KB; a key written twice (a second `grid:`) would silently drop the first.
        data = yaml.load(read_regular_text(path, limit=MAX_RECIPE_BYTES), Loader=UniqueKeyLoader)
    except FileNotFoundError:
        names = ", ".join(_bundled_recipes())
        raise MedbenchError(f"recipe {path} does not exist",
                            "give a recipe file's path" + (f" or a bundled recipe's name: {names}" if names else "")) \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise recipe_error(path, f"is not valid YAML{where}", "fix the YAML syntax (check indentation and quoting)") from None
    except UnicodeDecodeError as exc:
        raise recipe_error(path, f"is not UTF-8 text (byte {exc.start})", "save the recipe as UTF-8") from None
    except OSError as exc:
        raise recipe_error(path, f"cannot be read ({exc.strerror or exc})", "give a readable recipe file"
                           + (" (a recipe is a few KB; data goes in data_files)" if exc.errno == errno.EFBIG else "")
                           ) from None
    except RecursionError:
        raise recipe_error(path, "nests deeper than a recipe can", "flatten the YAML") from None
    except DuplicateKeyError as exc:
        raise recipe_error(path, f"gives {exc.key!r} twice (lines {exc.first} and {exc.second}); YAML would keep only "
                           "the second, silently", "keep one of the two (or merge them)") from None
    except ValueError as exc:  # an integer of 4300+ digits
        raise recipe_error(path, f"holds a value YAML cannot read ({str(exc)[:80]})", "write it shorter") from None
    check_expansion(data, f"recipe {path}")
    if not isinstance(data, dict):
        raise recipe_error(path, "is not a mapping", "a recipe has name, grid and cell keys (see recipes/sft_vs_dpo.yaml)")
    unknown = sorted(set(data) - RECIPE_KEYS)
    if unknown:
        raise recipe_error(path, f"has unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(RECIPE_KEYS))}")
    for key in ("name", "grid", "cell"):
        if key not in data:
            raise recipe_error(path, f"is missing {key!r}", "add it (see recipes/sft_vs_dpo.yaml for a complete recipe)")
    grid = data["grid"]
    if not isinstance(grid, dict) or not grid:
        raise recipe_error(path, "has an empty grid", "list at least one factor with at least one value under grid:")
    for factor, values in grid.items():
        if not isinstance(factor, str) or not factor:
            raise recipe_error(path, f"grid factor {str(factor)[:40]!r} is not a name", "name every grid factor "
                               "with text (quote a number: '5': [a])")
        if isinstance(values, str) and _REF.fullmatch(values):
            continue  # a scale variable holding the levels, e.g. sizes: "{sizes}"
        if not isinstance(values, list) or not values:
            raise recipe_error(path, f"factor {factor!r} has no values", f"give {factor}: a non-empty list")
    cell = data["cell"]
    if not isinstance(cell, dict) or "eval" not in cell:
        raise recipe_error(path, "cell has no eval", "add cell.eval.tasks: the tasks every checkpoint is scored on")
    if not isinstance(cell["eval"], (dict, type(None))):
        raise recipe_error(path, f"cell.eval is {type(cell['eval']).__name__}, not a mapping",
                           "write cell.eval as a mapping, e.g. eval: {tasks: [uti], limit: 20}")
    unknown = sorted(set(cell) - CELL_KEYS)
    if unknown:
        raise recipe_error(path, f"cell has unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(CELL_KEYS))}")
    cell["eval"] = {str(k).replace("-", "_"): v for k, v in (cell["eval"] or {}).items()}  # either spelling
    unknown = sorted(set(cell["eval"]) - EVAL_KEYS)
    if unknown:
        raise recipe_error(path, f"cell.eval has unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(EVAL_KEYS))}")
    steps_by = cell.get("steps_by")
    if steps_by is not None:
        if steps_by not in grid:
            raise recipe_error(path, f"steps_by names {steps_by!r}, which is not a grid factor",
                        f"use one of {', '.join(grid)}")
        levels = grid[steps_by] if isinstance(grid[steps_by], list) else []
        missing = [n for n in map(_level_name, levels) if n not in {str(k) for k in (cell.get("steps") or {})}]
        if missing:
            raise recipe_error(path, f"cell.steps has no entry for {steps_by}={', '.join(missing)}",
                        "add a step list (possibly []) for every value of that factor")
    exclude = data.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(e, dict) for e in exclude):
        raise recipe_error(path, "exclude must be a list of factor mappings", "write exclude: [{method: dpo, task: uti}]")
    scales = data.get("scales") or {}
    if not isinstance(scales, dict) or not all(isinstance(v, dict) for v in scales.values()):
        raise recipe_error(path, "scales must map each scale's name to its variables",
                           "write scales: {toy: {model: REF, max_steps: 2}, full: {...}}")
    data_files = data.get("data_files") or {}
    if not isinstance(data_files, dict):
        raise recipe_error(path, "data_files must map TASK[:SPLIT] to a path", "write data_files: {medqa:train: train.jsonl}")
    return Recipe(name=str(data["name"]), path=path, description=str(data.get("description") or ""),
                  scales=data.get("scales") or {}, grid=grid, exclude=exclude, cell=cell,
                  comparisons=read_comparisons(path, data),
                  data_files={str(k): str(v) for k, v in data_files.items()}, study=str(data.get("study") or ""))


MAX_RECIPE_BYTES = 1 << 20


def set_value(key: str, value: str) -> Any:
    """A ``--set KEY=VALUE`` value read as YAML, as the recipe's own values are, with the same limits."""
    try:
        parsed = yaml.safe_load(value)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise MedbenchError(f"--set {key}=...: the value is not valid YAML ({' '.join(str(exc).split())[:80]})",
                            f"quote it as text: --set {key}='\"...\"', or fix the YAML") from None
    check_expansion(parsed, f"--set {key}")
    return parsed


# ----------------------------------------------------------------------------------------------- data files

FILE_OPTION_SUFFIXES = ("_file", "_files", "_path", "_dir", "_config")  # trainer options that name files


def map_file_options(options: Any, change: Any) -> Any:
    """``options`` with ``change(key, value)`` applied to each file option (text under a key ending in
    FILE_OPTION_SUFFIXES), nested mappings included: one walk for containing them and for identifying them."""
    if not isinstance(options, dict):
        return options
    mapped = {}
    for key, value in options.items():
        if isinstance(value, dict):
            value = map_file_options(value, change)
        elif isinstance(value, str) and value and str(key).endswith(FILE_OPTION_SUFFIXES):
            value = change(str(key), value)
        mapped[key] = value
    return mapped


def contained_file_options(options: Any, base_dir: Path, given: set[str], where: str) -> Any:
    """A step's file options (difficulty_file, base_config, ...) as the recipe wrote them: relative to the recipe's
    folder and inside it, like its data_files, so an untrusted recipe reads nothing else. Values given with --set
    (``given``) are the user's own paths and stay as typed."""
    def contained(key: str, value: str) -> str:
        if value in given:
            return value
        path = Path(value)
        real = (base_dir / path).resolve()
        if path.is_absolute() or "://" in value or not is_inside(real, base_dir.resolve()):
            raise MedbenchError(f"{where}: option {key}={value!r} lies outside the recipe's folder {base_dir}",
                                "copy the file next to the recipe and name it relative to it, or pass it with "
                                "--set (a variable of the scale)")
        return str(real)

    return map_file_options(options, contained)


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
        if base_dir is not None and not is_inside(path, base_dir.resolve()):  # a recipe reads only its own folder
            raise MedbenchError(f"data file for {target} ({raw}) lies outside the recipe's folder {base_dir}",
                                f"copy it next to the recipe, or pass --data-file {target}={raw} to medbench sweep")
        if not path.is_file():
            raise MedbenchError(f"data file for {target} is not a readable file: {path}",
                                "check the path (a recipe's data_files resolve against the recipe's folder)")
        check_data_size(path, target)
        overrides.setdefault(task, {"data_files": {}})["data_files"][split or "test"] = str(path)
    return overrides


def task_fingerprint(task: str, data_files: dict[str, str] | None = None, registry: Any = None) -> str:
    """Hash of a task as it will run (its resolved YAML, code and the data files beside it; a group: its
    members') and of the user's data files for it, by content. An unknown task name fails here, at plan time."""
    from medbench.task_facts import task_config_hash
    from medbench.tasks import LM_EVAL, build_registry

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
