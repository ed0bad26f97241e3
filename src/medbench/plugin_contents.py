"""What each loaded plugin registers, by kind: ``medbench plugins``' "provides" column, so a plugin author sees a
metric, judge, backend or renderer arrive without reading medbench's code.

Each kind is read through the registry medbench itself uses (so a name another plugin took first is listed under
that plugin only). A plugin whose hook raises is reported in one line naming it, and every other plugin's things of
that kind are still listed: the listing is where a broken plugin gets diagnosed.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable, Iterable

from medbench.errors import MedbenchError


def _tasks() -> Iterable[tuple[str, str]]:
    from medbench.tasks import build_registry

    return ((entry.plugin, name) for name, entry in build_registry().entries.items())


def _named(module: str, function: str) -> Callable[[], Iterable[tuple[str, str]]]:
    """A named registry's (plugin, name) pairs: every registered object carries its ``.plugin``."""
    return lambda: ((thing.plugin, name) for name, thing in getattr(import_module(module), function)().items())


def _model_loaders() -> Iterable[tuple[str, str]]:
    from medbench.models import loaders_by_plugin

    return ((plugin, loader.name) for plugin, loader in loaders_by_plugin())


def _renderers() -> Iterable[tuple[str, str]]:
    """Renderers are kept as plain callables, so the hook is read again; the first plugin to register a name has
    it (the registry's clash policy, medbench.registries.claim)."""
    from medbench.registries import call_register_hook

    found: dict[str, str] = {}
    call_register_hook("register_leaderboard_renderers",
                       lambda plugin: lambda name, fn: found.setdefault(str(name), plugin))
    return ((plugin, name) for name, plugin in found.items())


def _commands() -> Iterable[tuple[str, str]]:
    """The commands each plugin adds, registered on a scratch group (the CLI's own is not touched)."""
    import click

    from medbench.registries import call_register_hook

    group, found = click.Group("medbench"), {}

    def added_by(plugin: str) -> None:
        for name in group.commands:
            found.setdefault(name, plugin)

    call_register_hook("register_commands", lambda plugin: group, after=added_by)
    return ((plugin, name) for name, plugin in found.items())


KINDS: dict[str, Callable[[], Iterable[tuple[str, str]]]] = {
    "tasks": _tasks, "trainers": _named("medbench.training", "trainer_registry"),
    "metrics": _named("medbench.metrics", "metric_registry"), "judges": _named("medbench.judges", "judge_registry"),
    "backends": _named("medbench.backends", "backend_registry"), "model loaders": _model_loaders,
    "executors": _named("medbench.sweeps", "executor_registry"), "leaderboard renderers": _renderers,
    "commands": _commands}


def provided() -> tuple[dict[str, dict[str, list[str]]], list[tuple[str, str]]]:
    """({plugin: {kind: sorted names}}, [(kind, the one-line error that kept some or all of it from being
    listed)]): a plugin whose hook raises is left out of its kind, named in its error; the others are listed."""
    from medbench.registries import skipping_failed_hooks

    by_plugin: dict[str, dict[str, list[str]]] = {}
    errors: list[tuple[str, str]] = []
    for kind, read in KINDS.items():
        try:
            with skipping_failed_hooks() as skipped:
                pairs = list(read())
        except MedbenchError as exc:  # the kind could not be read at all (not one plugin's hook)
            errors.append((kind, exc.one_line()))
            continue
        errors += [(kind, error.one_line()) for error in skipped]
        for plugin, name in pairs:
            by_plugin.setdefault(plugin, {}).setdefault(kind, []).append(str(name))
    for kinds in by_plugin.values():
        for names in kinds.values():
            names.sort()
    return by_plugin, errors


def summary(kinds: dict[str, list[str]], *, full: bool) -> str:
    """One cell of the table: each kind's names, or past six of a kind (tasks, say) their count and the first
    three (``full``: every name)."""
    parts = []
    for kind, names in kinds.items():
        shown = ", ".join(names) if full or len(names) <= 6 else f"{len(names)} ({', '.join(names[:3])}, ...)"
        parts.append(f"{kind}: {shown}")
    return "; ".join(parts)
