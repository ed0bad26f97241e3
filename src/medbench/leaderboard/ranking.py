"""Which row is the baseline, how rows are ranked (only among rows scored on the same tasks), and seed groups."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.leaderboard import stats
from medbench.leaderboard.table import Cell, Row


def _parent_of(row: Row) -> str | None:
    if row.training and row.training.get("parent_model"):
        return str(row.training["parent_model"])
    return row.model.get("base_ref")


def default_baseline(rows: list[Row]) -> Row | None:
    """The model the other rows were trained from: the untrained row named as parent by the most rows."""
    untrained = [r for r in rows if not r.training]
    counts: dict[str, int] = {}
    for row in rows:
        parent = _parent_of(row)
        if not parent:
            continue
        for candidate in untrained:
            if candidate is not row and parent in (candidate.model.get("ref"), candidate.label,
                                                   candidate.model.get("path")):
                counts[candidate.key] = counts.get(candidate.key, 0) + 1
    if counts:
        best = max(counts.values())
        keys = [k for k, v in counts.items() if v == best]
        candidates = [r for r in untrained if r.key in keys]
        return max(candidates, key=_row_created)
    if len(untrained) == 1 and len(rows) > 1:
        return untrained[0]
    return None


def _row_created(row: Row) -> str:
    return max(((c.record or {}).get("created") or "" for c in row.cells.values()), default="")


def resolve_baseline(rows: list[Row], ref: str | None, root: Path | None = None) -> Row | None:
    """``ref``: a row label, a weights-hash prefix, or a model reference (a path as typed here, or as the records
    store it relative to ``root``); None: the default; 'none': no baseline."""
    from medbench.portable import portable_path

    if ref is None:
        return default_baseline(rows)
    if ref.strip().lower() in ("", "none"):
        return None
    stored = portable_path(ref, root) if root is not None else ref
    for matcher in (lambda r: r.label == ref or r.key == ref,
                    lambda r: len(ref) >= 4 and r.weights_hash.lower().startswith(ref.lower()),
                    lambda r: r.model.get("ref") in (ref, stored)):
        found = [r for r in rows if matcher(r)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise MedbenchError(f"--baseline {ref!r} matches {len(found)} rows "
                                f"({', '.join(r.label + ' ' + r.weights_hash[:12] for r in found)})",
                                "pass a longer weights-hash prefix to pick one")
    labels = ", ".join(f"{r.label} ({r.weights_hash[:12]})" for r in rows)
    raise MedbenchError(f"--baseline {ref!r} matches no leaderboard row",
                        f"pass a row label or a weights-hash prefix (at least 4 characters): {labels}")


# --------------------------------------------------------------------------------------------- ranking


def rank_rows(rows: list[Row], columns: list[str]) -> list[Row]:
    """Rows ordered so that an aggregate is compared only where it is comparable: rows are grouped by the exact set
    of columns they have a score on, and how many items each score is of (a --limit run is another measure);
    groups with more columns come first (among equals, the group whose best mean is higher); inside a group, by
    mean. Sets each row's coverage and tier."""
    by_columns: dict[frozenset[tuple[str, Any]], list[Row]] = {}
    for row in rows:
        scored = frozenset((col, cell.n) for col, cell in row.cells.items() if is_finite_number(cell.score))
        by_columns.setdefault(scored, []).append(row)

    def mean(row: Row) -> float:
        value = row.mean_score()
        if value is None:  # only lower-is-better scores (perplexity): the lowest ranks first
            lower = [c.score for c in row.cells.values() if not c.higher_is_better and is_finite_number(c.score)]
            value = -sum(lower) / len(lower) if lower else None
        return value if value is not None else float("-inf")

    ordered = sorted(by_columns.items(), key=lambda kv: (-len(kv[0]), -max(mean(r) for r in kv[1]),
                                                        sorted(map(str, kv[0]))))
    ranked = []
    for tier, (scored, members) in enumerate(ordered):
        for row in members:
            row.coverage, row.coverage_of, row.tier = len(scored), len(columns), tier
        ranked += sorted(members, key=lambda r: (-mean(r), r.label))
    return ranked


def is_finite_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past the float range
        return False


# --------------------------------------------------------------------------------------------- seed groups


def _common_label(labels: list[str]) -> str:
    prefix = os.path.commonprefix(labels)
    suffix = os.path.commonprefix([label[len(prefix):][::-1] for label in labels])[::-1]
    return f"{prefix}*{suffix}" if any(len(label) > len(prefix) + len(suffix) for label in labels) else prefix


def _seed_text(seed: Any) -> str:
    return json.dumps(seed, sort_keys=True, default=str)


def seed_groups(rows: list[Row]) -> list[Row]:
    """Rows with the same signature and at least two different seeds, as mean ± sd rows."""
    by_signature: dict[str, list[Row]] = {}
    for row in rows:
        by_signature.setdefault(row.signature, []).append(row)
    groups = []
    for signature, members in sorted(by_signature.items()):
        # A training record's seed can be anything JSON holds (a list, text): compared by its JSON, numbers first.
        if len(members) < 2 or len({_seed_text(m.seed) for m in members}) < 2:
            continue
        members = sorted(members, key=lambda m: (m.seed is None, not is_finite_number(m.seed),
                                                 m.seed if is_finite_number(m.seed) else 0, _seed_text(m.seed),
                                                 m.label))
        label = f"{_common_label([m.label for m in members])} ({len(members)} seeds)"
        group = Row(f"seed-group:{signature}", label, "", {"seeds": [m.seed for m in members]}, kind="seed-group",
                    training=members[0].training, signature=signature, members=[m.key for m in members])
        columns = sorted({col for m in members for col in m.cells})
        for col in columns:
            scored = [m.cells[col] for m in members if col in m.cells and m.cells[col].score is not None]
            if not scored:
                continue
            mean, sd = stats.mean_sd([c.score for c in scored])
            mean = mean if is_finite_number(mean) else None  # scores near the float limit can sum past it
            group.cells[col] = Cell(mean, None, round(sum(c.n for c in scored) / len(scored)), scored[0].metric, "",
                                    higher_is_better=scored[0].higher_is_better, sd=sd, runs=len(scored),
                                    factors={k: v for k, v in scored[0].factors.items()})
        group.coverage, group.coverage_of = len(group.cells), len({col for r in rows for col in r.cells})
        groups.append(group)
    return groups
