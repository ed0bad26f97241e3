"""What an untrusted task folder may not do while lm-eval builds its tasks: read YAML outside the folder (every
file lm-eval reads is vetted first), render templates outside a sandbox (Jinja reaches Python objects), or import
the code its YAMLs name without --trust-task-code."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medbench.console import short_repr
from medbench.errors import MedbenchError
from medbench.task_yaml import is_inside, read_task_yaml, real_path
from medbench.template_limits import MAX_RENDERED_CHARS

if TYPE_CHECKING:
    from medbench.tasks import TaskEntry


_LM_EVAL_YAML_READERS = ("lm_eval.tasks._yaml_loader", "lm_eval.tasks._index", "lm_eval.tasks._factory",
                         "lm_eval.tasks.manager")


@contextlib.contextmanager
def contained_yaml_loading(roots: list[Path]):
    """Within the block lm-eval's YAML loader reads a file under an untrusted ``roots`` folder only after
    medbench's own reader (safe, containment-checked) accepted it, so neither its folder index nor an
    ``include:`` it follows opens anything outside. A refused file raises; lm-eval's index skips it."""
    import importlib

    modules = [importlib.import_module(name) for name in _LM_EVAL_YAML_READERS]
    original = modules[0].load_yaml
    # A single-file include: lm-eval indexes (and reads) its whole folder, so the folder is what is vetted.
    real_roots = [real_path(root if Path(root).is_dir() else Path(root).parent) for root in roots]

    # Files vetted in this block, by (path, mtime, size): lm-eval reads each file once per include above it, and
    # vetting reads the file's whole chain, so unremembered a folder of chained includes costs O(n^3) parses.
    vetted: set[tuple[str, Path, int, int]] = set()

    def load_yaml(path, *args, **kwargs):
        given = Path(os.path.abspath(os.path.expanduser(str(path))))
        real = real_path(given)
        root = next((r for r in real_roots if is_inside(given, r) or is_inside(real, r)), None)
        if root is not None:
            try:
                info = os.stat(real)
                key = (str(given), root, info.st_mtime_ns, info.st_size)
            except OSError:
                key = None  # the reader says why it cannot be read
            if key is None or key not in vetted:
                read_task_yaml(given, root=root)
                if key is not None:
                    vetted.add(key)
        return original(path, *args, **kwargs)

    saved = [module.load_yaml for module in modules]
    for module in modules:
        module.load_yaml = load_yaml
    try:
        yield
    finally:
        for module, previous in zip(modules, saved):
            module.load_yaml = previous


def _refuse_template_loading(name: str) -> None:
    from jinja2 import TemplateNotFound

    raise TemplateNotFound(name)  # {% include %} / {% import %} / {% extends %} never read a file


# What one render of an untrusted template may cost: a prompt is a few KB made in microseconds, so these only
# stop templates built to hang or exhaust medbench (nested ranges, 'a' * 10**8, a backtracking regex); the size
# limits are checked before each operation runs (medbench.template_limits).
MAX_RENDER_SECONDS = 5.0
MAX_REGEX_SECONDS = 1.0
# Memory one render may add: each operation is bounded (a million characters), but a loop of bounded operations
# kept in a list is not (100,000 strings of 1 MB reached 3.5 GB inside the 5 s); sampled every 50 ms.
MAX_RENDER_BYTES = 512 << 20
_SAMPLE_SECONDS = 0.05


def _regex_replace(string, pattern, repl, count: int = 0):
    """lm-eval's regex_replace filter, with a time limit (a backtracking pattern can run for hours) and a size
    limit (``q|regex_replace('', 'x' * 999999)`` inserts the replacement between every two characters)."""
    import regex
    from jinja2.sandbox import SecurityError

    made = 0

    def expand(match):
        nonlocal made
        piece = match.expand(repl) if isinstance(repl, str) else repl
        made += len(piece)
        if made > MAX_RENDERED_CHARS:
            raise SecurityError(f"regex_replace would make more than {MAX_RENDERED_CHARS} characters")
        return piece

    try:
        return regex.sub(pattern, expand, string, count=count, timeout=MAX_REGEX_SECONDS)
    except TimeoutError:
        raise SecurityError(f"regex_replace ran past {MAX_REGEX_SECONDS:g} s") from None


