"""What every SVG plot medbench draws shares: tick positions and escaped text."""

from __future__ import annotations

import html
import math
from typing import Any

from medbench.console import display_safe


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) from ``lo`` to ``hi``."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo] if math.isfinite(lo) else []
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = start
    while value <= hi + 1e-9 and len(ticks) <= 2 * count + 2:  # bounded, whatever rounding does to the step
        ticks.append(round(value, 10))
        value += step
    return ticks


def esc(text: Any) -> str:
    """Text from a record or recipe, safe inside SVG/HTML text and attributes."""
    return html.escape(display_safe(text), quote=True)
