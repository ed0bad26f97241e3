"""What a --leaderboard-dir may hold before medbench writes into it. An index.html or leaderboard.md medbench did not
write (a website, the user's notes) is refused before any work: rendering replaced them silently. medbench's own
pages are known by what they begin with, or by the records/ folder beside them. Its .cache/ is no link out."""

from __future__ import annotations

from pathlib import Path

from medbench.errors import MedbenchError

# The built-in renderers' files, and text each begins with (within its first 4 KB).
PAGE_MARKERS = {"index.html": (b"<title>medbench leaderboard</title>",),
                "leaderboard.md": (b"| checkpoint |", b"**Reference baselines**"),
                "leaderboard.csv": (b"kind,checkpoint,",),
                "leaderboard.json": (b'"column_info"',)}


def check_leaderboard_folder(root: Path) -> None:
    """MedbenchError for a linked .cache/, or naming the first page file in ``root`` no medbench leaderboard wrote."""
    from medbench.records import refuse_links

    root = Path(root)
    if (root / ".cache").is_symlink():
        refuse_links(root, root / ".cache")
    if (root / "records").is_dir():  # a leaderboard already: its pages are its own
        return
    for name, markers in PAGE_MARKERS.items():
        path = root / name
        if not path.is_file():
            continue  # absent; a folder or a pipe in the way is named when the page is written
        try:
            with open(path, "rb") as handle:
                head = handle.read(4096)
        except OSError:
            head = b""
        if not any(marker in head for marker in markers):
            raise MedbenchError(f"{path} already exists and is not a page of a medbench leaderboard (there is no "
                                f"records/ folder beside it); the leaderboard would overwrite it",
                                f"pass another --leaderboard-dir (a new folder), or move {path} away first")
