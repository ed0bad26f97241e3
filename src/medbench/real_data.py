"""Whether a task runs on its real data set or on the small sample medbench bundles in its place.

Several tasks (medqa, medmcqa, ...) ship a small bundled sample so that a toy run works offline; their real test
sets come from ``--data-file TASK:test=PATH`` or the hub (``medbench --online``, or the local datasets cache). A
full-scale study that reads such a task's result as evidence must refuse the sample: a 40- or 60-item stand-in
gives CIs too wide for any claim, and labels medbench wrote. Two places ask: the curriculum trainer's
``require_real_data`` option (its training data, plugins/curriculum) and a recipe's ``eval.require_real_data:
[TASK, ...]`` (the scored test split; medbench.planning skips such a cell at plan time, with this reason in one
line, as it skips a cell a trainer's plan check refuses).
"""

from __future__ import annotations

from typing import Any

from medbench.errors import MedbenchError


def real_data_problem(task: str, source: dict[str, Any], metadata: dict[str, Any] | None) -> MedbenchError | None:
    """Why ``task``'s data (``source``: medbench.task_facts.data_source, plus ``task_hub``: the hub data set its
    YAML names) is not the real data set, or None when it is. The bundled samples are items written for medbench,
    with labels medbench made up: a full-scale plan on them would show results that vanish on the real data."""
    hub = source.get("task_hub")
    online = f", or run `medbench --online sweep ...` to load {hub}" if hub else ""
    if source.get("kind") == "bundled":
        return MedbenchError(f"{task}'s data is the {source.get('name', 'bundled sample')} (written for medbench, not "
                             "the real data set), and this step requires the real data",
                             f"pass --data-file {task}:train=PATH --data-file {task}:test=PATH{online}")
    if source.get("kind") == "file" and "test" not in ((metadata or {}).get("data_files") or {}):
        return MedbenchError(f"{task}'s training data is your file but its test split would be the bundled sample",
                             f"pass --data-file {task}:test=PATH too")
    return None


_CHECKED: dict[str, str | None] = {}  # one load per task and data files in a planning process


def eval_data_problem(tasks: list[str], user_files: dict[str, dict[str, Any]]) -> str | None:
    """Why one of ``tasks`` would be scored on its bundled sample (one line), or None. ``user_files``: task ->
    its ``--data-file`` metadata ({"data_files": {split: path}}), as medbench.planning holds them."""
    import json

    from medbench.task_facts import data_source
    from medbench.tasks import build_registry, load_tasks

    for task in tasks:
        metadata = user_files.get(task) or None
        key = json.dumps([task, metadata], sort_keys=True, default=str)
        if key not in _CHECKED:
            registry = build_registry()
            entry = registry.get(task)
            loaded = load_tasks([task], registry, {task: metadata} if metadata else None)[task]
            source = {**data_source(entry, loaded), "task_hub": entry.metadata.get("hub")}
            bundled_test = source.get("kind") == "bundled" or real_data_problem(task, source, metadata) is not None
            hub = source.get("task_hub")
            online = f", or run `medbench --online sweep ...` to load {hub}" if hub else ""
            _CHECKED[key] = None if not bundled_test else (
                f"{task} would be scored on its bundled sample, not its real test set, and eval.require_real_data "
                f"names it: pass --data-file {task}:test=PATH{online}")
        if _CHECKED[key]:
            return _CHECKED[key]
    return None
