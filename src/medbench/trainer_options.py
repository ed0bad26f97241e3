"""Trainer options: a trainer config dataclass filled from a config file, the command line or a recipe, each value
typed and checked, and every message spelling an option the way its writer did (``--lora-r`` on the command line,
``lora_r`` in a recipe, with the recipe and step named: :func:`recipe_options`)."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from medbench.errors import MedbenchError
from medbench.unique_keys import DuplicateKeyError, UniqueKeyLoader

# An integer option past 32 bits is a typo: torch and the data loaders overflow their C integers on it (a traceback
# deep in training), and numpy's seeds stop at 2**32 - 1.
MAX_OPTION_INT = 2**32 - 1
_SPELLING: ContextVar[Callable[[str], str] | None] = ContextVar("trainer option spelling", default=None)


# The option names of the trainer configs built within keyword_options (build_config adds them): a message that
# spells one as a flag (--max-examples, written in a trainer's own check) is respelt as its key on the way out.
_OPTION_NAMES: ContextVar[set[str] | None] = ContextVar("trainer option names", default=None)
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


@contextmanager
def keyword_options(keywords: Iterable[str] = ()) -> Iterator[None]:
    """Options given as Python keys (``medbench.train(options={"lora_r": 8})``): messages spell them so, those
    of every check a trainer makes (its own ``--flag`` spellings included) among them, and ``keywords`` (the
    calling function's own: ``run_name``)."""
    names: set[str] = set(keywords)
    token, names_token = _SPELLING.set(lambda name: name), _OPTION_NAMES.set(names)
    try:
        yield
    except MedbenchError as exc:
        def respelt(text: str) -> str:
            return _FLAG.sub(lambda m: key if (key := m.group(1).replace("-", "_")) in names else m.group(0), text)

        if not names or respelt(exc.one_line()) == exc.one_line():
            raise
        raise MedbenchError(respelt(exc.problem), respelt(exc.fix)) from None
    finally:
        _SPELLING.reset(token)
        _OPTION_NAMES.reset(names_token)


# Set while the options are the user's own for one run (`medbench train`, medbench.train()): an option there that
# the others make inert is refused. A recipe's cells are not inside: one options block serves a grid's arms, and an
# option only some arms read (category_source under a random ordering) is the recipe's normal shape.
_TYPED: ContextVar[bool] = ContextVar("trainer options typed for one run", default=False)


@contextmanager
def typed_options() -> Iterator[None]:
    """Within the block, :func:`build_config` refuses an option the user gave that has no effect beside the
    others (the trainer config's ``ignored_options()``; see :func:`refuse_ignored_options`)."""
    token = _TYPED.set(True)
    try:
        yield
    finally:
        _TYPED.reset(token)


def refuse_ignored_options(config: Any, given: Iterable[str], plugin: str) -> None:
    """The trainer SDK's say on inert options: a config dataclass may define ``ignored_options(self) -> dict[str,
    str]``, each option that has no effect with the values of the others mapped to why (a clause, e.g. "only
    --category-source llm_clusters makes clusters"). An option among ``given`` (those the user set, not left to its
    default) that it names is one line. Only within :func:`typed_options`; the core names no option itself."""
    declared = getattr(config, "ignored_options", None)
    if not _TYPED.get() or not callable(declared):
        return
    from medbench.plugin_calls import plugin_call

    with plugin_call(plugin, "ignored_options()"):
        reasons = declared() or {}
        if not isinstance(reasons, dict):  # the plugin's bug, named as its own
            raise TypeError(f"it returned {type(reasons).__name__}, not a dict of option name to reason")
    for name in given:
        if name in reasons:
            flag = option_flag(name)
            raise MedbenchError(f"{flag} has no effect in this run: {reasons[name]}",
                                f"leave out {flag}, or change the option that makes it inert")


@contextmanager
def recipe_options(where: str) -> Iterator[None]:
    """Options written in a recipe: messages spell them as the recipe does (``lora_r``) and start with ``where``
    (the recipe and step), so the one line says which file to fix and how."""
    try:
        with keyword_options():
            yield
    except MedbenchError as exc:
        raise MedbenchError(f"{where}: {exc.problem}", exc.fix) from None


def option_flag(name: str) -> str:
    """A trainer option as messages spell it: ``--max-steps`` as on the command line, ``max_steps`` inside
    :func:`recipe_options` and :func:`keyword_options` (a recipe or the Python API; config files and recipes take
    ``max_steps`` or ``max-steps`` alike). Plugins use it in their own option errors."""
    spell = _SPELLING.get()
    return spell(name) if spell else "--" + name.replace("_", "-")


def describe_options(config_class: type) -> list[dict[str, str]]:
    """Each option of a trainer's config dataclass: its flag, type, default and the comment beside its field in the
    source (the plugin's own words, read as text: nothing is run), for `medbench train --plugin X --help`."""
    import inspect
    import re

    comments: dict[str, str] = {}
    for cls in reversed(config_class.__mro__):  # a subclass's comment wins over its base's
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        for match in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE):
            comments[match.group(1)] = match.group(2).strip()
    hints = typing.get_type_hints(config_class)
    described = []
    for option in dataclasses.fields(config_class):
        if option.default is not dataclasses.MISSING:
            default = option.default
        elif option.default_factory is not dataclasses.MISSING:
            default = option.default_factory()
        else:
            default = "(required)"
        kind = hints.get(option.name, str)
        kind_name = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
        described.append({"flag": option_flag(option.name), "type": kind_name, "default": str(default),
                          "help": comments.get(option.name, "")})
    return described


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, args[0], key) if args else value
    if origin in (list, tuple):
        inner = args[0] if args else str
        items = value.split(",") if isinstance(value, str) else value
        # From a --config file a list holds anything YAML gives: refused here, not in the trainer's string handling.
        if not isinstance(items, (list, tuple)) or (inner is str and not all(isinstance(i, str) for i in items)):
            raise MedbenchError(f"{option_flag(key)} {value!r} is not a list of names",
                                f"give {option_flag(key)} as a,b or, in a --config file, a list of text")
        return [_coerce(item, inner, key) for item in items]
    if (origin is dict or annotation is dict) and isinstance(value, str):
        return _mapping(value, key)
    if not isinstance(value, str):
        return _checked_number(value, annotation, key)
    try:
        if annotation is bool:
            lowered = value.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes")
        if annotation in (int, float):
            return _checked_number(annotation(value), annotation, key)
    except ValueError:
        kind = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(annotation.__name__,
                                                                                  annotation.__name__)
        raise MedbenchError(f"{option_flag(key)} {value!r} is not {kind}",
                            f"give {kind} for {option_flag(key)}") from None
    return value


