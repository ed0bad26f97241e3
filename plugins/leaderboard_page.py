"""index.html: one self-contained static page (no server, no CDN). page/leaderboard.html.j2 is rendered by Jinja2
with autoescape; page/leaderboard.css and page/leaderboard.js are inlined; the SVG plots come from
leaderboard_plots. A sortable, filterable table with one column per task, CIs, significant differences from the
baseline marked, and a drill-down into each cell's per-item predictions. Fragments built here escape every
record-derived text themselves (esc); the data the page script reads is JSON in a ``<script
type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, so no string can close the block."""

from __future__ import annotations

import functools
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from markupsafe import Markup

from medbench.leaderboard import NOTICE, Cell, LeaderboardTable, Row, data_source, per_item_values
from medbench.leaderboard.references import BADGE, DESCRIPTION, ReferenceCell, reference_notes
from medbench.console import display_safe
from medbench.records import atomic_write_text
from medbench.svg import esc
from medbench_plugins.leaderboard_plots import factor_points, svg_factor, svg_forest
from medbench_plugins.leaderboard_row_details import row_details_html
from medbench_plugins.leaderboard_text import (DEGENERATE_NOTE, DOWN, SOURCE_TEXT, UP, ci_degenerate, ci_text,
                                               clean_num, coverage_text, counts_text, fmt_num, method_text, p_text,
                                               plural, shorten, significance_mark, source_details, source_text,
                                               test_name)

SAMPLES_PER_CELL = 200  # per-item predictions embedded per cell in index.html


PROMPT_CHARS = 4000  # longer prompts are cut in index.html (the samples.jsonl keeps them whole)