def bound_task_regexes(task: Any, entry: "TaskEntry") -> None:
    """An untrusted task's regex filters (``regex``, ``multi_choice_regex`` and their subclasses) and its metrics'
    ``regexes_to_ignore`` match with a time limit of MAX_REGEX_SECONDS per call: a backtracking pattern could run
    for hours on one response. A timeout is a MedbenchError naming the task and the filter."""
    from functools import partial

    from lm_eval.filters.extraction import RegexFilter

    if entry.trusted or not sandbox_active():  # a plugin's task, or --trust-task-code
        return
    fix = f"simplify the pattern, or pass --trust-task-code if you trust {entry.path.parent}"
    for ensemble in getattr(task, "_filters", None) or []:
        bounded_re = _BoundedRe(f"task {entry.name!r} ({entry.path}) filter {ensemble.name!r}", fix)
        steps = []
        for step in ensemble.filters:
            cls = getattr(step, "func", step)
            if isinstance(cls, type) and issubclass(cls, RegexFilter):
                step = partial(_bounded_filter_class(cls, bounded_re), *getattr(step, "args", ()),
                               **(getattr(step, "keywords", None) or {}))
            steps.append(step)
        ensemble.filters = steps
    for metric, options in (getattr(task, "_metric_fn_kwargs", None) or {}).items():
        if isinstance(options, dict) and options.get("regexes_to_ignore") is not None:
            bounded_re = _BoundedRe(f"task {entry.name!r} ({entry.path}) metric {metric!r}", fix)
            task._metric_fn_list[metric] = _ignoring(task._metric_fn_list[metric], bounded_re)


def _bounded_filter_class(cls: type, bounded_re: "_BoundedRe") -> type:
    """``cls`` with its pattern compiled by ``bounded_re`` and its own ``apply`` (lm-eval's code, unchanged) seeing
    ``bounded_re`` as ``re``, so the patterns it compiles or substitutes at apply time are bounded too."""
    import types

    apply = next(klass.__dict__["apply"] for klass in cls.__mro__ if "apply" in klass.__dict__)
    rebound = types.FunctionType(apply.__code__, {**apply.__globals__, "re": bounded_re}, apply.__name__,
                                 apply.__defaults__, apply.__closure__)

    def __init__(self, *args, **kwargs):
        cls.__init__(self, *args, **kwargs)
        self.regex = bounded_re.compile(self.regex)

    return type(cls.__name__, (cls,), {"__init__": __init__, "apply": rebound})


def _ignoring(metric: Any, bounded_re: "_BoundedRe") -> Any:
    """``metric`` (exact_match) with its ``regexes_to_ignore`` removed from the texts by ``bounded_re`` first."""
    def bounded(*args, regexes_to_ignore=None, **kwargs):
        for key in ("predictions", "references"):
            if key in kwargs and regexes_to_ignore:
                texts = list(kwargs[key])
                for pattern in regexes_to_ignore:
                    texts = [bounded_re.sub(pattern, "", text) for text in texts]
                kwargs[key] = texts
        return metric(*args, **kwargs)

    return bounded


