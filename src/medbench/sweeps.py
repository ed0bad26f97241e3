"""Sweeps: run a planned recipe (medbench.planning) cell by cell; every cell trains, scores its checkpoints and
lands in the sweep's leaderboard.

Finished steps and cells leave a marker, so a re-run skips them and an interrupted sweep resumes where it
stopped; a step shared by several cells (one SFT feeding a DPO cell and its own) runs once, under a lock, even
when an executor runs cells in parallel. A cell that fails is recorded with its error and the others go on.
Cells run through an executor from the ``register_executors`` hook.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from medbench.errors import MedbenchError
from medbench.models import release_memory
from medbench.plugin_calls import plugin_call, plugin_iter
from medbench.registries import named_registry, unknown_name
from medbench.planning import (  # noqa: F401  (the planning API, re-exported: `from medbench.sweeps import plan`)
    CellSpec,
    PlannedComparison,
    StepSpec,
    SweepPlan,
    plan,
    step_input,
    variant_setting,
)
from medbench.recipe import Recipe, read_recipe, substitute, task_fingerprint  # noqa: F401  (re-exported too)
from medbench.record_schema import RecordError
from medbench.records import atomic_write_json, load_record, read_regular_text
from medbench.checkpoint_pruning import exclusive_choosers, prune_unchosen, require_weights
from medbench.step_selection import SELECTION_FILE, chosen_checkpoint, select_checkpoint, summary


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
    try:
        done = json.loads(read_regular_text(marker, limit=STATE_BYTES))  # a FIFO in its place would block
    except (OSError, ValueError, RecursionError):
        return None  # a damaged marker: the cell runs again
    if not isinstance(done, dict) or done.get("status") != "done":
        return None
    # A cell marked done whose records are gone (deleted, moved) runs again: the report would lack its scores.
    records = done.get("records")
    if not isinstance(records, list) or not records or not all(_record_kept(out_dir, r) for r in records):
        return None
    return done


STATE_BYTES = 16 << 20  # a marker is a few KB: a larger one is damaged


def _record_kept(out_dir: Path, path: Any) -> bool:
    """Whether a record a marker lists is still in the sweep's leaderboard, whole (found by its path under
    records/, so a sweep run from another working directory still finds it): a link in its place, or a record the
    leaderboard would skip as damaged, means the cell runs again rather than leaving the report without it."""
    parts = Path(path).parts if isinstance(path, str) else ()
    if "records" not in parts or ".." in parts:
        return False
    kept = out_dir / "leaderboard" / Path(*parts[parts.index("records"):])
    try:
        return not kept.is_symlink() and kept.is_file() and bool(load_record(kept))
    except (RecordError, OSError):
        return False


SWEEP_ENTRIES = ("plan.json", "cells", "steps", "locks", "leaderboard", "report.md", "report.json", "report.svg")


def check_out_dir(out_dir: Path) -> None:
    """A sweep writes plan.json, report.* and its folders into ``out_dir`` (and replaces them on a re-run): a
    folder that already holds files but is no sweep's (no plan.json of one) is refused, so none of them is lost."""
    if not out_dir.exists():
        return
    entries = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    if out_dir.is_dir() and not entries:
        return
    try:
        known = json.loads(read_regular_text(out_dir / "plan.json", limit=STATE_BYTES))
        ours = isinstance(known, dict) and {"recipe", "cells", "out_dir"} <= set(known)
    except (OSError, ValueError, RecursionError):
        ours = False
    # A sweep's own folder (its cells/ beside) whose plan.json was damaged; a lone report.md is the user's.
    ours = ours or (set(entries) <= set(SWEEP_ENTRIES) and (out_dir / "cells").is_dir())
    if not ours:
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise MedbenchError(f"sweep folder {out_dir} already holds files ({shown or 'it is a file'}) and is not a "
                            "sweep's (no plan.json of one): a sweep would overwrite its plan.json and report files",
                            "pass --output-dir a new or empty folder, or the folder of an earlier run of this sweep")


def _step_dir(out_dir: Path, step: StepSpec) -> Path:
    return out_dir / "steps" / step.name


