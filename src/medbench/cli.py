"""The ``medbench`` command line: the group, plugin commands and error handling. Each command lives in
medbench.commands (one module per command or family), parses its options, calls the library and prints.
Errors the user can fix print one line and exit non-zero; --debug shows the trace."""

from __future__ import annotations

import sys

try:
    import logging
    import os
    import traceback
    import warnings

    import click

    from medbench import __version__
    from medbench.commands import catalog, evaluate, launch, leaderboard, sweep, train
    from medbench.commands.common import console, err_console
    from medbench.console import labelled, lines_safe, terminal_safe
    from medbench.commands.trainers import trainers_command
    from medbench.errors import MedbenchError
except KeyboardInterrupt:  # Ctrl-C while the command line itself is still importing: no traceback either
    sys.stderr.write("Interrupted.\n")
    raise SystemExit(130) from None

__all__ = ["cli", "main", "console", "err_console", "add_plugin_commands"]


def _quiet_libraries() -> None:
    """lm-eval, transformers and datasets log a lot at INFO; medbench shows its own progress instead.

    Through environment variables the libraries read when they are imported, so that `medbench --help` and
    option errors never import them (seconds); a library already imported (tests, notebooks) is told directly.
    """
    for name in ("lm_eval", "lm-eval", "datasets", "transformers", "accelerate", "peft", "trl", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _escape_log_messages()
    # datasets logs a file it cannot parse ("Failed to load JSON ...") before raising; medbench's own one-line
    # error says the same, so the log line would only make it two.
    logging.getLogger("datasets.packaged_modules").setLevel(logging.CRITICAL)
    for variable, value in (("TOKENIZERS_PARALLELISM", "false"),
                            ("TQDM_DISABLE", "1"),  # library tqdm bars; medbench draws rich progress itself
                            ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                            ("TRANSFORMERS_VERBOSITY", "error"), ("DATASETS_VERBOSITY", "error")):
        os.environ.setdefault(variable, value)
    if "datasets" in sys.modules:
        try:
            import datasets

            datasets.disable_progress_bars()
            datasets.logging.set_verbosity_error()
        except Exception:
            pass
    if "transformers" in sys.modules:
        try:
            import transformers

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
        except Exception:
            pass


def _escape_log_messages() -> None:
    """Library log lines quote task names and labels (lm-eval's "task NAME: ..."), and whatever handler prints
    them, their control characters are escaped as medbench's own lines are: ESC[2J in a name clears no screen."""
    made = logging.getLogRecordFactory()
    if getattr(made, "escapes_controls", False):
        return

    def factory(*args, **kwargs):
        record = made(*args, **kwargs)
        try:
            record.msg, record.args = terminal_safe(record.getMessage()), ()
        except Exception:  # a message that cannot be formatted is left for logging to report as it would
            pass
        return record

    factory.escapes_controls = True
    logging.setLogRecordFactory(factory)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err_console.print(labelled("Warning:", "yellow", " ".join(str(message).split())), highlight=False, soft_wrap=True)


class _CommandList(click.Group):
    """``medbench --help`` lists each command's first sentence whole, wrapped, rather than cut near 60 characters;
    a command's option given twice with two values is refused before the command runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from medbench.commands.repeated_options import refuse_repeated_options

        refuse_repeated_options(self, args, "medbench")  # its own options too: --plugins-dir A --plugins-dir B
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            from medbench.commands.repeated_options import refuse_repeated_options

            refuse_repeated_options(command, rest, f"medbench {name}")
        return name, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        rows = [(name, command.get_short_help_str(limit=1000)) for name, command in commands
                if command is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_CommandList, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medbench")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.option("--plugins-dir", type=click.Path(file_okay=False), default=None,
              help="Also load every *.py in this directory as a plugin.")
@click.option("--online", is_flag=True, help="Allow Hugging Face hub downloads (medbench is offline by default).")
def cli(debug: bool, plugins_dir: str | None, online: bool) -> None:
    """medbench: benchmark and fine-tune language models for medicine."""
    if online:
        os.environ["HF_HUB_OFFLINE"] = "0"
        os.environ["HF_DATASETS_OFFLINE"] = "0"
    if plugins_dir:
        from medbench.plugins import load_plugins_dir

        load_plugins_dir(plugins_dir)


cli.add_command(trainers_command)


for command in (catalog.plugins_command, catalog.tasks_command, catalog.models_command, evaluate.eval_command,
                leaderboard.leaderboard_command, train.train_command, sweep.sweep_command):
    cli.add_command(command)


# A plugin command's own click errors (bad option, ctx.exit) are the user's, not a plugin crash.
_CLICK_FLOW = (click.ClickException, click.exceptions.Exit, click.exceptions.Abort)


def _name_command_failures(command: click.Command, plugin: str) -> None:
    """Run a plugin's command (and a group's sub-commands) under plugin_call, so a crash names the plugin."""
    from medbench.plugin_calls import plugin_callable

    if command.callback is not None:
        command.callback = plugin_callable(plugin, f"command {command.name!r}", command.callback, _CLICK_FLOW)
    for sub in getattr(command, "commands", {}).values():
        _name_command_failures(sub, plugin)


def add_plugin_commands(group: click.Group) -> None:
    """The ``register_commands`` hook, one plugin at a time, so each command added knows its plugin."""
    from medbench.registries import call_register_hook

    before = dict(group.commands)

    def added_by(plugin: str) -> None:
        for name, command in list(group.commands.items()):
            if before.get(name) is not command:
                _name_command_failures(command, plugin)
                before[name] = command

    call_register_hook("register_commands", lambda plugin: group, after=added_by)


def _add_plugin_commands() -> None:
    add_plugin_commands(cli)


def _interrupted(as_program: bool) -> None:
    """One line and exit 130 on Ctrl-C, wherever it lands. Run as the program, a second Ctrl-C cannot interrupt
    the exit (in-process callers, tests, keep their own SIGINT handling)."""
    import signal

    if as_program:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass
    sys.stderr.write("Interrupted. Records already written are kept.\n")
    sys.stderr.flush()
    sys.exit(130)


def _usage_error(exc: click.UsageError) -> None:
    """click's bad option / missing argument errors, as the one line every other input error gets."""
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):  # bare `medbench`: the help, as is
        exc.show()
        sys.exit(exc.exit_code)
    command = exc.ctx.command_path if exc.ctx is not None else "medbench"
    message = " ".join(exc.format_message().split()).rstrip(".")
    what = "commands" if isinstance(exc, click.exceptions.NoSuchCommand) else "options"  # not click.NoSuchOption
    print_error(f"{message} — run `{command} --help` for the valid {what}")
    sys.exit(exc.exit_code)


