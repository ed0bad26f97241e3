"""Result records: one JSON file per (checkpoint, task, mode), per-sample predictions beside it.

Layout: ``<leaderboard>/records/<label-slug>-<label-hash>-<weights-hash>/<task>/record.json`` and
``samples.jsonl``: one folder per exact label and weights (``<label-slug>-<weights-hash>``, the older layout, is
still read). Every write goes to a temporary file in the same directory and is renamed into place, so a reader
never sees half a record and a failed run never damages the records already there. Every reader goes through
:func:`load_record`, which checks a record against the schema (:class:`medbench.record_schema.Record`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable

from medbench.errors import MedbenchError
from medbench.file_modes import written_mode
from medbench.portable import portable_paths
from medbench.record_schema import (MAX_DEPTH, SCHEMA_VERSION, Record, RecordError, json_type_name, sane_json,
                                    validate_record)
from medbench.temp_files import make_temp, remove_stale_records_temps
from medbench.unique_keys import unique_pairs

__all__ = ["Record", "RecordError", "validate_record"]  # the schema, where readers of records look for it


def slug(text: str, limit: int = 48) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"
    return cleaned[-limit:]


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_temp(path)  # named for this process: a killed writer's leftover is told from a live one's
        try:
            os.fchmod(fd, written_mode(path))  # mkstemp's 0600 would lock a shared leaderboard to its writer
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise MedbenchError(f"cannot write {path} ({exc.strerror or exc})",
                            "check free disk space and write permission on its folder, or write elsewhere") from None


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True, default=str) + "\n" for row in rows))


# What one record or its samples may weigh before it is read whole: a record is a few KB, samples at most some
# hundred MB (data files are bounded at 512 MiB); a crafted or sparse file past these would exhaust memory. Rows
# are bounded too: a parsed row costs far more than its bytes (60 MB of "{}" lines would be 3 GB of objects), and no
# data set medbench scores has a million items.
MAX_RECORD_BYTES, MAX_SAMPLES_BYTES, MAX_SAMPLE_ROWS = 64 << 20, 512 << 20, 1_000_000


class SamplesPathError(ValueError):
    """A record whose samples file lies outside its own folder."""


class RecordWarning(UserWarning):
    """A record (or its samples) skipped while reading a leaderboard."""


def read_regular_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file: a FIFO or device in its place (an untrusted folder can
    hold one) would block or never end. Opened without blocking, then checked, so the check is on what is read.
    ``limit``: a larger file is refused (OSError EFBIG) before any of it is read."""
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if limit is not None and info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
        with os.fdopen(fd, "rb") as handle:
            fd = -1  # the file object owns it now
            return handle.read()
    finally:
        if fd >= 0:
            os.close(fd)


def read_regular_text(path: str | Path, limit: int | None = None) -> str:
    """``read_regular_bytes`` as UTF-8 text (UnicodeDecodeError when it is not)."""
    return read_regular_bytes(path, limit).decode("utf-8")


