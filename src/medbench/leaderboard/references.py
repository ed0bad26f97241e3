"""Reference rows: each task's trivial baselines (medbench.baselines) shown beside the models, never as a model.

For every task column with records: "majority class" and "bag-of-words LR" (tasks with labels) or "lead-3" (tasks
scored by ROUGE), with the task's primary metric. They are not leaderboard Rows: never ranked, never in coverage,
win rates or paired tests, never written as records.

A baseline is fitted on the task's bundled train split and scored on its bundled test split, so it is shown only
for rows scored on that very test split (the record's data hash is the bundled test split's). When those rows all
scored the same items of it (``--limit``), the baseline is scored on the same doc ids; when they scored different
items, it is the full split's and says so. Rows scored on other data (the user's file, the hub) get a note, never a
number.

Fitting takes seconds per task, so the baselines' answers per test document are cached under
``<leaderboard>/.cache/baselines/``, one file per task named by its config hash (medbench.task_facts.task_config_hash)
and checked against the hashes of the train and test data and scikit-learn's version.
"""

from __future__ import annotations

import importlib.util

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from medbench.baselines import LEAD_SENTENCES, TaskPredictions, task_predictions
from medbench.errors import MedbenchError
from medbench.records import atomic_write_json, read_regular_text, refuse_links, slug, through_link

if TYPE_CHECKING:
    from medbench.leaderboard import Cell, LeaderboardTable, Row

MODES = ("compute", "cached", "off")  # compute what is missing / show only what is cached / none
CACHE_DIR = Path(".cache") / "baselines"
CACHE_FORMAT = 1
KINDS = (("majority", "majority class"), ("bow_lr", "bag-of-words LR"), ("lead", f"lead-{LEAD_SENTENCES}"))
BADGE = "reference — not a model"
DESCRIPTION = ("Trivial baselines fitted on the task's bundled train split and scored on its bundled test split "
               "with the task's primary metric (medbench.baselines): what a model must beat before its score means "
               "anything. References, not models: never ranked, never counted in coverage, win rates or paired "
               "tests.")
# Per-item accuracy under another name (generate mode's exact_match, lm-eval's acc_norm): the task's acc.
ACCURACY = {"acc", "acc_norm", "exact_match"}
MAX_NAMED = 3  # rows named in a note before "and k more"


@dataclass
class ReferenceCell:
    score: float | None  # None: no comparable number (see note)
    n: int  # test items the score is over
    metric: str
    scope: str  # "full test split", "same items" (the rows' doc ids) or "" (no number)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        score = None if self.score is None or math.isnan(self.score) else self.score
        return {"score": score, "n": self.n, "metric": self.metric, "scope": self.scope, "note": self.note}


@dataclass
class ReferenceRow:
    key: str  # "majority", "bow_lr" or "lead"
    label: str
    cells: dict[str, ReferenceCell] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "kind": "reference", "badge": BADGE,
                "cells": {col: cell.as_dict() for col, cell in self.cells.items()}}


def reference_text(cell: ReferenceCell | None) -> str:
    """A reference cell in plain text: score (n, over what), or why there is no comparable number."""
    if cell is None:
        return "–"
    if cell.score is None:
        return "– (not comparable)"
    score = "–" if math.isnan(cell.score) else f"{cell.score:.3f}"
    return f"{score} (n={cell.n}, {cell.scope})"


def reference_notes(table: LeaderboardTable) -> list[tuple[str, str]]:
    """(column, note) once per column and note, in column order."""
    found: dict[tuple[str, str], None] = {}
    for col in table.columns:
        for ref in table.references:
            cell = ref.cells.get(col)
            if cell is not None and cell.note:
                found.setdefault((col, cell.note), None)
    return list(found)


