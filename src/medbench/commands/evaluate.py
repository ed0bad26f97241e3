"""`medbench eval`: score a model on tasks, write records, render the leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from medbench.commands.backend_flags import backend_options as backend_flags
from medbench.commands.common import (BATCH, JSON_OPTION_HELP, LIMIT, PROCESSES, RATIONALES_FLAG, SEED, SHOTS, Folder,
                                      checked_load_options, data_file_overrides, err_console, generation_options,
                                      key_values, print_records, rationales_choice, split_list, task_source_options)
from medbench.console import terminal_safe
from medbench.errors import MedbenchError


@click.command("eval")
@click.option("--model", "model_ref", default=None, help="Model reference (default: smollm2-135m-instruct).")
@click.option("--tasks", required=True, help="Comma-separated task names (see `medbench tasks`).")
@click.option("--limit", type=LIMIT, default=None,
              help="Score only the first N items of each task, or below 1 that share of them.")
@click.option("--num-fewshot", type=SHOTS, default=None, help="Few-shot examples per prompt.")
@click.option("--batch-size", type=BATCH, default=8, show_default=True,
              help="Prompts per forward pass, or auto: on a GPU the largest that fits (up to 64), on a CPU 8.")
@click.option("--seed", type=SEED, default=1234, show_default=True)
@click.option("--leaderboard-dir", "output_dir", type=Folder(), default=None,
              help="Leaderboard directory the records go into (the folder `train --leaderboard-dir` and `leaderboard "
                   "--leaderboard-dir` name).  [default: leaderboard]")
# The name this option had: `--output-dir` means a runs folder in `train` and `sweep`, so eval no longer uses it.
@click.option("--output-dir", "legacy_output_dir", type=Folder(), default=None, hidden=True)
@click.option("--label", default=None, help="Row name in the leaderboard (default: the model reference).")
@click.option("--data-file", multiple=True, help="TASK[:SPLIT]=PATH: score your own data file in the task's format.")
@click.option("--split", type=click.Choice(["test", "validation"]), default="test", show_default=True,
              help="Split scored: test, or validation (column TASK@validation) for choosing a checkpoint or a "
                   "setting without touching the test items.")
@click.option("--chat-template", is_flag=True, help="Wrap prompts in the model's chat template (column TASK@chat).")
@click.option("--scorer", type=click.Choice(["prefix", "hflm"]), default="prefix", show_default=True,
              help="Log-likelihood scorer: prefix (shares each prompt's forward pass; same results) or lm-eval's HFLM.")
@click.option("--mode", type=click.Choice(["loglikelihood", "generate"]), default="loglikelihood", show_default=True,
              help="Multiple-choice scoring: likelihood of each choice, or generate an answer and extract the choice "
                   "(column TASK@gen).")
@click.option("--fewshot-rationales", is_flag=False, flag_value=RATIONALES_FLAG, default=None, metavar="[FIELD]",
              help="Few-shot examples carry their rationales (column TASK@Nshot@rationales; default 3 shots); with a "
                   "FIELD, that document field's (TASK@Nshot@rationales=FIELD): a task with several writers.")
@click.option("--judge", "judges", multiple=True, help="LLM-as-judge to add to generation tasks (e.g. likert).")
@click.option("--judge-option", "judge_options", multiple=True, help="KEY=VALUE for the judges, e.g. model=REF.")
@click.option("--device", default="auto", show_default=True,
              help="auto (a GPU if there is one; a model larger than one GPU is spread over all), cpu, cuda, "
                   "cuda:N or mps.")
@click.option("--dtype", default="auto", show_default=True, help="auto, bf16, fp16 or fp32.")
@click.option("--trust-remote-code", is_flag=True, help="Allow model repositories to run their own code.")
@click.option("--no-cache", is_flag=True,
              help="Score again even when a record of the same weights (content hash), data and options exists.")
@click.option("--num-processes", type=PROCESSES, default=1, show_default=True,
              help="Data-parallel scoring processes, launched with accelerate (one a GPU, or CPU processes over gloo); "
                   "rank 0 writes the records.")
@click.option("--json", "as_json", is_flag=True, help=JSON_OPTION_HELP)
@generation_options()
@task_source_options
@backend_flags
def eval_command(model_ref, tasks, limit, num_fewshot, batch_size, seed, output_dir, legacy_output_dir, label,
                 data_file, split, chat_template, scorer, mode, fewshot_rationales, judges, judge_options, device, dtype,
                 trust_remote_code, no_cache, num_processes, as_json, generation, backend=None,
                 backend_options=None, judge_model_options=None) -> None:
    """Score a model on tasks; write records and update the leaderboard."""
    from medbench.api import evaluate_config
    from medbench.commands.launch import check_processes, launch
    from medbench.dataparallel import leave_process_group
    from medbench.evaluation import EvalConfig
    from medbench.records import ensure_leaderboard_dir
    from medbench.tasks import build_registry
    from medbench.training import process_rank

    if legacy_output_dir is not None:
        if output_dir is not None and Path(output_dir) != Path(legacy_output_dir):
            raise MedbenchError(f"--output-dir {legacy_output_dir} and --leaderboard-dir {output_dir} name two "
                                "leaderboards", "pass --leaderboard-dir only")
        err_console.print("note: `eval --output-dir` is now `--leaderboard-dir` (in `train` and `sweep`, "
                          "--output-dir is the runs folder)", highlight=False, soft_wrap=True)
        output_dir = legacy_output_dir
    output_dir = output_dir or "leaderboard"

    load_options = checked_load_options(device, dtype, trust_remote_code)
    typed = typed_flags(click.get_current_context(), ("device", "dtype", "trust_remote_code", "batch_size", "scorer"))
    if typed:
        from medbench.backends import refuse_in_process_options

        refuse_in_process_options(model_ref, backend, typed)
        if "scorer" in typed:
            refuse_idle_scorer(split_list(tasks), mode)
    config = EvalConfig(tasks=split_list(tasks), limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
                        seed=seed, output_dir=Path(output_dir), label=label, chat_template=chat_template,
                        scorer=scorer, mode=mode, fewshot_rationales=rationales_choice(fewshot_rationales),
                        judges=list(judges),
                        judge_options={**key_values(judge_options, "--judge-option"), **judge_model_options},
                        task_metadata=data_file_overrides(data_file), generation=generation, backend=backend,
                        backend_options=backend_options, split=split)
    from medbench.small_inputs import check_url

    check_url("--judge-option base_url", config.judge_options.get("base_url"))
    if no_cache:
        config.reuse_records = False
    if config.judges:  # typed by the user: say so when no task here is judged (a recipe's cells stay quiet)
        from medbench.judges import judges_for

        registry = build_registry()
        names = registry.expand(config.tasks)
        judged = judges_for(names, registry, config.judges, config.mode)
        skipped = [n for n in names if not set(config.judges) & set(judged.get(n, []))]
        if skipped:
            err_console.print(terminal_safe(f"note: --judge scores generation tasks only; not {', '.join(skipped)} "
                                            "(pass --mode generate to judge a multiple-choice task's free-text "
                                            "answers)"), highlight=False, soft_wrap=True)
    if num_processes > 1:  # the launched processes run this command without --num-processes
        check_processes(num_processes, device)
        from medbench.backends import backend_for

        if backend_for(model_ref, backend)[0] is not None:
            raise MedbenchError(f"--num-processes shards a model loaded in this process; {model_ref} runs on a "
                                "backend", "drop --num-processes (a backend has its own parallelism options)")
        build_registry().expand(config.tasks)  # an unknown task fails here once, not in every process
        ensure_leaderboard_dir(Path(output_dir))
        launch("evaluation", num_processes)
        return
    result = evaluate_config(model_ref, config, load_options)
    if process_rank() == 0:  # under `accelerate launch`, rank 0 writes and prints
        print_records(result.records, as_json, leaderboard=[str(p) for p in result.leaderboard])
        reused = sum(1 for record in result.records if record.get("_reused"))
        kept = f", {reused} reused (same weights, data and options; --no-cache scores again)" if reused else ""
        err_console.print(terminal_safe(f"records: {len(result.records) - reused} written{kept} under "
                                        f"{output_dir}/records; "
                                        "leaderboard: " + ", ".join(str(p) for p in result.leaderboard)),
                          highlight=False)
    leave_process_group()  # under `accelerate launch`: the other ranks wait until rank 0 has written and printed


def typed_flags(ctx: click.Context, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (parameter names) the user gave, on the command line or through the environment."""
    from click.core import ParameterSource

    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return [name for name in names if ctx.get_parameter_source(name) in given]


def refuse_idle_scorer(tasks: list[str], mode: str) -> None:
    """--scorer picks the log-likelihood scorer; where every task generates (--mode generate on multiple-choice
    tasks, generation tasks) it scores nothing."""
    from medbench.scoring import scored_output_type
    from medbench.tasks import build_registry

    registry = build_registry()
    names = registry.expand(tasks)
    if names and all(scored_output_type(registry.get(n).config, mode) == "generate_until" for n in names):
        raise MedbenchError(f"--scorer picks how log-likelihoods are computed, and every task here generates its "
                            f"answer ({', '.join(names)}{' with --mode generate' if mode == 'generate' else ''})",
                            "leave out --scorer, or score in --mode loglikelihood")
