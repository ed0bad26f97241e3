"""What the commands share: the consoles, checked option types, option helpers, and scoring with progress."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Callable

import click
from rich.table import Table
from rich.text import Text

from medbench.console import make_console, terminal_safe
from medbench.errors import MedbenchError

# Piped (not a terminal), tables print whole instead of truncated to 80 columns: see medbench.console.
console = make_console()
err_console = make_console(stderr=True)


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
                                f"pass {option} a whole number, e.g. {option} {max(self.low, 1)}") from None
        if self.high is not None and not self.low <= number <= self.high:
            raise MedbenchError(f"{option} must be between {self.low} and {self.high}, got {number}",
                                self.fix or f"pass {option} {self.low}..{self.high}")
        if number < self.low:
            what = f"{self.low} or more" if self.low != 1 else f"a positive number{self.unit}" if self.unit else "positive"
            raise MedbenchError(f"{option} must be {what}, got {number}",
                                self.fix or f"pass {option} {self.low} or more")
        return number


def refuse_empty(value: Any, param: Any, fix: str) -> None:
    """An empty option value (an unset shell variable) is one line: read as given, it meant a default silently.
    ``fix`` may name the option as {option}."""
    if isinstance(value, str) and not value.strip():
        option = max(param.opts, key=len) if param is not None and param.opts else "the option"
        raise MedbenchError(f"{option} is empty", fix.format(option=option))


class Named(click.ParamType):
    """A name option (--baseline, --scale): empty, it had meant "none" or "the default" silently."""

    name = "text"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        refuse_empty(value, param, "give {option} a value, or leave it out")
        return value


class Folder(click.Path):
    """A folder option: empty, it read as the working directory, and pages, records and runs landed among the
    user's own files."""

    def __init__(self):
        super().__init__(file_okay=False)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        refuse_empty(value, param, "name a folder, e.g. {option} my-folder, or leave it out")
        return super().convert(value, param, ctx)


class BatchSize(Bounded):
    """A positive whole number, or ``auto``: the largest batch up to 64 that fits the GPU for the longest prompt
    (medbench.fastlm), 8 on a CPU."""

    name = "integer|auto"

    def __init__(self):
        super().__init__(1, fix="")

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        option = max(param.opts, key=len) if param is not None and param.opts else "the value"
        try:
            return super().convert(value, param, ctx)
        except MedbenchError:
            shown = value if str(value).strip().lstrip("-").isdigit() else repr(value)
            raise MedbenchError(f"{option} must be a positive whole number or auto, got {shown}",
                                f"pass {option} 8, or {option} auto") from None


class Limit(Bounded):
    """--limit: a whole number of items, or below 1 a fraction of each task's items (lm-eval's --limit)."""

    name = "number"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | float:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = None
        if number is not None and 0 < number < 1:
            return number
        if number is not None and number >= 1 and number.is_integer():
            value = int(number)
        elif number is not None and not number.is_integer():  # 1.5, -0.5, nan, inf: neither form
            option = max(param.opts, key=len) if param is not None and param.opts else "--limit"
            raise MedbenchError(f"{option} must be a whole number of items or a fraction below 1, got {value!r}",
                                f"pass e.g. {option} 20 (items) or {option} 0.5 (half of each task's items)")
        return super().convert(value, param, ctx)


SEED = Bounded(0, 2**32 - 1, fix="pass a --seed between 0 and 4294967295 (numpy and torch accept no other)")
LIMIT = Limit(1, unit=" of examples", fix="")
BATCH = BatchSize()
SHOTS = Bounded(0)
PROCESSES = Bounded(1, unit=" of processes")
REPEATS = Bounded(1, unit=" of samples per item")
RATIONALES_FLAG = "\0task's own"  # --fewshot-rationales given without a field: no field name can be this


