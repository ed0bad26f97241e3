"""Registries filled by the ``register_*`` hooks: each hook called through pluggy one plugin at a time, so every
registered thing knows its plugin, and one clash policy (:func:`claim`) for every kind of thing."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

from medbench.errors import MedbenchError
from medbench.plugin_calls import (PluginError, PluginHookError, describe_exception, is_interrupt,
                                   plugin_info_or_registered, plugin_label)
from medbench.plugins import PluginLoadWarning, get_plugin_manager

_SKIPPED: ContextVar[list[MedbenchError] | None] = ContextVar("register hooks that raised", default=None)


@contextmanager
def skipping_failed_hooks() -> Iterator[list[MedbenchError]]:
    """Within it, a plugin whose ``register_*`` hook raises is left out (its one-line error is appended to the
    list yielded) and the plugins after it are still called: a listing (`medbench plugins`) shows every plugin
    that works. Everywhere else such a hook stops the command."""
    skipped: list[MedbenchError] = []
    token = _SKIPPED.set(skipped)
    try:
        yield skipped
    finally:
        _SKIPPED.reset(token)


def _failed(error: MedbenchError, cause: BaseException | None) -> None:
    skipped = _SKIPPED.get()
    if skipped is None:
        if cause is None:
            raise error
        raise error from cause
    skipped.append(error)


def call_register_hook(hook_name: str, register_for: Callable[[str], Callable[..., Any]],
                       after: Callable[[str], None] | None = None) -> None:
    """Call a ``register_*`` hook through pluggy, one plugin at a time in load order, naming the plugin if its
    hook raises.

    One plugin at a time (pluggy's subset hook caller, so wrappers and keyword calling stay pluggy's) because each
    plugin gets its own callback: ``register_for(plugin_name)`` returns it, so registries know which plugin added
    what. Load order puts medbench's own plugins first, so where a registry keeps the first of two same-named
    things, a built-in wins (with a warning naming both: :func:`claim`). ``tryfirst`` / ``trylast``
    implementations go first / last. ``after(plugin_name)``, if given, runs once that plugin's hook has returned.
    """
    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name, None)
    if caller is None:  # no plugin implements it and no spec declares it
        return
    argument = caller.spec.argnames[0] if caller.spec and caller.spec.argnames else "register"
    every = caller.get_hookimpls()
    impls = [impl for impl in every if not (impl.hookwrapper or impl.wrapper)]
    # Wrappers wrap every plugin's call, as they would wrap pluggy's one call of the hook.
    wrapping = {id(impl.plugin) for impl in every if impl.hookwrapper or impl.wrapper}
    # pluggy lists them oldest first (calling them newest first), trylast ones before and tryfirst ones after.
    ordered = ([impl for impl in impls if impl.tryfirst]
               + [impl for impl in impls if not impl.tryfirst and not impl.trylast]
               + [impl for impl in impls if impl.trylast])
    plugins = pm.get_plugins()
    for impl in ordered:
        only_this = pm.subset_hook_caller(hook_name, remove_plugins=[p for p in plugins if p is not impl.plugin
                                                                     and id(p) not in wrapping])
        try:
            only_this(**{argument: register_for(impl.plugin_name)})
        except (PluginHookError, PluginError) as exc:  # another plugin's code, called from this one: already named
            _failed(exc, None)
        except MedbenchError as exc:  # the plugin's own one-line message: keep it, name the plugin
            info = plugin_info_or_registered(impl.plugin_name)
            _failed(PluginHookError(f"{info.label()} failed in {hook_name}: {exc.problem}", exc.fix or info.fix()),
                    exc)
        except BaseException as exc:
            if is_interrupt(exc):
                raise
            info = plugin_info_or_registered(impl.plugin_name)
            _failed(PluginHookError(f"{info.label()} raised in {hook_name}: {describe_exception(exc)}",
                                    info.fix()), exc)
        if after is not None:  # also after a skipped plugin: what it registered before raising is its own
            after(impl.plugin_name)


def claim(owners: dict[str, str], kind: str, name: str, plugin: str) -> bool:
    """The one clash policy of every registry: the first plugin to register ``name`` keeps it (built-ins load
    first); a later one is refused with a one-line warning naming both plugins. True if ``plugin`` may register."""
    if name in owners:
        warnings.warn(PluginLoadWarning(
            f"{kind} {name!r} from {plugin_label(plugin)} is ignored: {plugin_label(owners[name])} registered "
            f"that name first; rename one of them"), stacklevel=3)
        return False
    owners[name] = plugin
    return True


def _check_shape(obj: Any, kind: str) -> None:
    """What every command reads of a registered object, checked when it is registered, so a wrong type is the
    plugin's one-line error there, not a bare TypeError later in an unrelated command."""
    for attribute in ("name", "description"):
        value = getattr(obj, attribute, "")
        if not isinstance(value, str) or (attribute == "name" and not value.strip()):
            raise TypeError(f"the {kind}'s {attribute} is {value!r}, not {'a name' if attribute == 'name' else 'text'}")
        value.encode("utf-8")  # a lone surrogate cannot be printed or written: UnicodeEncodeError here
    priority = getattr(obj, "priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, (int, float)):
        raise TypeError(f"the {kind}'s priority is {priority!r}, not a number")


def named_registry(hook_name: str, kind: str, required: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    """The objects a ``register(obj)`` hook adds, by ``obj.name``, each tagged with ``.plugin``.

    The first one registered under a name wins (built-ins load first); a later one is skipped with a one-line
    warning naming both plugins, so a clash is never silent.
    """
    found: dict[str, Any] = {}
    owners: dict[str, str] = {}

    def register_for(plugin: str):
        def register(obj: Any) -> None:
            missing = [attribute for attribute in required if not hasattr(obj, attribute)]
            if missing:
                raise TypeError(f"the {kind} registered by {plugin_label(plugin)} has no {', '.join(missing)}")
            _check_shape(obj, kind)
            if found.get(obj.name) is obj:  # the same object registered again: nothing to warn about
                return
            if claim(owners, kind, obj.name, plugin):
                obj.plugin = plugin
                found[obj.name] = obj

        return register

    call_register_hook(hook_name, register_for)
    return found


def unknown_name(kind: str, name: str, known: Any, fix: str) -> MedbenchError:
    """The one-line error for a name that no plugin registered, with the closest known names."""
    import difflib

    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=2)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return MedbenchError(f"unknown {kind} {name!r} (known: {', '.join(known) or 'none installed'})", hint + fix)
