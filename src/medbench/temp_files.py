"""The temporary files of medbench's atomic writes (written beside the final name, then renamed into place), and
the clean-up of those a killed writer left behind.

A writer stopped by Ctrl-C removes its own temporary file (medbench.records.atomic_write_text); one killed outright
(SIGKILL, SIGTERM, a power cut) cannot, and leaves ``.record.json.<host>-<pid>.<random>.tmp``. No reader ever opens
one: records are read by their exact names. Later writes into the same folder, and every eval's start
(:func:`remove_stale_records_temps`), delete leftovers that are certainly medbench's and certainly dead: the name
must be medbench's own pattern for a file it writes there, the entry a plain file (not a link, not a folder), and
its writer gone - a process of this machine that no longer runs (and the file untouched for a minute), or on any
machine, a file untouched for an hour. A live writer's file, or anything else in the folder, is never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
from pathlib import Path

STALE_AFTER_S = 3600  # a temp file untouched this long has no live writer, whichever machine wrote it
DEAD_WRITER_GRACE_S = 60  # this machine's writer is gone: still, no file touched within the last minute
HOST_TAG = hashlib.blake2b(socket.gethostname().encode("utf-8", "replace"), digest_size=4).hexdigest()
# what tempfile.mkstemp puts between prefix and suffix
_RANDOM = r"[a-z0-9_]{8}"
# Names of the files medbench writes into a leaderboard's record folders (records.write_record).
RECORD_FOLDER_FILES = ("record.json", "samples.jsonl", "medbench_manifest.json")


def temp_prefix(name: str) -> str:
    return f".{name}.{HOST_TAG}-{os.getpid()}."


def make_temp(target: Path) -> tuple[int, str]:
    """``tempfile.mkstemp`` beside ``target``, named for it, this machine and this process; dead writers'
    leftovers for the same target are removed first."""
    target = Path(target)
    remove_stale_temps(target.parent, [target.name])
    return tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)


def _pattern(names: list[str]) -> re.Pattern[str]:
    # ours: .NAME.HOST-PID.RANDOM.tmp; before the writer was named in it: .NAME.RANDOM.tmp (age alone decides)
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"\.(?:{alternatives})\.(?:(?P<host>[0-9a-f]{{8}})-(?P<pid>\d{{1,10}})\.)?{_RANDOM}\.tmp")


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, OSError):
        return True  # another user's process, or no way to tell: treat as live
    return True


def is_stale(name: str, mtime: float, names: list[str] | re.Pattern[str], now: float | None = None) -> bool:
    """Whether ``name`` is one of medbench's temp files for ``names`` (or matches a pattern naming the writer's
    ``host`` and ``pid``) whose writer is certainly gone."""
    match = (names if isinstance(names, re.Pattern) else _pattern(names)).fullmatch(name)
    if match is None:
        return False
    age = (time.time() if now is None else now) - mtime
    if age > STALE_AFTER_S:
        return True
    return (match["host"] == HOST_TAG and match["pid"] is not None and age > DEAD_WRITER_GRACE_S
            and not _writer_alive(int(match["pid"])))


def remove_stale_temps(folder: Path, names: list[str] | tuple[str, ...]) -> list[Path]:
    """Delete dead writers' temp files for ``names`` in ``folder`` (module docstring); returns those removed.
    Never raises: a folder that cannot be listed, or a file gone meanwhile, is left to the next writer."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(".") or not entry.name.endswith(".tmp"):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):  # a link or a folder of that name is not medbench's
                continue
            if is_stale(entry.name, entry.stat(follow_symlinks=False).st_mtime, list(names), now):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def remove_stale_records_temps(records: Path) -> list[Path]:
    """Dead writers' temp files in every record folder under ``records`` (``records/<model>/<task>/``)."""
    removed: list[Path] = []
    try:
        models = [entry for entry in os.scandir(records) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for model in models:
        try:
            tasks = [entry for entry in os.scandir(model.path) if entry.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for task in tasks:
            removed += remove_stale_temps(Path(task.path), RECORD_FOLDER_FILES)
    return removed


def make_temp_dir(folder: Path, prefix: str) -> Path:
    """``tempfile.mkdtemp`` in ``folder`` named ``PREFIX<host>-<pid>-<random>``, after removing dead writers' folders
    of that prefix (a render killed mid-way left its staged pages there)."""
    remove_stale_temp_dirs(folder, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{HOST_TAG}-{os.getpid()}-", dir=folder))


def remove_stale_temp_dirs(folder: Path, prefix: str) -> list[Path]:
    """Dead writers' staging folders ``PREFIX...`` in ``folder`` (real folders only, never a link), removed."""
    import shutil

    pattern = re.compile(rf"{re.escape(prefix)}(?:(?P<host>[0-9a-f]{{8}})-(?P<pid>\d{{1,10}})-)?{_RANDOM}")
    removed = []
    try:
        entries = [entry for entry in os.scandir(folder) if entry.name.startswith(prefix)]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and is_stale(entry.name, entry.stat(follow_symlinks=False).st_mtime,
                                                                pattern, now):
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed
