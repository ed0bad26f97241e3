"""The CLI's rich consoles: on a terminal they fit the window; piped, tables keep every cell whole.

``medbench tasks | grep adrd`` must see ``adrd_prediction_prevalence``, not ``adrd_predi…``: rich falls back to
80 columns when stdout is not a terminal and squeezes tables into that. Tables are widened (to their natural
width) and messages are not wrapped (a line a script greps stays one line); other output (markdown reports,
rules) keeps the default width, so a pipe gets no 10,000-character rule lines.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

_UNBOUNDED = 1_000_000


class SafeConsole(Console):
    """A console that never sends a control character it was given to the terminal: whatever it prints (a table
    cell, a panel, a multi-line message quoting a record's label or a plugin's text), ESC, CR and the bidirectional
    controls are shown as escapes (``\\x1b``); line breaks are kept. Rich's own cursor moves (control segments, a
    live bar's redraw) and styles (added when the text is rendered) are untouched."""

    def _render_buffer(self, buffer: Any) -> str:
        return super()._render_buffer(
            segment if segment.control or not _CONTROL_IN_LINE.search(segment.text)
            else Segment(_CONTROL_IN_LINE.sub(_escaped, segment.text), segment.style, segment.control)
            for segment in buffer)


class PipeFriendlyConsole(SafeConsole):
    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.is_terminal and kwargs.get("width") is None:
            saved_columns = [_fit_to_terminal(self, obj) for obj in objects if isinstance(obj, Table)]
            try:
                return super().print(*objects, **kwargs)
            finally:
                for column, width, overflow in (item for saved in saved_columns for item in saved):
                    column.width, column.overflow = width, overflow
        if self.is_terminal or kwargs.get("width") is not None:
            return super().print(*objects, **kwargs)
        if objects and all(isinstance(obj, (str, Text)) for obj in objects):
            kwargs.setdefault("soft_wrap", True)  # a message is one line in a pipe, never cut at column 80
            return super().print(*objects, **kwargs)
        wide = self.options.update_width(_UNBOUNDED)
        natural = max((Measurement.get(self, wide, obj).maximum for obj in objects if isinstance(obj, Table)),
                      default=0)
        if natural <= self.width:
            return super().print(*objects, **kwargs)
        # Console.print caps a per-call width at the console's own, so widen the console for this one call.
        saved = self._width
        self.width = natural
        try:
            return super().print(*objects, **kwargs)
        finally:
            self._width = saved


def _fit_to_terminal(console: Console, table: Table) -> list[tuple[Any, Any, str]]:
    """Lay out a table wider than the terminal so that no word is cut: rich shrinks the widest columns first and
    cuts what no longer fits (``smollm2-135m-inst…``, ``adrd_predic…``), names a reader has to copy. Where every
    column's longest word fits, each column gets at least that and the rest of the width goes to the columns in
    proportion to what they lack; where not, the first column (the row's name) keeps its longest word and the others
    fold rather than cut. Returns each changed column's former (column, width, overflow), to restore after printing."""
    try:  # rich's own column measures (internal: a rich that renames them gets rich's layout)
        ranges = [table._measure_column(console, console.options, column) for column in table.columns]
        available = console.width - table._extra_width
        pads = [table._get_padding_width(index) for index in range(len(table.columns))]
    except (AttributeError, TypeError):
        return []
    if not ranges or sum(r.maximum for r in ranges) <= available or any(c.width is not None for c in table.columns):
        return []
    saved = [(column, column.width, column.overflow) for column in table.columns]
    lowest = [max(r.minimum, pad + 1) for r, pad in zip(ranges, pads)]
    if sum(lowest) <= available:
        spare, lacking = available - sum(lowest), [r.maximum - low for r, low in zip(ranges, lowest)]
        widths = [low + spare * lack // max(sum(lacking), 1) for low, lack in zip(lowest, lacking)]
        for column, width, pad in zip(table.columns, widths, pads):
            column.width = width - pad
    else:
        for column in table.columns:
            column.overflow = "fold"
        if lowest[0] <= available // 2:
            table.columns[0].width = lowest[0] - pads[0]
    return saved


def make_console(*, stderr: bool = False) -> Console:
    """A console for medbench's command line (stdout, or stderr with ``stderr=True``). Markup is off: what it prints
    carries labels, paths, task names and plugins' text, whose brackets (``medbench[vllm]``, ``team[a]/model``) are
    text; styled words are ``rich.text.Text`` with a style."""
    return PipeFriendlyConsole(stderr=stderr, markup=False)


def labelled(label: str, style: str, message: str) -> Text:
    """``Error: message`` with the label styled and the message as written (its control characters escaped: it
    can quote a record's label or a folder's name)."""
    return Text.assemble((label, style), " ", terminal_safe(message))


# C0 and C1 control characters and DEL (ESC starts the terminal's own sequences), and the bidirectional controls
# that reorder what a terminal shows (U+202E).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# The same, less the line break: a rendered segment may hold several lines (a newline segment alone is left as is).
_CONTROL_IN_LINE = re.compile("(?!\n)" + _CONTROL.pattern)


_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def display_safe(text: Any) -> str:
    """``text`` for a page (HTML, Markdown): control and bidirectional characters shown as their escapes, since
    U+202E would make a label read backwards; line breaks and tabs are kept (prompts are shown as written)."""
    return _HIDDEN.sub(_escaped, str(text))


def markdown_text(text: Any) -> str:
    """``text`` (a label, a recipe's words) as one Markdown table cell or line that shows exactly as written: no
    HTML, no cell break (``|``), no line break (a CR ends a Markdown line as a newline does), no link, image or
    code span (``[x](javascript:...)``, ``![](http://tracker/)``; the backslash first, so it cannot undo them)."""
    return (display_safe(text).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("`", "\\`")
            .replace("&", "&amp;").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))


def short_repr(value: Any, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters with "...": a bad value quoted in a one-line error."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _escaped(match: re.Match) -> str:
    return repr(match.group())[1:-1]


def lines_safe(text: Any) -> str:
    """``text`` of several lines (a traceback quoting a label) with every control character but the line break
    shown as its escape."""
    return _CONTROL_IN_LINE.sub(_escaped, str(text))


def terminal_safe(text: Any) -> str:
    """``text`` (from a record or a file: a label, a task name) with every control character shown as its escape
    (``\\x1b``), never sent to the terminal: ESC[2J would clear the screen, an OSC sequence retitle the window."""
    return _CONTROL.sub(_escaped, str(text))