def json_for_script(data: Any) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' survives, so neither '</script>' nor '<!--' can
    appear; U+2028/2029 are escaped too. The result is still valid JSON (they become \\u escapes in strings)."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _jsonable(value: Any, depth: int = 0) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, (dict, list, tuple)) and depth > 200:  # records are read to 64 levels: never this deep
        return None
    if isinstance(value, str):  # the script shows these as text: U+202E would reverse a label there too
        return display_safe(value)
    if isinstance(value, dict):
        return {display_safe(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return value


def _loglik(value: Any) -> float | None:
    """A per-choice log-likelihood as the drill-down shows it; None for what is no finite number (text, null, a
    list: samples are untrusted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return round(number, 3) if math.isfinite(number) else None


def _other_metrics(cell: Cell) -> list[str]:
    """``also: macro_f1 0.267, stage_distance 0.850 (lower is better)``: the record's other metrics (a plugin's
    medbench_metrics among them), which the table itself does not show."""
    from medbench.metrics import metric_registry

    registry = metric_registry()
    shown = []
    for name, metric in sorted(((cell.record or {}).get("metrics") or {}).items()):
        value = metric.get("value") if isinstance(metric, dict) else None
        if name == cell.metric or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        lower = name in registry and not registry[name].higher_is_better
        shown.append(f"{display_safe(name)} {fmt_num(float(value))}" + (" (lower is better)" if lower else ""))
    return ["also: " + ", ".join(shown)] if shown else []


def _cell_title(table: LeaderboardTable, cell: Cell) -> str:
    record = cell.record or {}
    task = record.get("task") or {}
    versions = record.get("versions") or {}
    lines = [f"{cell.metric} = {fmt_num(cell.score)}"
             + (f", {int(table.confidence * 100)}% CI {ci_text(cell)} ({cell.ci_method})" if ci_text(cell) else "")
             + f", n={cell.n}"] + ([DEGENERATE_NOTE] if ci_degenerate(cell) else []) + _other_metrics(cell)
    comparison = cell.comparison
    if comparison is not None:
        if comparison.p is not None:
            counts = (f", b={comparison.b} c={comparison.c} (b: right only in the baseline, c: right only here)"
                      if comparison.b is not None else "")
            paired = plural(comparison.n_paired, "paired item")
            lines.append(f"vs baseline: Δ={comparison.delta:+.3f} on {paired}, {test_name(comparison)}{counts}"
                         f", {p_text('p', comparison.p)}, BH {p_text('q', comparison.q)}"
                         + (" (significant)" if comparison.significant else ""))
        elif comparison.note:
            lines.append(f"vs baseline: {comparison.note}")
    lines.append(f"data {task.get('split', '?')} split, hash {task.get('data_hash', '?')}, "
                 f"{task.get('num_fewshot', 0)}-shot, task v{task.get('version', '?')} ({task.get('plugin', '?')})")
    lines.append("config " + json.dumps(record.get("config") or {}, sort_keys=True, default=str))
    lines.append("versions " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    lines.append(f"scored {record.get('created', '?')}" + (f", re-scored {record['rescored']}"
                                                            if record.get("rescored") else ""))
    lines.append("click for the per-item predictions")
    return "\n".join(lines)


# The user turn of common chat templates (ChatML, Llama 3, Gemma, Phi-3, Llama 2 / Mistral): the drill-down shows
# the question first and folds the system preamble and turn markers away.
_USER_TURNS = [re.compile(p, re.S) for p in (
    r"<\|im_start\|>user\n(.*?)<\|im_end\|>",
    r"<\|start_header_id\|>user<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>",
    r"<start_of_turn>user\n(.*?)<end_of_turn>", r"<\|user\|>\n(.*?)<\|end\|>",
    r"\[INST\](?:\s*<<SYS>>.*?<</SYS>>)?\s*(.*?)\s*\[/INST\]",
)]


def chat_question(prompt: str) -> str | None:
    """The last user turn of a chat-template prompt (the question; earlier turns are few-shot examples), or None
    when no known template matches."""
    for pattern in _USER_TURNS:
        turns = pattern.findall(prompt)
        if turns and turns[-1].strip():
            return turns[-1].strip()
    return None


def _choice_labels(table: LeaderboardTable) -> dict[tuple[str, str], dict[Any, list[str]]]:
    """(task, data hash) -> doc_id -> choice labels, from every sample on the page that lists them: a record
    written before samples carried their choices borrows them from one scored on the same data."""
    labels: dict[tuple[str, str], dict[Any, list[str]]] = {}
    for row in table.rows:
        for cell in row.cells.values():
            task = (cell.record or {}).get("task") or {}
            known = labels.setdefault((str(task.get("name")), str(task.get("data_hash"))), {})
            for sample in cell.samples:
                if isinstance(sample.get("choices"), list):
                    known.setdefault(sample.get("doc_id"), [str(c) for c in sample["choices"]])
    return labels


def answer_text(value: Any, choices: list[str] | None) -> Any:
    """Gold or prediction in one format everywhere: ``3 · D`` for a choice index whose label is known, the bare
    index when no record of the task names its choices, ``–`` for no answer (a generation naming no choice)."""
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool) and choices and 0 <= value < len(choices):
        return f"{value} · {choices[value]}"
    return value


def _samples_payload(table: LeaderboardTable, row: Row, col: str, cell: Cell, prompts: dict[str, int],
                     prompt_list: list[str], labels: dict[tuple[str, str], dict[Any, list[str]]] | None = None
                     ) -> dict[str, Any]:
    task = (cell.record or {}).get("task") or {}
    known = (labels or {}).get((str(task.get("name")), str(task.get("data_hash"))), {})
    chat = bool(((cell.record or {}).get("config") or {}).get("chat_template"))

    def text(sample: dict[str, Any], key: str) -> Any:
        choices = sample.get("choices") if isinstance(sample.get("choices"), list) else known.get(sample.get("doc_id"))
        return answer_text(sample.get(key), choices)

    def prompt_index(prompt: str) -> int:
        if len(prompt) > PROMPT_CHARS:
            prompt = prompt[:PROMPT_CHARS] + f"… [{len(prompt) - PROMPT_CHARS} more characters in samples.jsonl]"
        if prompt not in prompts:
            prompts[prompt] = len(prompt_list)
            prompt_list.append(prompt)
        return prompts[prompt]

    base_preds: dict[Any, Any] = {}
    if table.baseline is not None and table.baseline is not row and col in table.baseline.cells:
        base_preds = {s.get("doc_id"): text(s, "pred") for s in table.baseline.cells[col].samples}
    # The per-item column: the metric's own per-item value (acc), else whether the prediction equals the gold.
    per_item = per_item_values(cell.metric, cell.samples) is not None
    out = []
    for sample in cell.samples[:SAMPLES_PER_CELL]:
        prompt = sample.get("prompt")
        prompt = "" if prompt is None else str(prompt)
        value = sample.get(cell.metric) if per_item else (
            float(sample["gold"] == sample["pred"]) if "gold" in sample and "pred" in sample else None)
        logliks = sample.get("logliks")
        item = {"id": sample.get("doc_id"), "gold": text(sample, "gold"), "pred": text(sample, "pred"),
                "v": value if isinstance(value, (int, float)) else None, "p": prompt_index(prompt),
                "ll": [_loglik(v) for v in logliks] if isinstance(logliks, list) else None}
        question = chat_question(prompt) if chat else None
        if question is not None and question != prompt:
            item["q"] = prompt_index(question)  # shown first; the whole chat-wrapped prompt stays one click away
        if base_preds:
            item["bp"] = base_preds.get(sample.get("doc_id"))
        if sample.get("response") is not None:  # generated text the prediction was extracted from
            item["r"] = str(sample["response"])[:PROMPT_CHARS]
        out.append(item)
    comparison = cell.comparison.as_dict() if cell.comparison else None
    return {"row": row.label, "weights": row.weights_hash, "column": col, "metric": cell.metric,
            "item_metric": cell.metric if per_item else "correct",
            "score": cell.score, "ci": [cell.ci_low, cell.ci_high], "ci_method": cell.ci_method, "n": cell.n,
            "ci_degenerate": ci_degenerate(cell), "total": len(cell.samples), "samples": out, "comparison": comparison,
            "baseline": table.baseline.label if base_preds else None,
            "provenance": (cell.as_dict().get("provenance") if cell.record else None)}


def _badge(source: dict[str, Any]) -> str:
    """A data-source badge; its tooltip carries the description (escaped like every other record text)."""
    kind = str(source.get("kind") or "unknown")
    css = kind if kind in SOURCE_TEXT else "other"
    return (f'<span class="src src-{css}" title="{esc(source_details(source))}">'
            f'{esc(shorten(source_text(source), 48))}</span>')


def _mixed_columns(info: dict[str, dict[str, Any]]) -> set[str]:
    return {col for col, entry in info.items() if len(entry["data_sources"]) > 1}


def _aggregate_cell(value: float | None, row: Row, title: str = "") -> str:
    """win rate / mean / weighted: sorted by coverage tier first (data-tier), so a partial row never sorts above
    a more complete one; a partial row's aggregate shows its coverage."""
    cov = "" if row.complete else f'<span class="cov">{esc(coverage_text(row))}</span>'
    tip = f' title="{esc(title)}"' if title else ""
    css = "num" if row.complete else "num partial"
    return (f'<td class="{css}" data-tier="{row.tier}" data-value="{esc(clean_num(value))}"{tip}>{fmt_num(value)}{cov}'
            f'</td>')


def _score_cell(table: LeaderboardTable, row: Row, col: str, cell: Cell | None, cell_id: str | None,
                badge: bool = False) -> str:
    if cell is None or cell.score is None:
        return f'<td class="score-cell empty" data-col="{esc(col)}" data-value="">–</td>'
    mark = significance_mark(cell)
    state = "better" if mark == UP else "worse" if mark == DOWN else ""
    attrs = f' data-cell="{esc(cell_id)}" tabindex="0"' if cell_id else ""
    parts = [f'<td class="score-cell {state}" data-col="{esc(col)}" data-value="{cell.score!r}"{attrs} '
             f'title="{esc(_cell_title(table, cell) if cell.record else "")}">',
             f'<span class="score">{fmt_num(cell.score)}</span>']
    if mark:
        parts.append(f' <span class="mark {state}" aria-label="significantly {state} than the baseline">{mark}</span>')
    if cell.sd is not None or cell.runs > 1:
        runs = plural(cell.runs, "run")
        parts.append(f'<span class="ci">± {fmt_num(cell.sd)} sd</span><span class="n">{runs}</span>')
    else:
        ci = ci_text(cell)
        if ci:
            parts.append(f'<span class="ci{" degenerate" if ci_degenerate(cell) else ""}">{esc(ci)}</span>')
        parts.append(f'<span class="n">n={cell.n}</span>')
    if badge and cell.record is not None:  # a column whose cells come from different data: each says its own
        parts.append(_badge(data_source(cell.record)))
    parts.append("</td>")
    return "".join(parts)


def _reference_cell(col: str, cell: ReferenceCell | None) -> str:
    if cell is None:
        return f'<td class="ref-cell empty" data-col="{esc(col)}">–</td>'
    tip = f' title="{esc(cell.note)}"' if cell.note else ""
    if cell.score is None:
        return (f'<td class="ref-cell na" data-col="{esc(col)}"{tip}>–<span class="ref-note">not comparable'
                '</span></td>')
    return (f'<td class="ref-cell" data-col="{esc(col)}" data-value="{cell.score!r}"{tip}><span class="score">'
            f'{fmt_num(cell.score)}</span><span class="n">n={cell.n} · {esc(cell.scope)}</span></td>')


def _references_html(table: LeaderboardTable, info: dict[str, dict[str, Any]]) -> str:
    """The reference rows in a table of their own (not sortable, not among the checkpoints), with their notes."""
    notes = "".join(f"<li>{esc(col)}: {esc(note)}</li>" for col, note in reference_notes(table))
    notes += "".join(f"<li>{esc(note)}</li>" for note in table.reference_notes)
    notes = f'<ul class="note">{notes}</ul>' if notes else ""
    if not table.references:
        return notes
    head = "".join(f'<th data-col="{esc(col)}"><span class="th-name">{esc(col)}</span>'
                   f'<small>{esc(", ".join(info[col]["metrics"]))}</small></th>' for col in table.columns)
    body = "".join(f'<tr class="reference" data-reference="{esc(ref.key)}"><th scope="row" class="rowlabel">'
                   f'{esc(ref.label)}<span class="tag ref">{esc(BADGE)}</span></th>'
                   + "".join(_reference_cell(col, ref.cells.get(col)) for col in table.columns) + "</tr>"
                   for ref in table.references)
    return (f'<h2 id="references-title">Reference baselines <span class="tag ref">{esc(BADGE)}</span></h2>'
            f'<p class="note">{esc(DESCRIPTION)}</p><div class="table-wrap"><table id="references" '
            f'class="references" aria-labelledby="references-title"><thead><tr><th>reference</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{notes}")


def _header(table: LeaderboardTable, info: dict[str, dict[str, Any]], first: str) -> str:
    tiers = " (rows scored on fewer tasks always sort below rows scored on more)"
    cells = [f'<th data-sort-type="text" data-first-dir="ascending"><span class="th-name">{esc(first)}</span></th>',
             f'<th data-sort-type="num" data-tiered="1" title="HELM mean win rate over the row\'s task columns{tiers}">'
             '<span class="th-name">win rate</span></th>',
             f'<th data-sort-type="num" data-tiered="1" title="mean over the row\'s higher-is-better tasks{tiers}">'
             '<span class="th-name">mean</span></th>',
             f'<th data-sort-type="num" data-tiered="1" title="higher-is-better tasks, weighted by items{tiers}">'
             '<span class="th-name">weighted</span></th>']
    for col in table.columns:
        direction = "descending" if info[col]["higher_is_better"] else "ascending"
        sources = info[col]["data_sources"]
        badge = _badge(sources[0]) if len(sources) == 1 else (
            '<span class="src src-mixed" title="the rows of this column were scored on data from different sources; '
            'each cell shows its own">mixed sources</span>')
        cells.append(f'<th data-sort-type="num" data-first-dir="{direction}" data-col="{esc(col)}">'
                     f'<span class="th-name">{esc(col)}</span><small>{esc(", ".join(info[col]["metrics"]))}</small>'
                     f'{badge}</th>')
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


PAGE_DIR = Path(__file__).parent / "page"  # the page's template, CSS and JS: package data, inlined on render


@functools.lru_cache(maxsize=None)
def _page_file(name: str) -> str:
    return (PAGE_DIR / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _page_template():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # Text the template prints (a column, a label) gets display_safe before HTML escaping; fragments did their own.
    environment = Environment(loader=FileSystemLoader(PAGE_DIR), autoescape=True, keep_trailing_newline=True,
                              undefined=StrictUndefined, finalize=lambda v: v if isinstance(v, Markup) else display_safe(v))
    return environment.get_template("leaderboard.html.j2")


def render_html(table: LeaderboardTable, out_dir: Path) -> Path:
    info = table.column_info()
    mixed = _mixed_columns(info)
    prompts: dict[str, int] = {}
    prompt_list: list[str] = []
    cells_data: dict[str, Any] = {}
    labels = _choice_labels(table)
    body = []
    for r_index, row in enumerate(table.rows):
        classes = "baseline" if row.is_baseline else ""
        search = f"{row.label} {row.weights_hash}".lower()
        tag = '<span class="tag">baseline</span>' if row.is_baseline else ""
        label = (f'<th scope="row" class="rowlabel" data-value="{esc(row.label)}"><details><summary>{esc(row.label)}'
                 f'{tag}</summary>{row_details_html(row)}</details></th>')
        partial = "" if row.complete else (f"over this row's {coverage_text(row)} only: not comparable with rows "
                                           "scored on more tasks")
        cells = [label, _aggregate_cell(row.win_rate, row, partial), _aggregate_cell(row.mean_score(), row, partial),
                 _aggregate_cell(row.weighted_score(), row, partial)]
        for c_index, col in enumerate(table.columns):
            cell = row.cells.get(col)
            cell_id = None
            if cell is not None and cell.score is not None:
                cell_id = f"c{r_index}_{c_index}"
                cells_data[cell_id] = _samples_payload(table, row, col, cell, prompts, prompt_list, labels)
            cells.append(_score_cell(table, row, col, cell, cell_id, badge=col in mixed))
        body.append(f'<tr class="{classes}" data-key="{esc(row.key)}" data-label="{esc(row.label)}" '
                    f'data-search="{esc(search)}" data-coverage="{row.coverage}/{row.coverage_of}">'
                    + "".join(cells) + "</tr>")

    group_rows = []
    for group in table.groups:
        seeds = ", ".join(str(s) for s in group.model.get("seeds", []))
        cells = [f'<th scope="row" class="rowlabel" data-value="{esc(group.label)}">{esc(group.label)}'
                 f'<span class="tag group">seeds {esc(seeds)}</span></th>',
                 '<td class="num" data-value="">–</td>', _aggregate_cell(group.mean_score(), group),
                 _aggregate_cell(group.weighted_score(), group)]
        cells += [_score_cell(table, group, col, group.cells.get(col), None) for col in table.columns]
        group_rows.append(f'<tr data-label="{esc(group.label)}">' + "".join(cells) + "</tr>")

    forest = "".join(svg_forest(table, col) for col in table.columns)
    factor_plots = "".join(svg_factor(table, task, factor, items)
                           for (task, _metric, _scoring, factor), items in factor_points(table).items())
    data = _jsonable({"cells": cells_data, "prompts": prompt_list, "columns": table.columns,
                      "baseline": table.baseline.label if table.baseline else None, "notice": NOTICE,
                      "confidence_pct": int(table.confidence * 100), "degenerate_note": DEGENERATE_NOTE})
    # Fragments built above escape their own text (_e); everything else is escaped by the template.
    page = _page_template().render(
        css=Markup(_page_file("leaderboard.css")), js=Markup(_page_file("leaderboard.js")), notice=NOTICE,
        counts=counts_text(table),
        baseline=table.baseline, generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        columns=table.columns, header=Markup(_header(table, info, "checkpoint")), body=Markup("".join(body)),
        references=Markup(_references_html(table, info)), method=method_text(table), notes=table.notes,
        groups=Markup("".join(group_rows)), groups_header=Markup(_header(table, info, "group")),
        confidence_pct=int(table.confidence * 100), forest=Markup(forest), factor_plots=Markup(factor_plots),
        data_json=Markup(json_for_script(data)))
    path = out_dir / "index.html"
    atomic_write_text(path, page)
    return path
