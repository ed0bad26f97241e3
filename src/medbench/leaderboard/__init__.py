"""The leaderboard: every record under a directory, as one row per checkpoint and one column per task.

Records (``records/*/*/record.json`` + ``samples.jsonl``) are the source of truth; everything here is derived
from them and can be rebuilt at any time. On top of the scores the table carries the statistics that say which
differences are real (see medbench.leaderboard.stats):

- a 95 % CI per cell: Wilson for a per-item 0/1 metric (acc, exact_match, ...), a percentile bootstrap over
  items otherwise (F1, ROUGE, AUROC, ...), recomputed from the saved samples;
- a paired comparison of every row against a baseline row per column, on the items both scored (same doc_id,
  same data hash): McNemar's exact test for 0/1 metrics, a paired permutation test for the others (with a
  paired bootstrap CI of the difference);
- Benjamini-Hochberg q-values across every comparison in the table; a difference is marked at q <= alpha;
- seed groups: rows whose records differ only by seed, summarised as mean ± sd;
- HELM's mean win rate and an average weighted by items scored, each over the row's own tasks and shown with
  its coverage (k of N tasks); rows are ranked by mean only among rows scored on the same tasks, so a row scored
  on fewer tasks never ranks above one scored on more (see rank_rows).

Beside the rows, reference rows: each task's trivial baselines (majority class, bag-of-words LR, lead-3), kept
apart from the rows so that they are never ranked, counted or tested (see medbench.leaderboard.references).

A record that is not valid (see medbench.record_schema.Record) is skipped with a one-line warning; a record whose
samples file lies outside its folder is shown without samples, with a note and a warning.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterator

from medbench.errors import MedbenchError
from medbench.file_modes import written_mode
from medbench.leaderboard import stats
# Re-exported: medbench.leaderboard is where renderers and callers find the table, its statistics and provenance.
from medbench.leaderboard.comparisons import (cell_interval, compare_cells, metric_higher_is_better,
                                              metric_registry_or_empty, per_item_values, samples_disagree)
from medbench.leaderboard.provenance import seed_signature, cell_factors, data_source, provenance, training_info
from medbench.leaderboard.ranking import is_finite_number, rank_rows, resolve_baseline, seed_groups
from medbench.leaderboard.table import (ALPHA, CONFIDENCE, NOTICE, Cell, Comparison,
                                        LeaderboardTable, Renderer, Row)
from medbench.registries import call_register_hook
from medbench.record_schema import Record
from medbench.temp_files import make_temp_dir
from medbench.records import RecordWarning, SamplesPathError, read_records, read_samples


# --------------------------------------------------------------------------------------------- the table


def build_table(root: Path, baseline: str | None = None, *, with_stats: bool = True,
                iters: int = stats.DEFAULT_ITERS, seed: int = stats.DEFAULT_SEED, confidence: float = CONFIDENCE,
                alpha: float = ALPHA, references: str = "cached",
                notify: Callable[[str], None] | None = None) -> LeaderboardTable:
    """Every record under ``root`` as a table, newest record per (row, column); with ``with_stats``, CIs,
    comparisons against ``baseline`` (see resolve_baseline), BH q-values, seed groups and win rates, and the
    tasks' trivial baselines as reference rows: ``references`` "compute" (fit what is not cached yet), "cached"
    (only what an earlier "compute" cached: no fitting) or "off"; ``notify`` hears of each fit."""
    rows: dict[str, Row] = {}
    columns: set[str] = set()
    registry = metric_registry_or_empty() if with_stats else {}
    # Newest record wins when a checkpoint was scored on the same task twice.
    # Every record here is valid (medbench.record_schema.Record); invalid ones were skipped with a warning.
    for record in sorted(read_records(root), key=lambda r: r.get("created") or ""):
        typed = Record.of(record)
        model = typed.model
        key = f"{model.label}|{model.weights_hash}"
        row = rows.setdefault(key, Row(key, model.label, model.weights_hash, record["model"]))
        column = typed.record_key
        columns.add(column)
        metric = typed.primary_metric or ""
        # A NaN or infinite score is no score: it would poison the means and the ranking.
        row.cells[column] = Cell(typed.score if is_finite_number(typed.score) else None,
                                 typed.stderr if is_finite_number(typed.stderr) else None,
                                 typed.n, metric, record.get("_board_path") or record["_path"],
                                 higher_is_better=metric_higher_is_better(metric, registry, record), record=record)
        row.model = record["model"]
    table = LeaderboardTable(sorted(columns), [], bootstrap_iters=iters, seed=seed, confidence=confidence,
                             alpha=alpha)
    for row in rows.values():
        newest = max((c.record for c in row.cells.values()), key=lambda r: r.get("created") or "")
        row.training = training_info(newest)
        row.seed = (row.training or {}).get("seed", newest.get("seed"))
        row.signature = seed_signature(newest, row.training)
        for cell in row.cells.values():
            cell.factors = cell_factors(cell.record)
    table.rows = rank_rows(list(rows.values()), table.columns)
    table.notes += definition_notes(table)
    if not with_stats:
        return table

    for row in table.rows:
        for cell in row.cells.values():
            try:
                cell.samples = read_samples(cell.record)
            except (OSError, ValueError) as exc:
                cell.samples = []
                why = str(exc) if isinstance(exc, SamplesPathError) else f"samples unreadable ({exc})"
                table.notes.append(f"{row.label} / {cell.record.get('record_key')}: {why}; "
                                   "no CI from samples and no paired test")
                if isinstance(exc, SamplesPathError):  # a record pointing elsewhere is suspicious: say so loudly
                    warnings.warn(f"record {cell.record.get('_path')}: {exc} — shown without its samples", RecordWarning,
                                  stacklevel=2)
            mismatch = samples_disagree(cell)
            if mismatch:  # a CI and a paired test from items its score did not come from would look like evidence
                cell.samples = []
                table.notes.append(f"{row.label} / {cell.record.get('record_key')}: {mismatch}; no CI from samples "
                                   "and no paired test (re-score it with --rescore, or score it again)")
                warnings.warn(f"record {cell.record.get('_path')}: {mismatch} — shown without its samples",
                              RecordWarning, stacklevel=2)
            cell_interval(cell, registry, confidence=confidence, iters=iters, seed=seed)

    table.baseline = resolve_baseline(table.rows, baseline, Path(root))
    comparisons: list[Comparison] = []
    if table.baseline is not None:
        table.baseline.is_baseline = True
        for row in table.rows:
            if row is table.baseline:
                continue
            for col, cell in row.cells.items():
                base_cell = table.baseline.cells.get(col)
                if base_cell is None or cell.score is None or base_cell.score is None:
                    continue
                cell.comparison = compare_cells(base_cell, cell, registry, confidence=confidence, iters=iters,
                                                seed=seed)
                if cell.comparison.p is not None:
                    comparisons.append(cell.comparison)
    for comparison, q in zip(comparisons, stats.benjamini_hochberg([c.p for c in comparisons])):
        comparison.q = q
        comparison.significant = q is not None and q <= alpha and comparison.direction != ""

    # A column's scores are compared only among rows scored on as many of its items (a --limit run measures less).
    scopes = sorted({(col, cell.n) for row in table.rows for col, cell in row.cells.items()}, key=str)
    matrix = [[row.cells[col].score if col in row.cells and row.cells[col].n == n else None for col, n in scopes]
              for row in table.rows]
    higher = [all(r.cells[col].higher_is_better for r in table.rows if col in r.cells) for col, _ in scopes]
    for row, rate in zip(table.rows, stats.mean_win_rate(matrix, higher)):
        row.win_rate = rate
    table.groups = seed_groups(table.rows)
    from medbench.leaderboard.references import reference_rows

    table.references, table.reference_notes = reference_rows(table, root, references, notify)
    return table


# --------------------------------------------------------------------------------------------- rendering


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """An exclusive lock on a leaderboard directory while it is read and rendered, so that of several processes
    scoring into one leaderboard at once, the last to render sees every record (the records themselves never
    need it: each is its own file, written atomically). The lock is flock(2) on the directory itself, so no lock
    file lands in the committed leaderboard."""
    try:
        import fcntl

        # O_DIRECTORY | O_NONBLOCK: a FIFO where the folder should be fails here rather than blocking forever
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK)
    except (ImportError, OSError, AttributeError):  # no such folder (nothing to render), not POSIX: no lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def renderers() -> dict[str, Renderer]:
    from medbench.plugin_calls import plugin_callable  # a renderer that raises names its plugin and package
    from medbench.registries import claim

    found: dict[str, Renderer] = {}
    owners: dict[str, str] = {}

    def register_for(plugin: str):
        def register(name: str, fn: Renderer) -> None:
            if claim(owners, "leaderboard renderer", name, plugin):
                found[name] = plugin_callable(plugin, f"leaderboard renderer {name!r}", fn)

        return register

    call_register_hook("register_leaderboard_renderers", register_for)
    return found


def render_table(root: Path, formats: list[str] | None = None, baseline: str | None = None,
                 references: str = "cached", notify: Callable[[str], None] | None = None
                 ) -> tuple[LeaderboardTable, list[Path]]:
    """Build the table from every record under ``root`` and write it in ``formats`` (default: every registered
    renderer), under a lock on the directory; returns the table and the files written. ``references``: see
    build_table."""
    available = renderers()
    formats = list(dict.fromkeys(formats or sorted(available)))
    unknown = [f for f in formats if f not in available]
    if unknown:
        raise MedbenchError(f"unknown leaderboard format(s) {', '.join(unknown)}",
                            f"use one of {', '.join(sorted(available))}")
    root = Path(root)
    with locked(root):
        table = build_table(root, baseline, references=references, notify=notify)
        if not table.rows:
            if any((root / "records").glob("*/*/record.json")):
                raise MedbenchError(f"no readable records under {root}/records (the warnings above say why each was "
                                    "skipped)", "fix or delete those record.json files, or score again")
            raise MedbenchError(f"no records under {root}/records",
                                "run `medbench eval --tasks medqa` first, or pass --leaderboard-dir to a leaderboard "
                                "with records")
        return table, _render_staged(table, root, [available[name] for name in formats])


def _render_staged(table: LeaderboardTable, root: Path, chosen: list[Renderer]) -> list[Path]:
    """Every renderer writes into a staging folder inside ``root``; only when all of them succeed are their files
    moved into place, so a renderer that fails leaves the leaderboard's files as they were."""
    try:
        staging = make_temp_dir(root, ".medbench-render-")  # a killed render's staging folder is removed first
    except OSError as exc:
        raise MedbenchError(f"cannot write to {root} ({exc.strerror or exc})",
                            "check free disk space and write permission, or pass another --dir") from None
    try:
        written = [Path(renderer(table, staging)) for renderer in chosen]
        outside = next((p for p in written if not p.is_relative_to(staging)), None)
        if outside is not None:  # never report a write to a file the leaderboard did not write
            raise MedbenchError(f"a leaderboard renderer returned {outside}, not a file it wrote in the folder it "
                                "was given", "fix the renderer plugin (it must write into its out_dir and return "
                                "that path), or leave its --format out")
        staged = sorted(p for p in staging.rglob("*") if p.is_file())
        for path in staged:  # every target checked before the first is replaced: all files move, or none
            target = root / path.relative_to(staging)
            blocker = _in_the_way(root, target)
            if blocker is not None:
                raise MedbenchError(f"cannot write the leaderboard's {target.relative_to(root)}: {blocker[0]} is "
                                    f"{blocker[1]} in the way", f"move {blocker[0]} aside, or pass another --dir")
        for path in staged:
            target = root / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path, written_mode(target))  # the page keeps the mode its owner gave it (file_modes)
            os.replace(path, target)
        return [root / p.relative_to(staging) for p in written]
    except OSError as exc:
        raise MedbenchError(f"cannot write the leaderboard in {root} ({exc.strerror or exc})",
                            "check free disk space and write permission, or pass another --dir") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _in_the_way(root: Path, target: Path) -> tuple[Path, str] | None:
    """What stops ``target`` being replaced by a file: a folder in its place, or a file or a link (which could lead
    outside ``root``) where one of its folders should be."""
    if target.is_dir() and not target.is_symlink():
        return target, "a folder"
    for folder in target.relative_to(root).parents:
        if folder == Path("."):
            continue
        path = root / folder
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            return path, "a link" if path.is_symlink() else "a file"
    return None


