"""Result records: one JSON file per (checkpoint, task, mode), per-sample predictions beside it.

Layout: ``<leaderboard>/records/<model-slug>-<weights-hash>/<task>/record.json`` and ``samples.jsonl``.
Every write goes to a temporary file in the same directory and is renamed into place, so a reader never
sees half a record and a failed run never damages the records already there.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable

from medbench.errors import MedbenchError

SCHEMA_VERSION = 1


def slug(text: str, limit: int = 48) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"
    return cleaned[-limit:]


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
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
                            "check free disk space and write permission, or pass another --output-dir") from None


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True, default=str) + "\n" for row in rows))


def record_dir(root: Path, model_label: str, weights_hash: str, task: str) -> Path:
    return Path(root) / "records" / f"{slug(model_label)}-{weights_hash[:12]}" / slug(task)


def write_record(root: Path, record: dict[str, Any], samples: list[dict[str, Any]]) -> Path:
    """Write samples first, then the record that points at them: a record on disk always has its samples."""
    directory = record_dir(root, record["model"]["label"], record["model"]["weights_hash"], record["record_key"])
    atomic_write_jsonl(directory / "samples.jsonl", samples)
    record = {**record, "schema": SCHEMA_VERSION, "samples_file": "samples.jsonl"}
    atomic_write_json(directory / "record.json", record)
    return directory / "record.json"


def read_records(root: Path) -> list[dict[str, Any]]:
    """Every readable record under ``root``; unreadable ones are reported, never fatal."""
    import warnings

    records = []
    for path in sorted(Path(root).glob("records/*/*/record.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            warnings.warn(f"skipping unreadable record {path}: {exc}", stacklevel=2)
            continue
        record["_path"] = str(path)
        records.append(record)
    return records


def read_samples(record: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(record["_path"]).parent / record.get("samples_file", "samples.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ensure_writable(directory: Path, option: str) -> None:
    """Fail before any work is done when ``directory`` cannot take new files (read-only, full, under a file)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".medbench-write-check-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise MedbenchError(f"cannot write to {directory} ({exc.strerror or exc})",
                            f"check free disk space and write permission, or pass another {option}") from None


def find_reusable(root: Path, label: str, weights_hash: str, task_name: str, data_hash: str, config: Any,
                  versions: dict[str, str]) -> dict[str, Any] | None:
    """A record already on disk for exactly these weights (the full content hash, never the path), task, data,
    evaluation options and library versions, with its samples file; None when there is none.

    ``config`` is the EvalConfig; its fields are compared as evaluation records them (tasks, output_dir and the
    cache switch itself aside), plus ``extra``. Anything that differs, or fails to read, is a miss: a miss costs a
    re-run, a wrong hit would serve stale scores.
    """
    from dataclasses import asdict

    def normalised(value: Any) -> Any:
        return json.loads(json.dumps(value, sort_keys=True, default=str))

    fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()
              if k not in ("tasks", "output_dir", "extra", "reuse_records")}
    wanted = normalised({"config": fields, "extra": config.extra or None, "versions": versions})
    model_dir = Path(root) / "records" / f"{slug(label)}-{weights_hash[:12]}"
    for path in sorted(model_dir.glob("*/record.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        stored = {k: v for k, v in (record.get("config") or {}).items() if k != "reuse_records"}
        if (record.get("model", {}).get("weights_hash") == weights_hash and record.get("model", {}).get("label") == label
                and record.get("task", {}).get("name") == task_name and record.get("task", {}).get("data_hash") == data_hash
                and normalised({"config": stored, "extra": record.get("extra"), "versions": record.get("versions")})
                == wanted and (path.parent / record.get("samples_file", "samples.jsonl")).is_file()):
            record["_path"] = str(path)
            record["_reused"] = True
            return record
    return None
