"""The task registry: YAML files from the ``register_tasks`` hook, loaded through lm-eval's TaskManager.

medbench indexes the YAMLs itself first (without importing any code they reference), so it can name the
plugin behind each task and report a malformed file in one line instead of an lm-eval traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
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
            return self.entries[name]
        if name in self.failed:  # the user asked for a task whose own YAML is broken: say what is wrong with it
            raise self.failed[name]
        close = difflib.get_close_matches(name, list(self.entries) + list(self.groups), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        extra = f" ({len(self.problems)} task file(s) failed to parse: see `medbench tasks`)" if self.problems else ""
        raise MedbenchError(f"unknown task {name!r}{extra}",
                            f"{hint}run `medbench tasks` to list the {len(self.entries)} registered tasks")


class _TagTolerantLoader(yaml.SafeLoader):
    """Reads task YAMLs for indexing: ``!function`` stays a string, so no code is imported."""


_TagTolerantLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")

_TASK_FIELDS = {f.name for f in dataclasses.fields(__import__("lm_eval.api.task", fromlist=["TaskConfig"]).TaskConfig)}
_LM_EVAL_EXTRA_KEYS = {"include", "group", "task_list", "class", "aggregate_metric_list", "group_alias"}


def read_task_yaml(path: Path) -> dict[str, Any]:
    """Parse one task YAML (with its ``include:`` chain) and check its fields; raises MedbenchError."""
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_TagTolerantLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MedbenchError(f"task file {path} is not valid YAML{where}",
                            "fix the YAML syntax (check indentation and quoting)") from None
    except OSError as exc:
        raise MedbenchError(f"task file {path} cannot be read ({exc.strerror})", "check the file's permissions") from None
    if not isinstance(config, dict):
        raise MedbenchError(f"task file {path} is not a mapping", "a task YAML is a mapping with at least a `task:` key")
    if "include" in config:
        included = path.parent / str(config["include"])
        config = {**read_task_yaml(included), **{k: v for k, v in config.items() if k != "include"}}
    unknown = sorted(set(config) - _TASK_FIELDS - _LM_EVAL_EXTRA_KEYS)
    if unknown:
        raise MedbenchError(f"task file {path} has unknown key(s) {', '.join(unknown)}",
                            "lm-eval rejects unknown top-level keys: move medbench's own keys under `metadata:`")
    return config


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
            for file in files:
                try:
                    config = read_task_yaml(file)
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
                    registry.problems.append(
                        f"task {name!r} from {plugin_label(plugin)} ({file}) clashes with the one from "
                        f"{plugin_label(other.plugin)} ({other.path}); the first one registered is kept — "
                        f"rename the task (its `task:` key) in the plugin's YAML")
                    continue
                registry.entries[name] = TaskEntry(name, file, plugin, config, trusted=trusted)

        return register

    trusted = True  # folders registered by plugins (built-in or installed) are trusted to import their code
    call_register_hook("register_tasks", register_for)
    trusted = False
    for path in _sources["include_paths"]:
        if not Path(path).exists():
            raise MedbenchError(f"--include-path {path} does not exist", "pass a folder of task YAMLs")
        register_for(USER_TASKS)(path)
    return registry


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
    try:
        yield
    finally:
        _sources.clear()
        _sources.update(saved)


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
               fewshot_rationales: bool = False) -> dict[str, Any]:
    """Instantiate lm-eval Task objects for ``names`` (groups expanded).

    ``metadata`` overrides per task (e.g. data_files); ``mode`` and ``fewshot_rationales`` pick the scoring
    variant (see medbench.scoring).
    """
    from lm_eval.tasks import TaskManager

    from medbench.scoring import variant_overrides

    registry = registry or build_registry()
    entries = [registry.get(name) for name in registry.expand(names)]
    for entry in entries:
        validate_entry(entry)
    tasks = {}
    for entry in entries:
        # One manager per task: lm-eval merges manager-level metadata into the task's own metadata.
        manager = TaskManager(include_path=str(entry.path.parent), include_defaults=False,
                              metadata=(metadata or {}).get(entry.name) or None)
        overrides = variant_overrides(entry.name, entry.config, mode, fewshot_rationales)
        # lm-eval applies overrides to a registered task when a group references it with them.
        spec = {"group": f"medbench_variant_{entry.name}", "task": [{"task": entry.name, **overrides}]} \
            if overrides else entry.name
        try:
            loaded = manager.load([spec])["tasks"]
        except MedbenchError:
            raise
        except Exception as exc:
            raise MedbenchError(f"task {entry.name!r} failed to load: {type(exc).__name__}: {exc}",
                                f"check its YAML ({entry.path}) and data files") from None
        task = next(iter(loaded.values()))
        tasks[entry.name] = task
    return tasks


def eval_split(task: Any) -> str:
    return task.config.test_split or task.config.validation_split


def split_sizes(task: Any) -> dict[str, int]:
    sizes = {}
    for key in ("training_split", "validation_split", "test_split"):
        split = getattr(task.config, key)
        if split and task.dataset is not None and split in task.dataset:
            sizes[split] = len(task.dataset[split])
    return sizes
