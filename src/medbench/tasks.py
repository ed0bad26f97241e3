"""The task registry: YAML files from the ``register_tasks`` hook, loaded through lm-eval's TaskManager.

medbench indexes the YAMLs itself first (without importing any code they reference), so it can name the
plugin behind each task and report a malformed file in one line instead of an lm-eval traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medbench.errors import MedbenchError
from medbench.plugins import call_register_hook, plugin_label

log = logging.getLogger(__name__)


@dataclass
class TaskEntry:
    name: str
    path: Path
    plugin: str
    config: dict[str, Any]
    trusted: bool = True  # False: from a user --include-path folder, whose `!function` code needs --trust-task-code
    refusal: MedbenchError | None = None  # why this untrusted task may not load (a path leading out of its folder)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.config.get("metadata") or {}

    @property
    def metrics(self) -> list[str]:
        return [m["metric"] for m in self.config.get("metric_list") or [] if isinstance(m, dict) and "metric" in m]

    @property
    def primary_metric(self) -> str:
        return self.metadata.get("primary_metric") or (self.metrics[0] if self.metrics else "acc")


@dataclass
class GroupEntry:
    """An lm-eval group YAML (``group: triage`` + ``task: [triage_personnel, triage_urgency]``)."""

    name: str
    path: Path
    plugin: str
    members: list[str]


@dataclass
class TaskRegistry:
    entries: dict[str, TaskEntry] = field(default_factory=dict)
    groups: dict[str, GroupEntry] = field(default_factory=dict)
    roots: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per malformed YAML
    failed: dict[str, MedbenchError] = field(default_factory=dict)  # file stem -> why that YAML was not indexed
    clashes: dict[str, str] = field(default_factory=dict)  # task name -> warning that another source shadows it

    def expand(self, names: list[str]) -> list[str]:
        """Task names with groups replaced by their member tasks, in order, without repeats."""
        out: list[str] = []
        for name in names:
            if name in self.groups and name not in self.entries:
                members = self.expand(self.groups[name].members)
            else:
                members = [self.get(name).name]
            out += [member for member in members if member not in out]
        return out

    def get(self, name: str) -> TaskEntry:
        if name in self.entries:
            if name in self.clashes:  # said once per registry, when the task is actually used
                import warnings

                warnings.warn(self.clashes.pop(name), stacklevel=2)
            return self.entries[name]
        if name in self.failed:  # the user asked for a task whose own YAML is broken: say what is wrong with it
            raise self.failed[name]
        stock = lm_eval_task(name)  # lm-eval's own tasks by name, indexed only when medbench has no such task
        if stock is not None:
            self.entries[name] = stock
            return stock
        stock_names = lm_eval_task_index()
        close = difflib.get_close_matches(name, {*self.entries, *self.groups, *stock_names}, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        extra = f" ({len(self.problems)} task file(s) failed to parse: see `medbench tasks`)" if self.problems else ""
        raise MedbenchError(f"unknown task {name!r}: neither a medbench task nor one of lm-eval's "
                            f"{len(stock_names)} tasks{extra}",
                            f"{hint}run `medbench tasks` to list the {len(self.entries)} medbench tasks")


class _TagTolerantLoader(yaml.SafeLoader):
    """Reads task YAMLs for indexing: ``!function`` stays a string, so no code is imported."""


_TagTolerantLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")

_TASK_FIELDS = {f.name for f in dataclasses.fields(__import__("lm_eval.api.task", fromlist=["TaskConfig"]).TaskConfig)}
_LM_EVAL_EXTRA_KEYS = {"include", "group", "task_list", "class", "aggregate_metric_list", "group_alias"}


# A task YAML is small: bound what aliases can expand to, so `&a [*a, *a, ...]` chains cannot hang medbench.
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


def _check_expansion(config: Any, path: Path) -> None:
    """Walk the parsed YAML as if aliases were copied out; refuse it past MAX_YAML_NODES or MAX_YAML_DEPTH."""
    stack = [(config, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
            what = (f"more than {MAX_YAML_NODES} values" if seen > MAX_YAML_NODES
                    else f"nesting deeper than {MAX_YAML_DEPTH}")
            raise MedbenchError(f"task file {path} expands to {what} (YAML aliases nested too far, or a recursive "
                                f"alias)",
                                "write the task YAML out plainly, without nested `&anchor`/`*alias` chains")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)


def read_task_yaml(path: Path, _chain: tuple[Path, ...] = (), *, root: Path | None = None) -> dict[str, Any]:
    """Parse one task YAML (with its ``include:`` chain) and check its fields; raises MedbenchError.

    ``root``: the untrusted folder the YAML comes from. Every file the YAML reads or names (includes, data files,
    dataset folders) must then resolve inside it, checked before it is read (ContainmentError otherwise)."""
    path = Path(path)
    root = _real(root) if root is not None else None
    if root is not None and not _chain:
        real = _real(path)
        if not _inside(real, root):
            raise ContainmentError(f"task file {path} is a link to {real}, outside the --include-path folder {root}",
                                   f"copy the file into {root}, or pass --trust-task-code if you trust {root}")
    if path.resolve() in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path.resolve()))
        raise MedbenchError(f"task file {_chain[0]} includes itself through a cycle ({cycle})",
                            "remove one of the `include:` keys so the includes form a chain, not a loop")
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_TagTolerantLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MedbenchError(f"task file {path} is not valid YAML{where}",
                            "fix the YAML syntax (check indentation and quoting)") from None
    except UnicodeDecodeError as exc:
        raise MedbenchError(f"task file {path} is not UTF-8 text (byte {exc.start})",
                            "save the YAML as UTF-8") from None
    except OSError as exc:
        raise MedbenchError(f"task file {path} cannot be read ({exc.strerror})", "check the file's permissions") from None
    except RecursionError:
        raise MedbenchError(f"task file {path} nests too deeply to read",
                            "write the task YAML out plainly, without deep nesting") from None
    _check_expansion(config, path)
    if not isinstance(config, dict):
        raise MedbenchError(f"task file {path} is not a mapping", "a task YAML is a mapping with at least a `task:` key")
    try:
        if "include" in config:
            config = _with_includes(path, config, _chain, root)
        unknown = sorted(set(config) - _TASK_FIELDS - _LM_EVAL_EXTRA_KEYS)
        if unknown:
            raise MedbenchError(f"task file {path} has unknown key(s) {', '.join(unknown)}",
                                "lm-eval rejects unknown top-level keys: move medbench's own keys under `metadata:`")
        if root is not None and not _chain and {"task", "group", "class"} & set(config):
            check_contained(config, path, root)  # a partial file's paths count once a task includes it
    except ContainmentError as exc:
        if not _chain and exc.config is None:  # the task this file defines, so listings can show it as refused
            exc.config = config
        raise
    return config


def _with_includes(path: Path, config: dict[str, Any], chain: tuple[Path, ...], root: Path | None) -> dict[str, Any]:
    """``config`` merged over its ``include:`` file(s), as lm-eval does: relative to the YAML's real folder, a list
    merged in order, the including file's own keys last."""
    raw = config["include"]
    names = raw if isinstance(raw, list) else [raw]
    if not names or not all(isinstance(name, str) and name for name in names):
        raise MedbenchError(f"task file {path} has an `include:` that is not a file name or a list of file names",
                            "write `include: other.yaml` (relative to the YAML)")
    files = [path.resolve().parent / name for name in names]
    if root is not None:  # every include is checked before any of them is read
        for name, file in zip(names, files):
            _require_inside(path, "include", name, file, root, "the included YAML")
    merged: dict[str, Any] = {}
    for name, file in zip(names, files):
        if not file.is_file():
            raise MedbenchError(f"task file {path} includes {name!r}, which is not a file next to it",
                                "fix the `include:` path (relative to the YAML)")
        included = read_task_yaml(file, (*chain, path.resolve()), root=root)
        included.pop("task_list", None)  # an included file's task_list is its own (lm-eval drops it too)
        merged.update(included)
    return {**merged, **{k: v for k, v in config.items() if k != "include"}}


