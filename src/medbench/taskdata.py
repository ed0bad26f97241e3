"""Loading task data for lm-eval's ``custom_dataset`` hook: a user's local file, the hub, or the bundled sample.

A task's ``utils.py`` (next to its YAML) calls :func:`load_splits` with its own directory, so bundled paths
resolve relative to the YAML whatever the working directory is, under medbench and under stock ``lm_eval``.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable

from medbench.data_reading import MAX_DATA_FILE_BYTES, check_data_file, check_data_size, read_records  # noqa: F401
from medbench.errors import MedbenchError


class RowSource(str):
    """Where a row came from, as text for error messages, plus ``from_hub`` for formats that differ there."""

    from_hub: bool = False

    @classmethod
    def hub(cls, text: str) -> "RowSource":
        source = cls(text)
        source.from_hub = True
        return source


Normalizer = Callable[[dict[str, Any], RowSource], dict[str, Any]]

# The YAML of the task being built (set by medbench.task_construction.construction_checked): data errors point at it,
# since it is what every task has that says which fields it reads (a README is optional).
TASK_YAML: ContextVar[Path | None] = ContextVar("task YAML being built", default=None)


def _format_reference() -> str:
    yaml = TASK_YAML.get()
    if yaml is None:
        return "the task's YAML: the fields its templates read"
    readme = yaml.parent / "README.md"
    return f"{yaml}" + (f" and {readme}" if readme.is_file() else "")


class PerFile:
    """A normaliser chosen for each file (or hub split) after seeing all its rows: for a convention only the
    whole file shows, such as whether its answer indices count from 0 or from 1. Pass it as ``normalize``."""

    def __init__(self, choose: Callable[[list[dict[str, Any]], RowSource], Normalizer]):
        self.choose = choose


# Where a generated task keeps its bundled splits, relative to its YAML (written by write_jsonl_splits).
JSONL_SPLITS = {"train": "data/train.jsonl", "validation": "data/validation.jsonl", "test": "data/test.jsonl"}


def write_jsonl_splits(splits: dict[str, list[dict[str, Any]]], directory: Path, *, ascii_only: bool = True) -> None:
    """A generator's output as ``directory/<split>.jsonl``, one object per line with sorted keys."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        text = "".join(json.dumps(row, sort_keys=True, ensure_ascii=ascii_only) + "\n" for row in rows)
        (directory / f"{split}.jsonl").write_text(text, encoding="utf-8")


