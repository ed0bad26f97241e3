"""Reading one data file (.jsonl/.json/.csv/.parquet) whole into rows, for medbench.taskdata and --data-file.

A data file is untrusted input read into memory: its bytes are bounded (MAX_DATA_FILE_BYTES), and so is what they
parse into (MAX_DATA_VALUES), because a few bytes can become a large Python object (``{}`` is 3 bytes of text and
a 64-byte dict; a kilobyte of parquet can decode to gigabytes of repeated text). Every way a file fails to parse is
one line naming the file and its format."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.unique_keys import DuplicateKeyError, unique_pairs

MAX_DATA_FILE_BYTES = 512 << 20  # read whole into memory (and parsed) by the task: beyond this it would swap
# Values a file may hold, a row counting ROW_WEIGHT (its dict is ~200 bytes), a field or a list item one (~50 bytes):
# this keeps a file's parsed rows to about 2 GB. Published task data holds far fewer (MedMCQA's train: 3 million).
MAX_DATA_VALUES = 25_000_000
ROW_WEIGHT = 4
# Distinct fields across a file's rows: each is a column of the Arrow schema `datasets` builds, copies and hashes on
# every operation (one 3.5 MB row of 200,000 fields took 97 s and 2.2 GB). A task reads a few; wide tabular data
# (hundreds of lab values) fits.
MAX_DATA_COLUMNS = 4096


def check_data_file(path: Path) -> None:
    """A data file must be a regular file: a folder or a device gets its own one-line error."""
    path = Path(path)
    if path.is_dir():
        raise MedbenchError(f"data file {path} is a directory, not a file",
                            "pass the path of one .jsonl, .json, .csv or .parquet file inside it")
    if path.exists() and not path.is_file():
        raise MedbenchError(f"data file {path} is not a regular file (a device, socket or pipe)",
                            "pass the path of a .jsonl, .json, .csv or .parquet file")
    if not path.exists():
        raise MedbenchError(f"data file {path} does not exist", "check the path given in data_files (--data-file)")
    check_data_size(path, "the task")  # read whole: bounded here for every reader, not only --data-file


def check_data_size(path: Path, target: str) -> None:
    """A data file is read whole: one past MAX_DATA_FILE_BYTES (a 2 GB sparse file, a dump) is refused first."""
    size = path.stat().st_size if path.is_file() else 0  # missing or not a file: the reader names it
    if size > MAX_DATA_FILE_BYTES:
        raise MedbenchError(f"data file for {target} ({path}) is {size / (1 << 20):,.0f} MiB, more than the "
                            f"{MAX_DATA_FILE_BYTES >> 20} MiB medbench reads into memory",
                            "score a sample of it (split the file, or pass --limit with a smaller file)")


def _too_many_values(path: Path, count: int) -> None:
    if count > MAX_DATA_VALUES:
        raise MedbenchError(f"data file {path} holds about {count:,} values (rows, fields and nested lists), more "
                            f"than the {MAX_DATA_VALUES:,} medbench reads into memory at once",
                            "score a sample of it (split the file into smaller ones)")


def _text(path: Path) -> str:
    """The file as text; a UTF-8 byte order mark (Excel and Notepad write one) is dropped, not read as data."""
    from medbench.records import read_regular_bytes

    return read_regular_bytes(path, limit=MAX_DATA_FILE_BYTES).decode("utf-8-sig")


def _json_rows(path: Path) -> list[Any]:
    text = _text(path)
    # Every value past the first follows a comma; every list opens with [, every row or mapping with {.
    _too_many_values(path, text.count(",") + text.count("[") + ROW_WEIGHT * text.count("{"))
    # A row naming a field twice (two "answer_idx") would be read as its last value, silently: refused.
    if text.lstrip().startswith("["):
        return json.loads(text, object_pairs_hook=unique_pairs)
    rows, start = [], 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line, object_pairs_hook=unique_pairs))
            except json.JSONDecodeError as exc:  # placed in the whole text, so it names the file's line, not "line 1"
                raise json.JSONDecodeError(exc.msg, text, start + exc.pos) from None
            except DuplicateKeyError as exc:
                raise ValueError(f"line {number}: {exc}") from None
        start += len(line) + 1
    return rows


def _csv_rows(path: Path) -> list[Any]:
    import io

    text = _text(path)
    _too_many_values(path, text.count(",") + ROW_WEIGHT * text.count("\n"))
    extra = object()  # DictReader's key for fields past the header's
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_DATA_FILE_BYTES)  # the default (128 KiB) refuses a long clinical note in one cell
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline=""), restkey=extra))
    finally:
        csv.field_size_limit(limit)
    for number, row in enumerate(rows, start=1):
        if extra in row:
            raise ValueError(f"row {number} has more fields than the header's {len(row) - 1}")
    return rows


def _parquet_rows(path: Path) -> list[Any]:
    """Decoded a batch at a time, so a file of a few KB that decodes to gigabytes stops at the byte bound."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        meta = parquet.metadata
        _too_many_values(path, meta.num_rows * (meta.num_columns + ROW_WEIGHT))
        rows, decoded = [], 0
        for batch in parquet.iter_batches(batch_size=4096):
            # A dictionary column holds each text once; its rows become one Python string each.
            decoded += sum((column.dictionary_decode() if pa.types.is_dictionary(column.type) else column).nbytes
                           for column in batch.columns)
            if decoded > MAX_DATA_FILE_BYTES:
                raise MedbenchError(f"data file {path} decodes to more than the {MAX_DATA_FILE_BYTES >> 20} MiB "
                                    "medbench reads into memory", "score a sample of it (split the file)")
            rows.extend(batch.to_pylist())
    return rows


