"""The ``medbench`` command line. Errors the user can fix print one line and exit non-zero; --debug shows the trace."""

from __future__ import annotations

import sys

try:
    import functools
    import json
    import logging
    import os
    import warnings
    from pathlib import Path
    from typing import Any

    import click
    from rich.table import Table

    from medbench import __version__
    from medbench.errors import MedbenchError
    from medbench.console import make_console
    from medbench.models import DEFAULT_MODEL
    from medbench.commands.trainers import TrainCommand, trainers_command
except KeyboardInterrupt:  # Ctrl-C while the command line itself is still importing: no traceback either
    sys.stderr.write("Interrupted.\n")
    raise SystemExit(130) from None

# Piped (not a terminal), tables print whole instead of truncated to 80 columns: see medbench.console.
console = make_console()
err_console = make_console(stderr=True)


def _quiet_libraries() -> None:
    """lm-eval, transformers and datasets log a lot at INFO; medbench shows its own progress instead.

    Through environment variables the libraries read when they are imported, so that `medbench --help` and
    option errors never import them (seconds); a library already imported (tests, notebooks) is told directly.
    """
    for name in ("lm_eval", "lm-eval", "datasets", "transformers", "accelerate", "peft", "trl", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for variable, value in (("TOKENIZERS_PARALLELISM", "false"),
                            ("TQDM_DISABLE", "1"),  # library tqdm bars; medbench draws rich progress itself
                            ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                            ("TRANSFORMERS_VERBOSITY", "error"), ("DATASETS_VERBOSITY", "error")):
        os.environ.setdefault(variable, value)
    if "datasets" in sys.modules:
        try:
            import datasets

            datasets.disable_progress_bars()
            datasets.logging.set_verbosity_error()
        except Exception:
            pass
    if "transformers" in sys.modules:
        try:
            import transformers

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
        except Exception:
            pass


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err_console.print(f"[yellow]Warning:[/] {' '.join(str(message).split())}", highlight=False, soft_wrap=True)


class Bounded(click.ParamType):
    """A whole number within bounds; anything else is a one-line MedbenchError naming the option and the fix
    (click's own range errors print a usage block instead)."""

    name = "integer"

    def __init__(self, low: int, high: int | None = None, unit: str = "", fix: str = ""):
        self.low, self.high, self.unit, self.fix = low, high, unit, fix

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        option = max(param.opts, key=len) if param is not None and param.opts else "the value"
        try:
            number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
        except ValueError:
            raise MedbenchError(f"{option} must be a whole number, got {value!r}",
                                f"pass {option} {max(self.low, 1)}") from None
        if self.high is not None and not self.low <= number <= self.high:
            raise MedbenchError(f"{option} must be between {self.low} and {self.high}, got {number}",
                                self.fix or f"pass {option} {self.low}..{self.high}")
        if number < self.low:
            what = f"{self.low} or more" if self.low != 1 else f"a positive number{self.unit}" if self.unit else "positive"
            raise MedbenchError(f"{option} must be {what}, got {number}",
                                self.fix or f"pass {option} {self.low} or more")
        return number


SEED = Bounded(0, 2**32 - 1, fix="pass a --seed between 0 and 4294967295 (numpy and torch accept no other)")
LIMIT = Bounded(1, unit=" of examples", fix="")
BATCH = Bounded(1)
SHOTS = Bounded(0)
PROCESSES = Bounded(1, unit=" of processes")


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


cli.add_command(trainers_command)


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


def _task_source_options(command):
    """--include-path DIR (repeatable) and --trust-task-code for commands that read tasks; the command runs with
    those task folders indexed (medbench.tasks.task_sources)."""

    @functools.wraps(command)
    def wrapper(*args, include_paths=(), trust_task_code=False, **kwargs):
        from medbench.tasks import task_sources

        with task_sources(list(include_paths), trust_task_code):
            return command(*args, **kwargs)

    wrapper = click.option("--trust-task-code", is_flag=True,
                           help="Trust --include-path folders: their YAMLs may import code (!function), render "
                                "templates outside the sandbox and read files outside the folder.")(wrapper)
    return click.option("--include-path", "include_paths", multiple=True, type=click.Path(file_okay=False),
                        help="Also read task YAMLs from this folder (repeatable). Untrusted: no imported code, "
                             "sandboxed templates, nothing read outside the folder (see --trust-task-code).")(wrapper)


@cli.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--baselines", is_flag=True, help="Score trivial baselines (majority, TF-IDF logistic regression, "
              "two-word rule, lead-k) on each task's test split, with the task's ceiling.")
@_task_source_options
def tasks_command(as_json: bool, baselines: bool) -> None:
    """List registered tasks with their plugin, split sizes and metric."""
    from medbench.tasks import build_registry, data_source, load_tasks, split_sizes

    if baselines:
        _print_baselines(as_json)
        return
    registry = build_registry()
    rows = []
    for name, entry in sorted(registry.entries.items()):
        try:  # render=False: listing never evaluates a YAML's templates
            task = load_tasks([name], registry, render=False)[name]
            sizes, source, status = split_sizes(task), data_source(entry, task), "ok"
        except MedbenchError as exc:
            sizes, source, status = {}, None, exc.one_line()
        rows.append({"task": name, "plugin": entry.plugin, "splits": sizes, "metric": entry.primary_metric,
                     "output_type": entry.config.get("output_type", "generate_until"), "yaml": str(entry.path),
                     "data_source": source, "status": status})
    if as_json:
        click.echo(json.dumps({"tasks": rows, "problems": registry.problems}, indent=2))
        return
    table = Table(title="medbench tasks")
    for column in ("task", "plugin", "splits", "metric", "type", "data", "status"):
        table.add_column(column)
    for row in rows:
        splits = ", ".join(f"{k} {v}" for k, v in row["splits"].items()) or "–"
        source = row["data_source"]
        text = (source or {}).get("description") or (source or {}).get("name") or ""
        data = "–" if not source else text if text.startswith(source["kind"]) else f"{source['kind']}: {text}"
        table.add_row(row["task"], row["plugin"], splits, row["metric"], row["output_type"], data, row["status"])
    console.print(table)
    for problem in registry.problems:
        err_console.print(f"[yellow]Warning:[/] {problem}", highlight=False)


def _print_baselines(as_json: bool) -> None:
    from medbench.baselines import all_baselines

    results = all_baselines()
    if as_json:
        click.echo(json.dumps({"baselines": [r.as_dict() for r in results]}, indent=2))
        return

    def cell(value):
        return "–" if value is None else f"{value:.3f}"

    table = Table(title="medbench trivial baselines (test split)")
    for column in ("task", "metric", "majority", "BoW-LR", "2-word rule", "lead-k", "ceiling", "note"):
        table.add_column(column)
    for r in results:
        over = r.bow_lr is not None and r.bow_lr > r.ceiling
        bow = f"[red]{cell(r.bow_lr)}[/]" if over else cell(r.bow_lr)
        table.add_row(r.task, r.metric, cell(r.majority), bow, cell(r.rule2), cell(r.lead), cell(r.ceiling),
                      r.note or r.method)
    console.print(table)


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(as_json: bool) -> None:
    """List the model references that resolve here, and the loaders that accept other kinds."""
    from medbench.models import loaders_by_plugin
    from medbench.plugins import plugin_call

    rows = []
    for plugin, loader in loaders_by_plugin():
        with plugin_call(plugin, f"model loader {loader.name!r} describe()"):
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
    """Checked here, before any model is loaded: a device this machine lacks or an unknown dtype is one line."""
    from medbench.models import LoadOptions, check_device, check_dtype

    return LoadOptions(dtype=check_dtype(dtype), device=check_device(device), trust_remote_code=trust_remote_code)


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
@click.option("--limit", type=LIMIT, default=None, help="Score only the first N items of each task.")
@click.option("--num-fewshot", type=SHOTS, default=None, help="Few-shot examples per prompt.")
@click.option("--batch-size", type=BATCH, default=8, show_default=True)
@click.option("--seed", type=SEED, default=1234, show_default=True)
@click.option("--leaderboard-dir", "output_dir", type=click.Path(file_okay=False), default=None,
              help="Leaderboard directory the records go into (the folder `train --leaderboard-dir` and `leaderboard "
                   "--leaderboard-dir` name).  [default: leaderboard]")
# The name this option had: `--output-dir` means a runs folder in `train` and `sweep`, so eval no longer uses it.
@click.option("--output-dir", "legacy_output_dir", type=click.Path(file_okay=False), default=None, hidden=True)
@click.option("--label", default=None, help="Row name in the leaderboard (default: the model reference).")
@click.option("--data-file", multiple=True, help="TASK[:SPLIT]=PATH: score your own data file in the task's format.")
@click.option("--chat-template", is_flag=True, help="Wrap prompts in the model's chat template (column TASK@chat).")
@click.option("--scorer", type=click.Choice(["prefix", "hflm"]), default="prefix", show_default=True,
              help="Log-likelihood scorer: prefix (shares each prompt's forward pass; same results) or lm-eval's HFLM.")
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
@click.option("--no-cache", is_flag=True,
              help="Score again even when a record of the same weights (content hash), data and options exists.")
@_task_source_options
def eval_command(model_ref, tasks, limit, num_fewshot, batch_size, seed, output_dir, legacy_output_dir, label,
                 data_file, chat_template, scorer, mode, fewshot_rationales, judges, judge_options, device, dtype,
                 trust_remote_code, no_cache) -> None:
    """Score a model on tasks; write records and update the leaderboard."""
    from medbench.evaluation import EvalConfig
    from medbench.leaderboard import render
    from medbench.records import ensure_writable

    if legacy_output_dir is not None:
        if output_dir is not None and Path(output_dir) != Path(legacy_output_dir):
            raise MedbenchError(f"--output-dir {legacy_output_dir} and --leaderboard-dir {output_dir} name two "
                                "leaderboards", "pass --leaderboard-dir only")
        err_console.print("note: `eval --output-dir` is now `--leaderboard-dir` (in `train` and `sweep`, "
                          "--output-dir is the runs folder)", highlight=False, soft_wrap=True)
        output_dir = legacy_output_dir
    output_dir = output_dir or "leaderboard"

    load_options = _load_options(device, dtype, trust_remote_code)
    config = EvalConfig(tasks=_split_list(tasks), limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
                        seed=seed, output_dir=Path(output_dir), label=label, chat_template=chat_template,
                        scorer=scorer, mode=mode, fewshot_rationales=fewshot_rationales, judges=list(judges),
                        judge_options=_key_values(judge_options, "--judge-option"),
                        task_metadata=_data_file_overrides(data_file))
    if no_cache:
        config.reuse_records = False
    ensure_writable(Path(output_dir), "--leaderboard-dir")  # before the model is loaded and scored
    records = run_evaluation(model_ref, config, load_options)
    _print_records(records)
    paths = render(Path(output_dir))
    reused = sum(1 for record in records if record.get("_reused"))
    kept = f" ({reused} reused: same weights, data and options; --no-cache scores again)" if reused else ""
    err_console.print(f"records: {len(records)} written under {output_dir}/records{kept}; leaderboard: "
                      + ", ".join(str(p) for p in paths), highlight=False)


def _check_metric_plugins(strict: bool) -> None:
    """A register_metrics hook that raises: --rescore cannot recompute those metrics, so it stops (never a
    "re-scored" success line); rendering goes on without them, with a one-line warning naming the plugin."""
    from medbench.metrics import metric_registry
    from medbench.plugins import PluginHookError, PluginLoadWarning

    try:
        metric_registry()
    except PluginHookError as exc:
        if strict:
            raise
        warnings.warn(PluginLoadWarning(f"{exc.problem}; its metrics get no confidence intervals or comparisons "
                                        f"in this leaderboard — {exc.fix}"), stacklevel=2)


@cli.command("leaderboard")
@click.option("--leaderboard-dir", "--dir", "root", type=click.Path(file_okay=False), default="leaderboard",
              show_default=True, help="The leaderboard folder (as `eval` and `train --leaderboard-dir` name it).")
@click.option("--format", "formats", multiple=True,
              help="Output format, repeatable or comma-separated: md, json, csv, html, ... (default: all registered).")
@click.option("--baseline", default=None,
              help="Row every other row is compared with: a label or weights-hash prefix; 'none' for no comparisons "
                   "(default: the base model the other rows were trained from, if there is one).")
@click.option("--rescore", is_flag=True, help="Re-score every record from its samples.jsonl before rendering.")
@click.option("--open", "open_page", is_flag=True, help="Open index.html in a web browser afterwards.")
@click.option("--no-baselines", is_flag=True,
              help="Leave out the reference rows (each task's majority-class, bag-of-words LR and lead-3 "
                   "baselines; fitted once per task config, cached under --leaderboard-dir/.cache/baselines).")
def leaderboard_command(root: str, formats: tuple[str, ...], baseline: str | None, rescore: bool,
                        open_page: bool, no_baselines: bool) -> None:
    """Render every record under --leaderboard-dir into leaderboard files (with CIs and paired tests) and print the table."""
    from rich.text import Text

    from medbench.leaderboard import render_table, rescore_all

    _check_metric_plugins(strict=rescore)
    if rescore:
        err_console.print(f"re-scored {len(rescore_all(Path(root)))} record(s) from their samples", highlight=False)
    table, paths = render_table(Path(root), [f for value in formats for f in _split_list(value)] or None, baseline,
                                references="off" if no_baselines else "compute",
                                notify=lambda text: err_console.print(text, highlight=False))
    view = Table(title=f"leaderboard ({root})" + (f", baseline {table.baseline.label}" if table.baseline else ""))
    for name in ["checkpoint", "win rate", "mean", *table.columns]:
        view.add_column(Text(name), overflow="fold")
    for row in table.rows:
        texts = []
        for cell in (row.cells.get(c) for c in table.columns):
            if cell is None or cell.score is None:
                texts.append("–")
                continue
            comparison = cell.comparison
            mark = "" if not (comparison and comparison.significant) else (
                " ▲" if comparison.direction == "better" else " ▼")
            ci = f" [{cell.ci_low:.3f}, {cell.ci_high:.3f}]" if cell.ci_low is not None else ""
            texts.append(f"{cell.score:.3f}{ci}{mark}")
        mean, rate = row.mean_score(), row.win_rate
        partial = "" if row.complete else f" ({row.coverage}/{row.coverage_of} tasks)"  # not comparable: say so
        view.add_row(Text(row.label + (" (baseline)" if row.is_baseline else "")),
                     "–" if rate is None else f"{rate:.3f}{partial}", "–" if mean is None else f"{mean:.3f}{partial}",
                     *map(Text, texts))
    console.print(view)
    _print_references(table)
    err_console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)
    if open_page:
        html_path = next((p for p in paths if p.suffix == ".html"), None)
        if html_path is None:
            raise MedbenchError("--open needs the html format", "add --format html, or leave --format out")
        import webbrowser

        webbrowser.open(html_path.resolve().as_uri())


def _print_references(table: Any) -> None:
    """The reference rows as a table of their own, below the checkpoints and never among them."""
    from rich.text import Text

    from medbench.leaderboard.references import BADGE, reference_notes, reference_text

    for note in table.reference_notes:
        err_console.print(f"note: {note}", highlight=False)
    if not table.references:
        return
    view = Table(title=f"reference baselines ({BADGE}; never ranked)", title_style="italic")
    for name in ["reference", *table.columns]:
        view.add_column(Text(name), overflow="fold", style="italic")
    for ref in table.references:
        view.add_row(Text(f"{ref.label} [{BADGE}]"), *(Text(reference_text(ref.cells.get(col)))
                                                       for col in table.columns))
    console.print(view)
    for col, note in reference_notes(table):
        console.print(Text(f"  {col}: {note}", style="dim"))


@cli.command("train", cls=TrainCommand,
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
@_task_source_options
def train_command(ctx, plugin, model_ref, task, eval_tasks, eval_limit, config_file, output_dir, run_name,
                  leaderboard_dir, seed, eval_batch_size, eval_mode, eval_fewshot_rationales, eval_chat_template, device,
                  dtype, resume, num_processes, accelerate_config) -> None:
    """Fine-tune with a trainer plugin; every checkpoint is scored into the leaderboard.

    Options the plugin defines are passed as --name value after the medbench options.
    """
    from medbench import training
    from medbench.engine import train_and_score
    from medbench.evaluation import EvalConfig
    from medbench.leaderboard import render
    from medbench.records import ensure_writable
    from medbench.tasks import build_registry

    load_options = _load_options(device, dtype, False)
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
                                           lambda ref, config: run_evaluation(ref, config, load_options))
    if training.process_rank() != 0:
        return
    _print_records(records)
    paths = render(Path(leaderboard_dir))
    err_console.print(f"{len(checkpoints)} checkpoint(s) in {run_dir}; leaderboard: "
                      + ", ".join(str(p) for p in paths), highlight=False)


