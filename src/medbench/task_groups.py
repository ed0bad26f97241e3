"""Groups of tasks a registry runs by one name: a YAML's ``group:`` with its ``task:`` list, and a tag (``tag:``
in each task's YAML), both as lm-eval's TaskManager reads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.lm_eval_tasks import member_name


@dataclass
class GroupEntry:
    """An lm-eval group YAML (``group: triage`` + ``task: [triage_personnel, triage_urgency]``), or a tag: every
    task whose YAML carries ``tag: NAME`` (``path``: the first of them)."""

    name: str
    path: Path
    plugin: str
    members: list[str]
    refusal: MedbenchError | None = None  # why the group may not run (a member given settings of its own)
    kind: str = "group"  # "tag": made from the tasks' `tag:` keys


def group_entry(config: dict[str, Any], file: Path, plugin: str) -> GroupEntry | None:
    """The group a YAML defines, or None; one whose member carries settings of its own is kept with its refusal,
    raised when the group is run (the folder's other tasks still list and run)."""
    members, name = config.get("task"), config.get("group")
    if not isinstance(name, str) or not isinstance(members, list):
        return None
    entry = GroupEntry(name, file, plugin, [])
    for member in members:
        try:
            task = member_name(name, file, member)
        except MedbenchError as exc:
            entry.refusal = entry.refusal or exc
            task = member.get("task") if isinstance(member, dict) and isinstance(member.get("task"), str) else None
        entry.members += [task] if task is not None else []
    return entry


def register_tags(registry: Any) -> None:
    """Each tag of a registered task runs as a group of the tasks carrying it, as in lm-eval's TaskManager; a
    group or task of the same name wins."""
    tagged: dict[str, list[Any]] = {}
    for entry in registry.entries.values():
        tags = entry.config.get("tag")
        for tag in [tags] if isinstance(tags, str) else tags if isinstance(tags, list) else []:
            if isinstance(tag, str) and tag not in registry.groups and tag not in registry.entries:
                tagged.setdefault(tag, []).append(entry)
    for tag, entries in tagged.items():
        registry.groups[tag] = GroupEntry(tag, entries[0].path, entries[0].plugin, [e.name for e in entries],
                                         kind="tag")
