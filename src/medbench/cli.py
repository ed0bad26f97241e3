"""The ``medbench`` command line. Errors the user can fix print one line and exit non-zero; --debug shows the trace."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from medbench import __version__
from medbench.errors import MedbenchError

console = Console()
err_console = Console(stderr=True)


def _quiet_libraries() -> None:
    """lm-eval, transformers and datasets log a lot at INFO; medbench shows its own progress instead."""
    for name in ("lm_eval", "lm-eval", "datasets", "transformers", "accelerate", "peft", "trl", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # library tqdm bars; medbench draws rich progress itself
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except Exception:
        pass
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except Exception:
        pass


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err_console.print(f"[yellow]Warning:[/] {' '.join(str(message).split())}", highlight=False, soft_wrap=True)


def _split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _key_values(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, eq, item = value.partition("=")
        if not eq or not key.strip():
            raise MedbenchError(f"{option} {value!r} is not KEY=VALUE", f"write it as {option} model=smollm2-135m-instruct")
        out[key.strip()] = item
    return out


def _data_file_overrides(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--data-file medqa=path.jsonl`` or ``medqa:test=path.jsonl``; paths the user typed resolve against the CWD."""
    overrides: dict[str, dict[str, Any]] = {}
    for value in values:
        target, eq, path = value.partition("=")
        if not eq or not target or not path:
            raise MedbenchError(f"--data-file {value!r} is not TASK=PATH", "write --data-file medqa=/path/to/test.jsonl")
        task, _, split = target.partition(":")
        absolute = str(Path(path).expanduser().resolve())
        files = overrides.setdefault(task, {"data_files": {}})["data_files"]
        files[split or "test"] = absolute
    return overrides


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medbench")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.option("--plugins-dir", type=click.Path(file_okay=False), default=None,
              help="Also load every *.py in this directory as a plugin.")