class _BoundedRe:
    """What lm-eval's filters use of ``re``; matching runs on the ``regex`` module with a timeout."""

    def __init__(self, label: str, fix: str):
        self.label, self.fix = label, fix

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)  # flags, escape

    def compile(self, pattern: Any, flags: int = 0) -> "_TimedPattern":
        return pattern if isinstance(pattern, _TimedPattern) else _TimedPattern(pattern, flags, self)

    def sub(self, pattern: Any, repl: Any, string: str, count: int = 0, flags: int = 0) -> str:
        return self.compile(pattern, flags).sub(repl, string, count)

    def findall(self, pattern: Any, string: str, flags: int = 0) -> list:
        return self.compile(pattern, flags).findall(string)

    def search(self, pattern: Any, string: str, flags: int = 0) -> Any:
        return self.compile(pattern, flags).search(string)

    def match(self, pattern: Any, string: str, flags: int = 0) -> Any:
        return self.compile(pattern, flags).match(string)

    def split(self, pattern: Any, string: str, maxsplit: int = 0, flags: int = 0) -> list:
        return self.compile(pattern, flags).split(string, maxsplit)


class _TimedPattern:
    def __init__(self, pattern: Any, flags: int, owner: _BoundedRe):
        import regex

        if isinstance(pattern, re.Pattern):
            pattern, flags = pattern.pattern, pattern.flags
        self.pattern, self.owner = pattern, owner
        names = ("ASCII", "IGNORECASE", "LOCALE", "MULTILINE", "DOTALL", "VERBOSE")  # re's and regex's values differ
        try:
            self.compiled = regex.compile(pattern, sum(getattr(regex, n) for n in names if flags & getattr(re, n)))
        except regex.error as exc:
            raise MedbenchError(f"{owner.label}: its regex {short_repr(pattern, 80)} does not compile ({exc})",
                                owner.fix) from None

    def _run(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.compiled, method)(*args, timeout=MAX_REGEX_SECONDS)
        except TimeoutError:
            raise MedbenchError(f"{self.owner.label}: its regex {short_repr(self.pattern, 80)} ran past "
                                f"{MAX_REGEX_SECONDS:g} s on one response (it backtracks)", self.owner.fix) from None

    def findall(self, string: str) -> list:
        return self._run("findall", string)

    def search(self, string: str) -> Any:
        return self._run("search", string)

    def match(self, string: str) -> Any:
        return self._run("match", string)

    def split(self, string: str, maxsplit: int = 0) -> list:
        return self._run("split", string, maxsplit)

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        return self._run("sub", repl, string, count)