_READERS = {".jsonl": (_json_rows, "JSON lines", "write one JSON object per line (or one JSON array of objects)"),
            ".json": (_json_rows, "JSON", "write one JSON object per line (or one JSON array of objects)"),
            ".csv": (_csv_rows, "CSV", "save it as CSV with one header row and the same fields on every line"),
            ".parquet": (_parquet_rows, "Parquet", "write it again, e.g. with pandas' DataFrame.to_parquet")}


def read_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl/.json (JSON lines or a JSON array), .csv or .parquet file."""
    import pyarrow

    path = Path(path)
    check_data_file(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise MedbenchError(f"data file {path} has an unsupported type {suffix!r}", "use .jsonl, .json, .csv or .parquet")
    read, kind, fix = _READERS[suffix]
    try:
        rows = read(path)
    except UnicodeDecodeError as exc:
        raise MedbenchError(f"data file {path} is not UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    except (ValueError, RecursionError, OSError, csv.Error, pyarrow.ArrowException) as exc:
        # bad JSON, 4300+ digit numbers, nesting past the parser, a damaged parquet, a pipe swapped in
        detail = " ".join(str(getattr(exc, "strerror", None) or exc).split())[:200]
        raise MedbenchError(f"data file {path} is not valid {kind} ({detail})", fix) from None
    if not rows:
        raise MedbenchError(f"data file {path} is empty", "give a file with at least one example")
    if not all(isinstance(row, dict) for row in rows):
        raise MedbenchError(f"data file {path} does not hold one object per row", "write one JSON object per line")
    columns: set[str] = set()
    for number, row in enumerate(rows, start=1):
        columns.update(row)
        if len(columns) > MAX_DATA_COLUMNS:
            raise MedbenchError(f"data file {path} has more than {MAX_DATA_COLUMNS:,} distinct fields (row {number} "
                                "takes it past that)", "keep only the fields the task reads (e.g. with jq or pandas)")
    return rows


MAX_DATASET_ENTRIES = 100_000  # files and folders of one saved or cached dataset (a large one has a few hundred)
MAX_DATASET_JSON_BYTES = 16 << 20  # dataset_info.json, state.json: parsed whole (a real one is a few KB)


def check_dataset_folder(folder: Path, owner: str, fix: str, *, root_may_link: bool = False) -> None:
    """A folder `datasets` wrote (save_to_disk, its cache) is folders and regular files. A link (it would read
    outside), a FIFO (its read blocks forever) or a device is refused before `datasets` opens anything; so is a
    metadata file too large to parse or a tree too large to walk. ``root_may_link``: the folder the user named may
    itself be a link (a dataset on another disk)."""
    import os
    import stat

    def refuse(path: Path, what: str) -> None:
        raise MedbenchError(f"{owner} holds {path}, {what}", fix)

    folder = Path(folder)
    if folder.is_symlink() and not root_may_link:
        refuse(folder, "a link (datasets writes none)")
    seen = 0
    for current, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            seen += 1
            if seen > MAX_DATASET_ENTRIES:
                refuse(folder, f"more than {MAX_DATASET_ENTRIES:,} files")
            path = Path(current, name)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                refuse(path, "a link (datasets writes none)")
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                refuse(path, "not a regular file (a pipe, socket or device)")
            if name.endswith(".json") and info.st_size > MAX_DATASET_JSON_BYTES:
                refuse(path, f"{info.st_size >> 20:,} MiB of metadata (a real one is a few KB)")
