"""`medbench leaderboard`: render every record of a leaderboard folder, with CIs and paired tests."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from medbench.commands.common import Folder, Named, console, err_console, split_list
from medbench.console import terminal_safe
from medbench.errors import MedbenchError


def _check_metric_plugins(strict: bool) -> None:
    """A register_metrics hook that raises: --rescore cannot recompute those metrics, so it stops (never a
    "re-scored" success line); rendering goes on without them, with a one-line warning naming the plugin."""
    from medbench.metrics import metric_registry
    from medbench.plugin_calls import PluginHookError
    from medbench.plugins import PluginLoadWarning

    try:
        metric_registry()
    except PluginHookError as exc:
        if strict:
            raise
        warnings.warn(PluginLoadWarning(f"{exc.problem}; its metrics get no confidence intervals or comparisons "
                                        f"in this leaderboard — {exc.fix}"), stacklevel=2)


@click.command("leaderboard")
@click.option("--leaderboard-dir", "--dir", "root", type=Folder(), default="leaderboard",
              show_default=True, help="The leaderboard folder (as `eval` and `train --leaderboard-dir` name it).")
@click.option("--format", "formats", multiple=True,
              help="Output format, repeatable or comma-separated: md, json, csv, html, ... (default: all registered).")
@click.option("--baseline", type=Named(), default=None,
              help="Row every other row is compared with: a label or weights-hash prefix; 'none' for no comparisons "
                   "(default: the base model the other rows were trained from, if there is one).")
@click.option("--rescore", is_flag=True, help="Re-score every record from its samples.jsonl before rendering.")
@click.option("--open", "open_page", is_flag=True, help="Open index.html in a web browser afterwards.")
@click.option("--no-baselines", is_flag=True,
              help="Leave out the reference rows (each task's majority-class, bag-of-words LR and lead-3 "
                   "baselines; fitted once per task config, cached under --leaderboard-dir/.cache/baselines).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the table as JSON on stdout (what leaderboard.json holds) instead of the terminal view.")
def leaderboard_command(root: str, formats: tuple[str, ...], baseline: str | None, rescore: bool,
                        open_page: bool, no_baselines: bool, as_json: bool) -> None:
    """Render every record under --leaderboard-dir into leaderboard files (with CIs and paired tests); print it."""
    from medbench.leaderboard import render_table, rescore_all

    chosen = [f for value in formats for f in split_list(value)]
    if formats and not chosen:  # `--format ,` names no format: rendering every one would not be what was asked
        raise MedbenchError(f"--format {','.join(formats)!r} names no format", "name one or more: --format md,html")
    if Path(root).exists() and not Path(root).is_dir():  # a FIFO blocked the directory lock's open() for ever
        raise MedbenchError(f"--leaderboard-dir {root} is a file, FIFO or device, not a folder",
                            "pass the leaderboard folder `medbench eval --leaderboard-dir` wrote")
    _check_metric_plugins(strict=rescore)
    if rescore:
        err_console.print(f"re-scored {len(rescore_all(Path(root)))} record(s) from their samples", highlight=False)
    table, paths = render_table(Path(root), chosen or None, baseline,
                                references="off" if no_baselines else "compute",
                                notify=lambda text: err_console.print(terminal_safe(text), highlight=False))
    if as_json:
        click.echo(json.dumps(table.as_dict(), indent=2, default=str))
    else:
        _print_table(table, root)
    err_console.print(terminal_safe("wrote " + ", ".join(str(p) for p in paths)), highlight=False)
    if open_page:
        html_path = next((p for p in paths if p.suffix == ".html"), None)
        if html_path is None:
            raise MedbenchError("--open needs the html format", "add --format html, or leave --format out")
        import webbrowser

        if not webbrowser.open(html_path.resolve().as_uri()):  # a server or container: no browser to start
            err_console.print(terminal_safe(f"--open: no web browser found here; open {html_path.resolve()} in one"),
                              highlight=False)


def _print_references(table: Any) -> None:
    """The reference rows as a table of their own, below the checkpoints and never among them."""
    from rich.text import Text

    from medbench.leaderboard.references import BADGE, reference_notes, reference_text

    # Record-derived text (task names, labels in the notes) goes through terminal_safe: no control sequences.
    for note in table.reference_notes:
        err_console.print(Text(f"note: {terminal_safe(note)}"), highlight=False)
    if not table.references:
        return
    view = Table(title=f"reference baselines ({BADGE}; never ranked)", title_style="italic")
    for name in ["reference", *table.columns]:
        view.add_column(Text(terminal_safe(name)), overflow="fold", style="italic")
    for ref in table.references:
        view.add_row(Text(f"{terminal_safe(ref.label)} [{BADGE}]"),
                     *(Text(terminal_safe(reference_text(ref.cells.get(col)))) for col in table.columns))
    console.print(view)
    for col, note in reference_notes(table):
        console.print(Text(f"  {terminal_safe(col)}: {terminal_safe(note)}", style="dim"))


def _cell_text(cell: Any) -> str:
    """score [CI] (a zero-width one marked †) and ▲/▼ for a significant difference from the baseline."""
    from medbench.leaderboard.display import DEGENERATE_MARK, ci_degenerate

    if cell is None or cell.score is None:
        return "–"
    comparison = cell.comparison
    mark = "" if not (comparison and comparison.significant) else (
        " ▲" if comparison.direction == "better" else " ▼")
    ci = "" if cell.ci_low is None or cell.ci_high is None else (
        f" [{cell.ci_low:.3f}, {cell.ci_high:.3f}]" + (DEGENERATE_MARK if ci_degenerate(cell) else ""))
    return f"{cell.score:.3f}{ci}{mark}"


def _print_table(table: Any, root: str) -> None:
    from rich.text import Text

    from medbench.leaderboard.display import DEGENERATE_NOTE, any_degenerate, source_details, source_text

    info = table.column_info()
    view = Table(title=Text(terminal_safe(f"leaderboard ({root})" + (f", baseline {table.baseline.label}"
                                                                     if table.baseline else ""))))
    for name in ["checkpoint", "win rate", "mean"]:
        view.add_column(Text(name), overflow="fold")
    for col in table.columns:  # the task, and under it the metric its scores are in (as leaderboard.md heads it)
        header = Text(terminal_safe(col))
        header.append("\n" + terminal_safe(", ".join(info[col]["metrics"])), style="dim")
        view.add_column(header, overflow="fold")
    for row in table.rows:
        mean, rate = row.mean_score(), row.win_rate
        partial = "" if row.complete else f" ({row.coverage}/{row.coverage_of} tasks)"  # not comparable: say so
        view.add_row(Text(terminal_safe(row.label) + (" (baseline)" if row.is_baseline else "")),
                     "–" if rate is None else f"{rate:.3f}{partial}", "–" if mean is None else f"{mean:.3f}{partial}",
                     *(Text(_cell_text(row.cells.get(col))) for col in table.columns))
    console.print(view)
    # One line per (column, source): on a terminal cut to its width, piped whole for scripts and grep.
    fit = {"no_wrap": True, "overflow": "ellipsis"} if console.is_terminal else {}
    console.print(Text("data sources (per task column):"))
    for col in table.columns:
        for source in info[col]["data_sources"]:
            details = source_details(source).replace("\n", "; ")
            line = f"  {col}: {source_text(source)}" + (f" — {details}" if details else "")
            console.print(Text(terminal_safe(line)), **fit)
    if any_degenerate(cell for row in table.rows for cell in row.cells.values()):
        console.print(Text(DEGENERATE_NOTE, style="dim"))
    _print_references(table)