# --- containment: an untrusted folder's YAML reads nothing outside that folder -------------------------------------

class ContainmentError(MedbenchError):
    """A path in an untrusted task YAML that leads outside its folder. ``config``: the task it belongs to."""

    def __init__(self, problem: str, fix: str = "", config: dict[str, Any] | None = None):
        super().__init__(problem, fix)
        self.config = config


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _inside(real: Path, root: Path) -> bool:
    return real == root or root in real.parents


def _require_inside(file: Path, key: str, raw: Any, target: Path, root: Path, what: str, note: str = "") -> None:
    real = _real(target)
    if _inside(real, Path(os.path.realpath(root))):
        return
    shown = f" (resolves to {real})" if str(real) != str(raw) else ""
    raise ContainmentError(f"task file {file} names {key} {str(raw)!r}{shown}, outside the --include-path folder "
                           f"{root}{note}; medbench reads nothing outside a task folder it does not trust",
                           f"move {what} into {root} and name it there, or pass --trust-task-code if you trust {root}")


_GLOB = re.compile(r"[*?\[]")
_REMOTE_SCHEMES = {"http", "https", "hf", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"}
_ARCHIVE_SCHEMES = {"zip", "tar", "gzip", "bz2", "xz", "zstd", "lz4"}


def _local_parts(raw: str) -> list[str]:
    """The local paths a datasets/fsspec URL reads: plain paths and file://; remote URLs none; a chained URL
    (``zip://inner::/local/archive.zip``) its local container."""
    parts = raw.split("::")
    local = []
    for i, part in enumerate(parts):
        scheme, sep, rest = part.partition("://")
        if not sep:
            local.append(part)
        elif scheme.lower() in ("file", "local"):
            local.append(rest)
        elif scheme.lower() in _ARCHIVE_SCHEMES and i < len(parts) - 1:
            continue  # a path inside the archive named next
        elif scheme.lower() not in _REMOTE_SCHEMES:
            local.append(part)  # an unknown scheme: judged as a path, so it is refused unless it is inside
    return local


def _linked_out(directory: Path, root: Path) -> Path | None:
    """The first entry under ``directory`` (links followed, inside ``root`` only) whose real path is outside."""
    seen: set[Path] = set()
    stack = [_real(directory)]
    while stack:
        current = stack.pop()
        if current in seen or not current.is_dir():
            continue
        seen.add(current)
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            real = _real(entry.path)
            if not _inside(real, root):
                return Path(entry.path)
            if entry.is_dir():
                stack.append(real)
    return None


def _require_data_inside(file: Path, key: str, raw: Any, base: Path, root: Path) -> None:
    """A data path (or glob) as datasets reads it: relative to ``base``; every match must be inside ``root``."""
    import glob

    for local in _local_parts(str(raw)):
        target = base / os.path.expanduser(local)
        note = " (relative data paths are read from the working directory)" if not Path(
            os.path.expanduser(local)).is_absolute() and base == Path.cwd() else ""
        if not _GLOB.search(local):
            _require_inside(file, key, raw, target, root, "that file", note)
            if target.is_dir():
                leak = _linked_out(target, root)
                if leak is not None:
                    _require_inside(file, key, leak, leak, root, "that file", f" (a link inside {target})")
            continue
        prefix = Path(*[part for part in target.parts[:next(
            (i for i, part in enumerate(target.parts) if _GLOB.search(part)), len(target.parts))]])
        _require_inside(file, key, raw, prefix, root, "those files", note)
        _require_inside(file, key, raw, Path(os.path.normpath(target)), root, "those files", note)
        for match in glob.glob(str(target), recursive=True, include_hidden=True):
            _require_inside(file, key, match, Path(match), root, "that file", f" (matched by {str(raw)!r})")


def _packaged_builders() -> set[str]:
    try:
        from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES
    except ImportError:  # pragma: no cover - datasets is a dependency of lm-eval
        return set(_LOCAL_BUILDERS)
    return set(_PACKAGED_DATASETS_MODULES)


def _names_local_dataset(value: str) -> bool:
    """Whether datasets would read ``dataset_path`` from disk rather than the hub."""
    if value.startswith(("hf://", "buckets/")) or value in _packaged_builders():
        return False
    expanded = Path(os.path.expanduser(value))
    return (expanded.is_absolute() or value.startswith((".", "~")) or value.count("/") > 1
            or (Path.cwd() / expanded).exists())


def _data_file_entries(data_files: Any, key: str) -> list[tuple[str, Any]]:
    """(key, path) for each path in a datasets ``data_files`` value: a path, a list, a mapping of split to either,
    or a list of {split, path} mappings."""
    if isinstance(data_files, (str, Path)):
        return [(key, data_files)]
    if isinstance(data_files, dict):
        if "path" in data_files and "split" in data_files:
            return _data_file_entries(data_files["path"], key)
        return [item for split, value in data_files.items() for item in _data_file_entries(value, f"{key}.{split}")]
    if isinstance(data_files, (list, tuple)):
        return [item for value in data_files for item in _data_file_entries(value, key)]
    return []


def check_contained(config: dict[str, Any], file: Path, root: Path, where: str = "") -> None:
    """Every path ``config`` names, as datasets / lm-eval / medbench's loaders would read it, must be inside
    ``root``; raises ContainmentError naming the file, the key and the path. Group YAMLs' inline tasks too."""
    root = _real(root)
    cwd = Path.cwd()
    kwargs = config.get("dataset_kwargs") if isinstance(config.get("dataset_kwargs"), dict) else {}
    dataset = config.get("dataset_path")
    base = cwd  # datasets reads a packaged builder's relative data_files from the working directory
    local_dataset = isinstance(dataset, str) and _names_local_dataset(dataset)
    if local_dataset:
        _require_data_inside(file, f"{where}dataset_path", dataset, cwd, root)
        base = cwd / os.path.expanduser(dataset)
    for path_key in ("data_dir", "cache_dir"):
        value = kwargs.get(path_key)
        if isinstance(value, (str, Path)):
            _require_data_inside(file, f"{where}dataset_kwargs.{path_key}", value, base if path_key == "data_dir"
                                 else cwd, root)
    if isinstance(kwargs.get("data_dir"), (str, Path)):
        base = base / os.path.expanduser(str(kwargs["data_dir"]))
    data_files = kwargs.get("data_files")
    for key, value in _data_file_entries(data_files, f"{where}dataset_kwargs.data_files"):
        _require_data_inside(file, key, value, base, root)
    if isinstance(dataset, str) and not local_dataset and data_files is None and "custom_dataset" not in config \
            and dataset in _packaged_builders():
        # No data_files: datasets reads every data file it finds in data_dir, else in the working directory.
        _require_data_inside(file, f"{where}dataset_path {dataset!r} with no data_files, so datasets reads the folder",
                             ".", base, root)
    metadata = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    for key, value in _data_file_entries(metadata.get("data_files"), f"{where}metadata.data_files"):
        _require_data_inside(file, key, value, _real(file).parent, root)  # loaders resolve it against the YAML
    _check_metric_scripts(config, file, root, where)
    members = config.get("task")
    if isinstance(members, list):
        for i, member in enumerate(members):
            if isinstance(member, dict):
                check_contained(member, file, root, f"{where}task[{i}].")


def _check_metric_scripts(config: dict[str, Any], file: Path, root: Path, where: str) -> None:
    """A metric lm-eval does not know is loaded with ``evaluate.load(name)``, which runs a local script as code."""
    metrics = config.get("metric_list")
    if not isinstance(metrics, list):
        return
    from lm_eval.api.registry import get_metric  # noqa: F401  (fills the registry on first use)
    from lm_eval.api.registry import metric_registry

    if not len(metric_registry):
        import lm_eval.api.metrics  # noqa: F401
    for i, metric in enumerate(metrics):
        name = metric.get("metric") if isinstance(metric, dict) else None
        if not isinstance(name, str) or (name in metric_registry and not metric.get("hf_evaluate")):
            continue
        expanded = Path(os.path.expanduser(name))
        if (expanded.is_absolute() or name.startswith((".", "~")) or name.endswith(".py")
                or (Path.cwd() / expanded).exists()):
            raise ContainmentError(f"task file {file} names {where}metric_list[{i}].metric {name!r}, a local file "
                                   f"that `evaluate` would run as code, from a folder medbench does not trust",
                                   f"use a metric lm-eval registers, or pass --trust-task-code if you trust {root}")


def _is_task(config: dict[str, Any]) -> bool:
    return "task" in config and isinstance(config["task"], str) and "task_list" not in config


def _group_members(config: dict[str, Any]) -> list[str] | None:
    members = config.get("task")
    if not isinstance(config.get("group"), str) or not isinstance(members, list):
        return None
    return [m if isinstance(m, str) else m.get("task") for m in members if isinstance(m, (str, dict))]


def build_registry() -> TaskRegistry:
    registry = TaskRegistry()

    def register_for(plugin: str):
        def register(path: str | Path) -> None:
            path = Path(path).resolve()
            if not path.exists():
                raise FileNotFoundError(f"task path {path} does not exist")
            registry.roots.append(path)
            files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
            root = path if contained else None  # untrusted: nothing outside the folder is read
            for file in files:
                refusal = None
                try:
                    config = read_task_yaml(file, root=root)
                except ContainmentError as exc:
                    if not (exc.config and _is_task(exc.config)):
                        registry.problems.append(exc.one_line())
                        registry.failed.setdefault(file.stem, exc)
                        continue
                    config, refusal = exc.config, exc  # listed, with the refusal as its status
                except MedbenchError as exc:
                    registry.problems.append(exc.one_line())
                    registry.failed.setdefault(file.stem, exc)
                    continue
                members = _group_members(config)
                if members is not None:
                    registry.groups.setdefault(config["group"], GroupEntry(config["group"], file, plugin, members))
                    continue
                if not _is_task(config):
                    continue
                name = config["task"]
                if name in registry.entries and registry.entries[name].path != file:
                    other = registry.entries[name]
                    if plugin == USER_TASKS and other.plugin != USER_TASKS:
                        # The user's explicit --include-path wins over a plugin's task of the same name.
                        message = (f"task {name!r} from --include-path ({file}) replaces the one from "
                                   f"{plugin_label(other.plugin)} ({other.path}); rename its `task:` key to keep both")
                        registry.problems.append(message)
                        registry.clashes[name] = message
                    else:
                        message = (f"task {name!r} from {plugin_label(plugin)} ({file}) clashes with the one from "
                                   f"{plugin_label(other.plugin)} ({other.path}); the first one registered is kept — "
                                   f"rename the task (its `task:` key) in the later YAML")
                        registry.problems.append(message)
                        registry.clashes[name] = message
                        continue
                registry.entries[name] = TaskEntry(name, file, plugin, config, trusted=trusted,
                                                   refusal=refusal)

        return register

    # Folders registered by plugins (built-in or installed) are trusted; --include-path folders are not: their
    # YAMLs import code only with --trust-task-code, and without it name no path outside their folder.
    trusted, contained = True, False
    call_register_hook("register_tasks", register_for)
    trusted, contained = False, not _sources["trust_task_code"]
    for path in _sources["include_paths"]:
        if not Path(path).exists():
            raise MedbenchError(f"--include-path {path} does not exist", "pass a folder of task YAMLs")
        register_for(USER_TASKS)(path)
    return registry


# --- lm-eval's own tasks, by name -------------------------------------------------------------------------------

LM_EVAL = "lm-eval"  # the plugin name lm-eval's bundled tasks are listed under
_TASK_KEY = re.compile(r"""^["']?task["']?\s*:\s*["']?([A-Za-z0-9_.\-]+)["']?\s*$""", re.MULTILINE)
_lm_eval_index: dict[str, Path] | None = None


def _lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def lm_eval_task_index() -> dict[str, Path]:
    """lm-eval's ~14k bundled task YAMLs by task name; read once per process, and only when a name is not
    medbench's (a plain text scan: ~1 s, against ~20 s for lm-eval's own TaskManager index)."""
    global _lm_eval_index
    if _lm_eval_index is None:
        index: dict[str, Path] = {}
        for file in sorted(_lm_eval_tasks_dir().rglob("*.yaml")):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for match in _TASK_KEY.finditer(text):
                index.setdefault(match.group(1), file)
        _lm_eval_index = index
    return _lm_eval_index


def lm_eval_task(name: str) -> TaskEntry | None:
    """lm-eval's bundled task ``name`` as an entry (trusted: lm-eval's installed package), or None."""
    path = lm_eval_task_index().get(name)
    if path is None:
        return None
    try:
        config = read_task_yaml(path)
    except MedbenchError:
        return None
    if not _is_task(config) or config["task"] != name:
        return None
    return TaskEntry(name, path, LM_EVAL, config, trusted=True)


# --- user task folders (--include-path) and the code their YAMLs may import -------------------------------------

USER_TASKS = "--include-path"  # the plugin name user task folders are listed under
_sources: dict[str, Any] = {"include_paths": [], "trust_task_code": False}


@contextlib.contextmanager
def task_sources(include_paths: list[str | Path] | None = None, trust_task_code: bool = False):
    """Within the block, registries also index ``include_paths`` (user task folders, like lm-eval's
    --include_path); their YAMLs may import code with ``!function`` only when ``trust_task_code``."""
    saved = dict(_sources)
    _sources.update(include_paths=[Path(p).expanduser().resolve() for p in include_paths or []],
                    trust_task_code=trust_task_code)
    untrusted = bool(include_paths) and not trust_task_code
    try:
        with contextlib.ExitStack() as stack:
            if untrusted:
                # Templates of untrusted YAMLs are Jinja, which can reach Python objects: render them in a sandbox.
                stack.enter_context(sandboxed_templates())
                # lm-eval re-reads the folders' YAMLs (and their includes) itself: vet each file first.
                stack.enter_context(contained_yaml_loading(_sources["include_paths"]))
            yield
    finally:
        _sources.clear()
        _sources.update(saved)


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
    real_roots = [_real(root) for root in roots]

    def load_yaml(path, *args, **kwargs):
        given = Path(os.path.abspath(os.path.expanduser(str(path))))
        real = _real(given)
        root = next((r for r in real_roots if _inside(given, r) or _inside(real, r)), None)
        if root is not None:
            read_task_yaml(given, root=root)
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


@contextlib.contextmanager
def sandboxed_templates():
    """Within the block lm-eval renders ``doc_to_*`` templates with an immutable Jinja sandbox: field access,
    filters and string methods work; ``__globals__``, ``__class__``, mutating methods and loading other
    templates (files) raise. lm-eval looks its environment up at each render, so swapping it is enough."""
    import lm_eval.utils as lm_utils
    from jinja2 import FunctionLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    sandbox = ImmutableSandboxedEnvironment(loader=FunctionLoader(_refuse_template_loading),
                                            undefined=StrictUndefined, keep_trailing_newline=True)
    sandbox.filters["regex_replace"] = lm_utils.regex_replace
    saved = lm_utils.env
    lm_utils.env = sandbox
    try:
        yield
    finally:
        lm_utils.env = saved


def sandbox_active() -> bool:
    from jinja2.sandbox import SandboxedEnvironment
    import lm_eval.utils as lm_utils

    return isinstance(lm_utils.env, SandboxedEnvironment)


def template_refusal(entry: "TaskEntry", exc: BaseException) -> MedbenchError | None:
    """The one-line error for a template the sandbox refused, or None when ``exc`` is something else."""
    from jinja2 import TemplateError

    if not isinstance(exc, TemplateError) or not sandbox_active():
        return None
    detail = " ".join(str(exc).split()) or type(exc).__name__
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
    """The ``!function`` references in a parsed task config (kept as strings by the indexing loader)."""
    if isinstance(config, dict):
        return [ref for value in config.values() for ref in code_imports(value)]
    if isinstance(config, list):
        return [ref for value in config for ref in code_imports(value)]
    if isinstance(config, str) and config.startswith("!function "):
        return [config[len("!function "):]]
    return []


def check_code_trust(entry: TaskEntry) -> None:
    """A task from a user folder that imports code is refused unless the user passed --trust-task-code."""
    imports = code_imports(entry.config)
    if entry.trusted or not imports or _sources["trust_task_code"]:
        return
    raise MedbenchError(
        f"task {entry.name!r} ({entry.path}) imports code (!function {imports[0]}) from a folder medbench does not "
        f"trust", f"pass --trust-task-code if you trust the code in {entry.path.parent}, or install the task as a "
        f"plugin")


def _missing_fields(entry: TaskEntry) -> list[str]:
    config = entry.config
    required = ["doc_to_text", "doc_to_target"]
    missing = [key for key in required if key not in config]
    if "custom_dataset" not in config and "dataset_path" not in config:
        missing.append("dataset_path (or custom_dataset)")
    if not any(config.get(split) for split in ("test_split", "validation_split")):
        missing.append("test_split or validation_split")
    if config.get("output_type") == "multiple_choice" and "doc_to_choice" not in config:
        missing.append("doc_to_choice")
    return missing


def validate_entry(entry: TaskEntry) -> None:
    check_code_trust(entry)
    if entry.refusal is not None:
        raise entry.refusal
    missing = _missing_fields(entry)
    if missing:
        raise MedbenchError(f"task {entry.name!r} ({entry.path}) is missing {', '.join(missing)}",
                            "add the missing field(s) to the YAML (see tasks/medqa/medqa.yaml for a complete one)")
    wanted = entry.metadata.get("medbench_metrics") or []
    if wanted:  # a misspelt metric fails here, before any model is loaded or scored
        from medbench.metrics import metric_registry

        known = metric_registry()
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise MedbenchError(f"task {entry.name!r} ({entry.path}) names unknown metric(s) {', '.join(unknown)} in "
                                f"metadata.medbench_metrics", f"use registered metrics ({', '.join(sorted(known))}), "
                                "or install the plugin that provides it")


def load_tasks(names: list[str], registry: TaskRegistry | None = None,
               metadata: dict[str, dict[str, Any]] | None = None, *, mode: str = "loglikelihood",
               fewshot_rationales: bool = False, render: bool = True, generation: Any = None) -> dict[str, Any]:
    """Instantiate lm-eval Task objects for ``names`` (groups expanded).

    ``metadata`` overrides per task (e.g. data_files); ``mode`` and ``fewshot_rationales`` pick the scoring
    variant (see medbench.scoring), ``generation`` the generation controls (medbench.generation).
    ``render=False`` builds the tasks without rendering any template (listing).
    """
    from lm_eval.tasks import TaskManager

    from medbench.scoring import variant_overrides

    registry = registry or build_registry()
    entries = [registry.get(name) for name in registry.expand(names)]
    for entry in entries:
        validate_entry(entry)
    tasks = {}
    for entry in entries:
        task_metadata = dict((metadata or {}).get(entry.name) or {})
        overrides = variant_overrides(entry.name, entry.config, mode, fewshot_rationales, generation)
        if task_metadata.get("data_files") and "custom_dataset" not in entry.config:
            # A task that reads a dataset itself (lm-eval's own, a plain YAML) takes the user's files instead.
            files = task_metadata.pop("data_files")
            overrides.update(local_dataset_overrides(entry, files))
        # One manager per task: lm-eval merges manager-level metadata into the task's own metadata.
        manager = TaskManager(include_path=str(entry.path.parent), include_defaults=False,
                              metadata=task_metadata or None)
        # lm-eval applies overrides to a registered task when a group references it with them.
        spec = {"group": f"medbench_variant_{entry.name}", "task": [{"task": entry.name, **overrides}]} \
            if overrides else entry.name
        if not entry.trusted and entry.name not in manager.task_index:
            # lm-eval would take the name for a YAML path and read it: an untrusted task must be one it indexed.
            raise MedbenchError(f"task {entry.name!r} ({entry.path}) was not indexed by lm-eval",
                                f"check that {entry.path.name} loads with `lm_eval --include_path "
                                f"{entry.path.parent}`")
        try:
            with templates_unrendered() if not render else contextlib.nullcontext():
                loaded = manager.load([spec])["tasks"]
        except MedbenchError:
            raise
        except Exception as exc:
            raise load_failure(entry, exc) from None
        task = next(iter(loaded.values()))
        if task_metadata.get("data_files") and not isinstance(getattr(task.dataset, "medbench_source", None), dict):
            import warnings

            loader = entry.config.get("custom_dataset")
            warnings.warn(f"task {entry.name!r} was given --data-file, but its loader ({loader}) "
                          f"does not say it read the file; check that its loader takes data_files", stacklevel=2)
        tasks[entry.name] = task
    return tasks


def load_failure(entry: TaskEntry, exc: BaseException) -> MedbenchError:
    """One line for a task that lm-eval could not build: a refused template, a dataset missing offline, else
    the exception itself."""
    refused = template_refusal(entry, exc)
    if refused is not None:
        return refused
    dataset = entry.config.get("dataset_path")
    hub_dataset = bool(dataset) and str(dataset) not in _LOCAL_BUILDERS and not Path(str(dataset)).exists()
    if hub_dataset and "custom_dataset" not in entry.config and _offline_miss(exc):
        name = f"{dataset} ({entry.config['dataset_name']})" if entry.config.get("dataset_name") else dataset
        return MedbenchError(f"task {entry.name!r} needs the dataset {name}, which is not in the local Hugging Face "
                             f"cache and medbench is offline", f"pass --online to download it once, or point "
                             f"HF_DATASETS_CACHE at a cache that holds it, or give a local copy with "
                             f"--data-file {entry.name}:{entry.config.get('test_split') or 'test'}=PATH")
    detail = " ".join(str(exc).split())[:300]
    return MedbenchError(f"task {entry.name!r} failed to load: {type(exc).__name__}: {detail}",
                         f"check its YAML ({entry.path}) and data files")


_LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "imagefolder", "audiofolder"}


