"""Text that fits where an SVG plot draws it: a conservative width estimate per character (SVG has no text
layout of its own, and the page is static), and cutting a label in the middle so that its end stays."""

from __future__ import annotations

import unicodedata

# Text sizes of leaderboard.css (.plot text, .plot .tick/.legend): labels are measured at these sizes.
LABEL_PX, SMALL_PX = 12, 11

# Advance widths in em, rounded up from DejaVu Sans (the widest common sans-serif: Linux's system-ui), so text
# measured with them fits in Arial, Helvetica, Segoe UI and San Francisco too.
_NARROW, _SLIM = set(" ijl.,'"), set("!:;|/\\-()[]frtIJ")
_WIDE = set("mwMW%@#…")


def _char_em(char: str) -> float:
    if char in _NARROW:
        return 0.34
    if char in _SLIM:
        return 0.42
    if char in _WIDE:
        return 1.0
    if not char.isascii():
        return 1.25 if unicodedata.east_asian_width(char) in ("W", "F") else 1.0
    if char.isupper() or char in "+=^~<>?&$_":
        return 0.86
    return 0.66  # lowercase and digits (DejaVu: at most 0.636)


def text_width(text: str, font_px: float = LABEL_PX) -> float:
    """A conservative width of ``text`` in pixels at ``font_px`` (see _char_em): real text is never wider."""
    return font_px * sum(_char_em(char) for char in text)


def fit_text(text: str, max_px: float, font_px: float = LABEL_PX) -> str:
    """``text``, or as much of its start and end as fits in ``max_px`` around an ellipsis: checkpoint names differ at
    the end (``merge-…-t0.5``, ``…/checkpoint-53``), so the end is never the part that is dropped."""
    if text_width(text, font_px) <= max_px:
        return text
    budget = max_px - text_width("…", font_px)
    head, tail, used = "", "", 0.0
    left, right = 0, len(text) - 1
    take_tail = True  # alternate, end first, so both halves stay about the same width
    while left <= right:
        char = text[right] if take_tail else text[left]
        used += font_px * _char_em(char)
        if used > budget:
            break
        if take_tail:
            tail, right = char + tail, right - 1
        else:
            head, left = head + char, left + 1
        take_tail = not take_tail
    return head + "…" + tail