def grown_splits(rng: Any, sizes: dict[str, int], first_test_draw: int, id_prefix: str,
                 draw_rows: Callable[[Any, int, set[str]], list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """A generator's splits, drawn in order with ids numbered across them. The test split is drawn in two batches
    (its first ``first_test_draw`` rows, then the rest), each balanced and shuffled by ``draw_rows`` on its own, so
    a test split grown later keeps the rows it had. ``draw_rows(rng, size, seen)`` adds each new text to ``seen``."""
    seen: set[str] = set()
    splits: dict[str, list[dict[str, Any]]] = {}
    counter = 0
    for split, size in sizes.items():
        batches = [first_test_draw, size - first_test_draw] if split == "test" else [size]
        splits[split] = []
        for batch in batches:
            rows = draw_rows(rng, batch, seen)
            for row in rows:
                counter += 1
                row["id"] = f"{id_prefix}-{counter:04d}"
            splits[split] += rows
    return splits


def choice_index(label: Any, choices: list[str], source: str, column: str = "label") -> int:
    """Index of ``label`` among ``choices`` (case and surrounding spaces ignored), else a one-line error."""
    wanted = str(label).strip().lower()
    for i, choice in enumerate(choices):
        if choice.lower() == wanted:
            return i
    raise MedbenchError(f"{source}: {column} {label!r} is not one of the task's choices ({', '.join(choices)})",
                        f"write {column} as exactly one of: {', '.join(choices)}")


def require_columns(row: dict[str, Any], columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in row]
    if missing:
        raise MedbenchError(f"{source} is missing column(s) {', '.join(missing)} (has {', '.join(sorted(row))})",
                            f"convert the file to the task's published format (see {_format_reference()})")
    # A null or blank field would reach the prompt as the text "None" (Jinja's rendering of None) or as nothing.
    # A published hub dataset is scored as published, as lm-eval scores it (the same items, comparable scores).
    empty = [c for c in columns if _is_blank(row[c])] if not getattr(source, "from_hub", False) else []
    if empty:
        raise MedbenchError(f"{source} has no value in column(s) {', '.join(empty)}",
                            "fill them in or drop the row")


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_split_map(data_files: Any, base_dir: Path, default_split: str) -> dict[str, Path]:
    if isinstance(data_files, (str, Path)):
        data_files = {default_split: data_files}
    if not isinstance(data_files, dict):
        raise MedbenchError(f"data_files must be a path or a mapping of split to path, got {data_files!r}",
                            "pass data_files: {test: path/to/file.jsonl}")
    out = {}
    for split, raw in data_files.items():
        path = Path(str(raw)).expanduser()
        out[split] = path if path.is_absolute() else (base_dir / path)
    return out


def load_splits(
    task_dir: str | Path,
    *,
    bundled: dict[str, str],
    normalize: Normalizer | PerFile,
    hub: str | None = None,
    hub_splits: dict[str, str] | None = None,
    source: str = "auto",
    data_files: Any = None,
    default_split: str = "test",
    data_description: str | None = None,
    **_ignored: Any,
):
    """Return a ``datasets.DatasetDict`` of normalised rows.

    ``source``: ``auto`` (the user's ``data_files`` if given, else the hub: downloaded when online, read from
    the local datasets cache when offline; else the bundled sample), or ``local``, ``hub``, ``bundled`` to force
    one. Relative ``data_files`` resolve against the task's directory; medbench's CLI makes paths the user typed
    absolute first. ``data_description``
    (``metadata.data_description`` in the YAML) says in records what the bundled sample is: who wrote it, its
    licence; without it the record says only where it lies.
    """
    from medbench.hub_data import fetch_hub, from_cache, hub_dataset_dict
    from medbench.models import hub_online

    task_dir = Path(task_dir)
    if source not in ("auto", "local", "hub", "bundled"):
        raise MedbenchError(f"unknown data source {source!r}", "use source: auto, local, hub or bundled")
    if source == "auto" and data_files:
        source = "local"
    if source == "auto" and hub and not hub_online():
        cached = from_cache(hub)  # fetched before (what stock lm-eval reads offline): score the real data
        if cached is not None:
            return hub_dataset_dict(cached, hub, hub_splits, normalize, bundled, cached=True)
    if source == "auto" and hub and hub_online():
        try:
            raw = fetch_hub(hub)
        except Exception as exc:  # no network: say so loudly, then score the bundled sample
            import warnings

            warnings.warn(f"hub dataset {hub} is unreachable ({type(exc).__name__}); using the bundled sample "
                          f"in {task_dir} instead (set HF_HUB_OFFLINE=1 to skip the attempt)", stacklevel=2)
            source = "bundled"
        else:  # rows that fail to normalise are an error, never a reason to fall back
            return hub_dataset_dict(raw, hub, hub_splits, normalize, bundled)
    if source == "auto":
        source = "bundled"
    if source == "hub":
        if not hub:
            raise MedbenchError("this task names no hub dataset", "use source: bundled or give data_files")
        return hub_dataset_dict(fetch_hub(hub), hub, hub_splits, normalize, bundled)
    if source == "bundled" and data_files:
        raise MedbenchError("source: bundled ignores data_files", "use source: auto or local with data_files")
    if source == "local" and not data_files:
        raise MedbenchError("source: local needs data_files", "pass data_files: {test: path/to/file.jsonl}")
    if source == "bundled":
        files = _as_split_map(bundled, task_dir, default_split)
        dataset = to_dataset_dict({split: (read_records(path), RowSource(path)) for split, path in files.items()},
                                  normalize, bundled)
        return with_source(dataset, _bundled_source(task_dir, files, hub, data_description))
    files = _as_split_map(data_files, task_dir, default_split)
    unknown = [split for split in files if split not in bundled]
    if unknown:
        raise MedbenchError(f"data file split {unknown[0]!r} is not a split of this task",
                            f"name one of {', '.join(bundled)} (--data-file TASK:SPLIT=PATH)")
    rows = {split: (read_records(path), RowSource(path)) for split, path in files.items()}
    if default_split not in files and default_split in bundled:
        # Only other splits given (e.g. few-shot examples): the evaluation split stays the bundled sample.
        bundled_path = _as_split_map(bundled, task_dir, default_split)[default_split]
        rows[default_split] = (read_records(bundled_path), RowSource(bundled_path))
    dataset = to_dataset_dict(rows, normalize, bundled)
    return with_source(dataset, _file_source(files, default_split, task_dir, bundled, hub))


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_files(files: dict[str, Path]) -> str:
    """One digest over the named splits' files (one file: that file's own sha256)."""
    import hashlib

    if len(files) == 1:
        return sha256_file(next(iter(files.values())))
    digest = hashlib.sha256()
    for split in sorted(files):
        digest.update(f"{split}\0{sha256_file(files[split])}\0".encode())
    return digest.hexdigest()


def with_source(dataset: Any, source: dict[str, Any]) -> Any:
    dataset.medbench_source = source  # read by medbench.task_facts.data_source for the record
    return dataset


def _bundled_source(task_dir: Path, files: dict[str, Path], hub: str | None,
                   description: str | None = None) -> dict[str, Any]:
    if description:
        description = " ".join(str(description).split())  # one line in the record and the table
    elif (task_dir / "generate.py").is_file():
        description = f"generated by {task_dir.name}/generate.py (synthetic, not patient data)"
    else:
        description = f"bundled sample in {task_dir.name}/" + (f" (not {hub})" if hub else "")
    return {"kind": "bundled", "name": f"{task_dir.name} bundled sample", "sha256": _sha256_files(files),
            "description": description}


def _file_source(files: dict[str, Path], default_split: str, task_dir: Path, bundled: dict[str, str],
                 hub: str | None) -> dict[str, Any]:
    name = str(files[default_split]) if list(files) == [default_split] else \
        ", ".join(f"{split}={path}" for split, path in files.items())
    kept = "" if default_split in files else f"; {default_split} split: {task_dir.name} bundled sample"
    return {"kind": "file", "name": name, "sha256": _sha256_files(files), "description": f"your data file{kept}"}


def to_dataset_dict(rows_by_split: dict[str, tuple[list[dict[str, Any]], RowSource]],
                    normalize: Normalizer | PerFile, bundled: dict[str, str]):
    """Normalised rows per split as a DatasetDict; the YAML's other splits present and empty."""
    import datasets

    splits = {}
    for split, (rows, origin) in rows_by_split.items():
        try:  # a per-file convention read from the rows (e.g. where answer indices start)
            fitted = normalize.choose(rows, origin) if isinstance(normalize, PerFile) else normalize
        except ROW_FAULTS as exc:
            raise _row_fault(origin, exc) from None
        normalised = [_normalize_row(fitted, row, _row_source(origin, i)) for i, row in enumerate(rows)]
        normalised = [row for row in normalised if row is not None]
        splits[split] = datasets.Dataset.from_list(normalised)
    # A user's file may hold only the evaluation split; the YAML still names the others.
    template = next(iter(splits.values()))
    for split in bundled:
        if split not in splits:
            splits[split] = template.select([])
    return datasets.DatasetDict(splits)


def _normalize_row(normalize: Normalizer, row: dict[str, Any], source: RowSource) -> dict[str, Any]:
    """A row the task's normaliser cannot read is the row's fault: name the file and row, never the YAML."""
    try:
        normalized = normalize(row, source)
    except ROW_FAULTS as exc:
        raise _row_fault(source, exc, row) from None
    # A normaliser's str(row[key]) turns a list or mapping into its Python text ("['x']"), which would be scored.
    for key, value in row.items():
        if isinstance(value, (list, dict)) and isinstance(normalized.get(key), str) and normalized[key] == str(value):
            raise MedbenchError(f"{source}: column {key} holds a {type(value).__name__} where the task reads text",
                                f"write {key} as a string (see {_format_reference()})")
    return normalized


# What a normaliser raises on a field of the wrong type or value (int(Infinity) is an OverflowError).
ROW_FAULTS = (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError)


def _row_fault(source: RowSource, exc: Exception, row: dict[str, Any] | None = None) -> MedbenchError:
    detail = " ".join(str(exc).split())[:200]
    fields = "; row: " + ", ".join(f"{key}={str(value)[:40]!r}" for key, value in list(row.items())[:8]) \
        if row is not None else ""
    return MedbenchError(f"{source} does not fit the task's data format ({type(exc).__name__}: {detail}{fields})",
                         "fix that row to the task's published format (field types included), see "
                         f"{_format_reference()}")


def load_local_dataset(files: Any, splits: list[str], *, task: str):
    """A dataset-reading task's splits from the user's files (.jsonl/.json/.csv/.parquet, or a folder written by
    ``datasets``' ``save_to_disk``); splits not given are empty. For lm-eval's own tasks and plain YAMLs."""
    import datasets

    if isinstance(files, (str, Path)):
        files = {splits[-1] if splits else "test": files}
    unknown = [split for split in files if split not in splits]
    if unknown:
        raise MedbenchError(f"--data-file {task}:{unknown[0]} names a split task {task!r} does not have",
                            f"name one of {', '.join(splits)}")
    loaded = {}
    for split, raw in files.items():
        path = Path(str(raw)).expanduser()
        if path.is_dir() and any((path / name).is_file() for name in ("dataset_dict.json", "state.json")):
            saved = _load_saved(path, task)
            loaded[split] = saved[split] if isinstance(saved, datasets.DatasetDict) else saved
        else:
            loaded[split] = datasets.Dataset.from_list(read_records(path))
    template = next(iter(loaded.values()))
    for split in splits:
        loaded.setdefault(split, template.select([]))
    name = ", ".join(f"{split}={path}" for split, path in files.items())
    digests = {split: Path(str(p)).expanduser() for split, p in files.items()}
    sha = _sha256_files(digests) if all(p.is_file() for p in digests.values()) else None
    return with_source(datasets.DatasetDict(loaded), {"kind": "file", "name": name, "sha256": sha,
                                                        "description": f"your data file for {task}"})


def _load_saved(path: Path, task: str):
    """A folder ``datasets`` saved (save_to_disk), checked first: read whole, it must hold only its own files."""
    import datasets

    from medbench.data_reading import check_dataset_folder

    fix = "pass a folder written by datasets' save_to_disk, or a .jsonl/.json/.csv/.parquet file"
    check_dataset_folder(path, f"--data-file {task}={path}", fix, root_may_link=True)
    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # damaged arrow or metadata: datasets raises many kinds
        detail = " ".join(str(exc).split())[:200]
        raise MedbenchError(f"--data-file {task}={path} cannot be read ({type(exc).__name__}: {detail})", fix) from None


def _row_source(origin: RowSource, index: int) -> RowSource:
    return (RowSource.hub if origin.from_hub else RowSource)(f"{origin} row {index + 1}")


def mcq_row(question: str, choices: list[str], gold: int, source: str, **extra: Any) -> dict[str, Any]:
    """The normalised multiple-choice row every MCQ task shares, with the original fields kept beside it."""
    checked = not getattr(source, "from_hub", False)  # a hub dataset is scored as published (see require_columns)
    if checked and (not isinstance(question, str) or not question.strip()):
        raise MedbenchError(f"{source}: the question is {'missing' if question is None else 'empty or not text'}",
                            "give every row its question text, or drop the row")
    if checked and any(_is_blank(choice) for choice in choices):
        raise MedbenchError(f"{source}: an answer option is empty or null",
                            "give every option its text, or drop the row")
    nested = next((c for c in choices if isinstance(c, (list, dict))), None) if checked else None
    if nested is not None:  # its Python text (['x'], {'y': 1}) would be scored and trained on as the option
        raise MedbenchError(f"{source}: an answer option is {'a list' if isinstance(nested, list) else 'a mapping'} "
                            f"({str(nested)[:40]}), not text", "give every option as text, or drop the row")
    if not choices:
        raise MedbenchError(f"{source}: no answer options found",
                            "give the options as a mapping of letter to text, e.g. {\"A\": \"...\", \"B\": \"...\"}")
    if not 0 <= gold < len(choices):
        which = "the answer" if gold < 0 else f"the answer index {gold}"  # -1: a label that names no option
        raise MedbenchError(f"{source}: {which} is not among the {len(choices)} choices",
                            "fix the answer field so it names one of the options")
    return {"question": question, "choices": [str(c) for c in choices], "gold": int(gold), **extra}
