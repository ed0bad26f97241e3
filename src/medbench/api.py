"""The Python API: ``medbench.evaluate``, ``medbench.train`` and ``medbench.sweep`` (docs/python-api.md).

The command line runs the same path: `medbench eval`, `train` and `sweep` parse their options, call what is here
(medbench.engine underneath) and print. Every function takes the command's options as keyword arguments, returns
a small dataclass, and raises medbench.errors.MedbenchError (``.problem``, ``.fix``) for input it cannot use,
before any model is loaded where it can tell.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from medbench.errors import MedbenchError
from medbench.models import DEFAULT_MODEL

if TYPE_CHECKING:  # imported where used: medbench.generation pulls in lm-eval
    from medbench.generation import GenerationOptions

__all__ = ["EvalResult", "TrainResult", "TrainingJob", "SweepResult", "evaluate", "evaluate_config", "train",
           "prepare_training", "sweep", "plan_sweep", "run_planned_sweep", "load_options"]


@dataclass
class EvalResult:
    records: list[dict[str, Any]]  # one per task scored (the leaderboard's record schema, medbench.records)
    leaderboard: list[Path]  # the leaderboard files rendered

    def scores(self) -> dict[str, float | None]:
        """Each record's primary score by its column (``medqa``, ``medqa@gen``, ...)."""
        return {record["record_key"]: record["score"] for record in self.records}


@dataclass
class TrainResult:
    run_id: str
    run_dir: Path
    checkpoints: list[Any]  # medbench.training.CheckpointInfo: path, kind, step, final, train metrics
    records: list[dict[str, Any]]  # every checkpoint's scores (empty on data-parallel ranks other than 0)
    leaderboard: list[Path]


@dataclass
class SweepResult:
    plan: Any  # medbench.recipe.SweepPlan: cells, comparisons, out_dir
    cells: list[Any] = field(default_factory=list)  # medbench.sweeps.CellResult, in completion order
    report: dict[str, Any] | None = None  # the study report (report.md / report.json in out_dir)
    leaderboard: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[Any]:
        return [cell for cell in self.cells if cell.status == "failed"]


def load_options(device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False):
    """Checked before any model is loaded: a device this machine lacks or an unknown dtype is a MedbenchError."""
    from medbench.models import LoadOptions, check_device, check_dtype

    return LoadOptions(dtype=check_dtype(dtype), device=check_device(device), trust_remote_code=trust_remote_code)


@contextlib.contextmanager
def _task_folders(include_paths: list[str | Path] | tuple = (), trust_task_code: bool = False) -> Iterator[None]:
    from medbench.tasks import refuse_idle_trust, task_sources

    refuse_idle_trust(include_paths, trust_task_code, "trust_task_code=True", "include_paths")
    with task_sources(list(include_paths), trust_task_code):
        yield


def _data_files(data_files: dict[str, str] | None) -> dict[str, dict[str, Any]]:
    from medbench.recipe import data_file_overrides

    return data_file_overrides(dict(data_files or {}))


def _tasks(tasks: str | list[str] | tuple[str, ...]) -> list[str]:
    items = tasks.split(",") if isinstance(tasks, str) else list(tasks or [])
    return [str(item).strip() for item in items if str(item).strip()]


