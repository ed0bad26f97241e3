"""A key written twice in a YAML or JSON mapping is refused, not read as its last value.

YAML and JSON parsers keep the last of two equal keys silently, so a recipe's second ``grid:`` drops the first grid,
a --config file's second ``learning_rate`` overrides the first unseen, and a data row's second ``answer_idx`` changes
the gold answer. The command line refuses an option given twice with two values; these files are held to the same."""

from __future__ import annotations

from typing import Any

import yaml

from medbench.errors import MedbenchError


class DuplicateKeyError(ValueError):
    """A mapping that names one key twice: ``key``, and the 1-based lines of both (YAML) or None (JSON)."""

    def __init__(self, key: Any, first: int | None = None, second: int | None = None):
        self.key, self.first, self.second = key, first, second
        lines = f" (lines {first} and {second})" if first and second else ""
        super().__init__(f"key {key!r} is given twice{lines}")


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a mapping naming one key twice. A merge (``<<: *defaults``) may still be
    overridden by the mapping's own keys: that is what a merge is for."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # merges are overrides by design; a complex key is the base loader's to refuse
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: the base loader names it
                continue
        return super().construct_mapping(node, deep=deep)


def load_yaml_unique(text: str, what: str, fix: str | None = None) -> Any:
    """``yaml.safe_load(text)`` with every key of a mapping once; a key given twice is one line naming ``what``.
    Other YAML errors propagate for the caller's own message."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKeyError as exc:
        raise MedbenchError(f"{what} gives {exc.key!r} twice (lines {exc.first} and {exc.second}); YAML would keep "
                            "only the second, silently", fix or "keep one of the two (or merge them)") from None


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads(..., object_pairs_hook=unique_pairs)``: an object naming a key twice is a ValueError."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKeyError(key)
        found[key] = value
    return found
