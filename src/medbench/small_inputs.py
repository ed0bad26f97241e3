"""Small text inputs medbench reads whole (task YAMLs, trainer and accelerate config files, system prompts) and
KEY=VALUE options given more than once: each is bounded or checked before it is used, so a file of megabytes
cannot stall the YAML parser for minutes, a repeated option never silently drops one of its values, and a damaged
file is one line naming it rather than a launched tool's traceback."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterable

from medbench.errors import MedbenchError
from medbench.records import read_regular_text

# A task YAML or a config file is a few KB (lm-eval's largest bundled task YAML is ~60 KB): past this it is not one,
# and PyYAML would spend minutes parsing it (50 MB took over two minutes) before anything else could refuse it.
MAX_CONFIG_BYTES = 1 << 20

# `task: NAME` as it appears in a task YAML's own text, so a file that fails to parse is known by the task it defines.
_TASK_LINE = re.compile(rb"""^["']?task["']?[ \t]*:[ \t]*["']?([A-Za-z0-9_.\-]+)["']?[ \t]*\r?$""", re.MULTILINE)


def too_big(exc: OSError) -> bool:
    """``read_regular_bytes`` refused the file for its size (past its ``limit``)."""
    return exc.errno == errno.EFBIG


def size_problem(what: str, fix: str) -> MedbenchError:
    return MedbenchError(f"{what} is larger than {MAX_CONFIG_BYTES:,} bytes, more than any such file holds", fix)


def remember_failure(failed: dict[str, MedbenchError], file: Path, exc: MedbenchError, key: str | None = None) -> None:
    """Why ``file`` was not indexed, under its stem (or ``key``) and under each task name its raw text names: then
    ``--tasks NAME`` reports the file's own problem, not "unknown task", when the file and its task differ in name."""
    from medbench.task_yaml import ContainmentError, UntrustedCodeError

    failed.setdefault(key or file.stem, exc)
    if isinstance(exc, ContainmentError) and not isinstance(exc, UntrustedCodeError):
        return  # a file refused for leading out of its folder (a link) is never opened; one naming code was read
    raw = _head(file, MAX_CONFIG_BYTES)  # the head of a file refused for its size names its task too
    for match in _TASK_LINE.finditer(raw or b""):
        failed.setdefault(match.group(1).decode("ascii"), exc)


def _head(path: Path, size: int) -> bytes | None:
    """The first ``size`` bytes of the regular file ``path`` (never through a link, never blocking on a FIFO);
    None when there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
        try:
            return os.read(fd, size) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        finally:
            os.close(fd)
    except OSError:
        return None


def refuse_foreign_output(path: Path, option: str, fields: tuple[str, ...]) -> None:
    """A file already at ``path`` is overwritten only when it is one this command wrote: empty, or JSON lines
    whose first row has ``fields``. Anything else (a link, a FIFO, a file of other data) is the user's, never lost."""
    if not os.path.lexists(path):
        return
    head = _head(path, 1 << 16)
    first = (head or b"").split(b"\n", 1)[0].strip()
    try:
        row = json.loads(first) if first else {}
    except ValueError:
        row = None
    if head is None or not isinstance(row, dict) or (first and not all(field in row for field in fields)):
        raise MedbenchError(f"{option} {path} already exists and is not a file this command wrote",
                            f"pass another {option}, or move {path} away first")


def no_repeats(pairs: Iterable[tuple[str, Any]], option: str, same: Any = None) -> dict[str, Any]:
    """``pairs`` as a mapping; a key given twice with different values is refused (the last would silently win).
    ``same(key)``: the key two spellings share (``medqa`` and ``medqa:test`` name the same split)."""
    out: dict[str, Any] = {}
    seen: dict[Any, tuple[str, Any]] = {}
    for key, value in pairs:
        canonical = same(key) if same else key
        if canonical in seen and seen[canonical][1] != value:
            first_key, first = seen[canonical]
            what = first_key if key == first_key else f"{first_key} (as {first_key} and as {key})"
            raise MedbenchError(f"{option} gives {what} two values, {first!r} and {value!r}",
                                f"pass {option} once for {first_key}")
        seen[canonical] = (key, value)
        out[key] = value
    return out


def check_accelerate_config(path: str | Path) -> None:
    """An `accelerate config` file, read as accelerate will (YAML, or JSON by its suffix), before anything is
    launched: accelerate's own reader prints a traceback from every process for a file it cannot read."""
    import yaml

    path = Path(path)
    fix = "pass the file `accelerate config` writes (YAML), or leave out --accelerate-config"
    try:
        text = read_regular_text(path, limit=MAX_CONFIG_BYTES)
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        if too_big(exc):
            raise size_problem(f"--accelerate-config {path}", fix) from None
        raise MedbenchError(f"--accelerate-config {path} cannot be read ({exc.strerror or exc})", fix) from None
    except UnicodeDecodeError as exc:
        raise MedbenchError(f"--accelerate-config {path} is not UTF-8 text (byte {exc.start})", fix) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MedbenchError(f"--accelerate-config {path} is not valid {kind}{where}", fix) from None
    if not isinstance(data, dict):
        raise MedbenchError(f"--accelerate-config {path} is not a mapping of accelerate settings", fix)


def check_url(option: str, url: Any) -> None:
    """A served model's URL whose port or IPv6 host cannot be parsed (it failed inside the backend as "a bug in
    medbench"): one line naming ``option``. The command line checks it before a backend opens; the openai client
    checks it again for recipes and the Python API."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        return
    try:
        urlsplit(url.strip()).port  # noqa: B018 -- reading .port is what validates it
    except ValueError as exc:
        raise MedbenchError(f"{option} {url!r} is not a valid URL ({exc})",
                            "write it as http://HOST:PORT/v1, with a port from 1 to 65535") from None