LAUNCHED_RUN_DIR = "MEDBENCH_LAUNCHED_RUN_DIR"
_INVOCATION: list[str] = []  # the command line main() was given, for relaunching under accelerate


def _launch_distributed(run_dir: Path, num_processes: int, accelerate_config: str | None) -> None:
    """Run this same `train` command in ``num_processes`` processes through `accelerate launch`, in ``run_dir``."""
    import subprocess

    import torch

    drop = {"--num-processes": 1, "--accelerate-config": 1}
    argv, skip = [], 0
    for arg in _INVOCATION:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in drop:
            skip = 0 if "=" in arg else drop[name]
            continue
        argv.append(arg)
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config:
        launcher += ["--config_file", accelerate_config]
        if num_processes > 1:
            launcher += ["--num_processes", str(num_processes)]
    else:
        launcher += ["--num_processes", str(num_processes), "--num_machines", "1", "--mixed_precision", "no",
                     "--dynamo_backend", "no"]
        # accelerate's multi-GPU launcher is torchrun; on a machine without GPUs its processes join over gloo.
        launcher += ["--multi_gpu"] if num_processes > 1 else []
    command = [*launcher, "-m", "medbench.cli", *argv]
    err_console.print(f"launching {num_processes} training processes ({'GPU' if torch.cuda.is_available() else 'CPU'}"
                      f"): {' '.join(command)}", highlight=False, soft_wrap=True)
    env = {**os.environ, LAUNCHED_RUN_DIR: str(Path(run_dir).resolve()), "OMP_NUM_THREADS":
           os.environ.get("OMP_NUM_THREADS", "1")}
    code = subprocess.call(command, env=env)
    if code:
        raise MedbenchError(f"the {num_processes} training processes exited with status {code} (see their output "
                            f"above)", f"fix what they report; the run directory is {run_dir}")