def print_error(message: str) -> None:
    """One error line. The message is printed as written: brackets in it (`medbench[vllm]`, a JSON list) are text,
    not rich markup that would swallow them."""
    err_console.print(labelled("Error:", "bold red", message), highlight=False, soft_wrap=True)


def _print_traceback(kind, value, trace) -> None:
    """--debug's traceback, with the control characters of the messages it quotes (a label, a folder) escaped."""
    sys.stderr.write(lines_safe("".join(traceback.format_exception(kind, value, trace))))


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        sys.excepthook = _print_traceback
    try:
        _main(argv)
    except KeyboardInterrupt:
        _interrupted(as_program=argv is None)


def _main(argv: list[str] | None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    launch.INVOCATION[:] = argv
    debug = "--debug" in argv or os.environ.get("MEDBENCH_DEBUG") == "1"
    if "--online" in argv[: argv.index("--") if "--" in argv else len(argv)]:
        # Before anything imports huggingface_hub or datasets: both read these variables once, at import.
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "0"
    warnings.showwarning = _show_warning
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notices, not the user's concern
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline unless the user set it, or passes --online
    os.environ.setdefault("HF_DATASETS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    # transformers >= 5.2x swaps hub-downloaded kernels into every CUDA model it loads unless told not to: offline
    # that load fails, and online the scores would depend on code fetched at run time that no record names.
    os.environ.setdefault("USE_HUB_KERNELS", "NO")
    _quiet_libraries()
    try:
        _add_plugin_commands()
        cli.main(args=argv, prog_name="medbench", standalone_mode=False)
    except MedbenchError as exc:
        if debug:
            raise
        print_error(exc.one_line())
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _usage_error(exc)
    except click.ClickException as exc:  # a plugin command's message can quote a label: print_error escapes it
        print_error(" ".join(exc.format_message().split()))
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # click turns Ctrl-C at a prompt into Abort
        raise KeyboardInterrupt from None
    except Exception as exc:
        if debug:
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print_error(f"{message} — rerun with --debug for the traceback")
        sys.exit(1)


if __name__ == "__main__":
    main()
