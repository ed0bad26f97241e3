"""lm-eval's own tasks, groups and tags by name (``pubmedqa``, ``multimedqa``, ``mmlu_other``), found by reading
its bundled YAMLs as text: a scan of ~14k files takes ~1 s, against ~20 s for lm-eval's TaskManager index, and
runs only for a name medbench does not know."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.task_yaml import read_task_yaml

_TASK_KEY = re.compile(r"""^["']?task["']?\s*:\s*["']?([A-Za-z0-9_.\-]+)["']?\s*$""", re.MULTILINE)
_index: dict[str, Path] | None = None
_texts: tuple[Path, list[tuple[Path, str]]] | None = None
_configs: dict[Path, dict[str, Any] | None] = {}
# A group's member may rename its column (task_alias) and nothing else: any other key would score the task
# otherwise than medbench scores it by name.
_MEMBER_KEYS = {"task", "task_alias", "group_alias"}


def tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def task_index() -> dict[str, Path]:
    """lm-eval's bundled task YAMLs by task name; read once per process."""
    global _index
    if _index is None:
        index: dict[str, Path] = {}
        for file, text in _yaml_texts():
            for match in _TASK_KEY.finditer(text):
                index.setdefault(match.group(1), file)
        _index = index
    return _index


def _yaml_texts() -> list[tuple[Path, str]]:
    """Every bundled YAML's text (~7 MB), read once per process: a nested group (mmlu > mmlu_other > its tag)
    searches them once per level."""
    global _texts
    if _texts is None or _texts[0] != tasks_dir():
        texts = []
        for file in sorted(tasks_dir().rglob("*.yaml")):
            try:
                texts.append((file, file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
        _texts = (tasks_dir(), texts)
    return _texts[1]


def _config(file: Path) -> dict[str, Any] | None:
    if file not in _configs:
        try:
            _configs[file] = read_task_yaml(file)
        except MedbenchError:
            _configs[file] = None
    return _configs[file]


def group_members(name: str) -> tuple[Path, list[str]] | None:
    """The member names of lm-eval's group ``name`` (its ``task:`` list) or of its tag ``name`` (every task whose
    YAML, includes read, carries the tag), with the YAML that defines it; None when it is neither. Members may be
    groups or tags themselves."""
    group: tuple[Path, list[str]] | None = None
    tagged: list[str] = []
    first: Path | None = None
    quoted = rf"""["']?{re.escape(name)}["']?"""
    # Where a group or tag name can stand: `group: X`, `"tag": "X"`, a list item `- X`, or in `tag: [.., X]`.
    key = r"""^\s*["']?(?:group|tag)["']?\s*:\s*"""
    naming = re.compile(rf"(?:{key}|^\s*-\s*){quoted}\s*$|{key}\[[^\]\n]*(?<![\w.\-]){re.escape(name)}(?![\w.\-])",
                        re.MULTILINE)
    named, including = [], []  # a tag may come from an included file (headqa_es includes headqa_en's)
    for file, text in _yaml_texts():
        if naming.search(text):
            named.append(file)
        elif "include" in text:
            including.append(file)
    folders = {file.parent for file in named}
    for file in sorted([*named, *(file for file in including if file.parent in folders)]):
        config = _config(file)
        if config is None:
            continue
        if config.get("group") == name and isinstance(config.get("task"), list) and group is None:
            group = (file, _members(name, file, config["task"]))
        tags = config.get("tag")
        if (name == tags or (isinstance(tags, list) and name in tags)) and isinstance(config.get("task"), str):
            tagged.append(config["task"])
            first = first or file
    if group is not None:
        return group
    return (first, list(dict.fromkeys(tagged))) if first is not None else None


def _members(group: str, file: Path, members: list[Any]) -> list[str]:
    return [name for name in (member_name(group, file, m, LM_EVAL_GROUP) for m in members) if name is not None]


LM_EVAL_GROUP = "lm-eval's group"


def member_name(group: str, file: Path, member: Any, whose: str = "group") -> str | None:
    """The task (or group) name a group's ``task:`` list item stands for; an item that gives its member settings
    of its own (num_fewshot, metric_list) is refused in one line: medbench scores each member as its own YAML
    sets it, and applying them for one group would score the same task name two ways. ``whose``: how the
    message names the group (lm-eval's, or a user's folder's)."""
    if not isinstance(member, dict):
        return member if isinstance(member, str) else None
    extra = sorted(set(member) - _MEMBER_KEYS)
    task = member.get("task")
    if not extra and isinstance(task, str):
        return task
    settings = ", ".join(extra) or "no task name"
    if whose == LM_EVAL_GROUP:
        fix = ("score its tasks by name (--tasks a,b,c), or copy the group's YAML without those settings "
               "(--include-path)")
    elif not isinstance(task, str):
        fix = "give each item of the group's task list a task name"
    else:
        fix = (f"put {', '.join(extra)} in {task}'s own YAML (or in a copy of it under another task name, listed "
               "here instead) and list the member by name only")
    raise MedbenchError(f"{whose} {group!r} ({file}) sets {settings} for its member {task!r}, which medbench does "
                        "not apply", fix)
