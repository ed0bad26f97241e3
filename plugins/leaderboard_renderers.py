"""Leaderboard renderers: leaderboard.md (README-ready), leaderboard.json, leaderboard.csv, and index.html
(medbench_plugins.leaderboard_page).

Each task's trivial baselines (majority class, bag-of-words LR, lead-3) appear as reference rows in a section of
their own, badged "reference — not a model": never ranked, never in the checkpoints' table. In leaderboard.csv
every text cell that a spreadsheet would read as a formula is prefixed with a single quote (OWASP's CSV-injection
advice); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from medbench import hookimpl
from medbench.console import display_safe, markdown_text
from medbench.leaderboard import NOTICE, LeaderboardTable, Row, data_source
from medbench.leaderboard.references import BADGE, DESCRIPTION, reference_notes, reference_text
from medbench.records import atomic_write_json, atomic_write_text
from medbench_plugins.leaderboard_page import render_html
from medbench_plugins.leaderboard_text import (aggregate_text, comparisons, fmt_cell, method_text, p_text,
                                               significance_mark, source_details, source_text, test_name)


def _code_md(text: Any) -> str:
    """A code span (a weights hash) when ``text`` is plain (letters, digits, ``.:_-``); a backtick would end the
    span early and a pipe the table cell, so anything else is escaped text instead."""
    text = str(text)
    return f"`{text}`" if re.fullmatch(r"[\w.:-]*", text, re.ASCII) else markdown_text(text)


def _references_markdown(table: LeaderboardTable, info: dict[str, dict[str, Any]]) -> list[str]:
    if not table.references:
        return [f"Note: {markdown_text(note)}" for note in table.reference_notes] + (
            [""] if table.reference_notes else [])
    lines = [f"**Reference baselines** ({BADGE}): {markdown_text(DESCRIPTION)}", "",
             "| reference | " + " | ".join(markdown_text(f"{col} ({', '.join(info[col]['metrics'])})")
                                       for col in table.columns) + " |",
             "|" + "---|" * (len(table.columns) + 1)]
    for ref in table.references:
        lines.append("| " + " | ".join([f"{markdown_text(ref.label)} *({BADGE})*",
                                        *[reference_text(ref.cells.get(col)) for col in table.columns]]) + " |")
    lines.append("")
    lines += [f"- {markdown_text(col)}: {markdown_text(note)}" for col, note in reference_notes(table)]
    lines += [f"- {markdown_text(note)}" for note in table.reference_notes]
    return lines + ([""] if lines[-1] else [])


def render_markdown(table: LeaderboardTable, out_dir: Path) -> Path:
    info = table.column_info()
    header = ["checkpoint", "weights", "win rate", "mean", "weighted",
              *[f"{col} ({', '.join(info[col]['metrics'])})" for col in table.columns]]
    lines = ["| " + " | ".join(map(markdown_text, header)) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        weights = _code_md(row.weights_hash[:12]) + (" (baseline)" if row.is_baseline else "")
        cells = [markdown_text(row.label), weights, aggregate_text(row.win_rate, row),
                 aggregate_text(row.mean_score(), row), aggregate_text(row.weighted_score(), row)]
        cells += [fmt_cell(row.cells.get(col)) for col in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + _references_markdown(table, info)
    lines += [markdown_text(method_text(table)), "", "Data sources (per task column):", ""]  # names the baseline
    for col in table.columns:
        for source in info[col]["data_sources"]:
            details = source_details(source).replace("\n", "; ")
            lines.append(f"- {markdown_text(col)}: {markdown_text(source_text(source))}"
                         + (f" — {markdown_text(details)}" if details else ""))

    if table.baseline is not None and comparisons(table):
        counted = any(comparison.b is not None for comparison in comparisons(table))  # McNemar's
        lines += ["", f"Differences from the baseline ({markdown_text(table.baseline.label)}), paired items: "
                      "Δ, p, BH q, test" + (" (McNemar's b: items only the baseline got right; c: items only this "
                                            "row got right)." if counted else "."), "",
                  "| checkpoint | " + " | ".join(map(markdown_text, table.columns)) + " |",
                  "|" + "---|" * (len(table.columns) + 1)]
        for row in table.rows:
            if row.is_baseline:
                continue
            cells = []
            for col in table.columns:
                comparison = row.cells[col].comparison if col in row.cells else None
                if comparison is None or comparison.p is None:
                    cells.append(markdown_text(comparison.note) if comparison and comparison.note else "–")
                    continue
                test = test_name(comparison)
                extra = f", b={comparison.b} c={comparison.c}" if comparison.b is not None else ""
                cells.append(f"{comparison.delta:+.3f} ({p_text('p', comparison.p)}, {p_text('q', comparison.q)}, "
                             f"{test}, n={comparison.n_paired}{extra}) {significance_mark(row.cells[col])}".rstrip())
            lines.append("| " + " | ".join([markdown_text(row.label), *cells]) + " |")

    if table.groups:
        lines += ["", "Runs that differ only by seed: mean ± sd over the runs.", "",
                  "| group | seeds | " + " | ".join(map(markdown_text, table.columns)) + " |",
                  "|" + "---|" * (len(table.columns) + 2)]
        for group in table.groups:
            seeds = ", ".join(str(s) for s in group.model.get("seeds", []))  # a training record's: any text
            lines.append("| " + " | ".join([markdown_text(group.label), markdown_text(seeds),
                                            *[fmt_cell(group.cells.get(col)) for col in table.columns]]) + " |")
    lines += [""] + [f"Note: {markdown_text(note)}" for note in table.notes] + ([""] if table.notes else []) + [NOTICE]
    path = out_dir / "leaderboard.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def render_json(table: LeaderboardTable, out_dir: Path) -> Path:
    path = out_dir / "leaderboard.json"
    atomic_write_json(path, table.as_dict())
    return path


CSV_FIELDS = ["kind", "checkpoint", "weights_hash", "is_baseline", "seed", "column", "task", "metric", "score",
              "ci_low", "ci_high", "ci_method", "n", "stderr", "sd", "runs", "baseline", "test", "n_paired", "delta",
              "delta_ci_low", "delta_ci_high", "p_value", "q_value", "significant", "direction", "b", "c",
              "win_rate", "mean", "weighted_mean", "tasks_scored", "tasks_total", "data_hash", "data_source_kind",
              "data_source_name", "data_source_version", "data_source_description", "created", "record"]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading single quote (OWASP); numbers, booleans
    and other text are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_rows(table: LeaderboardTable, rows: list[Row]):
    for row in rows:
        for col in table.columns:
            cell = row.cells.get(col)
            if cell is None:
                continue
            comparison = cell.comparison
            record = cell.record or {}
            task = record.get("task") or {}
            source = data_source(cell.record)
            yield {
                "kind": row.kind, "checkpoint": row.label, "weights_hash": row.weights_hash,
                "is_baseline": row.is_baseline, "seed": row.seed if row.kind == "run" else
                " ".join(str(s) for s in row.model.get("seeds", [])),
                "column": col, "task": task.get("name", col), "metric": cell.metric, "score": cell.score,
                "ci_low": cell.ci_low, "ci_high": cell.ci_high, "ci_method": cell.ci_method, "n": cell.n,
                "stderr": cell.stderr, "sd": cell.sd, "runs": cell.runs,
                "baseline": table.baseline.label if table.baseline and comparison else "",
                "test": comparison.test if comparison else "", "n_paired": comparison.n_paired if comparison else "",
                "delta": comparison.delta if comparison else "",
                "delta_ci_low": comparison.ci_low if comparison else "",
                "delta_ci_high": comparison.ci_high if comparison else "",
                "p_value": comparison.p if comparison else "", "q_value": comparison.q if comparison else "",
                "significant": comparison.significant if comparison else "",
                "direction": comparison.direction if comparison else "",
                "b": comparison.b if comparison and comparison.b is not None else "",
                "c": comparison.c if comparison and comparison.c is not None else "",
                "win_rate": row.win_rate, "mean": row.mean_score(), "weighted_mean": row.weighted_score(),
                "tasks_scored": row.coverage, "tasks_total": row.coverage_of,
                "data_hash": task.get("data_hash", ""), "data_source_kind": source.get("kind"),
                "data_source_name": source.get("name"),
                "data_source_version": source.get("sha256") or source.get("revision"),
                "data_source_description": source.get("description"), "created": record.get("created", ""),
                "record": cell.record_path,
            }


def render_csv(table: LeaderboardTable, out_dir: Path) -> Path:
    """One line per (checkpoint, column): tidy, for pandas or a spreadsheet. Seed groups have kind seed-group."""
    buffer = io.StringIO()
    # RFC 4180 line ends: Python's csv quotes a field holding a CR only when the terminator has one.
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for line in _csv_rows(table, table.rows + table.groups):
        # Control characters escaped (ESC[2J would clear a terminal that cats the file); formulas guarded after.
        writer.writerow({k: "" if v is None else csv_safe(v if isinstance(v, (int, float)) else display_safe(v))
                         for k, v in line.items()})
    path = out_dir / "leaderboard.csv"
    atomic_write_text(path, buffer.getvalue())
    return path


@hookimpl
def register_leaderboard_renderers(register):
    register("md", render_markdown)
    register("json", render_json)
    register("csv", render_csv)
    register("html", render_html)