def load_record(path: Path) -> dict[str, Any]:
    """The valid record in ``path`` with ``_path`` set; RecordError (one short reason) when it is not one."""
    try:
        raw = read_regular_bytes(path := Path(path), MAX_RECORD_BYTES)
    except OSError as exc:
        raise RecordError(f"unreadable ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text, object_pairs_hook=unique_pairs)  # a key given twice is refused, not last-wins
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # nesting past the parser's depth, a number of 4300+ digits
        raise RecordError(f"not readable JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
    record = validate_record(sane_json(data))  # every renderer gets finite numbers, encodable text, bounded depth
    record["_path"] = str(path)
    return record


# ------------------------------------------------------------------------------------------- the layout


def _short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def _unique_slug(text: str) -> str:
    """``text`` as a folder name, unique per exact text: the slug alone when it is the text unchanged, else the
    slug with a short hash of the text (``team/model 1`` and ``team-model-1`` must not share a folder)."""
    cleaned = slug(text)
    return cleaned if cleaned == text else f"{cleaned}-{_short_hash(text)}"


def model_dir_name(label: str, weights_hash: str) -> str:
    """A checkpoint's folder under records/: its label slugged, a hash of the exact label, the weights hash."""
    return f"{slug(label)}-{_short_hash(label)}-{weights_hash[:12]}"


def legacy_model_dir_name(label: str, weights_hash: str) -> str:
    """The folder older medbench versions used (still read): labels differing in punctuation could share it."""
    return f"{slug(label)}-{weights_hash[:12]}"


def record_dir(root: Path, model_label: str, weights_hash: str, task: str) -> Path:
    return Path(root) / "records" / model_dir_name(model_label, weights_hash) / _unique_slug(task)


def record_identity(record: dict[str, Any]) -> tuple[str, str, str]:
    return record["model"]["label"], record["model"]["weights_hash"], record["record_key"]


def write_record(root: Path, record: Record | dict[str, Any], samples: list[dict[str, Any]]) -> Path:
    """Write samples first, then the record that points at them (a record on disk always has its samples). The
    record (a :class:`Record`, or its JSON form, typed first) is made portable and checked as it will be read back;
    a folder holding another (label, weights, task)'s record is never overwritten; replacing more items is said."""
    if not isinstance(record, Record):
        record = _typed_for_writing(record)
    written = record.to_json()
    data = {**portable_paths(written, root), "schema": SCHEMA_VERSION, "samples_file": "samples.jsonl"}
    _typed_for_writing(data)  # exactly what a reader will get back
    records_folder(root)
    directory = record_dir(root, data["model"]["label"], data["model"]["weights_hash"], data["record_key"])
    refuse_links(root, directory)
    try:
        existing = load_record(directory / "record.json") if (directory / "record.json").exists() else None
    except RecordError:
        existing = None  # a damaged record of this very folder: the new one replaces it
    if existing is not None and record_identity(existing) != record_identity(data):
        raise MedbenchError(f"{directory} already holds the record of {record_identity(existing)!r}, not "
                            f"{record_identity(data)!r}", "pass another --label, or move that folder away")
    if existing is not None and existing.get("n", 0) > data["n"]:  # a --limit smoke test over a whole split's score
        warnings.warn(f"{directory}: its record of {existing['n']} items is replaced by one of {data['n']}")
    atomic_write_jsonl(directory / "samples.jsonl", samples)
    _copy_manifest(written, directory, root)  # from the paths as written: this machine's checkpoint
    atomic_write_json(directory / "record.json", data)
    return directory / "record.json"


def refuse_links(root: Path, path: Path) -> None:
    """MedbenchError when ``path`` (under ``root``) is reached through a link: a linked records/ or model folder
    would take the writes outside the leaderboard (and its reader would skip them). Checked as read_records checks
    a record: by where the path resolves to."""
    root, path = Path(root), Path(path)
    relative = path.relative_to(root)
    if not through_link(root, path):
        return
    current, link = root, path
    for name in relative.parts:
        current = current / name
        if current.is_symlink():
            link = current
            break
    raise MedbenchError(f"{link} is a link, and records are written only inside {root} (never through a link)",
                        f"replace {link} with a folder, or pass another --leaderboard-dir")


def through_link(root: Path, path: Path) -> bool:
    """Whether ``path`` (under ``root``) is reached through a link below ``root``: resolved, it is not where its
    name says (a linked records/, model or task folder, a record.json pointing at another record)."""
    root, path = Path(root), Path(path)
    try:
        return path.resolve() != root.resolve() / path.relative_to(root)
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13)
        return True


def records_folder(root: Path) -> Path:
    """``root``/records, refused in one line when it is a link (to anywhere): a leaderboard folder is untrusted,
    so every reader (table, --rescore, reuse) and writer reads and writes records only inside it."""
    folder = Path(root) / "records"
    if folder.is_symlink() or (folder.exists() and through_link(root, folder)):
        raise MedbenchError(f"{folder} is a link, and records are read and written only inside {root}",
                            f"replace {folder} with a folder holding the records, or pass another --leaderboard-dir")
    if folder.exists() and not folder.is_dir():  # a file there would read as "no records" and block every write
        raise MedbenchError(f"{folder} is a file, not the folder of records",
                            f"move {folder} away, or pass another --leaderboard-dir")
    return folder


def ensure_leaderboard_dir(root: Path) -> None:
    """Before any work: ``root`` takes files, records/ and .cache/ lead nowhere else, dead writers' temps go."""
    ensure_writable(root, "--leaderboard-dir")
    remove_stale_records_temps(records_folder(root))
    from medbench.leaderboard_folder import check_leaderboard_folder  # its .cache/, and pages it did not write
    check_leaderboard_folder(root)


def _typed_for_writing(data: dict[str, Any]) -> Record:
    """``data`` (a record's JSON form; reader annotations such as ``_path`` dropped) as a checked Record."""
    try:
        return Record.from_json(json.loads(json.dumps({k: v for k, v in data.items() if not k.startswith("_")},
                                                      default=str)))
    except RecordError as exc:
        raise MedbenchError(f"the record of {data.get('record_key')!r} does not match the record schema ({exc})",
                            "this is a bug in the code that built the record; please report it") from None


MANIFEST_COPY = "medbench_manifest.json"


def _copy_manifest(record: dict[str, Any], directory: Path, root: Path) -> None:
    """The scored checkpoint's training manifest, copied beside its record while the writer still trusts the
    checkpoint path: the leaderboard reads this copy, never a path named inside a (possibly crafted) record. Its
    paths are made portable as the record's are."""
    extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
    for source in (extra.get("checkpoint"), (record.get("model") or {}).get("path")):
        try:
            manifest = json.loads(read_regular_text(Path(source) / MANIFEST_COPY, MAX_RECORD_BYTES)) if source else None
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict):
            atomic_write_json(directory / MANIFEST_COPY, portable_paths(manifest, root))
            return
    (directory / MANIFEST_COPY).unlink(missing_ok=True)  # a copy from an earlier scoring of another checkpoint


