"""The task registry: YAML files from the ``register_tasks`` hook, loaded through lm-eval's TaskManager.

medbench indexes the YAMLs itself first (without importing any code they reference), so it can name the
plugin behind each task and report a malformed file in one line instead of an lm-eval traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.include_depth import check_include_depth
from medbench.plugin_calls import plugin_label
from medbench.registries import call_register_hook
from medbench.small_inputs import remember_failure
from medbench.task_construction import construction_checked
from medbench.task_documents import check_task_config
from medbench.task_groups import GroupEntry, group_entry, register_tags
from medbench.task_load_errors import damaged_data_file, load_failure
from medbench.task_setting_checks import check_task_settings
from medbench.task_trust import (bound_task_regexes, code_imports, config_with_code, contained_yaml_loading,  # noqa
                                 sandboxed_templates, template_refusal, templates_unrendered)  # F401: re-exported
from medbench.task_yaml import ContainmentError, read_task_yaml

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
class TaskRegistry:
    entries: dict[str, TaskEntry] = field(default_factory=dict)
    groups: dict[str, GroupEntry] = field(default_factory=dict)
    roots: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per malformed YAML
    failed: dict[str, MedbenchError] = field(default_factory=dict)  # file stem -> why that YAML was not indexed
    clashes: dict[str, str] = field(default_factory=dict)  # task name -> warning that another source shadows it
    managers: dict[tuple[str, str], Any] = field(default_factory=dict)  # lm-eval's, per folder and metadata

    def expand(self, names: list[str], _within: tuple[str, ...] = ()) -> list[str]:
        """Task names with groups (medbench's, lm-eval's, lm-eval's tags) replaced by their member tasks, in order,
        without repeats."""
        out: list[str] = []
        for name in names:
            if name not in self.entries and name not in self.groups and name not in self.failed:
                stock = lm_eval_task(name)  # read once: get() below finds it among the entries
                if stock is not None:
                    self.entries[name] = stock
                else:
                    self.groups.update(lm_eval_group(name))
            if name in self.groups and name not in self.entries:
                if name in _within:
                    raise MedbenchError(f"group {name!r} contains itself ({' > '.join([*_within, name])})",
                                        f"remove {name!r} from its own task list ({self.groups[name].path})")
                if self.groups[name].refusal is not None:
                    raise self.groups[name].refusal
                members = self.expand(self.groups[name].members, (*_within, name))
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
        from medbench.lm_eval_tasks import task_index

        stock_names = task_index()
        close = difflib.get_close_matches(name, {*self.entries, *self.groups, *stock_names}, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        extra = f" ({len(self.problems)} task file(s) failed to parse: see `medbench tasks`)" if self.problems else ""
        raise MedbenchError(f"unknown task {name!r}: neither a medbench task nor one of lm-eval's "
                            f"{len(stock_names)} tasks{extra}",
                            f"{hint}run `medbench tasks` to list the {len(self.entries)} medbench tasks")


def _is_task(config: dict[str, Any]) -> bool:
    return "task" in config and isinstance(config["task"], str) and "task_list" not in config


def build_registry() -> TaskRegistry:
    registry = TaskRegistry()

    def register_for(plugin: str):
        def register(path: str | Path) -> None:
            path = Path(path).resolve()
            if not path.exists():
                raise FileNotFoundError(f"task path {path} does not exist")
            registry.roots.append(path)
            try:  # an entry that vanishes mid-walk (/proc under --include-path /) or cannot be listed
                files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
            except OSError as exc:
                raise MedbenchError(f"task folder {path} could not be listed ({exc.strerror or exc})",
                                    "pass --include-path a folder of task YAMLs") from None
            if plugin == USER_TASKS:  # a user's folder: each file is read with its whole chain, lm-eval's too
                check_include_depth(files, path if path.is_dir() else path.parent)
            # untrusted: nothing outside the folder is read (a file's folder: lm-eval indexes its siblings too)
            root = (path if path.is_dir() else path.parent) if contained else None
            for file in files:
                refusal = None
                try:
                    config = read_task_yaml(file, root=root)
                except ContainmentError as exc:
                    if not (exc.config and _is_task(exc.config)):  # a refused group is known by its name
                        registry.problems.append(exc.one_line())
                        remember_failure(registry.failed, file, exc, str((exc.config or {}).get("group") or file.stem))
                        continue
                    config, refusal = exc.config, exc  # listed, with the refusal as its status
                except MedbenchError as exc:
                    registry.problems.append(exc.one_line())
                    remember_failure(registry.failed, file, exc)
                    continue
                group = group_entry(config, file, plugin)
                if group is not None:
                    registry.groups.setdefault(group.name, group)
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
        if not (Path(path).is_dir() or Path(path).is_file()):  # a FIFO or device would be read as one YAML, or block
            what = "is a FIFO, device or socket, not a folder" if Path(path).exists() else "does not exist"
            raise MedbenchError(f"--include-path {path} {what}", "pass a folder of task YAMLs")
        register_for(USER_TASKS)(path)
    register_tags(registry)
    return registry


# --- lm-eval's own tasks, by name -------------------------------------------------------------------------------

LM_EVAL = "lm-eval"  # the plugin name lm-eval's bundled tasks are listed under


def lm_eval_group(name: str) -> dict[str, GroupEntry]:
    """lm-eval's group or tag ``name`` ({name: entry}), or {}."""
    from medbench.lm_eval_tasks import group_members

    found = group_members(name)
    return {name: GroupEntry(name, found[0], LM_EVAL, found[1])} if found else {}


def lm_eval_task(name: str) -> TaskEntry | None:
    """lm-eval's bundled task ``name`` as an entry (trusted: lm-eval's installed package), or None."""
    from medbench.lm_eval_tasks import task_index

    path = task_index().get(name)
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


def refuse_idle_trust(include_paths: Any, trust_task_code: bool, flag: str, folders: str) -> None:
    """Trust extends to --include-path folders only (plugins' and lm-eval's tasks are trusted already): given
    without one, it would change nothing, and the user may think a folder was read."""
    if trust_task_code and not include_paths:
        raise MedbenchError(f"{flag} trusts the task folders given with {folders.split()[0]}, and none is given",
                            f"pass {folders} with it, or leave out {flag}")


def code_trusted(entry: TaskEntry) -> bool:
    """Whether the task's code may be read: a plugin's or lm-eval's task, or any with --trust-task-code."""
    return entry.trusted or bool(_sources["trust_task_code"])


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
    check_task_config(entry, runs_code=entry.trusted or _sources["trust_task_code"])
    check_task_settings(entry)  # generation settings and filters, before a model loads


def load_tasks(names: list[str], registry: TaskRegistry | None = None,
               metadata: dict[str, dict[str, Any]] | None = None, *, mode: str = "loglikelihood",
               fewshot_rationales: bool | str = False, render: bool = True, generation: Any = None) -> dict[str, Any]:
    """Instantiate lm-eval Task objects for ``names`` (groups expanded).

    ``metadata`` overrides per task (e.g. data_files); ``mode`` and ``fewshot_rationales`` pick the scoring
    variant (see medbench.scoring), ``generation`` the generation controls (medbench.generation).
    ``render=False`` builds the tasks without rendering any template (listing).
    """
    from lm_eval.tasks import TaskManager

    from medbench.processed_docs import process_docs_once
    from medbench.scoring import variant_overrides

    registry = registry or build_registry()
    entries = [registry.get(name) for name in registry.expand(names)]
    for entry in entries:
        validate_entry(entry)
    tasks = {}
    for entry in entries:
        task_metadata = dict((metadata or {}).get(entry.name) or {})
        overrides = variant_overrides(entry.name, config_with_code(entry), mode, fewshot_rationales, generation)
        if task_metadata.get("data_files") and "custom_dataset" not in entry.config:
            # A task that reads a dataset itself (lm-eval's own, a plain YAML) takes the user's files instead.
            files = task_metadata.pop("data_files")
            overrides.update(local_dataset_overrides(entry, files))
        # A manager per folder and metadata (lm-eval merges manager-level metadata into the task's own), kept on
        # the registry: building one indexes, and reads, every YAML of the folder.
        key = (str(entry.path.parent), json.dumps(task_metadata, sort_keys=True, default=str))
        if (manager := registry.managers.get(key)) is None:
            manager = registry.managers[key] = TaskManager(include_path=key[0], include_defaults=False,
                                                           metadata=task_metadata or None)
        # lm-eval applies overrides to a registered task when a group references it with them.
        spec = {"group": f"medbench_variant_{entry.name}", "task": [{"task": entry.name, **overrides}]} \
            if overrides else entry.name
        if not code_trusted(entry) and _plainly_read(entry) and (damaged := damaged_data_file(entry)) is not None:
            raise damaged  # read by medbench's bounded reader first: 200,000 columns made `datasets` take minutes
        if not entry.trusted and entry.name not in manager.task_index:
            # lm-eval would take the name for a YAML path and read it: an untrusted task must be one it indexed.
            raise MedbenchError(f"task {entry.name!r} ({entry.path}) was not indexed by lm-eval",
                                f"check that {entry.path.name} loads with `lm_eval --include_path "
                                f"{entry.path.parent}`")
        try:
            with templates_unrendered() if not render else construction_checked(entry), process_docs_once():
                loaded = manager.load([spec])["tasks"]  # process_docs once per split, as datasets' cache does
        except MedbenchError:
            raise
        except Exception as exc:
            raise load_failure(entry, exc) from None
        task = next(iter(loaded.values()))
        bound_task_regexes(task, entry)  # an untrusted task's filter patterns match with a time limit
        if task_metadata.get("data_files") and not isinstance(getattr(task.dataset, "medbench_source", None), dict):
            import warnings

            loader = entry.config.get("custom_dataset")
            warnings.warn(f"task {entry.name!r} was given --data-file, but its loader ({loader}) "
                          f"does not say it read the file; check that its loader takes data_files", stacklevel=2)
        tasks[entry.name] = task
    return tasks


def local_dataset_overrides(entry: TaskEntry, files: Any) -> dict[str, Any]:
    """lm-eval overrides that load a dataset-reading task's splits from the user's files (--data-file)."""
    from medbench.data_file_splits import task_splits, with_scored_split
    from medbench.taskdata import load_local_dataset

    splits, files = task_splits(entry.config), with_scored_split(files, entry.config)  # a bare file: the scored split

    def custom_dataset(**_ignored: Any):
        return load_local_dataset(files, splits, task=entry.name)

    return {"custom_dataset": custom_dataset, "dataset_kwargs": None}


def _plainly_read(entry: TaskEntry) -> bool:
    """Whether `datasets` reads the task's local files as medbench's reader does (no `field`, `sep`, ... options)."""
    kwargs = entry.config.get("dataset_kwargs")
    return not isinstance(kwargs, dict) or set(kwargs) <= {"data_files", "data_dir"}


def eval_split(task: Any) -> str:
    return task.config.test_split or task.config.validation_split


def split_sizes(task: Any) -> dict[str, int]:
    sizes = {}
    for key in ("training_split", "validation_split", "test_split"):
        split = getattr(task.config, key)
        if split and task.dataset is not None and split in task.dataset:
            sizes[split] = len(task.dataset[split])
    return sizes
