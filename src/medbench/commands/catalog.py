"""`medbench plugins`, `tasks` and `models`: what is installed, registered and resolvable here."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from medbench.commands.common import console, err_console, print_listing, task_source_options
from medbench.console import labelled, terminal_safe
from medbench.errors import MedbenchError


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List loaded plugins: name, version, hooks and what each registers."""
    from medbench.plugin_contents import provided, summary
    from medbench.plugins import list_plugins

    infos = list_plugins()
    contents, errors = provided()
    for kind, message in errors:  # the message names the plugin; every other plugin's are still listed
        err_console.print(Text(terminal_safe(f"medbench: {kind} of one plugin not listed: {message}")))
    if as_json:
        click.echo(json.dumps([{**info.as_dict(), "provides": contents.get(info.name, {})} for info in infos],
                              indent=2))
        return
    table = Table(title="medbench plugins")
    for column in ("name", "version", "package", "source", "hooks", "provides"):
        table.add_column(column, overflow="fold")
    for info in infos:  # a pipe gets every name; a terminal a count where a plugin registers many
        table.add_row(*(Text(terminal_safe(v)) for v in (
            info.name, info.version, info.package, info.source, ", ".join(sorted(info.hooks)),
            summary(contents.get(info.name, {}), full=not console.is_terminal))))
    console.print(table)


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--baselines", is_flag=True, help="Score trivial baselines (majority, TF-IDF logistic regression, "
              "two-word rule, lead-k) on each task's test split, with the task's ceiling.")
@task_source_options
def tasks_command(as_json: bool, baselines: bool) -> None:
    """List registered tasks with their plugin, split sizes and metric."""
    from medbench.plugin_calls import PluginHookError
    from medbench.task_facts import data_source
    from medbench.tasks import build_registry, load_tasks, split_sizes

    if baselines:
        _print_baselines(as_json)
        return
    registry = build_registry()
    registry.clashes.clear()  # each clash is one of registry.problems, printed once below (get() would warn again)
    rows = []
    for name, entry in sorted(registry.entries.items()):
        try:  # render=False: listing never evaluates a YAML's templates
            task = load_tasks([name], registry, render=False)[name]
            sizes, source, status = split_sizes(task), data_source(entry, task), "ok"
        except PluginHookError:
            raise  # a plugin's hook raised: every task would show it; the command stops on it, as eval does
        except MedbenchError as exc:
            sizes, source, status = {}, None, exc.one_line()
        rows.append({"task": name, "plugin": entry.plugin, "splits": sizes, "metric": entry.primary_metric,
                     "output_type": entry.config.get("output_type", "generate_until"), "yaml": str(entry.path),
                     "data_source": source, "status": status})
    groups = [{"group": name, "kind": group.kind, "plugin": _group_plugins(registry, group), "tasks": group.members,
               **({"refused": group.refusal.one_line()} if group.refusal else {})}
              for name, group in sorted(registry.groups.items()) if name not in registry.entries]
    if as_json:
        click.echo(json.dumps({"tasks": rows, "groups": groups, "problems": registry.problems}, indent=2))
        return
    table = Table(title="medbench tasks")
    for column in ("task", "plugin", "splits", "metric", "type", "data", "status"):
        table.add_column(column)
    for row in rows:
        splits = ", ".join(f"{k} {v}" for k, v in row["splits"].items()) or "–"
        source = row["data_source"]
        text = (source or {}).get("description") or (source or {}).get("name") or ""
        data = "–" if not source else text if text.startswith(source["kind"]) else f"{source['kind']}: {text}"
        # Names, metrics and descriptions come from task YAMLs (a user's folder): text, never markup or escapes.
        table.add_row(*(Text(terminal_safe(value)) for value in (row["task"], row["plugin"], splits, row["metric"],
                                                                  row["output_type"], data, row["status"])))
    console.print(table)
    for group in groups:  # `--tasks GROUP` scores every member (a tag: every task carrying it)
        refused = f" (refused: {group['refused']})" if group.get("refused") else ""
        console.print(terminal_safe(f"{group['kind']} {group['group']} ({group['plugin']}): "
                                    f"{', '.join(map(str, group['tasks']))}{refused}"), highlight=False)
    console.print("lm-eval's own tasks, groups and tags also run by name: --tasks pubmedqa, multimedqa, "
                  "mmlu_clinical_knowledge (their data from the hub with --online, or --data-file)", highlight=False)
    for problem in registry.problems:
        err_console.print(labelled("Warning:", "yellow", problem), highlight=False)


def _group_plugins(registry: Any, group: Any) -> str:
    """The plugin a group came from; for a tag, every plugin whose tasks carry it (``builtin_tasks, example``): a tag
    is gathered from its tasks, so naming only the first one's plugin credits it with another plugin's task."""
    if group.kind != "tag":
        return group.plugin
    plugins = [registry.entries[member].plugin for member in group.members if member in registry.entries]
    return ", ".join(dict.fromkeys(plugins)) or group.plugin


def _print_baselines(as_json: bool) -> None:
    from medbench.baselines import all_baselines

    results = all_baselines()
    if as_json:
        click.echo(json.dumps({"baselines": [r.as_dict() for r in results]}, indent=2))
        return

    def cell(value):
        return "–" if value is None else f"{value:.3f}"

    def judged(value, ceiling):  # red: a shortcut reaches the task's ceiling
        return Text(cell(value), style="red" if value is not None and value > ceiling else "")

    table = Table(title="medbench trivial baselines (test split)")
    for column in ("task", "metric", "majority", "BoW-LR", "char-LR", "2-word rule", "number rule", "answer only",
                   "lead-k", "constant", "copy", "ceiling", "note"):
        table.add_column(column)
    for r in results:
        shortcuts = [judged(v, r.ceiling) for v in (r.bow_lr, r.char_lr, r.rule2, r.num_rule, r.answer_only)]
        table.add_row(Text(terminal_safe(r.task)), Text(terminal_safe(r.metric)), cell(r.majority), *shortcuts,
                      judged(r.lead, r.ceiling), judged(r.constant, r.ceiling), judged(r.copy, r.ceiling),
                      cell(r.ceiling), Text(terminal_safe(r.note or r.method)))
    console.print(table)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(as_json: bool) -> None:
    """List the model references that resolve here, and the loaders that accept other kinds."""
    from medbench.models import loaders_by_plugin
    from medbench.plugin_calls import plugin_call

    rows = []
    for plugin, loader in loaders_by_plugin():
        with plugin_call(plugin, f"model loader {loader.name!r} describe()"):
            described = loader.describe()
            bad = [row for row in described if not isinstance(row, dict) or not {"ref", "kind", "status"} <= set(row)]
            if not isinstance(described, list) or bad:  # raised inside plugin_call: the plugin is named
                raise TypeError("describe() must return a list of {ref, kind, status[, location]} rows, got "
                                f"{str(bad[0] if bad else described)[:80]}")
        for row in described:
            rows.append({"loader": loader.name, **row})
        if not described:  # loaders of paths list the shape of reference they accept
            rows.append({"loader": loader.name, "ref": getattr(loader, "accepts", loader.name),
                         "kind": loader.name, "location": "", "status": "accepted"})
    print_listing(rows, "medbench models", {"ref": lambda r: r["ref"], "kind": lambda r: r["kind"],
                                            "status": lambda r: r["status"],
                                            "location": lambda r: r.get("location") or ""}, as_json)