def _warn(message: str) -> None:
    warnings.warn(message, RecordWarning, stacklevel=3)


def read_records(root: Path) -> list[dict[str, Any]]:
    """Every valid record under ``root``; one that is not (damaged, wrongly typed, a link out of records/) is
    skipped with a one-line warning naming the file and what is wrong, never fatal."""
    root = Path(root)
    records = []
    # Listed by lexists, not glob: glob drops a record.json that is a dangling or looping link without a word.
    for path in sorted(p / "record.json" for p in records_folder(root).glob("*/*")
                       if os.path.lexists(p / "record.json")):
        try:
            if through_link(root, path):  # out of the leaderboard, or a second copy of a record in it
                raise RecordError("a link pointing outside the records folder, or to another record in it")
            record = load_record(path)
            record["_board_path"] = path.relative_to(root).as_posix()  # what outputs show: portable with the board
            records.append(record)
        except (RecordError, OSError) as exc:
            _warn(f"skipping record {path}: {exc} — fix or delete that file")
    from medbench.record_homes import without_strays

    return without_strays(records, _warn)


def samples_path(record: dict[str, Any]) -> Path:
    """The record's samples file, which must lie inside the record's own folder (no absolute path, no '..', no
    link pointing out); SamplesPathError otherwise."""
    folder = Path(record["_path"]).parent
    name = record.get("samples_file") or "samples.jsonl"
    if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts or "\0" in name:
        raise SamplesPathError(f"samples_file {name!r} is not a file name inside the record's folder")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise SamplesPathError(f"samples_file {name!r} is a link pointing outside the record's folder")
    return path


# What sane_json changes or refuses in a samples file: NaN, Infinity, an exponent past 99, a run of 300 digits, a
# surrogate escape. A file with none (the usual case) skips that walk over every row; each check is one C-speed
# pass over the bytes.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_ODD = (re.compile(rb"[eE]\+?0*[1-9][0-9][0-9]"), re.compile(rb"\\u[dD][89a-fA-F]"))


def _may_need_sane(raw: bytes) -> bool:
    return (b"NaN" in raw or b"Infinity" in raw or b"0" * 300 in raw.translate(_DIGITS)
            or any(pattern.search(raw) for pattern in _ODD))


