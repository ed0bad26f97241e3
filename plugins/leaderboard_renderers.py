"""Leaderboard renderers: a README-ready Markdown table and a JSON file."""

from __future__ import annotations

from pathlib import Path

from medbench import hookimpl
from medbench.records import atomic_write_json, atomic_write_text


def _fmt(cell) -> str:
    if cell is None or cell.score is None:
        return "–"
    text = f"{cell.score:.3f}"
    if cell.stderr is not None:
        text += f" ± {cell.stderr:.3f}"
    return f"{text} (n={cell.n})"


def _escape_md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(table, out_dir: Path) -> Path:
    header = ["checkpoint", "weights", "mean", *table.columns]
    lines = ["| " + " | ".join(map(_escape_md, header)) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        mean = row.mean_score()
        cells = [_escape_md(row.label), f"`{row.weights_hash[:12]}`", "–" if mean is None else f"{mean:.3f}"]
        cells += [_fmt(row.cells.get(col)) for col in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    metrics = sorted({cell.metric for row in table.rows for cell in row.cells.values()})
    lines += ["", f"Score: the task's primary metric ({', '.join(metrics)}) ± its standard error; n = items scored.",
              "Research use only, not for clinical decisions."]
    path = out_dir / "leaderboard.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def render_json(table, out_dir: Path) -> Path:
    path = out_dir / "leaderboard.json"
    atomic_write_json(path, table.as_dict())
    return path


@hookimpl
def register_leaderboard_renderers(register):
    register("md", render_markdown)
    register("json", render_json)