def _checked_number(value: Any, annotation: Any, key: str) -> Any:
    """A number for an int / float option as the option means it: finite (a NaN learning rate passes every
    `<= 0` check and fails deep inside the optimizer), and whole for an integer option (YAML's `1.7`, `true`)."""
    if annotation not in (int, float):
        return value
    kind = "an integer" if annotation is int else "a number"
    if not isinstance(value, (int, float)):  # a list or a mapping from a --config file
        raise MedbenchError(f"{option_flag(key)} {value!r} is not {kind}", f"give {kind} for {option_flag(key)}")
    if isinstance(value, bool) or not math.isfinite(value) or (annotation is int and not float(value).is_integer()):
        raise MedbenchError(f"{option_flag(key)} {value!r} is not {'a finite number' if annotation is float else kind}",
                            f"give {kind} for {option_flag(key)}")
    return int(value) if annotation is int else value


def _mapping(value: str, key: str) -> dict[str, Any]:
    """A mapping option typed on the command line: ``'{"max_steps": 1}'`` (JSON / YAML) or ``max_steps=1,lr=2e-4``;
    the values stay text for the receiving config's own coercion. A name given twice (``max-steps`` and
    ``max_steps`` are one) is refused: the last would silently win, as the command line never lets it."""
    def twice(name: str) -> MedbenchError:
        return MedbenchError(f"{option_flag(key)} gives {name} twice, in {value!r}; the last would silently win",
                             f"give {name} once in {option_flag(key)}")

    text = value.strip()
    pairs: list[tuple[str, Any]] | None = None
    if text.startswith("{"):
        try:
            parsed = yaml.load(text, Loader=UniqueKeyLoader)
        except DuplicateKeyError as exc:
            raise twice(str(exc.key).replace("-", "_")) from None
        except yaml.YAMLError:
            parsed = None
        if isinstance(parsed, dict):
            pairs = [(str(k), v) for k, v in parsed.items()]
    else:
        split = [part.partition("=") for part in text.split(",") if part.strip()]
        if split and all(eq and name.strip() for name, eq, _ in split):
            pairs = [(name.strip(), raw.strip()) for name, _, raw in split]
    if pairs is None:
        raise MedbenchError(f"{option_flag(key)} {value!r} is not a mapping",
                            f"pass {option_flag(key)} name=value,name=value or a JSON object")
    out: dict[str, Any] = {}
    for name, raw in pairs:
        if (normal := name.replace("-", "_")) in out:
            raise twice(normal)
        out[normal] = raw
    return out


# Names users bring from TRL, transformers and other trainers' command lines, and what medbench's trainers call them.
COMMON_NAMES = {"lr": "learning_rate", "epochs": "num_epochs", "num_train_epochs": "num_epochs",
                "batch_size": "train_batch_size", "per_device_train_batch_size": "train_batch_size",
                "max_seq_length": "max_length", "lora_rank": "lora_r", "rank": "lora_r"}