@click.option("--online", is_flag=True, help="Allow Hugging Face hub downloads (medbench is offline by default).")
def cli(debug: bool, plugins_dir: str | None, online: bool) -> None:
    """medbench: benchmark and fine-tune language models for medicine."""
    if online:
        os.environ["HF_HUB_OFFLINE"] = "0"
        os.environ["HF_DATASETS_OFFLINE"] = "0"
    if plugins_dir:
        from medbench.plugins import load_plugins_dir

        load_plugins_dir(plugins_dir)


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List loaded plugins: name, version and hooks."""
    from medbench.plugins import list_plugins

    infos = list_plugins()
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    table = Table(title="medbench plugins")
    for column in ("name", "version", "package", "source", "hooks"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.name, info.version, info.package, info.source, ", ".join(sorted(info.hooks)))
    console.print(table)


@cli.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def tasks_command(as_json: bool) -> None:
    """List registered tasks with their plugin, split sizes and metric."""
    from medbench.tasks import build_registry, load_tasks, split_sizes

    registry = build_registry()
    rows = []
    for name, entry in sorted(registry.entries.items()):
        try:
            sizes = split_sizes(load_tasks([name], registry)[name])
            status = "ok"
        except MedbenchError as exc:
            sizes, status = {}, exc.one_line()
        rows.append({"task": name, "plugin": entry.plugin, "splits": sizes, "metric": entry.primary_metric,
                     "output_type": entry.config.get("output_type", "generate_until"), "yaml": str(entry.path),
                     "status": status})
    if as_json:
        click.echo(json.dumps({"tasks": rows, "problems": registry.problems}, indent=2))
        return
    table = Table(title="medbench tasks")
    for column in ("task", "plugin", "splits", "metric", "type", "status"):
        table.add_column(column)
    for row in rows:
        splits = ", ".join(f"{k} {v}" for k, v in row["splits"].items()) or "–"
        table.add_row(row["task"], row["plugin"], splits, row["metric"], row["output_type"], row["status"])
    console.print(table)
    for problem in registry.problems:
        err_console.print(f"[yellow]Warning:[/] {problem}", highlight=False)


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(as_json: bool) -> None:
    """List the model references that resolve here, and the loaders that accept other kinds."""
    from medbench.models import model_loaders

    rows = []
    for loader in model_loaders():
        described = loader.describe()
        for row in described:
            rows.append({"loader": loader.name, **row})
        if not described:  # loaders of paths list the shape of reference they accept
            rows.append({"loader": loader.name, "ref": getattr(loader, "accepts", loader.name),
                         "kind": loader.name, "location": "", "status": "accepted"})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="medbench models")
    for column in ("ref", "kind", "status", "location"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["ref"], row["kind"], row["status"], row.get("location") or "")
    console.print(table)


def _load_options(device: str, dtype: str, trust_remote_code: bool):
    from medbench.models import LoadOptions

    return LoadOptions(dtype=dtype, device=device, trust_remote_code=trust_remote_code)


def _print_records(records: list[dict[str, Any]]) -> None:
    table = Table(title="results")
    for column in ("model", "task", "metric", "score", "± stderr", "n", "other metrics"):
        table.add_column(column)
    for record in records:
        primary = record["primary_metric"]
        others = ", ".join(f"{k} {v['value']:.3f}" for k, v in record["metrics"].items() if k != primary)
        stderr = record["stderr"]
        table.add_row(record["model"]["label"], record["record_key"], primary or "–",
                      "–" if record["score"] is None else f"{record['score']:.3f}",
                      "–" if stderr is None else f"{stderr:.3f}", str(record["n"]), others)
    console.print(table)


def run_evaluation(model_ref: str | None, config, load_options=None, loaded=None) -> list[dict[str, Any]]:
    """Evaluate with a rich progress bar (shared by `eval` and `train`)."""
    from medbench.evaluation import evaluate
    from medbench.models import DEFAULT_MODEL
    from medbench.progress import new_progress

    with new_progress() as progress:
        bars: dict[str, Any] = {}

        def report(task: str, done: int, total: int) -> None:
            if task not in bars:
                bars[task] = progress.add_task(f"{config.label or model_ref or DEFAULT_MODEL} · {task}", total=total,
                                               status="")
            progress.update(bars[task], completed=done, total=total)

        return evaluate(model_ref, config, loaded=loaded, load_options=load_options, progress=report)


@cli.command("eval")
@click.option("--model", "model_ref", default=None, help="Model reference (default: smollm2-135m-instruct).")
@click.option("--tasks", required=True, help="Comma-separated task names (see `medbench tasks`).")
@click.option("--limit", type=int, default=None, help="Score only the first N items of each task.")
@click.option("--num-fewshot", type=int, default=None, help="Few-shot examples per prompt.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--output-dir", type=click.Path(file_okay=False), default="leaderboard", show_default=True,
              help="Leaderboard directory the records go into.")
@click.option("--label", default=None, help="Row name in the leaderboard (default: the model reference).")
@click.option("--data-file", multiple=True, help="TASK[:SPLIT]=PATH: score your own data file in the task's format.")
@click.option("--chat-template", is_flag=True, help="Wrap prompts in the model's chat template (column TASK@chat).")
@click.option("--mode", type=click.Choice(["loglikelihood", "generate"]), default="loglikelihood", show_default=True,
              help="Multiple-choice scoring: likelihood of each choice, or generate an answer and extract the choice "
                   "(column TASK@gen).")
@click.option("--fewshot-rationales", is_flag=True,
              help="Few-shot examples carry their rationales (column TASK@Nshot@rationales; default 3 shots).")
@click.option("--judge", "judges", multiple=True, help="LLM-as-judge to add to generation tasks (e.g. likert).")
@click.option("--judge-option", "judge_options", multiple=True, help="KEY=VALUE for the judges, e.g. model=REF.")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True, help="auto, bf16, fp16 or fp32.")
@click.option("--trust-remote-code", is_flag=True, help="Allow model repositories to run their own code.")
def eval_command(model_ref, tasks, limit, num_fewshot, batch_size, seed, output_dir, label, data_file, chat_template,
                 mode, fewshot_rationales, judges, judge_options, device, dtype, trust_remote_code) -> None:
    """Score a model on tasks; write records and update the leaderboard."""
    from medbench.evaluation import EvalConfig
    from medbench.leaderboard import render

    config = EvalConfig(tasks=_split_list(tasks), limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
                        seed=seed, output_dir=Path(output_dir), label=label, chat_template=chat_template,
                        mode=mode, fewshot_rationales=fewshot_rationales, judges=list(judges),
                        judge_options=_key_values(judge_options, "--judge-option"),
                        task_metadata=_data_file_overrides(data_file))
    records = run_evaluation(model_ref, config, _load_options(device, dtype, trust_remote_code))
    _print_records(records)
    paths = render(Path(output_dir))
    err_console.print(f"records: {len(records)} written under {output_dir}/records; leaderboard: "
                      + ", ".join(str(p) for p in paths), highlight=False)


@cli.command("leaderboard")
@click.option("--dir", "root", type=click.Path(file_okay=False), default="leaderboard", show_default=True)
@click.option("--format", "formats", default=None, help="Comma-separated formats (default: all registered).")
def leaderboard_command(root: str, formats: str | None) -> None:
    """Render every record under --dir into leaderboard files and print the table."""
    from medbench.leaderboard import build_table, render

    paths = render(Path(root), _split_list(formats) or None)
    table = build_table(Path(root))
    view = Table(title=f"leaderboard ({root})")
    view.add_column("checkpoint")
    view.add_column("mean")
    for column in table.columns:
        view.add_column(column)
    for row in table.rows:
        mean = row.mean_score()
        cells = [row.cells.get(c) for c in table.columns]
        view.add_row(row.label, "–" if mean is None else f"{mean:.3f}",
                     *["–" if c is None or c.score is None else f"{c.score:.3f}" for c in cells])
    console.print(view)
    err_console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)


@cli.command("train", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--plugin", "plugin", required=True, help="Trainer plugin name (see `medbench plugins`).")
@click.option("--model", "model_ref", default="smollm2-135m-instruct", show_default=True)
@click.option("--task", required=True, help="Task whose training split is the training data.")
@click.option("--eval-tasks", default=None, help="Tasks every checkpoint is scored on (default: --task).")
@click.option("--eval-limit", type=int, default=None, help="Score only the first N items of each eval task.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of trainer options (command-line options override it).")
@click.option("--output-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--run-name", default=None, help="Run directory name under --output-dir (default: plugin-task-time).")
@click.option("--leaderboard-dir", type=click.Path(file_okay=False), default="leaderboard", show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--batch-size", "eval_batch_size", type=int, default=8, show_default=True, help="Eval batch size.")
@click.option("--eval-mode", type=click.Choice(["loglikelihood", "generate"]), default="loglikelihood",
              show_default=True, help="How checkpoints are scored on multiple-choice tasks (see `eval --mode`).")
@click.option("--eval-fewshot-rationales", is_flag=True, help="Score checkpoints with rationale demonstrations.")
@click.option("--eval-chat-template", is_flag=True,
              help="Score checkpoints with prompts in the chat template (pairs with a trainer's --chat-template true).")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.pass_context
def train_command(ctx, plugin, model_ref, task, eval_tasks, eval_limit, config_file, output_dir, run_name,
                  leaderboard_dir, seed, eval_batch_size, eval_mode, eval_fewshot_rationales, eval_chat_template, device,
                  dtype) -> None:
    """Fine-tune with a trainer plugin; every checkpoint is scored into the leaderboard.

    Options the plugin defines are passed as --name value after the medbench options.
    """
    from medbench import training
    from medbench.evaluation import EvalConfig
    from medbench.leaderboard import render
    from medbench.tasks import build_registry

    trainer = training.get_trainer(plugin)
    file_values = training.read_config_file(config_file) if config_file else {}
    config = training.build_config(trainer.config_class, file_values, training.parse_plugin_args(ctx.args), plugin)
    eval_names = _split_list(eval_tasks) or [task]
    registry = build_registry()
    registry.get(task)
    registry.expand(eval_names)  # unknown names fail before any training
    eval_config = EvalConfig(tasks=eval_names, limit=eval_limit, batch_size=eval_batch_size, seed=seed,
                             output_dir=Path(leaderboard_dir), chat_template=eval_chat_template, mode=eval_mode,
                             fewshot_rationales=eval_fewshot_rationales)
    run_id, run_dir = training.new_run_dir(Path(output_dir), plugin, task, run_name)
    request = training.TrainRequest(model_ref=model_ref, task=task, output_dir=run_dir, config=config, seed=seed,
                                    load_options=_load_options(device, dtype, False))
    err_console.print(f"training {plugin} on {task} from {model_ref} → {run_dir}", highlight=False)
    checkpoints = training.train(plugin, request, run_id)
    records = []
    for checkpoint in checkpoints:
        label = f"{plugin}:{run_id}/{Path(checkpoint.path).name}"
        eval_config.label = label
        eval_config.extra = {"run_id": run_id, "plugin": plugin, "checkpoint": str(checkpoint.path),
                             "step": checkpoint.step, "final": checkpoint.final}
        records += run_evaluation(str(checkpoint.path), eval_config,
                                  _load_options(device, dtype, False))
    _print_records(records)
    paths = render(Path(leaderboard_dir))
    err_console.print(f"{len(checkpoints)} checkpoint(s) in {run_dir}; leaderboard: "
                      + ", ".join(str(p) for p in paths), highlight=False)


def _add_plugin_commands() -> None:
    from medbench.plugins import get_plugin_manager

    get_plugin_manager().hook.register_commands(cli=cli)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MEDBENCH_DEBUG") == "1"
    warnings.showwarning = _show_warning
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notices, not the user's concern
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline unless the user set it, or passes --online
    os.environ.setdefault("HF_DATASETS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    _quiet_libraries()
    try:
        _add_plugin_commands()
        cli.main(args=argv, prog_name="medbench", standalone_mode=False)
    except MedbenchError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]Error:[/] {exc.one_line()}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("[bold red]Interrupted.[/] Records already written are kept.")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        err_console.print(f"[bold red]Error:[/] {message} — rerun with --debug for the traceback", highlight=False,
                          soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
