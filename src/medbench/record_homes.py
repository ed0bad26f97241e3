"""Which record a leaderboard reads when two claim the same (model label, weights, task): the one in that
model's own folder under records/ (medbench.records.model_dir_name, or the name older versions wrote).

Records are untrusted files: a copy of a real record dropped into another folder, its score edited, would
otherwise win by its ``created`` time or its path and replace the real score without a word. A record outside
its own folder that collides with none is read as before (boards put together by hand stay readable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def without_strays(records: list[dict[str, Any]], warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """``records`` less those that share an identity with a record in its own folder but lie elsewhere; each
    one dropped is warned about, naming both files."""
    from medbench.records import legacy_model_dir_name, model_dir_name, record_identity

    def at_home(record: dict[str, Any]) -> bool:
        label, weights, _ = record_identity(record)
        return Path(record["_path"]).parent.parent.name in (model_dir_name(label, weights),
                                                            legacy_model_dir_name(label, weights))

    placed = [(record, record_identity(record), at_home(record)) for record in records]
    homes: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record, identity, home in placed:
        if home:
            homes.setdefault(identity, record)
    kept = []
    for record, identity, home in placed:
        if not home and identity in homes:
            warn(f"skipping record {record['_path']}: it scores the same model and task as {homes[identity]['_path']} "
                 "but lies outside that model's folder, so it may be a copy with its score changed — delete it if it "
                 "is not one you wrote")
            continue
        kept.append(record)
    return kept
