"""How the leaderboard's numbers read as text, shared by the terminal view (medbench.commands.leaderboard) and the
renderer plugins (leaderboard_text and the page): counts, zero-width intervals and data sources.

A zero-width interval is not certainty. A percentile bootstrap can only return values its resamples produce: when
every resample scores the same (an F1 of 0 with no true positive in any resample, one item, identical per-item
values), the interval is [x, x] however few items there are; a normal interval from a zero stderr is the same. The
statistic is what it is; what is shown carries a mark and a note saying so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medbench.leaderboard.table import Cell

DEGENERATE_MARK = "†"
DEGENERATE_NOTE = ("† zero-width interval: every resample of the items gave the same score (too few items, or a "
                   "score at its bound such as an F1 of 0 with no true positives); it does not mean the score is "
                   "certain.")

# How each data-source kind reads on a badge; "bundled" is the project's own sample data, flagged in a warning colour.
SOURCE_TEXT = {"bundled": "bundled sample", "file": "your file", "hub": "hub", "lm-eval": "lm-eval",
               "unknown": "unknown source"}


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 checkpoint``, ``2 checkpoints``, ``0 checkpoints``; ``many`` for an irregular plural."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def ci_degenerate(cell: Cell | None) -> bool:
    """Whether the cell's interval has zero width (see the module's note); False without an interval."""
    if cell is None or cell.ci_low is None or cell.ci_high is None:
        return False
    return abs(cell.ci_high - cell.ci_low) <= 1e-12 * max(1.0, abs(cell.ci_low), abs(cell.ci_high))


def any_degenerate(cells: Any) -> bool:
    return any(ci_degenerate(cell) for cell in cells)


def source_text(source: dict[str, Any]) -> str:
    """A data source as a short badge text: ``bundled sample``, ``hub: org/name@rev``, ``unknown source``."""
    kind = str(source.get("kind") or "unknown")
    text = SOURCE_TEXT.get(kind, kind)
    if kind not in ("bundled", "unknown") and source.get("name"):
        text += f": {source['name']}"
        if source.get("revision"):
            text += f"@{source['revision']}"
    return text


def source_details(source: dict[str, Any]) -> str:
    """The badge's tooltip: the description, then name, sha256 and revision."""
    parts = [str(source["description"])] if source.get("description") else []
    parts += [f"{key}: {source[key]}" for key in ("name", "sha256", "revision") if source.get(key)]
    if not parts and source.get("kind") in (None, "unknown"):
        parts.append("this record does not say where its data came from (written before medbench recorded it)")
    return "\n".join(parts)
