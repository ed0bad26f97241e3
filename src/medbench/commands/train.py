"""`medbench train`: one trainer plugin's run, every checkpoint scored (medbench.engine), optionally launched in
several processes through accelerate."""

from __future__ import annotations

import os
from pathlib import Path

import click

from medbench.commands.common import (BATCH, LIMIT, PROCESSES, SEED, checked_load_options, err_console,
                                      print_records, split_list, task_source_options)
from medbench.commands.trainers import TrainCommand
from medbench.models import DEFAULT_MODEL


@click.command("train", cls=TrainCommand,
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--plugin", "plugin", required=True, help="Trainer plugin name (see `medbench trainers`).")
@click.option("--model", "model_ref", default=DEFAULT_MODEL, show_default=True)
@click.option("--task", required=True, help="Task whose training split is the training data.")
@click.option("--eval-tasks", default=None, help="Tasks every checkpoint is scored on (default: --task).")
@click.option("--eval-limit", type=LIMIT, default=None, help="Score only the first N items of each eval task.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of trainer options (command-line options override it).")
@click.option("--output-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--run-name", default=None, help="Run directory name under --output-dir (default: plugin-task-time).")
@click.option("--leaderboard-dir", type=click.Path(file_okay=False), default="leaderboard", show_default=True)
@click.option("--seed", type=SEED, default=1234, show_default=True)
@click.option("--batch-size", "eval_batch_size", type=BATCH, default=8, show_default=True, help="Eval batch size.")
@click.option("--eval-mode", type=click.Choice(["loglikelihood", "generate"]), default="loglikelihood",
              show_default=True, help="How checkpoints are scored on multiple-choice tasks (see `eval --mode`).")
@click.option("--eval-fewshot-rationales", is_flag=True, help="Score checkpoints with rationale demonstrations.")
@click.option("--eval-chat-template", is_flag=True,
              help="Score checkpoints with prompts in the chat template (pairs with a trainer's --chat-template true).")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--resume", is_flag=True,
              help="Continue the run --run-name from its last complete checkpoint (after a kill or a crash); pass "
                   "the options of the original run.")
@click.option("--num-processes", type=PROCESSES, default=1, show_default=True,
              help="Data-parallel training processes, launched with accelerate (GPUs, or CPU with gloo).")
@click.option("--accelerate-config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="An `accelerate config` file (DDP, FSDP, DeepSpeed, multi-node); launches through accelerate.")
@click.pass_context
@task_source_options
def train_command(ctx, plugin, model_ref, task, eval_tasks, eval_limit, config_file, output_dir, run_name,
                  leaderboard_dir, seed, eval_batch_size, eval_mode, eval_fewshot_rationales, eval_chat_template, device,
                  dtype, resume, num_processes, accelerate_config) -> None:
    """Fine-tune with a trainer plugin; every checkpoint is scored into the leaderboard.

    Options the plugin defines are passed as --name value after the medbench options.
    """
    from medbench import training
    from medbench.engine import score_with_progress, train_and_score
    from medbench.evaluation import EvalConfig
    from medbench.leaderboard import render
    from medbench.records import ensure_writable
    from medbench.tasks import build_registry

    load_options = checked_load_options(device, dtype, False)
    trainer = training.get_trainer(plugin)
    file_values = training.read_config_file(config_file) if config_file else {}
    config = training.build_config(trainer.config_class, file_values, training.parse_plugin_args(ctx.args), plugin)
    eval_names = split_list(eval_tasks) or [task]
    registry = build_registry()
    registry.get(task)
    registry.expand(eval_names)  # unknown names fail before any training
    eval_config = EvalConfig(tasks=eval_names, limit=eval_limit, batch_size=eval_batch_size, seed=seed,
                             output_dir=Path(leaderboard_dir), chat_template=eval_chat_template, mode=eval_mode,
                             fewshot_rationales=eval_fewshot_rationales)
    ensure_writable(Path(leaderboard_dir), "--leaderboard-dir")  # before any training
    launched_dir = os.environ.get(LAUNCHED_RUN_DIR)  # set for the processes `--num-processes` starts
    if launched_dir:
        run_dir = Path(launched_dir)
        run_id = run_dir.name
    elif resume:
        run_id, run_dir = training.existing_run_dir(Path(output_dir), run_name)
    else:
        ensure_writable(Path(output_dir), "--output-dir")
        run_id, run_dir = training.new_run_dir(Path(output_dir), plugin, task, run_name)
    if (num_processes > 1 or accelerate_config) and not launched_dir:
        _launch_distributed(run_dir, num_processes, accelerate_config)
        return
    request = training.TrainRequest(model_ref=model_ref, task=task, output_dir=run_dir, config=config, seed=seed,
                                    load_options=load_options)
    if resume:
        training.prepare_resume(run_dir, plugin, request)
        if request.resume_from is not None:
            err_console.print(f"resuming {run_dir} from {request.resume_from.name}", highlight=False)
    err_console.print(f"training {plugin} on {task} from {model_ref} → {run_dir}", highlight=False)
    checkpoints, records = train_and_score(plugin, request, run_id, eval_config,
                                           lambda ref, config: score_with_progress(ref, config, load_options))
    if training.process_rank() != 0:
        return
    print_records(records)
    paths = render(Path(leaderboard_dir))
    err_console.print(f"{len(checkpoints)} checkpoint(s) in {run_dir}; leaderboard: "
                      + ", ".join(str(p) for p in paths), highlight=False)


LAUNCHED_RUN_DIR = "MEDBENCH_LAUNCHED_RUN_DIR"


def _launch_distributed(run_dir: Path, num_processes: int, accelerate_config: str | None) -> None:
    """Run this same `train` command in ``num_processes`` processes through `accelerate launch`, in ``run_dir``."""
    from medbench.commands.launch import launch

    launch("training", num_processes, accelerate_config, {LAUNCHED_RUN_DIR: str(Path(run_dir).resolve())},
           f"fix what they report; the run directory is {run_dir}")
