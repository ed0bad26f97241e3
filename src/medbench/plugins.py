"""The plugin manager: built-ins and third-party plugins load the same way, through entry points.

Sources, in order: the ``medbench`` entry-point group (built-ins are listed there too, and load first, so a
third-party plugin can never shadow one), restricted to the names in ``MEDBENCH_LOAD_PLUGINS`` when that is
set (a comma-separated allowlist of entry-point names), then ``*.py`` files in a ``--plugins-dir`` /
``MEDBENCH_PLUGINS_DIR`` directory.

Every message about a plugin names the plugin and the package it came from. A plugin that fails to import, whose
package needs a newer medbench than the one installed, or whose name is taken, is skipped with a one-line
warning; the rest still load (a plugin that calls ``sys.exit()`` at import is skipped the same way). A hook that
raises becomes a one-line ``PluginHookError`` naming the plugin, its package and the hook
(:func:`medbench.registries.call_register_hook`); plugin code medbench calls later runs under
:func:`medbench.plugin_calls.plugin_call`. Ctrl-C (KeyboardInterrupt) is never caught as a plugin failure.
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
from pathlib import Path
from typing import Any

import pluggy

from medbench import hookspecs
from medbench.errors import MedbenchError
from medbench.plugin_calls import (ALLOWLIST_ENV, MEDBENCH_DIST, REGISTERED_PACKAGE, PluginInfo,
                                   canonical_package_name, describe_exception, is_interrupt, known_plugins,
                                   plugin_label)

ENTRY_POINT_GROUP = "medbench"
PLUGINS_DIR_ENV = "MEDBENCH_PLUGINS_DIR"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


_manager: pluggy.PluginManager | None = None


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


def _warn_skipped(label: str, exc: BaseException, fix: str) -> None:
    _warn(f"{label} failed to load and was skipped: {describe_exception(exc)} — {fix}")


def installed_medbench_version() -> str:
    from medbench import __version__

    return __version__


def _register(pm: pluggy.PluginManager, plugin: Any, info: PluginInfo) -> None:
    pm.register(plugin, name=info.name)
    callers = pm.get_hookcallers(plugin) or []
    info.hooks = sorted(caller.name for caller in callers if caller.spec is not None)
    known_plugins[info.name] = info
    _warn_unused_functions(plugin, info, [caller.name for caller in callers if caller.spec is None])


def _warn_unused_functions(plugin: Any, info: PluginInfo, unknown: list[str]) -> None:
    """A misspelt hook, or a hook function without @hookimpl, is never called: say so instead of doing nothing."""
    import difflib

    hooks = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "medbench_spec"))
    for name in unknown:
        close = difflib.get_close_matches(name, hooks, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        _warn(f"{info.label()} implements {name!r}, which is no medbench hook, so it is never called — {hint}"
              f"rename it to one of {', '.join(hooks)}")
    for name in hooks:
        function = getattr(plugin, name, None)
        if callable(function) and not hasattr(function, "medbench_impl"):
            _warn(f"{info.label()} defines {name} without @hookimpl, so medbench never calls it — decorate it "
                  "with @medbench.hookimpl")


def _dist_name(dist: Any) -> str:
    try:
        return dist.metadata["Name"] or "unknown"
    except Exception:
        return "unknown"


def _is_medbench(dist: Any) -> bool:
    return dist is not None and canonical_package_name(_dist_name(dist)) == MEDBENCH_DIST


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
        if canonical_package_name(requirement.name) != MEDBENCH_DIST or not requirement.specifier:
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
    unknown = sorted((allow or set()) - {ep.name for ep in entry_points})
    if unknown:  # a typo in the allow-list would otherwise load nothing, without a word
        _warn(f"{ALLOWLIST_ENV} names {', '.join(repr(n)[:40] for n in unknown[:5])}, which no installed plugin is "
              f"called — use names `medbench plugins` lists (unset {ALLOWLIST_ENV} to load every plugin)")
    for ep in entry_points:
        if allow is not None and ep.name not in allow:
            continue
        dist = ep.dist
        info = PluginInfo(name=ep.name, version=dist.version if dist else "unknown",
                          package=_dist_name(dist) if dist else "unknown", source="entry point")
        if pm.has_plugin(ep.name):
            other = known_plugins.get(ep.name)
            if other is None or canonical_package_name(other.package) == canonical_package_name(info.package):
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
            other = known_plugins.get(name)
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
            if plugins_dir and not Path(plugins_dir).is_dir():  # a typo loaded nothing, silently
                _warn(f"{PLUGINS_DIR_ENV} names {plugins_dir!r}, which is not a directory: no plugins were "
                      f"loaded from it — point it at a folder of plugin *.py files, or unset it")
            elif plugins_dir:
                _load_plugins_dir(pm, Path(plugins_dir))
        except BaseException:
            _manager = None
            known_plugins.clear()
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
    known_plugins.pop(name, None)


def reset() -> None:
    """Forget the loaded manager so the next call reloads (tests that change the environment)."""
    global _manager
    _manager = None
    known_plugins.clear()


def list_plugins() -> list[PluginInfo]:
    get_plugin_manager()
    return sorted(known_plugins.values(), key=lambda info: (info.source != "entry point", info.name))