def build_config(config_class: type, file_values: dict[str, Any], cli_values: dict[str, Any], plugin: str) -> Any:
    """The trainer's typed config from a YAML file's values overlaid with command-line options."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    if (names := _OPTION_NAMES.get()) is not None:
        names.update(fields)
    hints = typing.get_type_hints(config_class)
    merged = {**_normalized(file_values), **_normalized(cli_values)}  # the command line overrides the file
    unknown = [key for key in merged if key not in fields]
    if unknown:
        import difflib

        close = [match for key in unknown
                 for match in ([COMMON_NAMES[key]] if COMMON_NAMES.get(key) in fields
                               else difflib.get_close_matches(key, fields, n=1, cutoff=0.75))]
        hint = f"did you mean {', '.join(option_flag(k) for k in close)}? " if close else ""
        if not close and "base_options" in fields:  # a trainer that wraps another (curriculum wraps sft)
            hint = f"the wrapped trainer's options go in {option_flag('base_options')} {unknown[0]}=VALUE; "
        raise MedbenchError(f"trainer {plugin!r} has no option {', '.join(option_flag(k) for k in unknown)}",
                            f"{hint}`medbench train --plugin {plugin} --help` lists its options: "
                            f"{', '.join(option_flag(k) for k in sorted(fields))}")
    values = {key: _coerce(value, hints.get(key, str), key) for key, value in merged.items()}
    try:
        config = config_class(**values)
    except (TypeError, ValueError) as exc:
        raise MedbenchError(f"invalid options for trainer {plugin!r}: {exc}", "check the option values") from None
    # After the trainer's own checks, whose messages say more (--max-steps names its range).
    for key, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OPTION_INT:
            raise MedbenchError(f"{option_flag(key)} {value!r} is past any step count, size or seed a run uses "
                                f"(at most {MAX_OPTION_INT:,})", f"give {option_flag(key)} a smaller integer")
    refuse_ignored_options(config, [key for key, value in values.items() if value is not None], plugin)
    return config


def _normalized(values: dict[str, Any]) -> dict[str, Any]:
    """Option names as fields spell them; ``lora_r`` and ``lora-r`` in one file or recipe step are one option
    given twice, refused rather than the second silently winning."""
    out: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name in spelt and out[name] != value:
            raise MedbenchError(f"{option_flag(name)} is given twice, as {spelt[name]} {out[name]!r} and {key} "
                                f"{value!r}", f"give {option_flag(name)} once")
        spelt[name], out[name] = str(key), value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    from medbench.records import read_regular_text
    from medbench.task_yaml import MAX_CONFIG_BYTES, check_expansion
    from medbench.unique_keys import load_yaml_unique

    try:
        # Options are a few lines; one given twice would silently take the second, as the command line never does.
        data = load_yaml_unique(read_regular_text(path, limit=MAX_CONFIG_BYTES), f"config file {path}")
        check_expansion(data, f"config file {path}")
    except FileNotFoundError:
        raise MedbenchError(f"config file {path} does not exist", "check the path given to --config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MedbenchError(f"config file {path} is not valid YAML{where}", "fix the YAML syntax") from None
    except UnicodeDecodeError as exc:
        raise MedbenchError(f"config file {path} is not UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    except OSError as exc:
        raise MedbenchError(f"config file {path} cannot be read ({exc.strerror or exc})",
                            "give a readable YAML file to --config") from None
    except RecursionError:
        raise MedbenchError(f"config file {path} nests deeper than trainer options can",
                            "write the options as flat key: value lines") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MedbenchError(f"config file {path} is not a mapping", "write the trainer options as key: value lines")
    return _contained_paths(_normalized(data), path)


def _contained_paths(values: dict[str, Any], path: Path) -> dict[str, Any]:
    """A config file's file options (pairs_file, difficulty_file, base_config, ...) relative to its own folder and
    inside it, as a recipe's are: a config file is untrusted input and reads nothing else."""
    from medbench.recipe import map_file_options
    from medbench.task_yaml import is_inside, real_path

    folder = real_path(path).parent

    def contained(key: str, value: str) -> str:
        real = real_path(folder / value) if not value.startswith("~") else None
        if Path(value).is_absolute() or "://" in value or real is None or not is_inside(real, folder):
            raise MedbenchError(f"config file {path}: {key} {value!r} lies outside the config file's folder {folder}",
                                f"copy the file next to the config file and name it relative to it, or give it on "
                                f"the command line ({option_flag(key)} PATH)")
        return str(real)

    return map_file_options(values, contained)


def parse_plugin_args(args: list[str]) -> dict[str, Any]:
    """``--learning-rate 1e-4 --full`` -> {"learning_rate": "1e-4", "full": "true"} (values typed later)."""
    options: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise MedbenchError(f"unexpected argument {arg!r}", "plugin options are written --name value")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"
        name = key.replace("-", "_")
        if options.get(name, value) != value:  # the last would silently win
            raise MedbenchError(f"--{key} is given twice, as {options[name]!r} and {value!r}", f"pass --{key} once")
        options[name] = value
        i += 1
    return options
