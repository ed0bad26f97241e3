"""The leaderboard: every record under a directory, as one row per checkpoint and one column per task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from medbench.errors import MedbenchError
from medbench.plugins import call_register_hook
from medbench.records import read_records

Renderer = Callable[["LeaderboardTable", Path], Path]


@dataclass
class Cell:
    score: float | None
    stderr: float | None
    n: int
    metric: str
    record_path: str


@dataclass
class Row:
    key: str  # label + weights hash: the same weights under another name are another row
    label: str
    weights_hash: str
    model: dict[str, Any]
    cells: dict[str, Cell] = field(default_factory=dict)

    def mean_score(self) -> float | None:
        scores = [c.score for c in self.cells.values() if c.score is not None]
        return sum(scores) / len(scores) if scores else None


@dataclass
class LeaderboardTable:
    columns: list[str]
    rows: list[Row]

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": [
                {"label": r.label, "weights_hash": r.weights_hash, "model": r.model, "mean": r.mean_score(),
                 "cells": {col: vars(cell) for col, cell in r.cells.items()}}
                for r in self.rows
            ],
        }


def build_table(root: Path) -> LeaderboardTable:
    rows: dict[str, Row] = {}
    columns: set[str] = set()
    # Newest record wins when a checkpoint was scored on the same task twice.
    for record in sorted(read_records(root), key=lambda r: r.get("created", "")):
        model = record["model"]
        key = f"{model['label']}|{model['weights_hash']}"
        row = rows.setdefault(key, Row(key, model["label"], model["weights_hash"], model))
        column = record["record_key"]
        columns.add(column)
        row.cells[column] = Cell(record.get("score"), record.get("stderr"), record.get("n", 0),
                                 record.get("primary_metric") or "", record["_path"])
    ordered = sorted(rows.values(), key=lambda r: (-(r.mean_score() or float("-inf")), r.label))
    return LeaderboardTable(sorted(columns), ordered)


def renderers() -> dict[str, Renderer]:
    found: dict[str, Renderer] = {}

    def register_for(plugin: str):
        def register(name: str, fn: Renderer) -> None:
            found.setdefault(name, fn)

        return register

    call_register_hook("register_leaderboard_renderers", register_for)
    return found


def render(root: Path, formats: list[str] | None = None) -> list[Path]:
    available = renderers()
    formats = formats or sorted(available)
    unknown = [f for f in formats if f not in available]
    if unknown:
        raise MedbenchError(f"unknown leaderboard format(s) {', '.join(unknown)}",
                            f"use one of {', '.join(sorted(available))}")
    table = build_table(root)
    if not table.rows:
        raise MedbenchError(f"no records under {root}/records",
                            "run `medbench eval --tasks medqa` first, or pass --dir to a leaderboard with records")
    return [available[name](table, Path(root)) for name in formats]