def _resident_bytes() -> int | None:
    """This process's resident memory now (Linux's /proc; None elsewhere, where only time is limited)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def time_limit(seconds: float, memory_bytes: int | None = MAX_RENDER_BYTES):
    """SecurityError once the block has run ``seconds``, or has grown this process's resident memory by more than
    ``memory_bytes`` (sampled every 50 ms by SIGALRM; main thread on POSIX only, elsewhere no limit)."""
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    from jinja2.sandbox import SecurityError

    import time

    baseline = _resident_bytes() if memory_bytes is not None else None
    started = time.monotonic()

    def expire(signum, frame):
        if time.monotonic() - started >= seconds:
            raise SecurityError(f"rendering took more than {seconds:g} s")
        now = _resident_bytes() if baseline is not None else None
        if now is not None and now - baseline > memory_bytes:
            raise SecurityError(f"rendering took more than {memory_bytes >> 20} MiB of memory")

    previous = signal.signal(signal.SIGALRM, expire)
    sample = min(seconds, _SAMPLE_SECONDS) if baseline is not None else seconds
    # A timer already running (pytest-timeout's, or an enclosing render's sampling) is given back afterwards.
    outer, outer_interval = signal.setitimer(signal.ITIMER_REAL, sample, sample)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # give the outer timer back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001), outer_interval)


@contextlib.contextmanager
def sandboxed_templates():
    """Within the block lm-eval renders ``doc_to_*`` templates with an immutable Jinja sandbox: field access,
    filters and string methods work; ``__globals__``, ``__class__``, mutating methods and loading other
    templates (files) raise, and so does a render past MAX_RENDER_SECONDS or MAX_RENDERED_CHARS. lm-eval looks
    its environment and ``apply_template`` up at each render, so swapping them is enough."""
    import lm_eval.utils as lm_utils
    from jinja2 import FunctionLoader, StrictUndefined
    from jinja2.sandbox import SecurityError

    from medbench.template_limits import BoundedSandbox

    sandbox = BoundedSandbox(loader=FunctionLoader(_refuse_template_loading), undefined=StrictUndefined,
                             keep_trailing_newline=True)
    sandbox.filters["regex_replace"] = _regex_replace

    def apply_template(template: str, doc: dict) -> str:
        with time_limit(MAX_RENDER_SECONDS):
            rendered = sandbox.from_string(template).render(**doc)
        if len(rendered) > MAX_RENDERED_CHARS:
            raise SecurityError(f"the template renders {len(rendered)} characters (more than {MAX_RENDERED_CHARS})")
        return rendered

    saved = lm_utils.env, lm_utils.apply_template
    lm_utils.env, lm_utils.apply_template = sandbox, apply_template
    try:
        yield
    finally:
        lm_utils.env, lm_utils.apply_template = saved


def sandbox_active() -> bool:
    from jinja2.sandbox import SandboxedEnvironment
    import lm_eval.utils as lm_utils

    return isinstance(lm_utils.env, SandboxedEnvironment)


def template_refusal(entry: "TaskEntry", exc: BaseException) -> MedbenchError | None:
    """The one-line error for a template the sandbox refused, or None when ``exc`` is something else."""
    from jinja2 import TemplateError

    if not isinstance(exc, TemplateError) or not sandbox_active():
        return None
    from jinja2 import UndefinedError

    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    # A document without a field the template names ("'q' is undefined") is the data's fault; an attribute the
    # sandbox hides ("has no attribute '__globals__'") is the template's.
    if isinstance(exc, UndefinedError) and re.fullmatch(r"'[^']+' is undefined", str(exc)):
        return MedbenchError(f"task {entry.name!r} ({entry.path}): a document lacks a field its template reads "
                             f"({detail})", "give every data row the fields the YAML's templates name")
    return MedbenchError(f"task {entry.name!r} ({entry.path}) has a template that does more than read document "
                         f"fields ({type(exc).__name__}: {detail}); templates from folders medbench does not trust "
                         f"render in a sandbox", f"use plain fields and filters in its templates, or pass "
                         f"--trust-task-code if you trust {entry.path.parent}")


@contextlib.contextmanager
def templates_unrendered():
    """Within the block lm-eval builds tasks without rendering any template (stand-ins instead), so listing
    tasks never evaluates a YAML's Jinja."""
    from unittest import mock

    from lm_eval.api.task import ConfigurableTask

    with mock.patch.object(ConfigurableTask, "doc_to_text", lambda self, doc, doc_to_text=None: ""), \
            mock.patch.object(ConfigurableTask, "doc_to_target", lambda self, doc, doc_to_target=None: 0), \
            mock.patch.object(ConfigurableTask, "doc_to_choice", lambda self, doc, doc_to_choice=None: ["-"]):
        yield


def code_imports(config: Any) -> list[str]:
    """The ``!function`` references in a parsed task config (kept as strings by the indexing loader), keys too.
    (Untrusted files are also searched tag by tag before parsing: medbench.yaml_tags.code_tags.)"""
    if isinstance(config, dict):
        return [ref for pair in config.items() for value in pair for ref in code_imports(value)]
    if isinstance(config, list):
        return [ref for value in config for ref in code_imports(value)]
    if isinstance(config, str) and config.startswith("!function "):
        return [config[len("!function "):]]
    return []


def config_with_code(entry: TaskEntry) -> dict[str, Any]:
    """A trusted task's config with its ``!function`` references imported, as lm-eval reads it: what medbench
    hands back to lm-eval as an override (a filter pipeline, doc_to_choice) must be the function, not its name.
    Any other task's config is returned as read."""
    if not entry.trusted or not code_imports(entry.config):
        return entry.config
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(entry.path)
