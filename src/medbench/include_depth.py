"""How deep a task folder's ``include:`` chains go, refused past MAX_INCLUDE_DEPTH before any task is read.

Each task YAML is read with its whole include chain, by medbench's vetting and again by lm-eval's loader (which
vets each level), so a folder of n files each including the previous one costs O(n^2) to O(n^3) parses: 200 such
files kept `medbench tasks` busy past five minutes. Here each file's ``include:`` is read once (memoised by
path, mtime and size), so the check itself is linear."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from medbench.errors import MedbenchError

# lm-eval's own task YAMLs nest about 3 includes deep; 16 leaves room for any real layout.
MAX_INCLUDE_DEPTH = 16
_INCLUDES: dict[tuple[str, int, int], list[str]] = {}  # (real path, mtime_ns, size) -> the names it includes


def _includes(file: Path) -> list[str]:
    """The file names ``file``'s top-level ``include:`` gives (a name or a list of names); [] where it has none or
    cannot be read as YAML (reading it for real reports that)."""
    from medbench.records import read_regular_text
    from medbench.task_yaml import MAX_CONFIG_BYTES

    try:
        info = os.stat(file)
        key = (str(file), info.st_mtime_ns, info.st_size)
        if key not in _INCLUDES:
            # Composed, not constructed: no tag is resolved and no alias expanded just to find one key.
            node = yaml.compose(read_regular_text(file, limit=MAX_CONFIG_BYTES), Loader=yaml.SafeLoader)
            value = next((v for k, v in node.value if getattr(k, "value", None) == "include"), None) \
                if isinstance(node, yaml.MappingNode) else None
            items = value.value if isinstance(value, yaml.SequenceNode) else [value] if value is not None else []
            _INCLUDES[key] = [item.value for item in items if isinstance(item, yaml.ScalarNode)]
        return _INCLUDES[key]
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return []


def check_include_depth(files: list[Path], root: Path) -> None:
    """Refuse the first of ``files`` (a --include-path folder's YAMLs) whose include chain is deeper than
    MAX_INCLUDE_DEPTH files. Only includes inside ``root`` are followed (reading the others is refused anyway);
    a cycle is left to the reader, which names it."""
    root = Path(os.path.realpath(root))
    depths: dict[Path, int] = {}

    def depth(file: Path, chain: tuple[Path, ...]) -> int:
        if file in depths:
            return depths[file]
        if file in chain:
            return 0
        if len(chain) > MAX_INCLUDE_DEPTH:
            raise _too_deep(chain[0])
        below = 0
        for name in _includes(file):
            target = Path(os.path.realpath(file.parent / name))
            if root in target.parents and target.is_file():
                below = max(below, depth(target, (*chain, file)))
        depths[file] = below + 1
        if depths[file] > MAX_INCLUDE_DEPTH:
            raise _too_deep(file)
        return depths[file]

    for file in files:
        real = Path(os.path.realpath(file))
        if real == root or root in real.parents:  # a link out of the folder is never read (the reader refuses it)
            depth(real, ())


def _too_deep(file: Path) -> MedbenchError:
    return MedbenchError(f"task file {file} has an include chain more than {MAX_INCLUDE_DEPTH} files deep "
                         "(each `include:` names a file that includes another)",
                         f"flatten the `include:` keys to at most {MAX_INCLUDE_DEPTH} levels (lm-eval's own task "
                         "YAMLs nest about 3), e.g. include one shared base file directly")