def rationales_choice(value: str | None, option: str = "--fewshot-rationales") -> bool | str:
    """--fewshot-rationales [FIELD]: absent False, alone True (the task's rationale_field), else the field."""
    if value is not None and not value.strip():  # '' had meant "no rationales"
        raise MedbenchError(f"{option} FIELD is empty", f"pass {option} alone for the task's rationale_field, "
                            "or name a field")
    return True if value == RATIONALES_FLAG else value or False


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def key_values(values: tuple[str, ...], option: str) -> dict[str, str]:
    """KEY=VALUE options; a key given twice with different values is refused (medbench.small_inputs)."""
    from medbench.small_inputs import no_repeats

    pairs = []
    for value in values:
        key, eq, item = value.partition("=")
        if not eq or not key.strip():
            raise MedbenchError(f"{option} {value!r} is not KEY=VALUE", f"write it as {option} model=smollm2-135m-instruct")
        pairs.append((key.strip(), item))
    return no_repeats(pairs, option, same=_same_split if option == "--data-file" else None)


def _same_split(target: str) -> tuple[str, str]:
    """``medqa`` and ``medqa:test`` name one split: a --data-file target without a split is the test split."""
    task, _, split = target.partition(":")
    return task.strip(), split.strip() or "test"


def data_file_pairs(values: tuple[str, ...]) -> dict[str, str]:
    """``--data-file medqa=path.jsonl`` or ``medqa:test=path.jsonl`` as ``{"TASK[:SPLIT]": absolute path}``; paths
    the user typed resolve against the CWD."""
    from medbench.small_inputs import no_repeats
    from medbench.taskdata import check_data_size

    pairs: list[tuple[str, str]] = []
    for value in values:
        target, eq, path = value.partition("=")
        if not eq or not target or not path:
            raise MedbenchError(f"--data-file {value!r} is not TASK=PATH", "write --data-file medqa=/path/to/test.jsonl")
        pairs.append((target, str(Path(path).expanduser().resolve())))
    checked = no_repeats(pairs, "--data-file", same=_same_split)  # two files for one split: which was meant?
    for target, path in checked.items():
        check_data_size(Path(path), target)
    return checked