@contextlib.contextmanager
def _step_lock(directory: Path) -> Iterator[None]:
    """One process trains a shared step; the others wait and then reuse it (POSIX advisory lock)."""
    import fcntl

    locks = directory.parent.parent / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{directory.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_step(out_dir: Path, step: StepSpec, model: str, prev: str | None, report_to: list[str] | None = None,
              selection_config: Any = None, prune: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Train one step, or reuse it if a finished copy exists; returns its checkpoints (path, step, final) and,
    for a step with ``select``, the validation choice among them (medbench.step_selection; ``selection_config``:
    the cell's EvalConfig), made once under the step's lock. With ``select.over`` the step trains once per
    setting, each in its own folder, and its own folder holds only the choice among all their checkpoints.
    ``prune``: the unchosen checkpoints' weights are deleted once the choice is written
    (medbench.checkpoint_pruning; the caller has checked that no other step reads them)."""
    directory = _step_dir(out_dir, step)
    found = []
    for variant in step.variants:  # select.over: each setting trains as a step of its own, shareable as one
        with _step_lock(_step_dir(out_dir, variant)):
            found += [{**c, "variant": variant_setting(step, variant)}
                      for c in _trained_step(_step_dir(out_dir, variant), variant, model, prev, report_to)]
    trained_dirs = [_step_dir(out_dir, v) for v in step.variants] or [directory]
    with _step_lock(directory):
        if not step.variants:
            found = _trained_step(directory, step, model, prev, report_to)
        if not step.select or not (directory / SELECTION_FILE).is_file():
            require_weights(found, trained_dirs)  # every checkpoint is scored: none may have been pruned
        if not step.select:
            return found, None
        directory.mkdir(parents=True, exist_ok=True)
        from medbench.engine import ScoredCheckpoint, score_checkpoints, score_with_progress

        def score(checkpoint: dict[str, Any], config: Any, label: str) -> list[dict[str, Any]]:
            scored = ScoredCheckpoint(checkpoint["path"], checkpoint["step"], checkpoint["final"],
                                      checkpoint["plugin"], directory.name, checkpoint.get("trainer_config"))
            return score_checkpoints([scored], config, lambda _: label, score_with_progress)

        selection = select_checkpoint(directory, step.name, step.select, found, selection_config, score)
        if prune:
            prune_unchosen(selection, found, out_dir / "steps", directory / SELECTION_FILE)
        require_weights([chosen_checkpoint(selection, found)], trained_dirs)
        return found, selection


def _trained_step(directory: Path, step: StepSpec, model: str, prev: str | None,
                  report_to: list[str] | None) -> list[dict[str, Any]]:
    """The step's checkpoints: from its marker when it finished before, else trained now (the caller holds the
    step's lock)."""
    from medbench import training
    from medbench.engine import train_tracked
    from medbench.trainer_options import recipe_options

    marker = directory / "step.json"
    if marker.exists():
        return _step_checkpoints(marker)
    if directory.exists():  # a step interrupted mid-way starts over: its partial checkpoints are not trusted
        shutil.rmtree(directory)
    resolved = substitute(step.options, {"prev": prev or ""}, f"step {step.plugin}")
    trainer = training.get_trainer(step.plugin)
    with recipe_options(f"the sweep in {directory.parent.parent}, step {step.plugin} (task {step.task})"):
        config = training.build_config(trainer.config_class, {}, resolved, step.plugin)
    directory.mkdir(parents=True)
    request = training.TrainRequest(model_ref=model, task=step.task, output_dir=directory, config=config,
                                    seed=step.seed, task_metadata=step.task_metadata)
    checkpoints = train_tracked(step.plugin, request, directory.name, report_to)
    found = [{"path": str(c.path), "step": c.step, "final": c.final, "plugin": step.plugin,
              "trainer_config": c.trainer_config or dataclasses.asdict(config),
              **({"epoch": c.metrics["epoch"]} if isinstance((c.metrics or {}).get("epoch"), (int, float))
                 else {})} for c in checkpoints]
    atomic_write_json(marker, {"key": step.key, "plugin": step.plugin, "task": step.task, "model": model,
                               "options": resolved, "checkpoints": found})
    return found


def _step_checkpoints(marker: Path) -> list[dict[str, Any]]:
    """The checkpoints a finished step's marker lists; a damaged marker is one line naming it (never a
    KeyError deep in the cell), since its checkpoints may be fine and are not deleted behind the user's back."""
    try:
        found = json.loads(read_regular_text(marker, limit=STATE_BYTES))["checkpoints"]
        if isinstance(found, list) and found and all(isinstance(c, dict) and isinstance(c.get("path"), str)
                                                     and "step" in c and "final" in c for c in found):
            return found
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        pass
    raise MedbenchError(f"the step marker {marker} is damaged (no list of checkpoints in it)",
                        f"delete {marker.parent} to train that step again")


def cell_extra(cell: CellSpec, recipe_name: str) -> dict[str, Any]:
    """What every record of a cell says about the sweep it belongs to."""
    return {"sweep": recipe_name, "cell": cell.key, "factors": cell.factors, "aliases": cell.aliases,
            "baseline": cell.is_baseline}


def eval_config(cell: CellSpec, out_dir: Path):
    """The EvalConfig that scores a cell's checkpoints, as its recipe's ``eval`` says (label and extra are set per
    checkpoint by medbench.engine.score_checkpoints)."""
    from medbench.evaluation import EvalConfig
    from medbench.generation import from_settings

    evaluation = cell.eval
    return EvalConfig(tasks=list(evaluation["tasks"]), limit=evaluation.get("limit"),
                      num_fewshot=evaluation.get("num_fewshot"),
                      batch_size=evaluation.get("batch_size") or 8, seed=cell.seed,
                      output_dir=out_dir / "leaderboard",
                      chat_template=bool(evaluation.get("chat_template")),
                      mode=evaluation.get("mode") or "loglikelihood",
                      fewshot_rationales=evaluation.get("fewshot_rationales") or False,  # or a field's name
                      judges=list(evaluation.get("judges") or []),
                      judge_options={str(k): str(v) for k, v in (evaluation.get("judge_options") or {}).items()},
                      task_metadata=cell.task_metadata, generation=from_settings(evaluation))


def _selection_config(cell: CellSpec, step: StepSpec, out_dir: Path) -> Any:
    """The EvalConfig a step's choice is scored with: the cell's, with ``select.scoring`` over it and the user's
    data files of the selection tasks (medbench.step_selection)."""
    if not step.select:
        return None
    scored_as = dataclasses.replace(cell, eval={**cell.eval, **(step.select.get("scoring") or {})})
    return dataclasses.replace(eval_config(scored_as, out_dir), task_metadata=step.select_metadata)


def run_cell(out_dir: Path, recipe_name: str, cell: CellSpec, report_to: list[str] | None = None,
             prunable: frozenset[str] = frozenset()) -> CellResult:
    """Train the cell's steps and score the model it ends with (every checkpoint of the last step); with
    ``report_to``, each step reports to those trackers and the scores go to the last step's tracker runs.
    ``prunable``: the choosing steps whose unchosen checkpoints are deleted once chosen (--prune-unchosen)."""
    from medbench.engine import ScoredCheckpoint, score_checkpoints, score_with_progress

    started = time.time()
    marker = _cell_marker(out_dir, cell)
    done = _finished(out_dir, cell)
    if done is not None:
        return CellResult(cell.key, cell.label, "skipped", done.get("records", []))
    try:
        scored: list[dict[str, Any]] = [{"path": cell.model, "step": None, "final": True, "plugin": None}]
        prev, selected = None, []
        for step in cell.steps:
            model = prev if step.model == "{prev}" else step.model
            scored, selection = _run_step(out_dir, step, model, prev, report_to, _selection_config(cell, step, out_dir),
                                          step.name in prunable)
            if selection is not None:  # the next step, or the cell's scoring, takes the checkpoint chosen
                scored = [chosen_checkpoint(selection, scored)]
                selected.append(summary(selection))
            finals = [c for c in scored if c["final"]] or scored
            prev = finals[-1]["path"]
        checkpoints = [ScoredCheckpoint(c["path"], c["step"], c["final"], c["plugin"],
                                        Path(c["path"]).parent.name if c["plugin"] else None, c.get("trainer_config"))
                       for c in scored]

        def label(checkpoint: ScoredCheckpoint) -> str:
            return cell.label + ("" if len(checkpoints) == 1 else f"/{Path(checkpoint.path).name}")

        extra = {**cell_extra(cell, recipe_name), **({"selected_checkpoints": selected} if selected else {})}
        records = [r["_path"] for r in score_checkpoints(checkpoints, eval_config(cell, out_dir), label,
                                                         score_with_progress, extra, report_to)]
        for selection in cell.selections:  # every checkpoint on the held-out split its comparisons choose by
            config = dataclasses.replace(eval_config(cell, out_dir), tasks=list(selection["tasks"]),
                                         split=str(selection["split"]), judges=[], judge_options={})
            records += [r["_path"] for r in score_checkpoints(checkpoints, config, label, score_with_progress,
                                                              extra, report_to)]
        result = CellResult(cell.key, cell.label, "done", records, duration_s=round(time.time() - started, 1))
    except (Exception, SystemExit) as exc:  # a failed cell is recorded; the sweep goes on
        message = exc.one_line() if isinstance(exc, MedbenchError) else f"{type(exc).__name__}: {exc}"
        result = CellResult(cell.key, cell.label, "failed", error=" ".join(message.split()),
                            duration_s=round(time.time() - started, 1))
        (out_dir / "cells").mkdir(parents=True, exist_ok=True)
        (out_dir / "cells" / f"{cell.key}.traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
    atomic_write_json(marker, {**dataclasses.asdict(result), "factors": cell.factors})
    release_memory()  # nothing of this cell may stay in memory for the next (a failed one's model is in cycles)
    return result


# ----------------------------------------------------------------------------------------------- executors

CellRunner = Callable[[CellSpec], CellResult]


def executor_registry() -> dict[str, Any]:
    return named_registry("register_executors", "executor", ("name", "run"))


def get_executor(name: str, options: dict[str, str] | None = None, cells: int = 0) -> Any:
    """The executor; with ``options`` (--executor-option), checked by its ``check_options`` before anything runs."""
    executors = executor_registry()
    if name not in executors:
        raise unknown_name("executor", name, executors, "pass --executor with a known name, or install its plugin")
    chosen = executors[name]
    if options is not None and hasattr(chosen, "check_options"):
        with plugin_call(getattr(chosen, "plugin", None), f"executor {chosen.name!r} check_options()"):
            chosen.check_options(dict(options), cells)
    return chosen


def run_sweep(sweep: SweepPlan, executor: str = "local", options: dict[str, str] | None = None,
              on_result: Callable[[CellResult], None] | None = None,
              report_to: list[str] | None = None, prune_unchosen: bool = False) -> list[CellResult]:
    """Run every cell through ``executor``; results come back in completion order. ``report_to``: the trackers
    every training step and its scores report to (medbench.tracking). ``prune_unchosen``: a choosing step's
    unchosen checkpoints lose their weights once chosen, where no other step reads them."""
    chosen = get_executor(executor, dict(options or {}), len(sweep.cells))  # before the sweep writes anything
    check_out_dir(sweep.out_dir)
    sweep.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(sweep.out_dir / "plan.json", describe(sweep))
    results = []
    runner = _CellRunner(sweep.out_dir, sweep.recipe.name, list(report_to or []),
                         exclusive_choosers(sweep.cells) if prune_unchosen else frozenset())
    # plugin_iter: an executor that crashes names its plugin and package (a failing cell is recorded, not raised).
    for result in plugin_iter(getattr(chosen, "plugin", None), f"executor {chosen.name!r}",
                              lambda: chosen.run(sweep.cells, runner, dict(options or {}))):
        results.append(result)
        if on_result:
            on_result(result)
    return results


@dataclass
class _CellRunner:
    """Picklable: executors may ship it to other processes or machines (a shared filesystem is assumed)."""

    out_dir: Path
    recipe_name: str
    report_to: list[str] = field(default_factory=list)
    prunable: frozenset[str] = frozenset()

    def __call__(self, cell: CellSpec) -> CellResult:
        return run_cell(self.out_dir, self.recipe_name, cell, self.report_to, self.prunable)


def describe(sweep: SweepPlan) -> dict[str, Any]:
    """The plan as data (``medbench sweep --dry-run --json`` prints it; every run writes it to plan.json)."""
    cells = []
    for cell in sweep.cells:
        steps, previous = [], None
        for step in cell.steps:
            steps.append({"name": step.name, "plugin": step.plugin, "task": step.task,
                          "input": step_input(step, previous), "options": step.options,
                          **({"select": step.select} if step.select else {}),
                          **({"variants": [{"name": v.name, "options": variant_setting(step, v)}
                                           for v in step.variants]} if step.variants else {}),
                          **({"data_files": step.task_metadata.get("data_files")} if step.task_metadata else {})})
            previous = step
        evaluation = {"tasks": cell.eval["tasks"], "limit": cell.eval.get("limit"),
                      "mode": cell.eval.get("mode") or "loglikelihood", "num_fewshot": cell.eval.get("num_fewshot"),
                      "fewshot_rationales": cell.eval.get("fewshot_rationales") or False,
                      "chat_template": bool(cell.eval.get("chat_template")),
                      "judges": list(cell.eval.get("judges") or []),
                      "judge_options": dict(cell.eval.get("judge_options") or {}),
                      # what decoding the generate-mode scoring uses, where the recipe sets it (else the task's own)
                      **{key: cell.eval[key] for key in ("gen_kwargs", "system_prompt", "repeats")
                         if cell.eval.get(key) not in (None, {}, "")}}
        cells.append({"id": cell.key, "label": cell.label, "factors": cell.factors, "aliases": cell.aliases,
                      "model": cell.model, "baseline": cell.is_baseline, "steps": steps, "eval": evaluation,
                      "done": _finished(sweep.out_dir, cell) is not None})
    return {"recipe": sweep.recipe.name, "scale": sweep.scale, "out_dir": str(sweep.out_dir),
            "variables": sweep.variables, "grid": sweep.recipe.grid, "cells": cells,
            "comparisons": [_described(c) for c in sweep.comparisons], "skipped": sweep.skipped,
            **({"comparisons_left_out": sweep.comparisons_left_out} if sweep.comparisons_left_out else {})}


def _described(comparison: PlannedComparison) -> dict[str, Any]:
    """A comparison as data; pool_over, tasks and noninferiority only where the recipe gives them (plans without
    them read as before)."""
    return {k: v for k, v in dataclasses.asdict(comparison).items()
            if k not in ("pool_over", "tasks", "noninferiority") or v}


def describe_json(sweep: SweepPlan) -> str:
    return json.dumps(describe(sweep), indent=2, default=str)

