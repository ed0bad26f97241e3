"""The plugin manager: built-ins and third-party plugins load the same way, through entry points.

Sources, in order: the ``medbench`` entry-point group (built-ins are listed there too), modules named in
``MEDBENCH_LOAD_PLUGINS`` can restrict which entry points load (a comma-separated allowlist of entry-point
names), and ``*.py`` files in a ``--plugins-dir`` / ``MEDBENCH_PLUGINS_DIR`` directory.
A plugin that fails to import is named in a one-line warning and skipped.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pluggy

from medbench import hookspecs

ENTRY_POINT_GROUP = "medbench"
ALLOWLIST_ENV = "MEDBENCH_LOAD_PLUGINS"
PLUGINS_DIR_ENV = "MEDBENCH_PLUGINS_DIR"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


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


def _warn_skipped(name: str, exc: BaseException) -> None:
    msg = f"plugin {name!r} failed to load and was skipped: {type(exc).__name__}: {exc}"
    warnings.warn(" ".join(msg.split()), PluginLoadWarning, stacklevel=3)


def _register(pm: pluggy.PluginManager, module: Any, info: PluginInfo) -> None:
    pm.register(module, name=info.name)
    info.hooks = sorted(caller.name for caller in pm.get_hookcallers(module) or [])
    _infos[info.name] = info


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allow = _allowlist()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allow is not None and ep.name not in allow:
            continue
        if pm.has_plugin(ep.name):
            continue
        dist = ep.dist
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take medbench down
            _warn_skipped(ep.name, exc)
            continue
        info = PluginInfo(
            name=ep.name,
            version=dist.version if dist else "unknown",
            package=dist.metadata["Name"] if dist else "unknown",
            source="entry point",
        )
        _register(pm, module, info)


def _load_plugins_dir(pm: pluggy.PluginManager, directory: Path) -> None:
    for path in sorted(directory.glob("*.py")):
        name = path.stem
        if pm.has_plugin(name):
            continue
        try:
            spec = importlib.util.spec_from_file_location(f"medbench_dir_plugin_{name}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(f"medbench_dir_plugin_{name}", None)
            _warn_skipped(str(path), exc)
            continue
        _register(pm, module, PluginInfo(name=name, version=getattr(module, "__version__", "unknown"),
                                         package=str(path), source="plugins dir"))


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, loaded on first use."""
    global _manager
    if _manager is None:
        pm = _new_manager()
        _load_entry_points(pm)
        plugins_dir = os.environ.get(PLUGINS_DIR_ENV)
        if plugins_dir:
            _load_plugins_dir(pm, Path(plugins_dir))
        _manager = pm
    return _manager


def load_plugins_dir(directory: str | Path) -> None:
    """Load every ``*.py`` in ``directory`` as a plugin (the CLI's ``--plugins-dir``)."""
    directory = Path(directory)
    if not directory.is_dir():
        from medbench.errors import MedbenchError

        raise MedbenchError(f"plugins directory {directory} does not exist", "pass an existing directory to --plugins-dir")
    _load_plugins_dir(get_plugin_manager(), directory)


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object directly (tests, notebooks). Returns the name to unregister it by."""
    pm = get_plugin_manager()
    name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
    _register(pm, plugin, PluginInfo(name=name, version=getattr(plugin, "__version__", "unknown"),
                                     package="(registered in process)", source="registered"))
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


def call_register_hook(hook_name: str, register_for: Callable[[str], Callable[..., Any]]) -> None:
    """Call a ``register_*`` hook on every plugin in load order, naming the plugin if its hook raises.

    ``register_for(plugin_name)`` returns the callback handed to that plugin, so registries know
    which plugin added what.
    """
    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy keeps them newest first
        try:
            impl.function(register_for(impl.plugin_name))
        except Exception as exc:
            from medbench.errors import MedbenchError

            raise MedbenchError(
                f"plugin {impl.plugin_name!r} raised in {hook_name}: {type(exc).__name__}: {exc}",
                f"fix or uninstall that plugin, or leave it out with {ALLOWLIST_ENV}",
            ) from exc
