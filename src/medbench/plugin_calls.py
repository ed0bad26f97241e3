"""Naming the plugin when its code fails: who each loaded plugin is (:class:`PluginInfo`), and
:class:`plugin_call`, which turns whatever plugin code raises into one line naming the plugin and its package.

The plugin manager (:mod:`medbench.plugins`) fills :data:`known_plugins` as it loads plugins; everything that calls
into plugin code later (a trainer's ``train()``, a metric, a judge, an executor, a renderer, a model loader, a
command) runs under :func:`plugin_call`. Ctrl-C (KeyboardInterrupt) is never caught as a plugin failure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

from medbench.errors import MedbenchError

ALLOWLIST_ENV = "MEDBENCH_LOAD_PLUGINS"
MEDBENCH_DIST = "medbench"
REGISTERED_PACKAGE = "(registered in process)"


class PluginHookError(MedbenchError):
    """A plugin's hook raised; the message names the plugin, its package and the hook."""


class PluginError(MedbenchError):
    """Plugin code crashed while medbench ran it (not bad input): one line naming the plugin and its package."""

    exit_code = 1


@dataclass
class PluginInfo:
    name: str
    version: str
    package: str
    source: str  # "entry point", "plugins dir" or "registered"
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "package": self.package,
            "source": self.source,
            "hooks": sorted(self.hooks),
        }

    def label(self) -> str:
        """How messages name the plugin: ``plugin 'x' (package medbench-x 0.1.0)``."""
        if self.source == "plugins dir":
            return f"plugin {self.name!r} (file {self.package})"
        if self.source == "registered" and self.package == REGISTERED_PACKAGE:
            return f"plugin {self.name!r} (registered in this process)"
        version = f" {self.version}" if self.version and self.version != "unknown" else ""
        return f"plugin {self.name!r} (package {self.package}{version})"

    def fix(self) -> str:
        """What the user can do about a broken plugin."""
        if canonical_package_name(self.package) == MEDBENCH_DIST:
            return "this is a bug in medbench: please report it with the traceback `medbench --debug ...` prints"
        if self.source == "plugins dir":
            return f"fix {self.package} or move it out of the plugins directory"
        if self.source == "registered":
            return "fix the plugin object registered with medbench.plugins.register_plugin"
        return (f"fix or upgrade {self.package}, uninstall it (pip uninstall {self.package}), or leave the plugin "
                f"out with {ALLOWLIST_ENV}=<the plugins to load>")


known_plugins: dict[str, PluginInfo] = {}  # by plugin name, filled by medbench.plugins as it registers each


def canonical_package_name(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def describe_exception(exc: BaseException) -> str:
    """``ValueError: bad`` for one line; a plugin's ``sys.exit()`` is named as what it is."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C and generator shutdown are never a plugin's failure: they must travel on untouched."""
    return isinstance(exc, (KeyboardInterrupt, GeneratorExit))


def plugin_label(name: str) -> str:
    """``plugin 'x' (package medbench-x 0.1.0)`` for a loaded plugin's name (for messages elsewhere in medbench)."""
    info = known_plugins.get(name)
    return info.label() if info else f"plugin {name!r}"


def plugin_info_or_registered(name: str | None) -> PluginInfo:
    return known_plugins.get(name or "") or PluginInfo(name or "unknown", "unknown", REGISTERED_PACKAGE, "registered")


class plugin_call:
    """``with plugin_call(plugin_name, "train()"):`` around any call into plugin code.

    Whatever the plugin's code raises (SystemExit included) becomes a one-line :class:`PluginError` naming the
    plugin, its package and ``what`` failed, exit status 1; the original stays chained for ``--debug``. A
    :class:`MedbenchError` the plugin raised on purpose keeps its message and fix (prefixed with the plugin's name
    when the plugin is not medbench's own). Ctrl-C, errors already naming a plugin and ``passthrough`` types (a
    command's own click exceptions, say) travel on untouched.
    """

    def __init__(self, plugin: str | None, what: str, passthrough: tuple[type[BaseException], ...] = ()):
        self.plugin = plugin
        self.what = what
        self.passthrough = passthrough

    def __enter__(self) -> "plugin_call":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or is_interrupt(exc) or isinstance(exc, (PluginError, PluginHookError) + self.passthrough):
            return False
        info = plugin_info_or_registered(self.plugin)
        if isinstance(exc, MedbenchError):
            # The plugin's own one-line message: keep it (and its class, e.g. TrainingDiverged), name the plugin.
            if canonical_package_name(info.package) != MEDBENCH_DIST and not getattr(exc, "_medbench_named", False):
                exc.problem = f"{info.label()}: {exc.problem}"
                exc.args = (exc.one_line(),)
                exc._medbench_named = True
            return False
        fix = info.fix() if canonical_package_name(info.package) == MEDBENCH_DIST else \
            f"{info.fix()} (`medbench --debug ...` shows the traceback)"
        raise PluginError(f"{info.label()} failed in {self.what}: {describe_exception(exc)}", fix) from exc


def plugin_callable(plugin: str | None, what: str, function: Callable[..., Any],
                    passthrough: tuple[type[BaseException], ...] = ()) -> Callable[..., Any]:
    """``function`` wrapped so every call runs under :class:`plugin_call` (for callbacks kept in registries)."""
    if getattr(function, "__medbench_plugin_call__", False):
        return function

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with plugin_call(plugin, what, passthrough):
            return function(*args, **kwargs)

    call.__medbench_plugin_call__ = True
    return call


def plugin_iter(plugin: str | None, what: str, start: Callable[[], Any]) -> Any:
    """Iterate what ``start()`` returns (an executor's results) with the call and each step under
    :class:`plugin_call`; the consumer's own code between steps is not attributed to the plugin."""
    with plugin_call(plugin, what):
        iterator = iter(start())
    while True:
        with plugin_call(plugin, what):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item
