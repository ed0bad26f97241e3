"""Reading task YAML as lm-eval reads it (includes, its !function tags as data), with limits on size and nesting,
and, for untrusted folders, containment: a YAML names no file, dataset, metric script or include outside its folder.
Nothing here imports code a YAML names."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import yaml

from medbench.errors import MedbenchError
from medbench.records import read_regular_text
from medbench.small_inputs import MAX_CONFIG_BYTES, size_problem, too_big
from medbench.yaml_tags import code_tags


class _TagTolerantLoader(yaml.SafeLoader):
    """Reads task YAMLs for indexing: ``!function`` stays a string, so no code is imported."""


_TagTolerantLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")

_TASK_FIELDS = {f.name for f in dataclasses.fields(__import__("lm_eval.api.task", fromlist=["TaskConfig"]).TaskConfig)}
_LM_EVAL_EXTRA_KEYS = {"include", "group", "task_list", "class", "aggregate_metric_list", "group_alias"}


# A task YAML is small: bound what aliases can expand to, so `&a [*a, *a, ...]` chains cannot hang medbench.
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


def _check_expansion(config: Any, path: Path) -> None:
    check_expansion(config, f"task file {path}")


def check_expansion(config: Any, what: str) -> None:
    """Walk parsed YAML (a task file, a recipe, trainer options) as if aliases were copied out; refuse it past
    MAX_YAML_NODES or MAX_YAML_DEPTH (a billion-laughs chain or a recursive alias would hang or crash later)."""
    stack = [(config, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
            size = (f"more than {MAX_YAML_NODES} values" if seen > MAX_YAML_NODES
                    else f"nesting deeper than {MAX_YAML_DEPTH}")
            raise MedbenchError(f"{what} expands to {size} (YAML aliases nested too far, or a recursive alias)",
                                "write the YAML out plainly, without nested `&anchor`/`*alias` chains")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)


def read_task_yaml(path: Path, _chain: tuple[Path, ...] = (), *, root: Path | None = None) -> dict[str, Any]:
    """Parse one task YAML (with its ``include:`` chain) and check its fields; raises MedbenchError.

    ``root``: the untrusted folder the YAML comes from. Every file the YAML reads or names (includes, data files,
    dataset folders) must then resolve inside it, checked before it is read (ContainmentError otherwise)."""
    path = Path(path)
    root = real_path(root) if root is not None else None
    if root is not None and not _chain:
        real = real_path(path)
        if not is_inside(real, root):
            raise ContainmentError(f"task file {path} is a link to {real}, outside the --include-path folder {root}",
                                   f"copy the file into {root}, or pass --trust-task-code if you trust {root}")
    if path.resolve() in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path.resolve()))
        raise MedbenchError(f"task file {_chain[0]} includes itself through a cycle ({cycle})",
                            "remove one of the `include:` keys so the includes form a chain, not a loop")
    tags: list[tuple[str, str, int]] = []
    try:
        text = read_regular_text(path, limit=MAX_CONFIG_BYTES)
        tags = code_tags(text) if root is not None else []
        config = yaml.load(text, Loader=_TagTolerantLoader)
    except yaml.YAMLError as exc:
        if tags:  # the code it names, even where the rest does not load
            raise _code_refusal(path, tags, root) from None
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MedbenchError(f"task file {path} is not valid YAML{where}",
                            "fix the YAML syntax (check indentation and quoting)") from None
    except UnicodeDecodeError as exc:
        raise MedbenchError(f"task file {path} is not UTF-8 text (byte {exc.start})",
                            "save the YAML as UTF-8") from None
    except OSError as exc:
        if too_big(exc):
            raise size_problem(f"task file {path}", "a task YAML is a few KB: put its data in a data file") from None
        raise MedbenchError(f"task file {path} cannot be read ({exc.strerror})", "check the file's permissions") from None
    except RecursionError:
        raise MedbenchError(f"task file {path} nests too deeply to read",
                            "write the task YAML out plainly, without deep nesting") from None
    _check_expansion(config, path)
    if not isinstance(config, dict):
        raise MedbenchError(f"task file {path} is not a mapping", "a task YAML is a mapping with at least a `task:` key")
    try:
        if tags:  # before includes: the code this file names, wherever in it
            raise _code_refusal(path, tags, root)
        if "include" in config:
            config = _with_includes(path, config, _chain, root)
        unknown = sorted(set(config) - _TASK_FIELDS - _LM_EVAL_EXTRA_KEYS)
        if unknown:
            shown = ", ".join(key if len(key) <= 60 else key[:57] + "..." for key in map(str, unknown[:5])) + \
                (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise MedbenchError(f"task file {path} has unknown key(s) {shown}",
                                "lm-eval rejects unknown top-level keys: move medbench's own keys under `metadata:`")
        if root is not None and not _chain and {"task", "group", "class"} & set(config):
            check_contained(config, path, root)  # a partial file's paths count once a task includes it
        if not _chain:
            check_field_types(config, path)
    except ContainmentError as exc:
        if not _chain and exc.config is None:  # the task this file defines, so listings can show it as refused
            exc.config = config
        raise
    return config


def _code_refusal(path: Path, tags: list[tuple[str, str, int]], root: Path | None) -> MedbenchError:
    python = [tag for tag in tags if tag[0] != "!function"]
    if python:
        tag = python[0][0].replace("tag:yaml.org,2002:", "!!")
        return UntrustedCodeError(f"task file {path} has the YAML tag {tag} (line {python[0][2]}), which makes "
                                  "a YAML loader run Python", "remove the tag: task YAMLs hold plain values")
    return UntrustedCodeError(f"task file {path} imports code (!function {tags[0][1]}, line {tags[0][2]}) from a "
                              "folder medbench does not trust", f"pass --trust-task-code if you trust the code in "
                              f"{root}, or install the task as a plugin")


_STRING_METADATA = ("primary_metric", "rationale_field", "category_field", "difficulty_field", "judge_rubric",
                    "data_description", "source", "hub", "cluster_field")
_LIST_METADATA = ("medbench_metrics", "judges")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_field_types(config: dict[str, Any], path: Path) -> None:
    """The keys medbench reads, of the type it reads them as: a wrong one is one line here, not a crash (or a
    list of one-letter names) after the model has scored."""
    def wrong(key: str, value: Any, should: str) -> MedbenchError:
        return MedbenchError(f"task file {path}: {key} is {_short(value)}, not {should}", f"write {key} as {should}")

    task = config.get("task")
    if task is not None and not isinstance(task, (str, list)):
        raise wrong("task", task, "a task name")
    shots = config.get("num_fewshot")
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 0):
        raise wrong("num_fewshot", shots, "a whole number 0 or more")
    metadata = config.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise wrong("metadata", metadata, "a mapping (key: value lines)")
    for key in _STRING_METADATA:
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            raise wrong(f"metadata.{key}", metadata[key], "a string")
    for key in _LIST_METADATA:
        value = metadata.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
            raise wrong(f"metadata.{key}", value, "a list of names, e.g. [macro_f1]")
    ceiling = metadata.get("baseline_ceiling")
    if ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, (int, float))
                                or not 0 < ceiling <= 1):
        raise wrong("metadata.baseline_ceiling", ceiling, "a number in (0, 1]")


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


class UntrustedCodeError(ContainmentError):
    """An untrusted task YAML that names code: a ``!function`` or ``!!python/`` tag on any node."""


def real_path(path: Path | str) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def is_inside(real: Path, root: Path) -> bool:
    return real == root or root in real.parents


def _require_inside(file: Path, key: str, raw: Any, target: Path, root: Path, what: str, note: str = "") -> None:
    real = real_path(target)
    if is_inside(real, Path(os.path.realpath(root))):
        return
    shown = f" (resolves to {real})" if str(real) != str(raw) else ""
    raise ContainmentError(f"task file {file} names {key} {str(raw)!r}{shown}, outside the --include-path folder "
                           f"{root}{note}; medbench reads nothing outside a task folder it does not trust",
                           f"move {what} into {root} and name it there, or pass --trust-task-code if you trust {root}")


LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "imagefolder", "audiofolder"}
_GLOB = re.compile(r"[*?\[]")
_REMOTE_SCHEMES = {"http", "https", "hf", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"}
_ARCHIVE_SCHEMES = {"zip", "tar", "gzip", "bz2", "xz", "zstd", "lz4"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # two letters or more: fsspec's protocol prefix


def _local_parts(raw: str) -> list[str]:
    """The local paths a datasets/fsspec URL reads: plain paths and file://; remote URLs none; a chained URL
    (``zip://inner::/local/archive.zip``) its local container."""
    parts = raw.split("::")
    local = []
    for i, part in enumerate(parts):
        scheme, sep, rest = part.partition("://")
        if not sep and _SCHEME.match(part):  # file:/x and local:/x: datasets and fsspec read /x, not a relative path
            scheme, sep, rest = part.partition(":")
            local += [part, rest] if scheme.lower() not in _REMOTE_SCHEMES else []  # either reading must be inside
            continue
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
    stack = [real_path(directory)]
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
            real = real_path(entry.path)
            if not is_inside(real, root):
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
        return set(LOCAL_BUILDERS)
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
    root = real_path(root)
    cwd = Path.cwd()
    kwargs = config.get("dataset_kwargs") if isinstance(config.get("dataset_kwargs"), dict) else {}
    dataset = config.get("dataset_path")
    base = cwd  # datasets reads a packaged builder's relative data_files from the working directory
    local_dataset = isinstance(dataset, str) and _names_local_dataset(dataset)
    if local_dataset:
        _require_data_inside(file, f"{where}dataset_path", dataset, cwd, root)
        base = cwd / os.path.expanduser(dataset)
        from medbench.task_datasets import check_dataset_folder  # what datasets reads from the folder by itself

        check_dataset_folder(file, f"{where}dataset_path", dataset, base, root, kwargs.get("data_dir"))
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
        _require_data_inside(file, key, value, real_path(file).parent, root)  # loaders resolve it against the YAML
    _check_metric_scripts(config, file, root, where)
    from medbench.task_datasets import check_builder_and_generation

    check_builder_and_generation(config, file, root, where, _packaged_builders())
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
    from importlib import import_module

    from lm_eval.api.registry import metric_registry

    if not len(metric_registry):
        import_module("lm_eval.api.metrics")  # registers lm-eval's metrics
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
