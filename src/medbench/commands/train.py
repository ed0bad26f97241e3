"""`medbench train`: one trainer plugin's run, every checkpoint scored (medbench.engine), optionally launched in
several processes through accelerate."""

from __future__ import annotations

import os
from pathlib import Path

import click

from medbench.commands.common import (BATCH, JSON_OPTION_HELP, LIMIT, PROCESSES, RATIONALES_FLAG, SEED, Folder,
                                      data_file_pairs, err_console, generation_options, print_records,
                                      rationales_choice, task_source_options)
from medbench.commands.trainers import TrainCommand
from medbench.console import terminal_safe
from medbench.errors import MedbenchError
from medbench.models import DEFAULT_MODEL


@click.command("train", cls=TrainCommand,
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--plugin", "plugin", required=True, help="Trainer plugin name (see `medbench trainers`).")
@click.option("--model", "model_ref", default=DEFAULT_MODEL, show_default=True)
@click.option("--task", required=True, help="Task whose training split is the training data.")
@click.option("--eval-tasks", default=None, help="Tasks every checkpoint is scored on (default: --task).")
@click.option("--eval-limit", type=LIMIT, default=None,
              help="Score only the first N items of each eval task, or below 1 that share.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of trainer options (command-line options override it).")
@click.option("--output-dir", type=Folder(), default="runs", show_default=True)
@click.option("--run-name", default=None, help="Run directory name under --output-dir (default: plugin-task-time).")
@click.option("--leaderboard-dir", type=Folder(), default="leaderboard", show_default=True)
@click.option("--seed", type=SEED, default=1234, show_default=True)
@click.option("--eval-batch-size", "eval_batch_size", type=BATCH, default=8, show_default=True,
              help="Batch size of checkpoint scoring, or auto (the trainer's own is --train-batch-size).")
@click.option("--batch-size", "legacy_batch_size", type=BATCH, default=None, hidden=True)
@click.option("--eval-mode", type=click.Choice(["loglikelihood", "generate"]), default="loglikelihood",
              show_default=True, help="How checkpoints are scored on multiple-choice tasks (see `eval --mode`).")
@click.option("--eval-fewshot-rationales", is_flag=False, flag_value=RATIONALES_FLAG, default=None, metavar="[FIELD]",
              help="Score checkpoints with rationale demonstrations (the task's, or FIELD's: see eval).")
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
@click.option("--report-to", default=None, metavar="TRACKERS",
              help="Log training metrics and every checkpoint's scores to tensorboard, mlflow and/or wandb "
                   "(comma-separated; default: none).")
@click.pass_context
@click.option("--data-file", multiple=True, metavar="TASK[:SPLIT]=PATH",
              help="Your own data in the task's format: TASK:train=PATH is trained on, TASK=PATH (the test split) "
                   "is what checkpoints are scored on. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help=JSON_OPTION_HELP)
@generation_options("eval-")
@task_source_options
def train_command(ctx, plugin, model_ref, task, eval_tasks, eval_limit, config_file, output_dir, run_name,
                  leaderboard_dir, seed, eval_batch_size, eval_mode, eval_fewshot_rationales, eval_chat_template,
                  device, dtype, resume, num_processes, accelerate_config, report_to, data_file, generation,
                  legacy_batch_size, as_json) -> None:
    """Fine-tune with a trainer plugin; every checkpoint is scored into the leaderboard.

    Options the plugin defines are passed as --name value after the medbench options. How checkpoints are scored
    takes `medbench eval`'s options with eval- in front (--eval-limit, --eval-mode, --eval-batch-size, ...).
    """
    from medbench import training
    from medbench.api import prepare_training
    from medbench.dataparallel import leave_process_group

    if legacy_batch_size is not None:  # the spelling before --eval-batch-size: still taken, with a note
        err_console.print("note: train's --batch-size is now --eval-batch-size (it sizes scoring batches; the "
                          "trainer's own is --train-batch-size)", highlight=False)
        eval_batch_size = legacy_batch_size
    plugin_options = training.parse_plugin_args(ctx.args)
    check_eval_spelling(plugin, plugin_options, ctx.command)

    launched_dir = os.environ.get(LAUNCHED_RUN_DIR)  # set for the processes `--num-processes` starts
    if accelerate_config and not launched_dir:  # before the run directory is made and the processes launched
        from medbench.small_inputs import check_accelerate_config

        check_accelerate_config(accelerate_config)
    job = prepare_training(plugin, task, model_ref, options=plugin_options,
                           config_file=config_file, eval_tasks=eval_tasks, eval_limit=eval_limit,
                           output_dir=output_dir, run_name=run_name, leaderboard_dir=leaderboard_dir, seed=seed,
                           eval_batch_size=eval_batch_size, eval_mode=eval_mode,
                           eval_fewshot_rationales=rationales_choice(eval_fewshot_rationales,
                                                                     "--eval-fewshot-rationales"),
                           eval_chat_template=eval_chat_template,
                           device=device, dtype=dtype, resume=resume, report_to=report_to, run_dir=launched_dir,
                           generation=generation, data_files=data_file_pairs(data_file))
    if (num_processes > 1 or accelerate_config) and not launched_dir:
        _launch_distributed(job.run_dir, num_processes, accelerate_config)
        return
    if job.request.resume_from is not None:
        err_console.print(terminal_safe(f"resuming {job.run_dir} from {job.request.resume_from.name}"),
                          highlight=False)
    err_console.print(terminal_safe(f"training {plugin} on {task} from {model_ref} → {job.run_dir}"), highlight=False)
    result = job.run()
    if training.process_rank() == 0:
        print_records(result.records, as_json, run_dir=str(result.run_dir),
                      checkpoints=[str(c) for c in result.checkpoints],
                      leaderboard=[str(p) for p in result.leaderboard])
        from medbench.leaderboard.display import plural

        written = ", ".join(str(p) for p in result.leaderboard)
        err_console.print(terminal_safe(f"{plural(len(result.checkpoints), 'checkpoint')} in {result.run_dir}; "
                                        f"leaderboard: {written}"), highlight=False)
    leave_process_group()  # under `accelerate launch`: the other ranks wait until rank 0 has written and printed


def check_eval_spelling(plugin: str, options: dict, command: click.Command) -> None:
    """`train --limit 20` meant --eval-limit: an eval option written without train's eval- prefix is one line
    naming the spelling train takes, not a trainer's "no option --limit"."""
    import dataclasses

    from medbench import training

    trainer_options = {field.name for field in dataclasses.fields(training.get_trainer(plugin).config_class)}
    ours = {parameter.name for parameter in command.params}
    for key in options:
        if key not in trainer_options and f"eval_{key}" in ours:
            flag = "--" + key.replace("_", "-")
            raise MedbenchError(f"train has no option {flag}: checkpoint scoring takes eval's options with eval- in "
                                "front", f"pass --eval-{flag[2:]} (see `medbench train --help`)")


LAUNCHED_RUN_DIR = "MEDBENCH_LAUNCHED_RUN_DIR"


def _launch_distributed(run_dir: Path, num_processes: int, accelerate_config: str | None) -> None:
    """Run this same `train` command in ``num_processes`` processes through `accelerate launch`, in ``run_dir``."""
    from medbench.commands.launch import launch

    launch("training", num_processes, accelerate_config, {LAUNCHED_RUN_DIR: str(Path(run_dir).resolve())},
           f"fix what they report; the run directory is {run_dir}")
