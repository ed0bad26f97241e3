"""The YAML tags in a task file that make a loader run code, found before anything parses the file."""

from __future__ import annotations

import yaml

# The parser lm-eval's YAML loader uses: tags are searched for as it will read them.
_LM_EVAL_PARSER = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


def code_tags(text: str) -> list[tuple[str, str, int]]:
    """(tag, scalar, line) for each tag that makes a YAML loader run code: ``!function`` (lm-eval imports the named
    module) and ``!!python/...``. Read from the parser's events, so every node counts (keys, values, anchors, values
    a later duplicate key or a dropped ``task_list`` hides) however the tag is spelt (``!<!function>``, a %TAG
    handle, %-escapes)."""
    found = []
    for event in yaml.parse(text, Loader=_LM_EVAL_PARSER):
        tag = getattr(event, "tag", None)
        if tag == "!function" or (tag or "").startswith("tag:yaml.org,2002:python/"):
            found.append((tag, str(getattr(event, "value", "") or ""), event.start_mark.line + 1))
    return found
