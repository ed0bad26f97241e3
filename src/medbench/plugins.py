"""The plugin manager: built-ins and third-party plugins load the same way, through entry points.

Sources, in order: the ``medbench`` entry-point group (built-ins are listed there too, and load first, so a
third-party plugin can never shadow one), restricted to the names in ``MEDBENCH_LOAD_PLUGINS`` when that is
set (a comma-separated allowlist of entry-point names), then ``*.py`` files in a ``--plugins-dir`` /
``MEDBENCH_PLUGINS_DIR`` directory.

Every message about a plugin names the plugin and the package it came from. A plugin that fails to import, whose
package needs a newer medbench than the one installed, or whose name is taken, is skipped with a one-line
warning; the rest still load (a plugin that calls ``sys.exit()`` at import is skipped the same way). A hook that
raises becomes a one-line :class:`PluginHookError` naming the plugin, its package and the hook. Plugin code medbench
calls later (a trainer's ``train()``, a metric, a judge, an executor, a renderer, a model loader, a command) runs
under :func:`plugin_call`, which turns a crash into a one-line :class:`PluginError` naming the plugin and package.
Ctrl-C (KeyboardInterrupt) is never caught as a plugin failure.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pluggy

from medbench import hookspecs
from medbench.errors import MedbenchError

ENTRY_POINT_GROUP = "medbench"
ALLOWLIST_ENV = "MEDBENCH_LOAD_PLUGINS"
PLUGINS_DIR_ENV = "MEDBENCH_PLUGINS_DIR"
MEDBENCH_DIST = "medbench"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


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
        if _canonical(self.package) == MEDBENCH_DIST:
            return "this is a bug in medbench: please report it with the traceback `medbench --debug ...` prints"
        if self.source == "plugins dir":
            return f"fix {self.package} or move it out of the plugins directory"
        if self.source == "registered":
            return "fix the plugin object registered with medbench.plugins.register_plugin"
        return (f"fix or upgrade {self.package}, uninstall it (pip uninstall {self.package}), or leave the plugin "
                f"out with {ALLOWLIST_ENV}=<the plugins to load>")


REGISTERED_PACKAGE = "(registered in process)"

_manager: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("medbench")
    pm.add_hookspecs(hookspecs)
    return pm


def _allowlist() -> set[str] | None:
    raw = os.environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _warn(message: str) -> None:
    warnings.warn(" ".join(message.split()), PluginLoadWarning, stacklevel=4)


def describe_exception(exc: BaseException) -> str:
    """``ValueError: bad`` for one line; a plugin's ``sys.exit()`` is named as what it is."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C and generator shutdown are never a plugin's failure: they must travel on untouched."""
    return isinstance(exc, (KeyboardInterrupt, GeneratorExit))


def _warn_skipped(label: str, exc: BaseException, fix: str) -> None:
    _warn(f"{label} failed to load and was skipped: {describe_exception(exc)} — {fix}")


def installed_medbench_version() -> str:
    from medbench import __version__

    return __version__


def plugin_label(name: str) -> str:
    """``plugin 'x' (package medbench-x 0.1.0)`` for a loaded plugin's name (for messages elsewhere in medbench)."""
    info = _infos.get(name)
    return info.label() if info else f"plugin {name!r}"


def _named_failures(function: Callable[..., Any], info: PluginInfo, hook: str) -> Callable[..., Any]:
    """Wrap one hook implementation so whatever it raises names the plugin, its package and the hook."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (PluginHookError, PluginError):  # another plugin's code, called from this one: already named
            raise
        except MedbenchError as exc:
            raise PluginHookError(f"{info.label()} failed in {hook}: {exc.problem}", exc.fix or info.fix()) from exc
        except BaseException as exc:
            if is_interrupt(exc):
                raise
            raise PluginHookError(f"{info.label()} raised in {hook}: {describe_exception(exc)}", info.fix()) from exc

    call.__medbench_wrapped__ = True
    return call


def _register(pm: pluggy.PluginManager, plugin: Any, info: PluginInfo) -> None:
    pm.register(plugin, name=info.name)
    callers = pm.get_hookcallers(plugin) or []
    for caller in callers:
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper) and \
                    not getattr(impl.function, "__medbench_wrapped__", False):
                impl.function = _named_failures(impl.function, info, caller.name)
    info.hooks = sorted(caller.name for caller in callers)
    _infos[info.name] = info


def _dist_name(dist: Any) -> str:
    try:
        return dist.metadata["Name"] or "unknown"
    except Exception:
        return "unknown"


def _is_medbench(dist: Any) -> bool:
    return dist is not None and _canonical(_dist_name(dist)) == MEDBENCH_DIST


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def unmet_medbench_requirement(dist: Any, installed: str | None = None) -> str | None:
    """The ``medbench`` requirement of ``dist`` (e.g. ``>=0.3``) when the installed medbench does not meet it."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:  # packaging comes with transformers; without it, skip the check rather than fail
        return None
    installed = installed or installed_medbench_version()
    for line in (dist.requires or []) if dist is not None else []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if _canonical(requirement.name) != MEDBENCH_DIST or not requirement.specifier:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # e.g. `medbench>=1; extra == "dev"`: not what the plugin needs at run time
        try:
            Version(installed)
        except InvalidVersion:
            return None
        if not requirement.specifier.contains(installed, prereleases=True):
            return str(requirement.specifier)
    return None


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allow = _allowlist()
    # medbench's own plugins first (sorted is stable): a third-party name or task never shadows a built-in.
    entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                          key=lambda ep: not _is_medbench(ep.dist))
    for ep in entry_points:
        if allow is not None and ep.name not in allow:
            continue
        dist = ep.dist
        info = PluginInfo(name=ep.name, version=dist.version if dist else "unknown",
                          package=_dist_name(dist) if dist else "unknown", source="entry point")
        if pm.has_plugin(ep.name):
            other = _infos.get(ep.name)
            if other is None or _canonical(other.package) == _canonical(info.package):
                continue  # the same package seen twice on sys.path
            _warn(f"{info.label()} was skipped: its name is taken by {other.label()} — uninstall one of the two "
                  f"packages, or ask the author of {info.package} to rename its `{ENTRY_POINT_GROUP}` entry point")
            continue
        if dist is not None and not _is_medbench(dist):
            needed = unmet_medbench_requirement(dist)
            if needed:
                installed = installed_medbench_version()
                _warn(f"{info.label()} was skipped: it needs medbench{needed} and medbench {installed} is installed "
                      f"— run `pip install -U medbench`, or install a release of {info.package} that supports "
                      f"medbench {installed}")
                continue
        try:
            module = ep.load()
        except BaseException as exc:  # a broken third-party plugin (even one calling sys.exit) must not end medbench
            if is_interrupt(exc):
                raise
            _warn_skipped(info.label(), exc, info.fix())
            continue
        _register(pm, module, info)