@cli.command("sweep")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--scale", default=None, help="Which of the recipe's scales to run (default: its first, e.g. toy).")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Sweep directory (default: sweeps/<recipe>-<scale>); re-running resumes it.")
@click.option("--dry-run", is_flag=True, help="Print the plan (cells, steps, comparisons) and what is done; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
@click.option("--executor", default="local", show_default=True, help="local, ray, slurm, or a plugin's executor.")
@click.option("--executor-option", "executor_options", multiple=True, help="KEY=VALUE for the executor.")
@click.option("--set", "overrides", multiple=True, help="VAR=VALUE: replace a variable of the chosen scale "
              "(e.g. model=path/to/model, eval_limit=50).")
@click.option("--data-file", "data_files", multiple=True,
              help="TASK[:SPLIT]=PATH: your own data for a task (over the recipe's data_files); hashed into the plan.")
def sweep_command(recipe, scale, output_dir, dry_run, as_json, executor, executor_options, overrides,
                  data_files) -> None:
    """Run a recipe's grid: every cell trains, is scored, and lands in the sweep's leaderboard."""
    from medbench import sweep
    from medbench.progress import new_progress

    plan = sweep.plan(sweep.read_recipe(recipe), scale, output_dir, _key_values(overrides, "--set"),
                      _key_values(data_files, "--data-file"))
    if dry_run and as_json:
        click.echo(sweep.describe_json(plan))
        return
    description = sweep.describe(plan)
    labels = {c["id"]: c["label"] for c in description["cells"]}
    table = Table(title=f"{plan.recipe.name} · scale {plan.scale} · {len(plan.cells)} cells → {plan.out_dir}")
    for column in ("cell", "steps", "eval", "key", "state"):
        table.add_column(column, overflow="fold")
    for cell in description["cells"]:
        steps = " → ".join(s["plugin"] for s in cell["steps"]) or "(none: scored as is)"
        state = "done" if cell["done"] else "to run"
        table.add_row(cell["label"] + (" [baseline]" if cell["baseline"] else ""), steps,
                      ",".join(cell["eval"]["tasks"]), cell["id"], state)
    console.print(table)
    if dry_run:  # a run prints them in its report
        for comparison in description["comparisons"]:
            console.print(f"compare {labels[comparison['cell']]}  vs  {labels[comparison['baseline']]}",
                          highlight=False, soft_wrap=True)
    for skipped in plan.skipped:
        err_console.print(f"skipped {skipped['cell']}: {skipped['reason']}", highlight=False, soft_wrap=True)
    if dry_run:
        return
    options = _key_values(executor_options, "--executor-option")
    results = []
    with new_progress() as progress:
        bar = progress.add_task(f"sweep {plan.recipe.name}", total=len(plan.cells), status="")

        def finished(result) -> None:
            results.append(result)
            failed = sum(r.status == "failed" for r in results)
            progress.update(bar, completed=len(results), status=f"{failed} failed" if failed else "")

        sweep.run_sweep(plan, executor, options, on_result=finished)
    summary = Table(title="cells")
    for column in ("cell", "status", "seconds", "error"):
        summary.add_column(column)
    for result in results:
        summary.add_row(result.label, result.status, f"{result.duration_s:.0f}", result.error or "")
    console.print(summary)
    failed = [r for r in results if r.status == "failed"]
    if any(r.status != "failed" for r in results):
        _sweep_report(plan)
    if failed:
        raise MedbenchError(f"{len(failed)} of {len(results)} cells failed (first: {failed[0].label}: {failed[0].error})",
                            f"fix the cause and re-run the same command: finished cells are kept "
                            f"(tracebacks in {plan.out_dir}/cells)")


def _sweep_report(plan) -> None:
    from rich.markdown import Markdown

    from medbench.leaderboard import render
    from medbench.sweep_report import study_report

    paths = render(plan.leaderboard_dir)
    report = study_report(plan)
    console.print(Markdown(report["markdown"]))
    err_console.print(f"report: {plan.out_dir}/report.md; leaderboard: " + ", ".join(str(p) for p in paths),
                      highlight=False)


# A plugin command's own click errors (bad option, ctx.exit) are the user's, not a plugin crash.
_CLICK_FLOW = (click.ClickException, click.exceptions.Exit, click.exceptions.Abort)


def _name_command_failures(command: click.Command, plugin: str) -> None:
    """Run a plugin's command (and a group's sub-commands) under plugin_call, so a crash names the plugin."""
    from medbench.plugins import plugin_callable

    if command.callback is not None:
        command.callback = plugin_callable(plugin, f"command {command.name!r}", command.callback, _CLICK_FLOW)
    for sub in getattr(command, "commands", {}).values():
        _name_command_failures(sub, plugin)


def add_plugin_commands(group: click.Group) -> None:
    """The ``register_commands`` hook, one plugin at a time, so each command added knows its plugin."""
    from medbench.plugins import call_register_hook

    before = dict(group.commands)

    def added_by(plugin: str) -> None:
        for name, command in list(group.commands.items()):
            if before.get(name) is not command:
                _name_command_failures(command, plugin)
                before[name] = command

    call_register_hook("register_commands", lambda plugin: group, after=added_by)


def _add_plugin_commands() -> None:
    add_plugin_commands(cli)


def _interrupted(as_program: bool) -> None:
    """One line and exit 130 on Ctrl-C, wherever it lands. Run as the program, a second Ctrl-C cannot interrupt
    the exit (in-process callers, tests, keep their own SIGINT handling)."""
    import signal

    if as_program:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass
    sys.stderr.write("Interrupted. Records already written are kept.\n")
    sys.stderr.flush()
    sys.exit(130)


def _usage_error(exc: click.UsageError) -> None:
    """click's bad option / missing argument errors, as the one line every other input error gets."""
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):  # bare `medbench`: the help, as is
        exc.show()
        sys.exit(exc.exit_code)
    command = exc.ctx.command_path if exc.ctx is not None else "medbench"
    message = " ".join(exc.format_message().split()).rstrip(".")
    err_console.print(f"[bold red]Error:[/] {message} — run `{command} --help` for the valid options",
                      highlight=False, soft_wrap=True)
    sys.exit(exc.exit_code)


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    except KeyboardInterrupt:
        _interrupted(as_program=argv is None)


def _main(argv: list[str] | None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _INVOCATION[:] = argv
    debug = "--debug" in argv or os.environ.get("MEDBENCH_DEBUG") == "1"
    if "--online" in argv[: argv.index("--") if "--" in argv else len(argv)]:
        # Before anything imports huggingface_hub or datasets: both read these variables once, at import.
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "0"
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
    except click.UsageError as exc:
        _usage_error(exc)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # click turns Ctrl-C at a prompt into Abort
        raise KeyboardInterrupt from None
    except Exception as exc:
        if debug:
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        err_console.print(f"[bold red]Error:[/] {message} — rerun with --debug for the traceback", highlight=False,
                          soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
