"""The permissions of the files medbench writes by rename (records, leaderboards, pages, run and sweep state).

``tempfile.mkstemp`` makes its file 0600, and the rename carries that mode over: every record and every page of a
leaderboard shared with a team (or served by a web server) became readable by its writer only, and rewriting a
leaderboard a user had opened up took that away again. A rewritten file keeps its own mode; a new one gets what
``open()`` would give it (0666 less the umask)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def _umask() -> int:
    """This process's umask: read from /proc where there is one, since setting it to read it is not thread-safe."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def written_mode(path: str | Path) -> int:
    """The mode ``path`` should have once rewritten: its own when it is a regular file (a link in its place is
    replaced, not followed), else a new file's."""
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            return stat.S_IMODE(info.st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()
