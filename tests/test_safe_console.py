"""The CLI's consoles escape control characters in whatever they print, not only where a caller remembered
terminal_safe: a table cell, a panel, a multi-line message and a live bar's text all show ESC as ``\\x1b``, while
line breaks, styles and rich's own cursor moves (a live bar's redraw) reach the terminal unchanged."""

from __future__ import annotations

import io

from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from medbench import progress
from medbench.console import PipeFriendlyConsole, SafeConsole, make_console

PAYLOAD = "a\x1b[2Jb\x1b]0;TITLE\x1b\\c\u202ed"
RAW = ("\x1b[2J", "\x1b]0;", "\u202e")


def printed(*renderables, terminal: bool) -> str:
    buffer = io.StringIO()
    console = PipeFriendlyConsole(file=buffer, force_terminal=terminal, color_system="truecolor" if terminal else None,
                                  markup=False)
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue()


def test_every_kind_of_renderable_is_escaped_on_a_terminal_and_in_a_pipe():
    table = Table("task", "label")
    table.add_row(PAYLOAD, "two\nlines " + PAYLOAD)
    for terminal in (True, False):
        out = printed(table, Panel(PAYLOAD), Text(PAYLOAD, style="bold"), "line one\n" + PAYLOAD, terminal=terminal)
        for raw in RAW:
            assert raw not in out, (raw, terminal)
        assert out.count("\\x1b") == 15 and out.count("\\u202e") == 5  # 5 payloads, each shown whole
        assert "line one\n" in out  # line breaks are text, not controls


def test_styles_still_reach_a_terminal():
    out = printed(Text("bold words", style="bold"), terminal=True)
    assert "\x1b[1m" in out and "bold words" in out


def test_a_live_bar_draws_exactly_as_rich_draws_it():
    """Rich's cursor moves are control segments: the safe console leaves them alone."""
    drawn = []
    for console_class in (Console, SafeConsole):
        buffer = io.StringIO()
        console = console_class(file=buffer, force_terminal=True, width=60, markup=False)
        with Progress(console=console, auto_refresh=False) as bar:
            task = bar.add_task("work", total=2)
            for _ in range(2):
                bar.advance(task)
                bar.refresh()
        drawn.append(buffer.getvalue())
    assert drawn[0] == drawn[1] and "\x1b[2K" in drawn[1]


def test_the_cli_and_progress_consoles_are_safe_consoles():
    assert isinstance(progress.console, SafeConsole) and isinstance(make_console(stderr=True), SafeConsole)


def test_plugin_new_shows_a_directory_named_with_escapes_escaped(tmp_path):
    from medbench.testing import invoke_cli

    result = invoke_cli("plugin", "new", "cardio-notes", "--dir", str(tmp_path / "odd\x1b[2Jdir"))
    assert result.exit_code == 0, result.output
    assert "\x1b[2J" not in result.output and "odd\\x1b[2Jdir" in result.output
    assert (tmp_path / "odd\x1b[2Jdir").is_dir()  # the folder is the one asked for; only its display is escaped


def test_debug_tracebacks_escape_what_the_messages_quote(capsys):
    """`medbench --debug` lets an exception reach Python's hook, which would print its message raw."""
    from medbench import cli

    try:
        raise RuntimeError("label " + PAYLOAD)
    except RuntimeError as exc:
        cli._print_traceback(type(exc), exc, exc.__traceback__)
    error = capsys.readouterr().err
    assert "Traceback (most recent call last):\n" in error and "RuntimeError: label a\\x1b[2Jb" in error
    for raw in RAW:
        assert raw not in error


def test_the_program_installs_the_safe_traceback_hook(monkeypatch):
    from medbench import cli

    monkeypatch.setattr("sys.excepthook", None)
    monkeypatch.setattr("sys.argv", ["medbench", "--version"])
    try:
        cli.main()
    except SystemExit:
        pass
    import sys
    assert sys.excepthook is cli._print_traceback