def data_file_overrides(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--data-file`` values as per-task metadata: ``{task: {"data_files": {split: path}}}`` (no split: test)."""
    overrides: dict[str, dict[str, Any]] = {}
    for target, path in data_file_pairs(values).items():
        task, _, split = target.partition(":")
        overrides.setdefault(task, {"data_files": {}})["data_files"][split or "test"] = path
    return overrides


def task_source_options(command):
    """--include-path DIR (repeatable) and --trust-task-code for commands that read tasks; the command runs with
    those task folders indexed (medbench.tasks.task_sources)."""

    @functools.wraps(command)
    def wrapper(*args, include_paths=(), trust_task_code=False, **kwargs):
        from medbench.tasks import refuse_idle_trust, task_sources

        refuse_idle_trust(include_paths, trust_task_code, "--trust-task-code", "--include-path DIR")
        with task_sources(list(include_paths), trust_task_code):
            return command(*args, **kwargs)

    wrapper = click.option("--trust-task-code", is_flag=True,
                           help="Trust --include-path folders: their YAMLs may import code (!function), render "
                                "templates outside the sandbox and read files outside the folder.")(wrapper)
    return click.option("--include-path", "include_paths", multiple=True, type=Folder(),
                        help="Also read task YAMLs from this folder (repeatable). Untrusted: no imported code, "
                             "sandboxed templates, nothing read outside the folder (see --trust-task-code).")(wrapper)


def generation_options(prefix: str = ""):
    """--gen-kwargs, --system-prompt, --system-prompt-file and --repeats (``prefix="eval-"``: --eval-gen-kwargs,
    ...), checked and handed to the command as one ``generation`` argument (medbench.generation)."""
    names = ("gen_kwargs", "system_prompt", "system_prompt_file", "repeats")
    dest = {name: prefix.replace("-", "_") + name for name in names}

    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            from medbench.generation import GenerationOptions, parse_gen_kwargs, read_system_prompt

            values = {name: kwargs.pop(dest[name]) for name in names}
            option = f"--{prefix}system-prompt"
            kwargs["generation"] = GenerationOptions(
                parse_gen_kwargs(values["gen_kwargs"], f"--{prefix}gen-kwargs"),
                read_system_prompt(values["system_prompt"], values["system_prompt_file"], option), values["repeats"])
            return command(*args, **kwargs)

        for name, kind, text in reversed((
                ("gen-kwargs", None, "Generation settings for generated answers: max_new_tokens, temperature, top_p, "
                                     "top_k, until (stop sequences), e.g. max_new_tokens=64,temperature=0.7."),
                ("system-prompt", None, "System prompt for every task (a system turn with the chat template)."),
                ("system-prompt-file", click.Path(dir_okay=False), "Read the system prompt from this UTF-8 file."),
                ("repeats", REPEATS, "Sample each generated answer N times (needs temperature > 0): the score is "
                                     "the majority answer's; pass@k is recorded too."))):
            key = name.replace("-", "_")
            wrapper = click.option(f"--{prefix}{name}", dest[key], type=kind, default=1 if key == "repeats" else None,
                                   show_default=key == "repeats", help=text)(wrapper)
        return wrapper

    return decorate


def checked_load_options(device: str, dtype: str, trust_remote_code: bool):
    """Checked here, before any model is loaded: a device this machine lacks or an unknown dtype is one line."""
    from medbench.models import LoadOptions, check_device, check_dtype

    return LoadOptions(dtype=check_dtype(dtype), device=check_device(device), trust_remote_code=trust_remote_code)


JSON_OPTION_HELP = "Print the result as JSON on stdout (for scripts); messages stay on stderr."


def record_summaries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as a script reads them: every field of record.json, its path, and whether it was reused."""
    return [{**{k: v for k, v in record.items() if not k.startswith("_")}, "path": record.get("_path"),
             "reused": bool(record.get("_reused"))} for record in records]


def _standard_json(value: Any) -> Any:
    """``value`` with NaN and infinities as null: Python writes them as ``NaN``, which jq and other strict JSON
    readers refuse, so `eval --json | jq` would fail on a metric with no value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _standard_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_standard_json(item) for item in value]
    return value


def print_records(records: list[dict[str, Any]], as_json: bool = False, **extra: Any) -> None:
    """The scores of a run: a table, or with ``as_json`` one JSON object ({"records": [...], **extra})."""
    if as_json:
        click.echo(json.dumps(_standard_json({"records": record_summaries(records), **extra}), indent=2, default=str))
        return
    from medbench.console import terminal_safe  # labels, task and metric names: no control sequences

    def _number(value: Any) -> str:  # a metric without a value (None, or NaN: a judge that rated no item) is a dash
        return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) else "–"

    table = Table(title="results")
    for column in ("model", "task", "metric", "score", "± stderr", "n", "other metrics"):
        table.add_column(column)
    for record in records:
        primary = record["primary_metric"]
        others = ", ".join(f"{k} {_number(v.get('value'))}" for k, v in record["metrics"].items() if k != primary)
        table.add_row(*(Text(terminal_safe(text)) for text in (
            record["model"]["label"], record["record_key"], primary or "–", _number(record["score"]),
            _number(record["stderr"]), str(record["n"]), others)))
    console.print(table)


def print_listing(rows: list[dict[str, Any]], title: str, columns: dict[str, Callable[[dict[str, Any]], Any]],
                  as_json: bool) -> None:
    """A listing command's output: the rows as JSON with --json, else a table of ``columns`` (name -> cell of a
    row), every cell plain text (a plugin's description is never read as markup)."""
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text(terminal_safe(cell(row))) for cell in columns.values()))  # names from folders and files
    console.print(table)