def read_samples(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's per-item rows; SamplesPathError (a ValueError) for a file outside its folder, OSError or
    ValueError for one that cannot be read or is not JSON lines of objects. Rows are made sane as records are
    (sane_json); a doc_id that is a list or an object (no id two samples can share) reads as None."""
    raw = read_regular_bytes(samples_path(record), MAX_SAMPLES_BYTES)
    if raw.count(b"\n") > MAX_SAMPLE_ROWS:  # counted before any line is parsed or even split off
        raise ValueError(f"the samples hold more than {MAX_SAMPLE_ROWS:,} lines")
    odd = _may_need_sane(raw)
    rows = []
    # Split on "\n" alone: JSON lines may hold U+2028 or U+0085 inside a string, which splitlines() splits at.
    # Line by line from the bytes: no second copy of the whole file as text.
    for number, data in enumerate(io.BytesIO(raw.removeprefix(b"\xef\xbb\xbf")), 1):
        line = data.decode("utf-8")
        if line.strip():
            try:
                row = json.loads(line)
            except RecursionError:  # a ValueError, as callers expect of a file that is not JSON lines
                raise ValueError(f"line {number} of the samples nests deeper than JSON can be read") from None
            if not isinstance(row, dict):
                raise ValueError(f"line {number} of the samples is {json_type_name(row)}, not an object")
            if odd or line.count("[") + line.count("{") > MAX_DEPTH:  # a bound on the row's depth, cheaply
                try:
                    row = sane_json(row)
                except RecordError as exc:
                    raise ValueError(f"line {number} of the samples {exc}") from None
            if isinstance(row.get("doc_id"), (list, dict)):
                row["doc_id"] = None
            rows.append(row)
    return rows


def ensure_writable(directory: Path, option: str) -> None:
    """Fail before any work is done when ``directory`` cannot take new files (read-only, full, under a file)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = make_temp(directory / "medbench-write-check")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise MedbenchError(f"cannot write to {directory} ({exc.strerror or exc})",
                            f"check free disk space and write permission, or pass another {option}") from None


# A record is one task, and where it is written is not part of what was scored; ``extra`` is recorded beside it.
NOT_RECORDED = ("tasks", "output_dir", "extra")


def recorded_config(config: Any) -> dict[str, Any]:
    """An EvalConfig as its records store it (``config``) and as :func:`find_reusable` compares it (without
    ``reuse_records``: whether reuse was allowed is provenance, not a scoring option): one filter for both."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()
            if k not in NOT_RECORDED}


def find_reusable(root: Path, label: str, weights_hash: str, task_name: str, data_hash: str, config: Any,
                  versions: dict[str, str]) -> dict[str, Any] | None:
    """A record already on disk for exactly these weights (the full content hash, never the path), task, data,
    evaluation options and library versions, with its samples file; None when there is none. ``config`` is the
    EvalConfig; its fields are compared as evaluation records them (tasks, output_dir and the cache switch itself
    aside), plus ``extra``. Anything that differs, or fails to read, is a miss: a miss costs a re-run, a wrong hit
    would serve stale scores."""
    def normalised(value: Any) -> Any:
        return json.loads(json.dumps(value, sort_keys=True, default=str))

    fields = {k: v for k, v in recorded_config(config).items() if k != "reuse_records"}
    wanted = normalised({"config": fields, "extra": config.extra or None, "versions": versions})
    records = records_folder(root)
    for folder in dict.fromkeys((model_dir_name(label, weights_hash), legacy_model_dir_name(label, weights_hash))):
        for path in sorted((records / folder).glob("*/record.json")):
            try:
                if through_link(root, path):  # as read_records: a record reached through a link is none here
                    continue
                record = load_record(path)
                has_samples = samples_path(record).is_file()
            except (RecordError, SamplesPathError, OSError):
                continue
            stored = {k: v for k, v in (record.get("config") or {}).items() if k != "reuse_records"}
            if (record["model"]["weights_hash"] == weights_hash and record["model"]["label"] == label
                    and record["task"]["name"] == task_name and record["task"].get("data_hash") == data_hash
                    and normalised({"config": stored, "extra": record.get("extra"), "versions": record.get("versions")})
                    == wanted and has_samples):
                record["_reused"] = True
                return record
    return None
