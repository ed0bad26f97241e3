"""An option that takes one value, given twice with two values, is refused: click keeps the last one silently, so
`--tasks uti ... --tasks medqa` scored medqa alone and `--limit 2 --limit 200` scored 200. The same value twice is
no conflict; repeatable options (--data-file, --set, ...) are checked where they are read (medbench.small_inputs)."""

from __future__ import annotations

from typing import Any

import click

from medbench.errors import MedbenchError


def _takes_one_value(option: click.Option) -> bool:
    return not (option.is_flag or option.count or option.multiple) and option.nargs == 1


def refuse_repeated_options(command: click.Command, args: list[str], path: str) -> None:
    """Raise a MedbenchError for the first single-value option of ``command`` that ``args`` give two values."""
    if any(arg in ("-h", "--help") for arg in args):
        return  # the help is shown whatever else was typed
    options = {name: param for param in command.params if isinstance(param, click.Option)
               for name in (*param.opts, *param.secondary_opts)}
    given: dict[str, tuple[str, Any]] = {}
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            return
        name, has_value, value = token.partition("=") if token.startswith("--") else (token, "", None)
        option = options.get(name)
        if option is None:
            if isinstance(command, click.Group) and not token.startswith("-"):
                sub = command.commands.get(token)  # a plugin's group: its sub-command's own options
                if sub is not None:
                    refuse_repeated_options(sub, args[index:], f"{path} {token}")
                return
            continue  # a positional argument, or a trainer plugin's option (checked by parse_plugin_args)
        if option.is_flag or option.count:
            continue
        if not has_value:
            optional = getattr(option, "_flag_needs_value", False)  # --fewshot-rationales [FIELD]
            if optional and (index >= len(args) or (args[index][:1] == "-" and len(args[index]) > 1)):
                value = None
            else:
                value = args[index] if option.nargs == 1 else tuple(args[index:index + option.nargs])
                index += option.nargs
        if not _takes_one_value(option):
            continue
        if option.name in given and given[option.name][1] != value:
            first, before = given[option.name]
            before, now = ("no value" if v is None else repr(v) for v in (before, value))
            spelt = f"as {before} and {now}" if first == name else f"as {first} {before} and {name} {now}"
            raise MedbenchError(f"{path} is given {first} twice, {spelt}; click would keep the last one silently",
                                f"give {first} once")
        given.setdefault(option.name, (name, value))