def _one_line(exc: BaseException) -> str:
    text = exc.one_line() if isinstance(exc, MedbenchError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def _named(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    return shown + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def reference_rows(table: LeaderboardTable, root: Path, mode: str = "compute",
                   notify: Callable[[str], None] | None = None) -> tuple[list[ReferenceRow], list[str]]:
    """The reference rows for ``table``'s columns and one-line notes on what was skipped; never raises for a
    task whose baseline fails (that task shows no reference and gets a note)."""
    if mode not in MODES:
        raise MedbenchError(f"unknown baselines mode {mode!r}", f"use one of {', '.join(MODES)}")
    cache_dir = Path(root) / CACHE_DIR
    if mode == "off" or not table.rows:
        return [], []
    if mode == "cached" and not any(cache_dir.glob("*.json")):
        return [], []  # nothing computed yet: the common case, at no cost
    if importlib.util.find_spec("sklearn") is None:  # fitting and the F1 scores need it
        return [], ["trivial baselines skipped: scikit-learn is not installed (pip install scikit-learn)"]
    from medbench.tasks import build_registry

    try:
        registry = build_registry()
    except Exception as exc:  # a broken task plugin must not take the leaderboard down
        return [], [f"trivial baselines skipped: the task registry failed to load ({_one_line(exc)})"]
    by_task: dict[str, list[str]] = {}
    for col in table.columns:
        records = [row.cells[col].record for row in table.rows if col in row.cells and row.cells[col].record]
        if records:
            by_task.setdefault(str(records[0]["task"]["name"]), []).append(col)
    rows = {key: ReferenceRow(key, label) for key, label in KINDS}
    notes = []
    for name, columns in sorted(by_task.items()):
        try:
            found = _task_references(name, columns, table, registry, cache_dir, mode, notify)
        except Exception as exc:  # a baseline that fails shows nothing; the page renders anyway
            notes.append(f"{name}: no trivial baselines ({_one_line(exc)})")
            continue
        for (key, col), cell in found.items():
            rows[key].cells[col] = cell
    return [row for row in rows.values() if row.cells], notes


# ------------------------------------------------------------------------------------------------ per task


def _task_references(name: str, columns: list[str], table: LeaderboardTable, registry: Any, cache_dir: Path,
                     mode: str, notify: Callable[[str], None] | None) -> dict[tuple[str, str], ReferenceCell]:
    from medbench.processed_docs import data_hash
    from medbench.task_facts import data_source as task_data_source
    from medbench.task_facts import task_config_hash
    from medbench.tasks import LM_EVAL, load_tasks

    entry = registry.entries.get(name)
    if entry is None or entry.plugin == LM_EVAL or not entry.trusted:
        return {}  # not a medbench task this process may load: no baseline to show
    if entry.config.get("output_type") != "multiple_choice" and not entry.primary_metric.lower().startswith("rouge"):
        return {}  # no labels to learn: nothing to show
    task = load_tasks([name], registry, {name: {"source": "bundled"}})[name]
    config = task.config
    if task_data_source(entry, task).get("kind") != "bundled" or not (
            config.training_split and config.test_split and task.has_training_docs()):
        return {}  # baselines are computed on bundled train/test splits only
    hashes = {"train_hash": data_hash(task.training_docs()), "test_hash": data_hash(task.test_docs())}
    cells = {col: [(row, row.cells[col]) for row in table.rows
                   if col in row.cells and row.cells[col].score is not None and row.cells[col].record]
             for col in columns}

    def comparable(cell: Cell) -> bool:
        info = cell.record["task"]
        return info.get("data_hash") == hashes["test_hash"] and info.get("split") in (None, config.test_split)

    predictions = None
    if any(comparable(cell) for pairs in cells.values() for _, cell in pairs):
        import sklearn

        key = {"format": CACHE_FORMAT, "task": name, "config_hash": task_config_hash(entry),
               "sklearn": sklearn.__version__, **hashes}
        path = cache_dir / f"{slug(name)}-{key['config_hash'][:16]}.json"
        predictions = _read_cache(path, key)
        if predictions is None and mode == "compute":
            if notify:
                notify(f"computing the trivial baselines of {name} (cached in {path.parent})")
            predictions = task_predictions(entry, task)
            _write_cache(path, key, predictions)
        if predictions is None:
            return {}  # "cached" mode and not computed yet
    if predictions is None:  # no row is comparable: the cells only say why
        kinds = [key for key, _ in KINDS if _expected(key, entry)]
    else:
        kinds = [key for key, _ in KINDS if key in predictions.preds or key in predictions.values]
    out = {}
    for col, pairs in cells.items():
        for key, cell in _column_cells(pairs, predictions, comparable, entry.primary_metric, kinds,
                                       config.test_split).items():
            out[(key, col)] = cell
    return out


def _expected(key: str, entry: Any) -> bool:
    """The baselines a task would get, before any is computed (for a note saying why none is shown)."""
    rouge = entry.primary_metric.lower().startswith("rouge")
    return key == "lead" if rouge else key in ("majority", "bow_lr")


def _read_cache(path: Path, key: dict[str, Any]) -> TaskPredictions | None:
    """The cached predictions when they were computed for exactly this task config, data and scikit-learn."""
    try:
        if through_link(path.parents[len(CACHE_DIR.parts)], path):
            return None  # a linked .cache/ or file: nothing outside the leaderboard is read
        data = json.loads(read_regular_text(path))  # a FIFO in its place would block
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in key.items()):
            return None
        found = TaskPredictions(**data["predictions"])
        lengths = {len(v) for v in [*found.preds.values(), *found.values.values()]}
        if found.preds:
            lengths.add(len(found.gold))
        if lengths - {found.n_test} or any(not isinstance(g, int) for g in found.gold):
            return None  # not the shape of this test split: computed again
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None  # missing or damaged: computed again
    return found


def _write_cache(path: Path, key: dict[str, Any], predictions: TaskPredictions) -> None:
    stored = dict(vars(predictions))
    stored["preds"] = {k: v for k, v in predictions.preds.items() if k != "rule2"}
    try:
        refuse_links(path.parents[len(CACHE_DIR.parts)], path)  # a linked .cache/ would take the write outside
        atomic_write_json(path, {**key, "predictions": stored})
    except MedbenchError:
        pass  # a cache that cannot be written costs a refit next time, nothing else


# ------------------------------------------------------------------------------------------------ per column


def _elsewhere(cell: Cell, test_split: str) -> str:
    """Why a cell's record is not comparable with a baseline on the bundled test split, in a few words."""
    from medbench.leaderboard import data_source

    info = cell.record["task"]
    source = data_source(cell.record)
    kind = source.get("kind")
    if info.get("split") not in (None, test_split):
        return f"scored on the {info.get('split')} split"
    if kind == "file":
        sha = f", sha256 {str(source['sha256'])[:12]}" if source.get("sha256") else ""
        return f"scored on a user file ({source.get('name') or 'unnamed'}{sha})"
    if kind == "hub":
        revision = f"@{source['revision']}" if source.get("revision") else ""
        return f"scored on hub data ({source.get('name')}{revision})"
    if kind == "lm-eval":
        return "scored on lm-eval's data"
    return "scored on other data (its data hash is not the bundled test split's)"


def _doc_ids(cell: Cell, n_test: int) -> frozenset[int] | None:
    """The test items the cell was scored on (lm-eval's doc_id is the index in the test split); None: unknown."""
    ids = [s.get("doc_id") for s in cell.samples]
    if ids:
        if all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n_test for i in ids) \
                and len(set(ids)) == len(ids):
            return frozenset(ids)
        return None
    if cell.n == n_test and not (cell.record.get("config") or {}).get("limit"):
        return frozenset(range(n_test))
    return None


