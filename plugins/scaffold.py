"""``medbench plugin new NAME``: write a new plugin package from the template the example plugin is made of.

The template (``plugin_template/``, shipped with medbench_plugins) holds the package of
examples/medbench-plugin-example with placeholders (``%%package%%``, ``%%task%%``, ...) in file contents and
paths; files end in ``.tmpl`` so that no tool mistakes them for code. Rendering it with :data:`EXAMPLE_VALUES`
gives the example exactly (a test keeps the two in step); rendering it with values derived from NAME gives a new
package whose task, trainer and metric names cannot clash with the example's.

After editing the template, refresh the example with ``python -m medbench_plugins.scaffold --update-example``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import click

from medbench import __version__, hookimpl
from medbench.console import terminal_safe
from medbench.errors import MedbenchError

TEMPLATE_DIR = Path(__file__).resolve().parent / "plugin_template"
TEMPLATE_SUFFIX = ".tmpl"
PLACEHOLDER = re.compile(r"%%([a-z_]+)%%")
KEYS = ("dist", "package", "entry_point", "task", "trainer", "metric", "medbench_version")

# The values that render the template into examples/medbench-plugin-example.
EXAMPLE_VALUES = {
    "dist": "medbench-plugin-example",
    "package": "medbench_plugin_example",
    "entry_point": "example",
    "task": "drug_interaction",
    "trainer": "orpo",
    "metric": "cohen_kappa",
    "medbench_version": "0.1.0",
}

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


MAX_NAME_LENGTH = 48


def values_for(name: str) -> dict[str, str]:
    """Names for a new plugin package from NAME (``cardio-notes`` -> package ``medbench_cardio_notes``, ...)."""
    raw = name.strip()
    lowered = raw.lower()
    if len(lowered) > MAX_NAME_LENGTH:  # it names a folder, a package and files under them
        raise MedbenchError(f"plugin name {raw[:40]!r}... is {len(raw)} characters long",
                            f"use at most {MAX_NAME_LENGTH} characters (e.g. cardio-notes)")
    if not NAME_PATTERN.match(lowered):
        raise MedbenchError(f"plugin name {raw!r} is not valid",
                            "use lowercase letters, digits, '-' or '_', starting with a letter (e.g. cardio-notes)")
    stem = re.sub(r"^medbench[-_]", "", lowered)
    if stem in ("medbench", "plugin", "plugins", "test", "tests"):
        raise MedbenchError(f"plugin name {raw!r} is too generic", "pick a name that says what the plugin adds")
    snake = stem.replace("-", "_")
    return {
        "dist": "medbench-" + snake.replace("_", "-"),
        "package": "medbench_" + snake,
        "entry_point": snake,
        "task": f"{snake}_drug_interaction",
        "trainer": f"{snake}_orpo",
        "metric": f"{snake}_cohen_kappa",
        "medbench_version": __version__,
    }


def _fill(text: str, values: dict[str, str], where: str) -> str:
    def replace(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise MedbenchError(f"template {where} has an unknown placeholder %%{key}%%",
                                f"use one of {', '.join(KEYS)} in plugins/plugin_template")
        return values[key]

    return PLACEHOLDER.sub(replace, text)


def template_files(template: Path = TEMPLATE_DIR) -> list[Path]:
    return sorted(p for p in template.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def render(values: dict[str, str], destination: Path, template: Path = TEMPLATE_DIR) -> list[Path]:
    """Write the template, filled with ``values``, under ``destination``; returns the files written."""
    written = []
    for source in template_files(template):
        relative = source.relative_to(template).as_posix()
        target_rel = _fill(relative, values, relative)
        if target_rel.endswith(TEMPLATE_SUFFIX):
            target_rel = target_rel[: -len(TEMPLATE_SUFFIX)]
        target = destination / target_rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_fill(source.read_text(encoding="utf-8"), values, relative), encoding="utf-8")
        written.append(target)
    return written


def _plugin_names_in_use() -> dict[str, str]:
    from medbench.plugins import list_plugins

    return {info.name: info.package for info in list_plugins()}


def new_plugin(name: str, parent: Path) -> Path:
    """Create ``parent/<distribution name>/`` from the template; refuse to touch an existing directory."""
    values = values_for(name)
    taken = _plugin_names_in_use()
    if values["entry_point"] in taken:
        raise MedbenchError(f"plugin name {values['entry_point']!r} is already used by package "
                            f"{taken[values['entry_point']]}", "pick another NAME for `medbench plugin new`")
    destination = Path(parent) / values["dist"]
    if destination.exists():
        raise MedbenchError(f"{destination} already exists",
                            "pick another NAME, pass --dir to write elsewhere, or move that directory away")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # --dir under a file, or a folder we may not write
        raise _unwritable(destination.parent, exc) from None
    try:
        render(values, destination)
    except BaseException as exc:
        shutil.rmtree(destination, ignore_errors=True)  # never leave half a package behind
        if isinstance(exc, OSError):
            raise _unwritable(destination, exc) from None
        raise
    return destination


def _unwritable(path: Path, exc: OSError) -> MedbenchError:
    return MedbenchError(f"cannot write to {path} ({exc.strerror or exc})", "pass another --dir")


def next_commands(destination: Path) -> str:
    """Install, test and list the new plugin, every step with the interpreter medbench runs in: a bare `pip` or
    `medbench` may belong to another environment, where the package is never seen."""
    python = shlex.quote(sys.executable)
    return (f"{python} -m pip install -e {shlex.quote(str(destination))} && "
            f"{python} -m pytest {shlex.quote(str(destination / 'tests'))} && {python} -m medbench.cli plugins")


@hookimpl
def register_commands(cli):
    @cli.group("plugin")
    def plugin_group() -> None:
        """Write plugin packages."""

    @plugin_group.command("new")
    @click.argument("name")
    @click.option("--dir", "directory", type=click.Path(file_okay=False), default=".", show_default=True,
                  help="Directory the new package folder is created in.")
    def new_command(name: str, directory: str) -> None:
        """Write a new plugin package NAME (a task, a trainer and a metric), ready to `pip install -e`."""
        destination = new_plugin(name, Path(directory))
        values = values_for(name)
        # --dir is the user's own text: a control character in it is shown escaped, never sent to the terminal.
        click.echo(terminal_safe(f"wrote {destination}: package {values['package']}, entry point "
                                 f"{values['entry_point']}, task {values['task']}, trainer {values['trainer']}, "
                                 f"metric {values['metric']}"))
        click.echo(terminal_safe(f"next: {next_commands(destination)}"))


def update_example(root: Path) -> Path:
    """Re-render examples/medbench-plugin-example from the template (after editing the template)."""
    destination = root / "examples" / EXAMPLE_VALUES["dist"]
    for stale in template_output_files(destination):
        stale.unlink()
    render(EXAMPLE_VALUES, destination)
    return destination


def template_output_files(directory: Path) -> list[Path]:
    """The files of a rendered package, leaving out what installing and testing it add (egg-info, caches)."""
    skip = ("__pycache__", ".pytest_cache", "build", "dist")
    return sorted(p for p in Path(directory).rglob("*")
                  if p.is_file() and not any(part in skip or part.endswith(".egg-info") for part in
                                             p.relative_to(directory).parts))


if __name__ == "__main__":
    if sys.argv[1:] != ["--update-example"]:
        sys.exit("usage: python -m medbench_plugins.scaffold --update-example   (run from the repository root)")
    print(f"wrote {update_example(Path.cwd())}")