def render(root: Path, formats: list[str] | None = None, baseline: str | None = None,
           references: str = "cached") -> list[Path]:
    """Render every record under ``root`` in ``formats`` (default: every registered renderer); trivial baselines
    only as far as ``medbench leaderboard`` cached them (``references``: see build_table)."""
    return render_table(root, formats, baseline, references)[1]


# Re-scoring lives in its own module; imported last because it uses the helpers above.
from medbench.leaderboard.rescoring import rescore, rescore_all  # noqa: E402

__all__ = ["NOTICE", "Cell", "Comparison", "LeaderboardTable", "Row", "build_table", "compare_cells", "data_source",
           "per_item_values", "provenance", "render", "render_table", "renderers", "rescore", "rescore_all",
           "resolve_baseline", "training_info"]


def definition_notes(table: LeaderboardTable) -> list[str]:
    """A note per column whose rows were scored on different definitions of its task (its YAML or code changed
    between evals, so the config hashes differ), naming the rows scored on another one than the newest record."""
    notes = []
    for column in table.columns:
        cells = [(row, row.cells[column]) for row in table.rows if column in row.cells]
        hashes = {(cell.record.get("task") or {}).get("config_hash") for _, cell in cells} - {None}
        if len(hashes) < 2:
            continue
        newest = max((cell.record for _, cell in cells), key=lambda r: r.get("created") or "")["task"]["config_hash"]
        older = [row.label for row, cell in cells if (cell.record.get("task") or {}).get("config_hash") not in
                 (None, newest)]
        notes.append(f"{column}: rows scored on {len(hashes)} definitions of the task (its YAML or code changed "
                     f"between evals); {', '.join(older)} on another one than the newest record's: not one measure, "
                     "so no paired test between them (score them again)")
    return notes