def _column_cells(pairs: list[tuple[Row, Cell]], predictions: TaskPredictions | None,
                  comparable: Callable[[Cell], bool], metric: str, kinds: list[str], test_split: str
                  ) -> dict[str, ReferenceCell]:
    """One column's reference cells, scored on the items its comparable rows were scored on."""
    others = [f"{row.label} ({_elsewhere(cell, test_split)})" for row, cell in pairs if not comparable(cell)]
    same = [(row, cell) for row, cell in pairs if comparable(cell)]
    if predictions is not None:
        off_metric = [(row, cell) for row, cell in same if not _same_metric(cell.metric, predictions.metric)]
        others += [f"{row.label} (scored with {cell.metric}, not {predictions.metric})" for row, cell in off_metric]
        same = [pair for pair in same if pair not in off_metric]
    if not same:
        note = ("not comparable with any row of this column: " + _named(others) +
                "; the baselines are computed on the bundled test split only")
        return {key: ReferenceCell(None, 0, metric, "", note) for key in kinds}
    assert predictions is not None
    n_test = predictions.n_test
    item_sets = {_doc_ids(cell, n_test) for _, cell in same}
    if len(item_sets) == 1 and None not in item_sets:
        ids = sorted(next(iter(item_sets)))  # type: ignore[arg-type]
        full = len(ids) == n_test
        indices, scope = (None, "full test split") if full else (ids, "same items")
        note = "" if full else (f"on the same {len(ids)} of the {n_test} test items the rows were scored on "
                                "(their doc ids), not the full split")
    else:
        indices, scope = None, "full test split"
        everything = frozenset(range(n_test))
        partial = [f"{row.label} (n={cell.n})" for row, cell in same if _doc_ids(cell, n_test) != everything]
        note = (f"on the full test split (n={n_test}); not directly comparable with rows scored on other items: "
                + _named(partial))
    if others:
        note += ("; " if note else "") + "does not apply to " + _named(others)
    n = len(indices) if indices is not None else n_test
    return {key: ReferenceCell(predictions.score(key, indices), n, predictions.metric, scope, note) for key in kinds}


def _same_metric(cell_metric: str, baseline_metric: str) -> bool:
    return cell_metric == baseline_metric or {cell_metric, baseline_metric} <= ACCURACY