def _offline_miss(exc: BaseException) -> bool:
    from medbench.models import hub_online

    if hub_online():
        return False
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in ("offline", "connection", "couldn't reach", "not found", "doesn't exist",
                                         "does not exist", "hub", "cannot find"))


def local_dataset_overrides(entry: TaskEntry, files: Any) -> dict[str, Any]:
    """lm-eval overrides that load a dataset-reading task's splits from the user's files (--data-file)."""
    from medbench.taskdata import load_local_dataset

    splits = [entry.config.get(key) for key in ("training_split", "validation_split", "test_split", "fewshot_split")]
    splits = [split for split in dict.fromkeys(splits) if split]

    def custom_dataset(**_ignored: Any):
        return load_local_dataset(files, splits, task=entry.name)

    return {"custom_dataset": custom_dataset, "dataset_kwargs": None}


def task_config_hash(entry: TaskEntry) -> str:
    """Hash of the task as it will run: the YAML after includes (templates, few-shot settings, metrics,
    metadata) plus the code files its ``!function`` references import. A change to any of them is a new config."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(entry.config, sort_keys=True, default=str).encode())
    for ref in sorted(set(code_imports(entry.config))):
        module = ref.rsplit(".", 1)[0].replace(".", "/") + ".py"
        file = entry.path.parent / module
        digest.update(f"\0{module}\0".encode())
        if not entry.trusted and not _inside(_real(file), _real(entry.path.parent)):
            continue  # a reference that leads out of an untrusted folder is never read
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()


def data_source(entry: TaskEntry, task: Any) -> dict[str, Any]:
    """Where the task's data came from: ``kind`` bundled / file / hub / lm-eval, ``name``, a ``sha256`` or
    ``revision``, and a ``description``."""
    dataset = getattr(task, "dataset", None)
    known = getattr(dataset, "medbench_source", None)  # set by medbench.taskdata loaders
    if isinstance(known, dict):
        source = dict(known)
        if source.get("kind") == "bundled" and entry.metadata.get("data_description"):
            source["description"] = str(entry.metadata["data_description"])
        return source
    config = entry.config
    path = config.get("dataset_path")
    name = f"{path}/{config['dataset_name']}" if path and config.get("dataset_name") else str(path or entry.path)
    revision = (config.get("dataset_kwargs") or {}).get("revision")
    if entry.plugin == LM_EVAL:
        return {"kind": "lm-eval", "name": name, "revision": revision,
                "description": f"lm-eval's own task {entry.name} ({path})"}
    data_files = (config.get("dataset_kwargs") or {}).get("data_files")
    if path in ("json", "csv", "parquet", "text", "arrow") and data_files:
        return {"kind": "file", "name": str(data_files), "sha256": None,
                "description": f"local files named in {entry.path.name}"}
    return {"kind": "hub", "name": name, "revision": revision, "description": f"hub dataset {name}"}


def eval_split(task: Any) -> str:
    return task.config.test_split or task.config.validation_split


def split_sizes(task: Any) -> dict[str, int]:
    sizes = {}
    for key in ("training_split", "validation_split", "test_split"):
        split = getattr(task.config, key)
        if split and task.dataset is not None and split in task.dataset:
            sizes[split] = len(task.dataset[split])
    return sizes