def _load_plugins_dir(pm: pluggy.PluginManager, directory: Path) -> None:
    for path in sorted(directory.glob("*.py")):
        name = path.stem
        info = PluginInfo(name=name, version="unknown", package=str(path), source="plugins dir")
        if pm.has_plugin(name):
            other = _infos.get(name)
            _warn(f"{info.label()} was skipped: its name is taken by {other.label() if other else repr(name)} "
                  f"— rename the file")
            continue
        module_name = f"medbench_dir_plugin_{name}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(module_name, None)
            if is_interrupt(exc):
                raise
            _warn_skipped(info.label(), exc, info.fix())
            continue
        info.version = str(getattr(module, "__version__", "unknown"))
        _register(pm, module, info)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, loaded on first use."""
    global _manager
    if _manager is None:
        pm = _new_manager()
        _manager = pm  # set first: a plugin that looks at the manager while loading sees this one
        try:
            _load_entry_points(pm)
            plugins_dir = os.environ.get(PLUGINS_DIR_ENV)
            if plugins_dir:
                _load_plugins_dir(pm, Path(plugins_dir))
        except BaseException:
            _manager = None
            _infos.clear()
            raise
    return _manager


def load_plugins_dir(directory: str | Path) -> None:
    """Load every ``*.py`` in ``directory`` as a plugin (the CLI's ``--plugins-dir``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MedbenchError(f"plugins directory {directory} does not exist", "pass an existing directory to --plugins-dir")
    _load_plugins_dir(get_plugin_manager(), directory)


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    try:
        return importlib.metadata.packages_distributions()
    except Exception:
        return {}


def _package_of(plugin: Any) -> tuple[str, str]:
    """The distribution (name, version) that ships a plugin object's module, when one is installed."""
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else getattr(plugin, "__module__", None)
    top = (module or "").split(".")[0]
    if top:
        dists = _packages_distributions().get(top) or []
        for name in dists:
            try:
                return name, importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
    return REGISTERED_PACKAGE, str(getattr(plugin, "__version__", "unknown"))


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object directly (tests, notebooks). Returns the name to unregister it by."""
    pm = get_plugin_manager()
    if pm.is_registered(plugin):
        raise MedbenchError(f"{plugin_label(pm.get_name(plugin))} is already registered",
                            "use the name it has, or unregister it first")
    name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
    if pm.has_plugin(name):
        raise MedbenchError(f"a plugin named {name!r} is already loaded ({plugin_label(name)})",
                            "register this one under another name")
    package, version = _package_of(plugin)
    _register(pm, plugin, PluginInfo(name=name, version=version, package=package, source="registered"))
    return name


def unregister_plugin(name: str) -> None:
    pm = get_plugin_manager()
    pm.unregister(name=name)
    _infos.pop(name, None)


def reset() -> None:
    """Forget the loaded manager so the next call reloads (tests that change the environment)."""
    global _manager
    _manager = None
    _infos.clear()


def list_plugins() -> list[PluginInfo]:
    get_plugin_manager()
    return sorted(_infos.values(), key=lambda info: (info.source != "entry point", info.name))


# --- plugin code that medbench calls after registration ----------------------------------------------------------

def plugin_info_or_registered(name: str | None) -> PluginInfo:
    return _infos.get(name or "") or PluginInfo(name or "unknown", "unknown", REGISTERED_PACKAGE, "registered")


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
            if _canonical(info.package) != MEDBENCH_DIST and not getattr(exc, "_medbench_named", False):
                exc.problem = f"{info.label()}: {exc.problem}"
                exc.args = (exc.one_line(),)
                exc._medbench_named = True
            return False
        fix = info.fix() if _canonical(info.package) == MEDBENCH_DIST else \
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