def _eval_config(tasks: Any, leaderboard_dir: str | Path, data_files: dict[str, str] | None, what: str,
                 options: dict[str, Any]):
    """An EvalConfig from keyword options; a keyword it has no field for is one line listing those it takes."""
    from medbench.evaluation import EvalConfig

    known = {f.name for f in dataclasses.fields(EvalConfig)} - {"tasks", "output_dir", "task_metadata"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise MedbenchError(f"{what} has no option {', '.join(unknown)}",
                            f"its evaluation options are: {', '.join(sorted(known | {'data_files'}))}")
    return EvalConfig(tasks=_tasks(tasks), output_dir=Path(leaderboard_dir), task_metadata=_data_files(data_files),
                      **options)


def evaluate_config(model: str | None, config: Any, options: Any = None) -> EvalResult:
    """Score ``model`` with an EvalConfig (what `medbench eval` builds from its options) into its leaderboard.

    Under `accelerate launch` every process scores its shard; rank 0 writes the records and renders the
    leaderboard, the other ranks return no records."""
    from medbench.engine import score_with_progress
    from medbench.leaderboard import render
    from medbench.records import ensure_leaderboard_dir
    from medbench.training import process_rank, world_size

    from medbench.data_file_splits import files_for_scoring_only

    rank = process_rank()
    if rank == 0:
        ensure_leaderboard_dir(Path(config.output_dir))  # before the model is loaded and scored
    with files_for_scoring_only():  # a --data-file this scoring never reads is said (medqa:train, zero-shot)
        records = score_with_progress(model, config, options, data_parallel=world_size() > 1)
    if rank != 0:
        return EvalResult([], [])
    return EvalResult(records, render(Path(config.output_dir)))


def evaluate(model: str | None = None, tasks: str | list[str] = (), *, leaderboard_dir: str | Path = "leaderboard",
             data_files: dict[str, str] | None = None, device: str = "auto", dtype: str = "auto",
             trust_remote_code: bool = False, include_paths: list[str | Path] | tuple = (),
             trust_task_code: bool = False, **options: Any) -> EvalResult:
    """Score ``model`` (any reference `medbench eval --model` takes; default the embedded model) on ``tasks``,
    write one record per task under ``leaderboard_dir`` and render the leaderboard, as `medbench eval` does.

    ``options`` are the EvalConfig fields: ``limit``, ``num_fewshot``, ``batch_size``, ``seed``, ``label``,
    ``chat_template``, ``scorer``, ``mode``, ``fewshot_rationales``, ``judges``, ``judge_options``,
    ``reuse_records`` (False: `--no-cache`), ``generation`` (a medbench.generation.GenerationOptions: gen-kwargs,
    system prompt, repeats). ``data_files``: ``{"medqa": "my_test.jsonl"}`` (TASK[:SPLIT] -> path).
    """
    with _task_folders(include_paths, trust_task_code):
        config = _eval_config(tasks, leaderboard_dir, data_files, "evaluate()", options)
        return evaluate_config(model, config, load_options(device, dtype, trust_remote_code))


@dataclass
class TrainingJob:
    """A training run checked and set up (trainer options, eval tasks, run directory), not yet started."""

    plugin: str
    request: Any  # medbench.training.TrainRequest
    run_id: str
    run_dir: Path
    eval_config: Any  # medbench.evaluation.EvalConfig: how every checkpoint is scored
    report_to: list[str]  # trackers (medbench.tracking)

    def run(self) -> TrainResult:
        """Train, score every checkpoint into the leaderboard (rank 0 only under data parallelism) and render it."""
        from medbench.engine import score_with_progress, train_and_score
        from medbench.leaderboard import render
        from medbench.training import process_rank

        load = self.request.load_options
        checkpoints, records = train_and_score(self.plugin, self.request, self.run_id, self.eval_config,
                                               lambda ref, config: score_with_progress(ref, config, load),
                                               report_to=self.report_to)
        paths = render(Path(self.eval_config.output_dir)) if process_rank() == 0 else []
        return TrainResult(self.run_id, self.run_dir, checkpoints, records, paths)


def prepare_training(plugin: str, task: str, model: str = DEFAULT_MODEL, *, options: dict[str, Any] | None = None,
                     config_file: str | Path | None = None, eval_tasks: str | list[str] | None = None,
                     eval_limit: int | None = None, output_dir: str | Path = "runs", run_name: str | None = None,
                     leaderboard_dir: str | Path = "leaderboard", seed: int = 1234, eval_batch_size: int | str = 8,
                     eval_mode: str = "loglikelihood", eval_fewshot_rationales: bool | str = False,
                     eval_chat_template: bool = False, device: str = "auto", dtype: str = "auto",
                     resume: bool = False, report_to: str | list[str] | None = None,
                     run_dir: str | Path | None = None, generation: GenerationOptions | None = None,
                     data_files: dict[str, str] | None = None) -> TrainingJob:
    """Check everything :func:`train` is given and make (or, with ``resume``, find) the run directory; nothing is
    trained. ``run_dir``: train into this existing directory instead (the processes `--num-processes` starts);
    ``generation``: how generate-mode tasks are scored (medbench.generation); ``data_files``: the user's files,
    ``{"medqa:train": "my_train.jsonl", "medqa": "my_test.jsonl"}`` (TASK[:SPLIT] -> path, no split: test): the
    training task's train split is trained on, every eval task's test split scored."""
    from medbench import run_dirs, training
    from medbench.evaluation import EvalConfig
    from medbench.generation import GenerationOptions, generating_tasks
    from medbench.records import ensure_leaderboard_dir, ensure_writable
    from medbench.scoring import scored_output_type
    from medbench.tasks import build_registry
    from medbench.tracking import parse_report_to

    from medbench.trainer_options import typed_options

    # The user's options for this run: one a trainer declares inert beside the others is refused (not in the
    # processes --num-processes starts, which were checked before launching).
    typed = typed_options if run_dir is None else contextlib.nullcontext
    trackers = parse_report_to(report_to)
    load = load_options(device, dtype)
    trainer = training.get_trainer(plugin)
    file_values = training.read_config_file(config_file) if config_file else {}
    with typed():
        config = training.build_config(trainer.config_class, file_values, dict(options or {}), plugin)
    eval_names = _tasks(eval_tasks or []) or [task]
    registry = build_registry()
    registry.get(task)
    registry.expand(eval_names)  # unknown names fail before any training
    user_files = _data_files(data_files)
    unused = sorted(set(user_files) - {task, *registry.expand(eval_names)})
    if unused:
        raise MedbenchError(f"--data-file names {', '.join(unused)}, which is neither the trained task ({task}) nor "
                            "one it is scored on", f"write --data-file {task}:train=PATH (or add the task to "
                            "--eval-tasks)")
    generation = generation or GenerationOptions()
    generating_tasks(generation, {n: scored_output_type(registry.get(n).config, eval_mode)
                                  for n in registry.expand(eval_names)}, note=False)  # as scoring would refuse
    eval_config = EvalConfig(tasks=eval_names, limit=eval_limit, batch_size=eval_batch_size, seed=seed,
                             output_dir=Path(leaderboard_dir), chat_template=eval_chat_template, mode=eval_mode,
                             fewshot_rationales=eval_fewshot_rationales, generation=generation,
                             task_metadata=user_files)
    from medbench.data_file_splits import refuse_unread_files

    refuse_unread_files(eval_config, registry, trained=task)  # a scored task's file its scoring never reads
    check = getattr(trainer, "plan_check", None)
    if check is not None and run_dir is None:  # what a sweep checks at plan time, before a run directory is made
        from medbench.plugin_calls import plugin_call

        with typed(), plugin_call(plugin, "plan_check()"):  # a wrapper's base options are built in here
            reason = check(task, {**file_values, **dict(options or {})}, dict(data_files or {}) or None)
        if reason:
            raise MedbenchError(f"{plugin} on {task}: {reason}")
    if run_dir is None:  # a sweep's input model is an earlier step's output, made by the time it runs
        from medbench.models import check_reference

        check_reference(model)  # a mistyped --model stops before a run directory is announced and made
    ensure_leaderboard_dir(Path(leaderboard_dir))  # before any training
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_id = run_dir.name
    elif resume:
        run_id, run_dir = run_dirs.existing_run_dir(Path(output_dir), run_name)
    else:
        ensure_writable(Path(output_dir), "--output-dir")
        run_id, run_dir = run_dirs.new_run_dir(Path(output_dir), plugin, task, run_name)
    request = training.TrainRequest(model_ref=model, task=task, output_dir=run_dir, config=config, seed=seed,
                                    load_options=load, task_metadata=user_files.get(task) or {})
    if resume:
        run_dirs.prepare_resume(run_dir, plugin, request)
    return TrainingJob(plugin, request, run_id, run_dir, eval_config, trackers)


def train(plugin: str, task: str, model: str = DEFAULT_MODEL, *, options: dict[str, Any] | None = None,
          include_paths: list[str | Path] | tuple = (), trust_task_code: bool = False, **settings: Any) -> TrainResult:
    """Fine-tune ``model`` with a trainer plugin on ``task``'s training split and score every checkpoint into the
    leaderboard, as `medbench train` does. ``options``: the trainer's own options (``{"max_steps": 20}``; `medbench
    train --plugin X --help` lists them); ``settings``: the keywords of :func:`prepare_training` (``eval_tasks``,
    ``eval_limit``, ``output_dir``, ``run_name``, ``leaderboard_dir``, ``seed``, ``resume``, ``report_to``, ...)."""
    import inspect

    known = set(inspect.signature(prepare_training).parameters) - {"plugin", "task", "model", "options"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise MedbenchError(f"train() has no option {', '.join(unknown)}",
                            f"its options are: {', '.join(sorted(known))} (and options= for the trainer's own)")
    from medbench.trainer_options import keyword_options

    # options= are Python keys: messages about them say `max_steps`, not the command line's `--max-steps`
    with _task_folders(include_paths, trust_task_code), keyword_options(known):
        return prepare_training(plugin, task, model, options=options, **settings).run()


def plan_sweep(recipe: str | Path, *, scale: str | None = None, output_dir: str | Path | None = None,
               overrides: dict[str, Any] | None = None, data_files: dict[str, str] | None = None) -> Any:
    """A recipe's plan (cells, steps, comparisons), nothing run: `medbench sweep --dry-run`. ``recipe``: a bundled
    recipe's name or a YAML path; ``overrides``: scale variables (`--set`); ``data_files``: TASK[:SPLIT] -> path."""
    from medbench import sweeps

    return sweeps.plan(sweeps.read_recipe(recipe), scale, output_dir, dict(overrides or {}), dict(data_files or {}))


def run_planned_sweep(plan: Any, *, executor: str = "local", executor_options: dict[str, str] | None = None,
                      report_to: str | list[str] | None = None,
                      on_result: Callable[[Any], None] | None = None, prune_unchosen: bool = False) -> SweepResult:
    """Run a plan's cells (finished ones are kept), then render its leaderboard and write its study report.
    ``prune_unchosen``: delete the weights of checkpoints a choosing step did not choose, once it has
    (medbench.checkpoint_pruning; only where no other step reads them)."""
    from medbench.leaderboard import render
    from medbench.sweeps import run_sweep
    from medbench.sweep_report import study_report
    from medbench.tracking import parse_report_to

    trackers = parse_report_to(report_to)
    cells = run_sweep(plan, executor, dict(executor_options or {}), on_result=on_result, report_to=trackers,
                      prune_unchosen=prune_unchosen)
    result = SweepResult(plan, cells)
    if any(cell.status != "failed" for cell in cells):
        result.leaderboard = render(plan.leaderboard_dir)
        result.report = study_report(plan)
    return result


def sweep(recipe: str | Path, *, scale: str | None = None, output_dir: str | Path | None = None,
          overrides: dict[str, Any] | None = None, data_files: dict[str, str] | None = None, executor: str = "local",
          executor_options: dict[str, str] | None = None, report_to: str | list[str] | None = None,
          dry_run: bool = False, on_result: Callable[[Any], None] | None = None,
          prune_unchosen: bool = False) -> SweepResult:
    """Plan and run a recipe's grid, as `medbench sweep` does: every cell trains, is scored into the sweep's
    leaderboard, and the study report compares them. A failing cell does not raise: it is in ``.failed`` with its
    error (tracebacks in ``<out_dir>/cells``). ``dry_run``: plan only (``.cells`` empty)."""
    plan = plan_sweep(recipe, scale=scale, output_dir=output_dir, overrides=overrides, data_files=data_files)
    if dry_run:
        return SweepResult(plan)
    return run_planned_sweep(plan, executor=executor, executor_options=executor_options, report_to=report_to,
                             on_result=on_result, prune_unchosen=prune_unchosen)
